//! The whole conformance suite against the memory driver (the reference),
//! plus the memory driver's own integration tests: one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use objectql_conformance::{Harness, async_trait};
use objectql_driver_memory::MemoryDriver;

mod memory;
mod properties;

struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> String {
        "memory".into()
    }

    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(MemoryDriver::new()))
    }
}

objectql_conformance::conformance_suite!(MemoryHarness);
