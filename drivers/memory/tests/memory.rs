//! Memory-driver behaviour beyond the shared cases: persistence, isolation,
//! streaming, Arrow output, URLs, bad input through the engine.

use std::sync::Arc;

use futures::TryStreamExt;
use objectql::{
    Engine, Error, IsolationLevel, MemoryDriver, MemoryOptions, Query, Value, field, record,
};
use serde_json::json;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn engine_with(driver: MemoryDriver) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", Arc::new(driver)).unwrap();
    engine
        .register_json(&json!({
            "name": "note",
            "fields": {
                "title": {"type": "text", "required": true, "maxLength": 20},
                "n": {"type": "integer"},
                "price": {"type": "currency", "precision": 10, "scale": 2},
                "at": {"type": "datetime"},
                "tags": {"type": "json"},
                "code": {"type": "text", "unique": true}
            }
        }))
        .await
        .unwrap();
    engine
}

#[test]
fn persisted_store_survives_reopen_with_exact_values() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let url = format!("memory://{}", path.display());
        {
            let engine = engine_with(MemoryDriver::connect(&url).unwrap()).await;
            let db = engine.default_session();
            db.insert(
                "note",
                record! {"id" => "a", "title" => "x'\"\\ é", "price" => "12.30", "at" => "2026-03-01T10:00:00.123456Z", "n" => i64::MAX},
            )
            .await
            .unwrap();
            db.insert("note", record! {"id" => "b", "title" => "gone"}).await.unwrap();
            assert!(db.delete("note", "b").await.unwrap());
        }
        // No temporary file is left behind (the store and its lock file).
        let mut leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        leftovers.sort();
        assert_eq!(leftovers, ["store.json", "store.json.lock"]);

        let engine = engine_with(MemoryDriver::connect(&url).unwrap()).await;
        let rows = engine.default_session().find(&Query::new("note")).await.unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r["title"], Value::from("x'\"\\ é"));
        assert_eq!(r["price"].to_json(), json!("12.30"));
        assert_eq!(r["at"].to_json(), json!("2026-03-01T10:00:00.123456Z"));
        assert_eq!(r["n"], Value::Int(i64::MAX));
    });
}

#[test]
fn a_torn_temporary_file_does_not_corrupt_the_store() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        {
            let engine =
                engine_with(MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap())
                    .await;
            engine
                .default_session()
                .insert("note", record! {"id" => "a", "title" => "kept"})
                .await
                .unwrap();
        }
        // Simulate a crash mid-write: a half-written temporary file beside the store.
        std::fs::write(
            dir.path().join(".store.json.tmp-999999"),
            b"{\"format\": \"objectql-mem",
        )
        .unwrap();
        let engine =
            engine_with(MemoryDriver::connect(&format!("memory://{}", path.display())).unwrap())
                .await;
        let rows = engine
            .default_session()
            .find(&Query::new("note"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        // The killed process's temporary file is gone.
        assert!(!dir.path().join(".store.json.tmp-999999").exists());
        engine.close().await.unwrap();

        // A corrupt store file is a typed error, not a panic.
        std::fs::write(&path, b"{not json").unwrap();
        let e = MemoryDriver::connect(&format!("memory://{}", path.display())).unwrap_err();
        assert_eq!(e.driver_kind(), Some(objectql::DriverErrorKind::Decode));
    });
}

