//! Vectors on libSQL: exact answers equal the memory driver's in every
//! mode, approximate ones come from the vector index, and drivers without
//! vectors refuse them.

use std::sync::Arc;

use objectql::{Driver, Engine, Error, Nearest, Query, Record, Value, VectorMetric, field, record};
use objectql_driver_turso::{TursoDriver, TursoOptions};
use serde_json::json;

use crate::common::{ServerLock, remote_options, wipe};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn schema() -> serde_json::Value {
    json!({"name": "chunk", "fields": {
        "id": {"type": "integer"},
        "kind": {"type": "select"},
        "v": {"type": "vector", "dimensions": 8, "metric": "cosine", "index": true}
    }})
}

/// 200 deterministic vectors with components in quarters (exact in f32).
fn rows() -> Vec<Record> {
    let mut state: u64 = 17;
    (0..200_i64)
        .map(|id| {
            let v: Vec<Value> = (0..8)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    let q = i32::try_from((state >> 60) % 9).unwrap() - 4;
                    Value::Float(f64::from(q) / 4.0)
                })
                .collect();
            let zero = v.iter().all(|x| *x == Value::Float(0.0));
            record! {
                "id" => id,
                "kind" => if id % 3 == 0 { "a" } else { "b" },
                "v" => if zero { Value::Null } else { Value::Array(v) },
            }
        })
        .collect()
}

async fn loaded(driver: Arc<dyn Driver>) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", driver).unwrap();
    engine.register_json(&schema()).await.unwrap();
    engine
        .default_session()
        .insert_many("chunk", rows())
        .await
        .unwrap();
    engine
}

fn queries() -> Vec<Query> {
    let target = [0.5, -0.25, 1.0, 0.0, 0.75, -1.0, 0.25, 0.5];
    vec![
        Query::new("chunk").nearest(Nearest::new("v", target, 10)),
        Query::new("chunk")
            .select(["id", "kind"])
            .filter(field("kind").eq("a"))
            .nearest(Nearest::new("v", target, 7).metric(VectorMetric::L2)),
        Query::new("chunk").nearest(Nearest::new("v", target, 500)),
    ]
}

/// `(id, distance)` of each row, in order.
async fn answer(engine: &Engine, q: &Query) -> Vec<(i64, f64)> {
    engine
        .default_session()
        .find(q)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let Some(Value::Float(d)) = r.get("_distance") else {
                panic!("no distance in {r:?}");
            };
            (r["id"].as_i64().unwrap(), *d)
        })
        .collect()
}

fn assert_same(expected: &[(i64, f64)], actual: &[(i64, f64)], what: &str) {
    assert_eq!(expected.len(), actual.len(), "{what}: row counts");
    for ((ei, ed), (ai, ad)) in expected.iter().zip(actual) {
        assert_eq!(ei, ai, "{what}: ids in order\n{expected:?}\n{actual:?}");
        assert!(
            (ed - ad).abs() <= 1e-6 * ed.abs().max(1.0),
            "{what}: distance of {ei}: {ed} vs {ad}"
        );
    }
}

#[test]
fn exact_answers_equal_the_memory_drivers_locally_and_remotely() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let reference = loaded(Arc::new(objectql::MemoryDriver::new())).await;
        let local = loaded(Arc::new(
            TursoDriver::open(TursoOptions::in_memory()).await.unwrap(),
        ))
        .await;
        let remote = loaded(Arc::new(TursoDriver::open(remote_options()).await.unwrap())).await;
        for q in queries() {
            let expected = answer(&reference, &q).await;
            assert!(!expected.is_empty());
            assert_same(&expected, &answer(&local, &q).await, "local");
            assert_same(&expected, &answer(&remote, &q).await, "remote");
        }
        remote.close().await.unwrap();
        wipe().await.unwrap();
    });
}

#[test]
fn approximate_queries_use_the_vector_index() {
    rt().block_on(async {
        let engine = loaded(Arc::new(
            TursoDriver::open(TursoOptions::in_memory()).await.unwrap(),
        ))
        .await;
        let target = [0.5, -0.25, 1.0, 0.0, 0.75, -1.0, 0.25, 0.5];
        let exact = Query::new("chunk").nearest(Nearest::new("v", target, 10));
        let approximate = Query::new("chunk").nearest(Nearest::new("v", target, 10).approximate());
        let db = engine.default_session();
        let plan: Vec<String> = db
            .explain(&approximate)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.detail)
            .collect();
        // The index's generated name: `chunk_<hash>_idx`.
        assert!(plan[0].contains("vector_top_k('chunk_"), "{plan:?}");
        assert!(plan[0].contains("_idx', ?, ?)"), "{plan:?}");
        assert!(
            !db.explain(&exact).await.unwrap()[0]
                .detail
                .contains("vector_top_k")
        );
        let found = answer(&engine, &approximate).await;
        let truth = answer(&engine, &exact).await;
        assert!(!found.is_empty() && found.len() <= 10, "{found:?}");
        // Sorted by distance, and every distance is a true distance.
        assert!(found.windows(2).all(|w| w[0].1 <= w[1].1), "{found:?}");
        let hits = found
            .iter()
            .filter(|(id, _)| truth.iter().any(|(t, _)| t == id))
            .count();
        assert!(
            hits >= 5,
            "recall {hits}/10 on 200 vectors: {found:?} vs {truth:?}"
        );
        // An approximate query with another metric than the index's runs exact.
        let l2 = Query::new("chunk").nearest(
            Nearest::new("v", target, 10)
                .metric(VectorMetric::L2)
                .approximate(),
        );
        assert!(
            !db.explain(&l2).await.unwrap()[0]
                .detail
                .contains("vector_top_k")
        );
    });
}

#[test]
fn drivers_without_vectors_refuse_them() {
    rt().block_on(async {
        let sqlite = objectql_driver_sqlite::SqliteDriver::open(
            objectql_driver_sqlite::SqliteOptions::in_memory(),
        )
        .await
        .unwrap();
        let engine = Engine::new();
        engine.add_driver("default", Arc::new(sqlite)).unwrap();
        let e = engine.register_json(&schema()).await.unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    });
}
