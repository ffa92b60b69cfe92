//! The whole conformance suite against the SQLite driver, each case in its
//! own database file, plus the SQLite driver's own tests: one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, OnceLock};

use objectql_conformance::{Harness, async_trait};
use objectql_driver_sqlite::{SqliteDriver, SqliteOptions};

mod differential;
mod sqlite;

/// One temporary directory for the whole test run; each namespace is a
/// database file in it, removed after its case.
fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

struct SqliteHarness;

#[async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> String {
        "sqlite".into()
    }

    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = dir().join(format!("{namespace}.db"));
        Ok(Arc::new(
            SqliteDriver::open(SqliteOptions::file(path)).await?,
        ))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir().join(format!("{namespace}.db{suffix}")));
        }
        Ok(())
    }
}

objectql_conformance::conformance_suite!(SqliteHarness);