/// Issue 13 §6: a write whose save fails is undone in memory. It used to
/// stay visible: a retry met `UniqueViolation`, and the next successful
/// save wrote the "failed" row to disk.
#[test]
fn a_write_that_fails_to_persist_is_undone() {
    rt().block_on(async {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("store.json");
        let engine =
            engine_with(MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap()).await;
        let db = engine.default_session();
        db.insert("note", record! {"id" => "a", "title" => "kept"})
            .await
            .unwrap();
        // The store's directory disappears: every save fails.
        std::fs::remove_dir_all(&dir).unwrap();
        let e = db
            .insert("note", record! {"id" => "b", "title" => "lost"})
            .await
            .unwrap_err();
        assert_eq!(e.driver_kind(), Some(objectql::DriverErrorKind::Io), "{e}");
        assert_eq!(
            db.count("note", None).await.unwrap(),
            1,
            "the failed insert is undone"
        );
        let e = db
            .update("note", "a", record! {"title" => "changed"})
            .await
            .unwrap_err();
        assert_eq!(e.driver_kind(), Some(objectql::DriverErrorKind::Io), "{e}");
        let tx = db
            .begin("default", IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("note", record! {"id" => "c", "title" => "in tx"})
            .await
            .unwrap();
        let e = tx.commit().await.unwrap_err();
        assert_eq!(e.driver_kind(), Some(objectql::DriverErrorKind::Io), "{e}");
        let rows = db.find(&Query::new("note")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["title"], Value::from("kept"));
        // Back on disk: the retry is a plain insert, not a duplicate.
        std::fs::create_dir(&dir).unwrap();
        db.insert("note", record! {"id" => "b", "title" => "retried"})
            .await
            .unwrap();
        engine.close().await.unwrap();
        let engine =
            engine_with(MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap()).await;
        let titles: Vec<Value> = engine
            .default_session()
            .find(&Query::new("note").asc("id"))
            .await
            .unwrap()
            .into_iter()
            .map(|r| r["title"].clone())
            .collect();
        assert_eq!(titles, [Value::from("kept"), Value::from("retried")]);
        engine.close().await.unwrap();
    });
}

/// Issue 13 §6: two drivers on one file shared its temporary file and lost
/// acknowledged writes; the second is refused until the first closes.
#[test]
fn a_store_file_is_open_in_one_driver_at_a_time() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let first = MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap();
        let e = MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap_err();
        assert_eq!(e.category(), "config", "{e}");
        assert!(e.to_string().contains("already open"), "{e}");
        objectql::Driver::close(&first).await.unwrap();
        let second = MemoryDriver::open(MemoryOptions::persistent(path.clone())).unwrap();
        drop(second);
        // Dropped without close, the lock is released too.
        MemoryDriver::open(MemoryOptions::persistent(path)).unwrap();
    });
}

