//! SQLite against the memory driver on generated schemas, rows and queries:
//! 1,000 cases per run, 0 mismatches allowed. Each case uses a fresh
//! in-memory SQLite database.

use std::sync::Arc;

use objectql_conformance::differential::{check, scenario};
use objectql_conformance::{Harness, async_trait};
use objectql_driver_sqlite::{SqliteDriver, SqliteOptions};
use proptest::prelude::*;

struct InMemory;

#[async_trait]
impl Harness for InMemory {
    fn name(&self) -> String {
        "sqlite".into()
    }
    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(
            SqliteDriver::open(SqliteOptions::in_memory()).await?,
        ))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_answers_like_the_memory_driver((s, rows, q) in scenario()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        if let Err(why) = rt.block_on(check(&InMemory, &s, &rows, &q)) {
            panic!("{why}");
        }
    }
}
