//! The MongoDB driver's tests, one binary: the whole conformance suite and
//! the differential property test against a real MongoDB wire-protocol
//! server, plus the driver's own tests.
//!
//! The server comes from `OBJECTQL_MONGO_URL` (`scripts/test` starts one —
//! see `scripts/mongo.sh` — or uses the one you set, e.g. a real MongoDB).
//! Without it every test fails with a message saying so: nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

mod common;
mod differential;
mod driver;

use std::sync::Arc;

use objectql_conformance::{Harness, async_trait};

/// Each case in a database of its own, dropped afterwards.
struct MongoHarness;

#[async_trait]
impl Harness for MongoHarness {
    fn name(&self) -> String {
        "mongodb".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(common::driver_in(namespace).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        common::drop_database(namespace).await;
        Ok(())
    }
}

objectql_conformance::conformance_suite!(MongoHarness);
