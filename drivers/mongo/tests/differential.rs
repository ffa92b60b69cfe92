//! MongoDB against the memory driver on generated schemas, rows and
//! queries: 1,000 cases per run, 0 mismatches allowed.

use std::sync::Arc;

use objectql_conformance::differential::{check, scenario};
use objectql_conformance::{Harness, async_trait};
use proptest::prelude::*;

struct Fresh;

#[async_trait]
impl Harness for Fresh {
    fn name(&self) -> String {
        "mongodb".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(crate::common::driver_in(namespace).await?))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        crate::common::drop_database(namespace).await;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn mongodb_answers_like_the_memory_driver((s, rows, q) in scenario()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        if let Err(why) = rt.block_on(check(&Fresh, &s, &rows, &q)) {
            panic!("{why}");
        }
    }
}
