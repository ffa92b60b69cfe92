//! Differential testing: the same schema, rows and query on a driver under
//! test and on the memory driver (the reference) must give the same answer.
//!
//! ```text
//! proptest! {
//!     #[test]
//!     fn same_answers((s, rows, q) in objectql_conformance::differential::scenario()) {
//!         rt.block_on(objectql_conformance::differential::check(&MyHarness, &s, &rows, &q))?;
//!     }
//! }
//! ```

use std::sync::Arc;

use objectql::{Engine, Query, Record};
use proptest::prelude::*;
use serde_json::Value as Json;

use crate::Harness;
use crate::compare::{json_eq, multiset_eq};
use crate::generate::{self, GenSchema};

/// A generated schema, rows, and a row or aggregate query over them.
pub fn scenario() -> impl Strategy<Value = (GenSchema, Vec<Record>, Query)> {
    generate::schema().prop_flat_map(|s| {
        let rows = generate::rows(&s, 20);
        let q = prop_oneof![3 => generate::row_query(&s), 1 => generate::aggregate_query(&s)];
        (Just(s), rows, q)
    })
}

async fn answer(engine: &Engine, q: &Query) -> Result<Vec<Json>, String> {
    engine
        .default_session()
        .find(q)
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| Json::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
                .collect()
        })
        .map_err(|e| e.category().to_owned() + ": " + &e.to_string())
}

async fn load(engine: &Engine, s: &GenSchema, rows: &[Record]) -> Result<(), String> {
    engine
        .register(s.schema.clone())
        .await
        .map_err(|e| format!("register: {e}"))?;
    engine
        .default_session()
        .insert_many(&s.schema.name, rows.to_vec())
        .await
        .map_err(|e| format!("insert: {e}"))?;
    Ok(())
}

/// Runs `q` over `rows` on the harness's driver and on the memory driver and
/// compares: the same rows (in the same order when the query is paged, so
/// its order is total), or errors of the same category. Returns a
/// description of the first difference.
pub async fn check(
    harness: &dyn Harness,
    s: &GenSchema,
    rows: &[Record],
    q: &Query,
) -> Result<(), String> {
    let namespace = format!("oql_diff_{}", std::process::id());
    let reference = Engine::new();
    reference
        .add_driver("default", Arc::new(objectql::MemoryDriver::new()))
        .map_err(|e| e.to_string())?;
    load(&reference, s, rows).await?;
    let tested = Engine::new();
    let driver = harness
        .connect(&namespace)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tested
        .add_driver("default", driver)
        .map_err(|e| e.to_string())?;
    let outcome = async {
        load(&tested, s, rows).await?;
        let expected = answer(&reference, q).await;
        let actual = answer(&tested, q).await;
        let paged = q.limit.is_some() || q.offset.is_some();
        match (&expected, &actual) {
            (Ok(e), Ok(a)) => {
                let same = if paged {
                    e.len() == a.len() && e.iter().zip(a).all(|(x, y)| json_eq(x, y))
                } else {
                    multiset_eq(e, a)
                };
                if same {
                    Ok(())
                } else {
                    Err(format!(
                        "different rows for {}\n  memory: {}\n  {}: {}",
                        q.to_json(),
                        Json::Array(e.clone()),
                        harness.name(),
                        Json::Array(a.clone())
                    ))
                }
            }
            (Err(e), Err(a)) if e.split(':').next() == a.split(':').next() => Ok(()),
            _ => Err(format!(
                "different outcomes for {}\n  memory: {expected:?}\n  {}: {actual:?}",
                q.to_json(),
                harness.name()
            )),
        }
    }
    .await;
    let _ = tested.close().await;
    harness
        .cleanup(&namespace)
        .await
        .map_err(|e| format!("cleanup: {e}"))?;
    outcome
}