#[test]
fn rolled_back_and_dropped_transactions_leave_no_trace() {
    rt().block_on(async {
        let engine = engine_with(MemoryDriver::new()).await;
        let db = engine.default_session();
        let tx = db
            .begin("default", IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("note", record! {"id" => "t1", "title" => "in tx"})
            .await
            .unwrap();
        assert_eq!(
            tx.count("note", None).await.unwrap(),
            1,
            "a transaction sees its own writes"
        );
        assert_eq!(db.count("note", None).await.unwrap(), 0, "others do not");
        tx.rollback().await.unwrap();
        assert_eq!(db.count("note", None).await.unwrap(), 0);

        {
            let tx = db
                .begin("default", IsolationLevel::Serializable)
                .await
                .unwrap();
            tx.insert("note", record! {"id" => "t2", "title" => "dropped"})
                .await
                .unwrap();
        }
        assert_eq!(db.count("note", None).await.unwrap(), 0);

        let tx = db
            .begin("default", IsolationLevel::ReadCommitted)
            .await
            .unwrap();
        tx.insert("note", record! {"id" => "t3", "title" => "kept"})
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(db.count("note", None).await.unwrap(), 1);
    });
}

#[test]
fn concurrent_writers_conflict_with_a_retryable_error() {
    rt().block_on(async {
        let engine = engine_with(MemoryDriver::new()).await;
        let db = engine.default_session();
        db.insert("note", record! {"id" => "a", "title" => "x", "n" => 1})
            .await
            .unwrap();
        let t1 = db
            .begin("default", IsolationLevel::Serializable)
            .await
            .unwrap();
        let t2 = db
            .begin("default", IsolationLevel::Serializable)
            .await
            .unwrap();
        // Both read, both write: the second commit must fail.
        let n1 = t1.find_one(&Query::new("note")).await.unwrap().unwrap()["n"]
            .as_i64()
            .unwrap();
        let n2 = t2.find_one(&Query::new("note")).await.unwrap().unwrap()["n"]
            .as_i64()
            .unwrap();
        t1.update("note", "a", record! {"n" => n1 + 1})
            .await
            .unwrap();
        t2.update("note", "a", record! {"n" => n2 + 1})
            .await
            .unwrap();
        t1.commit().await.unwrap();
        let e = t2.commit().await.unwrap_err();
        assert_eq!(
            e.driver_kind(),
            Some(objectql::DriverErrorKind::SerializationFailure)
        );
        assert!(e.is_retryable());
        let n = db.find_one(&Query::new("note")).await.unwrap().unwrap()["n"].clone();
        assert_eq!(n, Value::Int(2), "no lost update");
    });
}

#[test]
fn unique_violation_in_a_batch_inserts_nothing() {
    rt().block_on(async {
        let engine = engine_with(MemoryDriver::new()).await;
        let db = engine.default_session();
        let e = db
            .insert_many(
                "note",
                vec![
                    record! {"title" => "a", "code" => "X"},
                    record! {"title" => "b", "code" => "Y"},
                    record! {"title" => "c", "code" => "X"},
                ],
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.driver_kind(),
            Some(objectql::DriverErrorKind::UniqueViolation)
        );
        assert_eq!(db.count("note", None).await.unwrap(), 0);
        let e = db
            .insert("note", record! {"title" => "way too long for twenty chars"})
            .await
            .unwrap_err();
        assert_eq!(
            e.driver_kind(),
            Some(objectql::DriverErrorKind::CheckViolation)
        );
    });
}

#[test]
fn streams_rows_and_arrow_batches() {
    rt().block_on(async {
        let engine = engine_with(MemoryDriver::new()).await;
        let db = engine.default_session();
        let rows: Vec<_> = (0..100)
            .map(|i| record! {"title" => format!("t{i}"), "n" => i})
            .collect();
        db.insert_many("note", rows).await.unwrap();
        let q = Query::new("note").filter(field("n").gte(90)).desc("n");
        let streamed: Vec<_> = db
            .find_stream(&q)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed.len(), 10);
        assert_eq!(streamed[0]["n"], Value::Int(99));
        let batches: Vec<_> = db
            .find_arrow(&q.select(["n", "price"]))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let total: usize = batches.iter().map(arrow_array::RecordBatch::num_rows).sum();
        assert_eq!(total, 10);
        assert_eq!(
            batches[0].schema().field(1).data_type().to_string(),
            "Decimal128(10, 2)"
        );
    });
}

