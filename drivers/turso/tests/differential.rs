//! The Turso driver against the memory driver on generated schemas, rows
//! and queries: 1,000 cases per run and mode, 0 mismatches allowed.

use std::sync::Arc;

use objectql_conformance::differential::{check, scenario};
use objectql_conformance::{Harness, async_trait};
use objectql_driver_turso::{TursoDriver, TursoOptions};
use proptest::prelude::*;

use crate::common::dir;

struct InMemory;

#[async_trait]
impl Harness for InMemory {
    fn name(&self) -> String {
        "turso (memory)".into()
    }
    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(
            TursoDriver::open(TursoOptions::in_memory()).await?,
        ))
    }
}

/// A fresh file per scenario.
struct InFile;

#[async_trait]
impl Harness for InFile {
    fn name(&self) -> String {
        "turso (file)".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = dir().join(format!("{namespace}.db"));
        Ok(Arc::new(TursoDriver::open(TursoOptions::file(path)).await?))
    }

    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir().join(format!("{namespace}.db{suffix}")));
        }
        Ok(())
    }
}

fn run(
    harness: &dyn Harness,
    (s, rows, q): &(
        objectql_conformance::generate::GenSchema,
        Vec<objectql::Record>,
        objectql::Query,
    ),
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Err(why) = rt.block_on(check(harness, s, rows, q)) {
        panic!("{why}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn turso_in_memory_answers_like_the_memory_driver(scenario in scenario()) {
        run(&InMemory, &scenario);
    }

    #[test]
    fn turso_in_a_file_answers_like_the_memory_driver(scenario in scenario()) {
        run(&InFile, &scenario);
    }
}
