//! The whole conformance suite and the differential property test against
//! a real PostgreSQL server, plus the driver's own tests: one test binary.
//!
//! The server comes from `OBJECTQL_TEST_POSTGRES_URL` (set by `scripts/test`,
//! which provisions a database for the run), defaulting to the local
//! server every machine of this project runs. A server that cannot be
//! reached fails the tests; nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

use std::sync::Arc;

use common::{driver_in, drop_schema};
use objectql_conformance::{Harness, async_trait};

mod common;
mod differential;
mod postgres;

struct PostgresHarness;

#[async_trait]
impl Harness for PostgresHarness {
    fn name(&self) -> String {
        "postgres".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(driver_in(namespace, 2).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        drop_schema(namespace).await;
        Ok(())
    }
}

objectql_conformance::conformance_suite!(PostgresHarness);