#[test]
fn bad_input_is_a_typed_error_never_a_panic() {
    rt().block_on(async {
        let engine = engine_with(MemoryDriver::new()).await;
        let db = engine.default_session();
        let cases = [
            (
                r#"{"object": "note", "where": {"n": {"$foo": 1}}}"#,
                "where.n.$foo",
            ),
            (
                r#"{"object": "note", "where": {"title": {"$regex": "x"}}}"#,
                "where.title.$regex",
            ),
            (r#"{"object": "note", "where": {"n": {}}}"#, "where.n"),
            (
                r#"{"object": "note", "where": {"owner.name": "x"}}"#,
                "where.owner.name",
            ),
            (
                r#"{"object": "note", "where": {"$or": [{"n": 1}, {"n": {"$gt": "x"}}]}}"#,
                "where.$or[1].n.$gt",
            ),
            (r#"{"object": "note", "fields": ["nope"]}"#, "fields[0]"),
            (r#"{"object": "note", "limit": -1}"#, "limit"),
            (r#"{"object": "note", "limit": 2.5}"#, "limit"),
            (r#"{"object": "nope"}"#, "object"),
        ];
        for (text, path) in cases {
            let e = match Query::parse(text) {
                Ok(q) => db.find(&q).await.unwrap_err(),
                Err(e) => e,
            };
            assert_eq!(e.path(), Some(path), "{text}: {e}");
        }
        let deep = format!(
            "{}{{\"n\":1}}{}",
            "{\"$not\":".repeat(10_000),
            "}".repeat(10_000)
        );
        assert!(matches!(
            Query::parse(&format!("{{\"object\":\"note\",\"where\":{deep}}}")),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            Query::parse("{\"object\": \"note\""),
            Err(Error::Json { .. })
        ));
        let big = "x".repeat(1 << 20);
        let q = Query::new("note").filter(field("title").contains(big.as_str()));
        assert!(db.find(&q).await.unwrap().is_empty());
        let e = db
            .insert("note", record! {"title" => big.as_str()})
            .await
            .unwrap_err();
        assert_eq!(
            e.driver_kind(),
            Some(objectql::DriverErrorKind::CheckViolation)
        );
        let e = db
            .insert("note", record! {"title" => "x", "n" => f64::NAN})
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Validation { .. }), "{e}");
    });
}

#[test]
fn urls_and_schema_changes() {
    rt().block_on(async {
        assert!(MemoryDriver::connect("memory://?bogus=1").is_err());
        assert!(MemoryDriver::connect("postgres://x").is_err());
        let engine = Engine::new();
        let e = engine.add_datasource("x", "nosuch://db").await.unwrap_err();
        assert!(matches!(e, Error::Config { .. }));
        engine.add_datasource("default", "memory://").await.unwrap();
        engine.register_json(&json!({"name": "t", "fields": {"n": {"type": "text"}}})).await.unwrap();
        let db = engine.default_session();
        db.insert("t", record! {"id" => "a", "n" => "12"}).await.unwrap();
        db.insert("t", record! {"id" => "b", "n" => "x"}).await.unwrap();
        // Retyping text → integer would lose "x": refused, schema unchanged.
        let e = engine.register_json(&json!({"name": "t", "fields": {"n": {"type": "integer"}}})).await.unwrap_err();
        assert!(e.to_string().contains("lose data"), "{e}");
        assert_eq!(db.count("t", None).await.unwrap(), 2);
        // Adding a field with a default fills existing rows.
        engine
            .register_json(&json!({"name": "t", "fields": {"n": {"type": "text"}, "k": {"type": "integer", "defaultValue": 7}}}))
            .await
            .unwrap();
        let rows = db.find(&Query::new("t").filter(field("k").eq(7))).await.unwrap();
        assert_eq!(rows.len(), 2);
    });
}

#[test]
fn undeclared_features_are_refused_with_unsupported() {
    rt().block_on(async {
        let engine = Engine::new();
        engine.add_datasource("default", "memory://").await.unwrap();
        let caps = engine.datasource("default").unwrap().capabilities().clone();
        assert!(caps.has(objectql::Feature::Vectors) && !caps.has(objectql::Feature::ForeignKeys));
        engine
            .register_json(&json!({"name": "v", "fields": {"emb": {"type": "vector", "dimensions": 3}}}))
            .await
            .unwrap();
        let e = engine
            .register_json(&json!({"name": "m", "fields": {"t": {"type": "lookup", "reference": "v", "deleteBehavior": "cascade"}}}))
            .await
            .unwrap_err();
        assert!(matches!(&e, Error::Unsupported { feature, .. } if feature == "foreign_keys"), "{e}");
        engine.register_json(&json!({"name": "d", "fields": {"t": {"type": "text", "searchable": true}}})).await.unwrap();
        let q = Query::parse(r#"{"object": "d", "search": "x"}"#).unwrap();
        let e = engine.default_session().find(&q).await.unwrap_err();
        assert!(matches!(&e, Error::Unsupported { feature, driver } if feature == "full_text" && driver == "memory"), "{e}");
    });
}

async fn vector_engine(driver: Arc<dyn objectql::Driver>) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", driver).unwrap();
    engine
        .register_json(&json!({"name": "author", "fields": {"name": {"type": "text"}}}))
        .await
        .unwrap();
    engine
        .register_json(&json!({"name": "doc", "fields": {
            "title": {"type": "text"},
            "e": {"type": "vector", "dimensions": 2, "index": true},
            "owner": {"type": "lookup", "reference": "author"}
        }}))
        .await
        .unwrap();
    let db = engine.default_session();
    db.insert("author", record! {"id" => "w1", "name" => "Ann"})
        .await
        .unwrap();
    for (id, title, x, y, owner) in [
        ("a", "Alpha", 1.0, 0.0, Some("w1")),
        ("b", "Beta", 0.0, 1.0, None),
        ("c", "Gamma", 1.0, 1.0, Some("w1")),
    ] {
        let e = Value::Array(vec![Value::Float(x), Value::Float(y)]);
        let owner = owner.map_or(Value::Null, Value::from);
        db.insert(
            "doc",
            record! {"id" => id, "title" => title, "e" => e, "owner" => owner},
        )
        .await
        .unwrap();
    }
    engine
}

fn nearest_query(extra: serde_json::Value) -> Query {
    let mut q = json!({"object": "doc", "nearest": {"field": "e", "vector": [1, 0], "k": 2}});
    if let (Some(q), serde_json::Value::Object(extra)) = (q.as_object_mut(), extra) {
        q.extend(extra);
    }
    Query::from_json(&q).unwrap()
}

#[test]
fn nearest_queries_through_the_engine() {
    rt().block_on(async {
        let engine = vector_engine(Arc::new(MemoryDriver::new())).await;
        let db = engine.default_session();
        // Expand on nearest results; the projection keeps the distance.
        let q = nearest_query(json!({"fields": ["title", "owner"], "expand": {"owner": {"fields": ["name"]}}}));
        let rows = db.find(&q).await.unwrap();
        let titles: Vec<_> = rows.iter().map(|r| r.get("title").cloned().unwrap()).collect();
        assert_eq!(titles, vec![Value::from("Alpha"), Value::from("Gamma")]);
        assert_eq!(rows[0].get("owner").map(Value::to_json), Some(json!({"name": "Ann"})));
        assert_eq!(rows[0].len(), 3, "{:?}", rows[0]);
        assert!(matches!(rows[1].get("_distance"), Some(Value::Float(d)) if (d - (1.0 - 0.5f64.sqrt())).abs() < 1e-12));
        // find_one: the nearest row.
        let one = db.find_one(&nearest_query(json!({}))).await.unwrap().unwrap();
        assert_eq!(one.get("id"), Some(&Value::from("a")));
        // Arrow output carries the distance column.
        let batches: Vec<_> = db
            .find_arrow(&nearest_query(json!({"fields": ["title"]})))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["title", "_distance"]);
        assert_eq!(batches[0].num_rows(), 2);
        // Explain shows the search.
        let steps = db.explain(&nearest_query(json!({}))).await.unwrap();
        assert!(steps.iter().any(|s| s.operation == "nearest"), "{steps:?}");
        // Not inside expand.
        let q = Query::from_json(&json!({"object": "doc", "expand": {"owner": {
            "nearest": {"field": "e", "vector": [1, 0], "k": 1}}}}))
        .unwrap();
        assert!(db.find(&q).await.is_err());
    });
}

#[test]
fn nearest_needs_the_vectors_feature_and_runs_locally_behind_a_residual_filter() {
    rt().block_on(async {
        let mut caps = objectql::Capabilities::default();
        caps.filters = true;
        let scan = crate::properties::ScanOnly(MemoryDriver::new(), caps.clone());
        let engine = vector_engine(Arc::new(scan)).await;
        let e = engine.default_session().find(&nearest_query(json!({}))).await.unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { feature, driver } if feature == "vectors" && driver == "scan-only"),
            "{e}"
        );
        // With vectors declared, a filter the driver cannot run is run
        // locally, and so is the nearest search over the rows it returns.
        let scan = crate::properties::ScanOnly(MemoryDriver::new(), caps.with(objectql::Feature::Vectors));
        let local = vector_engine(Arc::new(scan)).await;
        let reference = vector_engine(Arc::new(MemoryDriver::new())).await;
        let q = nearest_query(json!({"where": {"title": {"$contains": "a"}}, "fields": ["id"]}));
        let a = local.default_session().find(&q).await.unwrap();
        let b = reference.default_session().find(&q).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    });
}

