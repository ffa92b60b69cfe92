//! The whole conformance suite and the differential property test against
//! a real MySQL or MariaDB server, plus the driver's own tests: one test
//! binary.
//!
//! The server comes from `OBJECTQL_TEST_MYSQL_URL` (set by `scripts/test`),
//! defaulting to the local server every machine of this project runs. Each
//! namespace is a database of its own, `{run}_{namespace}`, where the run
//! id is `OBJECTQL_TEST_RUN_ID` (also set by `scripts/test`, which drops
//! every `{run}_*` database afterwards). A server that cannot be reached
//! fails the tests; nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

use std::sync::Arc;

pub use common::*;
use objectql_conformance::{Harness, async_trait};
use objectql_driver_mysql::MySqlDriver;

mod common;
mod differential;
mod mysql;

struct MySqlHarness;

#[async_trait]
impl Harness for MySqlHarness {
    fn name(&self) -> String {
        "mysql".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(driver_in(namespace, 2).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        drop_database(namespace).await;
        Ok(())
    }
}

objectql_conformance::conformance_suite!(MySqlHarness);

/// The `VERSION()` to assume so the driver takes MySQL's write paths (no
/// `RETURNING`: keys from `LAST_INSERT_ID()`, rows read back by key) on
/// the server at hand: MariaDB 10.4 on a MariaDB server; on MySQL those
/// are the paths anyway.
pub async fn version_without_returning() -> Option<String> {
    use sqlx::Row;
    let mut admin = admin().await;
    let row = sqlx::query("SELECT VERSION()")
        .fetch_one(&mut admin)
        .await
        .expect("SELECT VERSION()");
    let version: String = row.try_get_unchecked(0).expect("a version string");
    version
        .to_ascii_lowercase()
        .contains("mariadb")
        .then(|| "10.4.99-MariaDB".to_owned())
}

/// A driver over a fresh database for `namespace`, taking MySQL's write paths.
pub async fn driver_without_returning(namespace: &str) -> objectql::Result<MySqlDriver> {
    let mut options = options_in(namespace, 2).await;
    options.assume_version = version_without_returning().await;
    MySqlDriver::open(options).await
}

/// The whole suite again through the write paths of servers without
/// `RETURNING` (MySQL, MariaDB < 10.5).
struct WithoutReturning;

#[async_trait]
impl Harness for WithoutReturning {
    fn name(&self) -> String {
        "mysql (without RETURNING)".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(driver_without_returning(namespace).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        drop_database(namespace).await;
        Ok(())
    }
}

mod without_returning {
    use super::*;

    objectql_conformance::conformance_suite!(WithoutReturning);
}