/// A 50,000-row `insert_many` runs off the runtime's worker, so other
/// tasks keep running (issue 13 §10): on a one-thread runtime a task that
/// counts its turns gets some while the insert is in flight (none before),
/// and the insert is still all there.
#[test]
fn a_long_insert_lets_other_tasks_run() {
    rt().block_on(async {
        let e = engine_with(MemoryDriver::new()).await;
        let rows = (0..50_000)
            .map(|i| record! {"title" => format!("t{i}"), "n" => i})
            .collect();
        let db = e.default_session();
        let (written, during) =
            objectql_conformance::liveness::other_task_turns_during(db.insert_many("note", rows))
                .await;
        let written = written.unwrap();
        assert_eq!(written.len(), 50_000);
        assert_eq!(
            e.default_session().count("note", None).await.unwrap(),
            50_000
        );
        assert!(
            during >= 2,
            "the other task ran {during} times during the insert"
        );
    });
}

/// `drop_object` drops the object's own table, not another object's whose
/// `tableName` is the dropped object's name.
#[test]
fn drop_object_drops_its_own_table() {
    rt().block_on(async {
        let engine = Engine::new();
        engine
            .add_driver("default", Arc::new(MemoryDriver::new()))
            .unwrap();
        objectql_conformance::storage::drop_object_drops_its_own_table(&engine)
            .await
            .unwrap();
    });
}

/// Issue 13's fault target for the memory driver: 500 calls (inserts alone
/// and in transactions, rollbacks, updates, deletes, reads) cut off at
/// seeded random points on a store with a file. Every batch is whole or
/// absent, rolled-back ones absent, and the file, reopened, holds exactly
/// what the engine answered.
#[test]
fn random_cancellations_leave_no_partial_writes() {
    use objectql_conformance::faults::{CutPlan, random_cuts, seed_from_env};
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("memory://{}", dir.path().join("cuts.json").display());
        let seed = seed_from_env(0x3e30_c075);
        let engine = Engine::new();
        engine
            .add_driver("default", Arc::new(MemoryDriver::connect(&url).unwrap()))
            .unwrap();
        let plan = CutPlan {
            iterations: 500,
            seed,
            max_cut: std::time::Duration::from_millis(4),
            max_batch: 1_200,
            isolation: IsolationLevel::Serializable,
        };
        let report = random_cuts(&engine, plan).await.unwrap();
        assert!(
            report.cut >= 50,
            "seed {seed}: too few calls were cut: {report:?}"
        );
        assert!(
            report.finished >= 50,
            "seed {seed}: too few calls finished: {report:?}"
        );
        engine.close().await.unwrap();
        drop(engine);
        let reopened = Engine::new();
        reopened
            .add_driver("default", Arc::new(MemoryDriver::connect(&url).unwrap()))
            .unwrap();
        reopened
            .register(objectql_conformance::faults::cuts_schema())
            .await
            .unwrap();
        let on_disk = reopened
            .default_session()
            .count("cuts", None)
            .await
            .unwrap();
        assert_eq!(
            on_disk, report.rows,
            "seed {seed}: the file disagrees with the engine"
        );
    });
}
