//! The driver's own tests: URLs, errors, writes, security.

use objectql::{DriverErrorKind, Engine, Query, Value, field, record};
use objectql_driver_mongo::MongoDriver;

use crate::common::{db_name, drop_database, url_for};

async fn engine(ns: &str) -> Engine {
    let engine = Engine::new();
    engine
        .add_datasource("default", &url_for(&db_name(ns)))
        .await
        .unwrap();
    engine
        .register_json(&serde_json::json!({
            "name": "item",
            "fields": {
                "title": {"type": "text", "unique": true},
                "n": {"type": "integer"}
            }
        }))
        .await
        .unwrap();
    engine
}

#[tokio::test]
async fn bad_urls_are_config_errors_and_dead_servers_connection_lost() {
    let e = MongoDriver::connect("mongodb://").await.unwrap_err();
    assert_eq!(e.category(), "config", "{e}");
    let e = MongoDriver::connect("mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300")
        .await
        .unwrap_err();
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::ConnectionLost),
        "{e}"
    );
    let e = MongoDriver::connect(
        "mongodb://u:secret@127.0.0.1:1/x?serverSelectionTimeoutMS=300&authSource=",
    )
    .await
    .unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[tokio::test]
async fn writes_round_trip_and_duplicates_are_unique_violations() {
    let ns = "drv_writes";
    drop_database(ns).await;
    let engine = engine(ns).await;
    let db = engine.default_session();
    let a = db
        .insert("item", record! {"title" => "a", "n" => 1})
        .await
        .unwrap();
    let id = a["id"].clone();
    let e = db
        .insert("item", record! {"title" => "a", "n" => 2})
        .await
        .unwrap_err();
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::UniqueViolation),
        "{e}"
    );
    // All or none: a batch with a duplicate in the middle leaves nothing.
    let e = db
        .insert_many(
            "item",
            vec![
                record! {"title" => "b"},
                record! {"title" => "a"},
                record! {"title" => "c"},
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::UniqueViolation),
        "{e}"
    );
    assert_eq!(db.count("item", None).await.unwrap(), 1);
    // NULLs never collide in a unique index.
    db.insert("item", record! {"n" => 5}).await.unwrap();
    db.insert("item", record! {"n" => 6}).await.unwrap();
    let updated = db
        .update("item", id.clone(), record! {"n" => 10})
        .await
        .unwrap();
    assert_eq!(updated["n"], Value::Int(10));
    assert_eq!(updated["title"], Value::String("a".into()));
    let n = db
        .update_many("item", field("n").gte(5), record! {"title" => Value::Null})
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(db.delete_many("item", field("n").lt(10)).await.unwrap(), 2);
    assert!(db.delete("item", id.clone()).await.unwrap());
    assert!(!db.delete("item", id.clone()).await.unwrap());
    drop_database(ns).await;
}

#[tokio::test]
async fn operator_lookalikes_are_data() {
    let ns = "drv_inject";
    drop_database(ns).await;
    let engine = engine(ns).await;
    let db = engine.default_session();
    for t in [
        "$where",
        "{\"$gt\": \"\"}",
        ".*",
        "a.b",
        "^x$",
        "\\",
        "'; drop",
    ] {
        db.insert("item", record! {"title" => t}).await.unwrap();
    }
    for t in [
        "$where",
        "{\"$gt\": \"\"}",
        ".*",
        "a.b",
        "^x$",
        "\\",
        "'; drop",
    ] {
        let rows = db
            .find(&Query::new("item").filter(field("title").eq(t)))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{t}");
        let rows = db
            .find(&Query::new("item").filter(field("title").contains(t)))
            .await
            .unwrap();
        assert!(
            rows.iter()
                .all(|r| r["title"].as_str().unwrap().contains(t)),
            "{t}"
        );
    }
    // `.*` as a literal substring matches only itself.
    let rows = db
        .find(&Query::new("item").filter(field("title").contains(".*")))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // `_id` never leaks into results.
    let rows = db.find(&Query::new("item")).await.unwrap();
    assert!(rows.iter().all(|r| !r.contains_key("_id")));
    drop_database(ns).await;
}

#[tokio::test]
async fn ten_thousand_documents_insert_and_stream() {
    let ns = "drv_bulk";
    drop_database(ns).await;
    let engine = engine(ns).await;
    let db = engine.default_session();
    let records: Vec<_> = (0..10_000)
        .map(|i| record! {"title" => format!("t{i:05}"), "n" => i})
        .collect();
    db.insert_many("item", records).await.unwrap();
    assert_eq!(db.count("item", None).await.unwrap(), 10_000);
    let rows = db
        .find(&Query::new("item").filter(field("n").gte(9_990)).asc("n"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["title"], Value::String("t09990".into()));
    drop_database(ns).await;
}

#[tokio::test]
async fn queries_are_pushed_as_one_pipeline() {
    let ns = "drv_explain";
    drop_database(ns).await;
    let engine = engine(ns).await;
    let db = engine.default_session();
    let q = Query::new("item")
        .filter(field("n").ne(3).and(field("title").contains("a")))
        .desc("n")
        .limit(5);
    let steps = db.explain(&q).await.unwrap();
    assert!(
        steps.iter().all(|s| s.location == "driver:mongodb"),
        "{steps:?}"
    );
    let pipeline = &steps[0].detail;
    for stage in ["$match", "$sort", "$limit", "$project", "$regex", "$ne"] {
        assert!(pipeline.contains(stage), "{stage} in {pipeline}");
    }
    // A grouped query with a date-free key is one pipeline too.
    let q = Query::from_json(&serde_json::json!({
        "object": "item",
        "groupBy": ["title"],
        "aggregations": [{"function": "sum", "field": "n", "alias": "total"}],
        "having": {"total": {"$gt": 1}}
    }))
    .unwrap();
    let steps = db.explain(&q).await.unwrap();
    assert!(
        steps.iter().all(|s| s.location == "driver:mongodb"),
        "{steps:?}"
    );
    assert!(steps[0].detail.contains("$group"), "{steps:?}");
    // What a pipeline cannot answer exactly runs locally, and says so.
    let q = Query::from_json(&serde_json::json!({
        "object": "item",
        "aggregations": [{"function": "string_agg", "field": "title", "alias": "all"}]
    }))
    .unwrap();
    let steps = db.explain(&q).await.unwrap();
    assert!(steps.iter().any(|s| s.location == "local"), "{steps:?}");
    drop_database(ns).await;
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let ns = "drv_tx";
    drop_database(ns).await;
    let engine = engine(ns).await;
    let db = engine.default_session();
    db.insert("item", record! {"title" => "a", "n" => 1})
        .await
        .unwrap();
    let driver = engine.datasource("default").unwrap();
    // The test command's server runs transactions, so the commit path below
    // must run: only a server declared standalone (a user's own mongod,
    // `OBJECTQL_MONGO_STANDALONE=1`) may skip it, and then transactions
    // must be refused, not faked (issue 14 §4: this returned early silently).
    let standalone = std::env::var("OBJECTQL_MONGO_STANDALONE").is_ok_and(|v| v == "1");
    let has_tx = driver.capabilities().has(objectql::Feature::Transactions);
    assert!(
        has_tx || standalone,
        "the MongoDB server runs no transactions; set OBJECTQL_MONGO_STANDALONE=1 if it is a standalone mongod"
    );
    if !has_tx {
        let e = db
            .begin("default", objectql::IsolationLevel::RepeatableRead)
            .await
            .unwrap_err();
        assert_eq!(e.category(), "unsupported");
        drop_database(ns).await;
        return;
    }
    let e = db
        .begin("default", objectql::IsolationLevel::Serializable)
        .await
        .unwrap_err();
    assert_eq!(
        e.category(),
        "unsupported",
        "snapshot isolation is not serializable"
    );
    let tx = db
        .begin("default", objectql::IsolationLevel::RepeatableRead)
        .await
        .unwrap();
    tx.insert("item", record! {"title" => "b", "n" => 2})
        .await
        .unwrap();
    assert_eq!(tx.count("item", None).await.unwrap(), 2);
    assert_eq!(
        db.count("item", None).await.unwrap(),
        1,
        "not visible outside"
    );
    if let Err(e) = tx.commit().await {
        panic!("{e:?}");
    }
    assert_eq!(db.count("item", None).await.unwrap(), 2);
    let tx = db
        .begin("default", objectql::IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    tx.delete_many("item", field("n").gte(0)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(db.count("item", None).await.unwrap(), 2);
    drop_database(ns).await;
}

#[tokio::test]
async fn caller_timeouts_are_timeout_errors() {
    let ns = "drv_timeout";
    drop_database(ns).await;
    // Through a proxy that can hold the server's answers back: a call whose
    // answer does not come within its limit fails with `Timeout`, every
    // time (a 1 ns limit once raced a fast loopback round trip and lost).
    let proxy = crate::common::Proxy::start().await;
    let engine = Engine::new();
    engine
        .add_datasource("default", &proxy.url_for(&db_name(ns)))
        .await
        .unwrap();
    engine
        .register_json(&serde_json::json!({
            "name": "item",
            "fields": {"title": {"type": "text", "unique": true}, "n": {"type": "integer"}}
        }))
        .await
        .unwrap();
    let db = engine.default_session();
    db.insert("item", record! {"title" => "a", "n" => 1})
        .await
        .unwrap();
    let hurried = engine
        .default_session()
        .with_timeout(std::time::Duration::from_millis(300));
    proxy.freeze();
    let e = hurried.find(&Query::new("item")).await.unwrap_err();
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::Timeout), "{e}");
    let e = hurried.count("item", None).await.unwrap_err();
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::Timeout), "{e}");
    // A write cut off by the limit has reached the server and may land
    // (issue 13 §5: `Timeout` was reported while every row was written, so a
    // retry duplicated them): its outcome is unknown, and not retryable.
    let rows = (0..500)
        .map(|i| record! {"id" => format!("w{i}"), "title" => format!("x{i}")})
        .collect();
    let e = hurried.insert_many("item", rows).await.unwrap_err();
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::OutcomeUnknown),
        "{e}"
    );
    assert!(!e.is_retryable(), "{e}");
    proxy.thaw();
    // The driver is usable again, and answers correctly: here the cut-off
    // write did land, which is why its outcome was reported unknown.
    let landed = db.count("item", None).await.unwrap();
    assert!(landed == 1 || landed == 501, "{landed} rows");
    let rows = hurried
        .find(&Query::new("item").filter(field("title").eq("a")))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    engine.close().await.unwrap();
    drop_database(ns).await;
}

/// `drop_object` drops the object's own collection (its `tableName`),
/// not another object's collection that carries its name.
#[tokio::test]
async fn drop_object_drops_its_own_collection() {
    let ns = "drop_own";
    let engine = Engine::new();
    engine
        .add_datasource("default", &url_for(&db_name(ns)))
        .await
        .unwrap();
    objectql_conformance::storage::drop_object_drops_its_own_table(&engine)
        .await
        .unwrap();
    engine.close().await.unwrap();
    crate::common::drop_database(ns).await;
}

/// Two processes registering objects with one collection at the same
/// moment (issue 12 §4): both pass the stored-schema check, and the atomic
/// collection claim admits exactly one; the other gets the validation
/// error naming both, and its schema is not stored. The same object from
/// both at once succeeds twice. `drop_object` releases the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_claim_one_collection() {
    use objectql_driver_mongo::mongodb::{Client, bson::Document, bson::doc};
    let ns = "sync_race";
    let bare = || async {
        let e = Engine::new();
        e.add_datasource("default", &url_for(&db_name(ns)))
            .await
            .unwrap();
        e
    };
    let client = Client::with_uri_str(crate::common::url()).await.unwrap();
    let schemas = client
        .database(&db_name(ns))
        .collection::<Document>("_objectql_schema");
    for round in 0..20 {
        let (a, b) = (bare().await, bare().await);
        let register = |e: Engine, name: String, table: String| {
            tokio::spawn(async move {
                let r = e
                    .register_json(&serde_json::json!({"name": name, "tableName": table, "fields": {"v": {"type": "integer"}}}))
                    .await;
                (e, r)
            })
        };
        let table = format!("shared{round}");
        let (ra, rb) = tokio::join!(
            register(a, format!("a{round}"), table.clone()),
            register(b, format!("b{round}"), table.clone())
        );
        let ((a, ra), (b, rb)) = (ra.unwrap(), rb.unwrap());
        let (winner, loser, loser_name) = match (&ra, &rb) {
            (Ok(()), Err(e)) => (format!("a{round}"), e, format!("b{round}")),
            (Err(e), Ok(())) => (format!("b{round}"), e, format!("a{round}")),
            _ => panic!("round {round}: expected one registration to win, got {ra:?} and {rb:?}"),
        };
        assert_eq!(loser.category(), "validation", "round {round}: {loser}");
        let msg = loser.to_string();
        assert!(
            msg.contains(&format!("`{winner}`")) && msg.contains(&format!("`{loser_name}`")),
            "round {round}: {msg}"
        );
        let stored = schemas
            .count_documents(doc! { "_id": &loser_name })
            .await
            .unwrap();
        assert_eq!(stored, 0, "round {round}: the refused schema was stored");
        let same = format!("same{round}");
        let (ra, rb) = tokio::join!(
            register(a, same.clone(), same.clone()),
            register(b, same.clone(), same.clone())
        );
        let ((a, ra), (b, rb)) = (ra.unwrap(), rb.unwrap());
        ra.unwrap_or_else(|e| panic!("round {round}: {e}"));
        rb.unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Dropping the winner frees its collection for the other object,
        // registered again by the engine that lost (the winner's engine
        // still holds the winner in its own catalog).
        a.datasource("default")
            .unwrap()
            .drop_object(&winner)
            .await
            .unwrap();
        let loser_engine = if winner.starts_with('a') { &b } else { &a };
        loser_engine
            .register_json(&serde_json::json!({"name": loser_name, "tableName": table, "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap_or_else(|e| panic!("round {round}: after the drop: {e}"));
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
    client.shutdown().await;
    crate::common::drop_database(ns).await;
}

/// Objects synced by another engine count for collisions (issue 12 §4),
/// and a declared unique index missing on the server is found at sync
/// (§5): the schema is refused with `SchemaMismatch`, not left to accept
/// duplicates.
#[tokio::test]
async fn stored_objects_collide_and_missing_unique_indexes_are_found() {
    use objectql_driver_mongo::mongodb::{Client, bson::Document};
    let ns = "sync_checks";
    let first = engine(ns).await;
    first
        .register_json(&serde_json::json!({"name": "a", "tableName": "shared", "fields": {"v": {"type": "integer"}}}))
        .await
        .unwrap();
    first.close().await.unwrap();
    let bare = || async {
        let e = Engine::new();
        e.add_datasource("default", &url_for(&db_name(ns)))
            .await
            .unwrap();
        e
    };
    let second = bare().await;
    let err = second
        .register_json(&serde_json::json!({"name": "b", "tableName": "shared", "fields": {"v": {"type": "integer"}}}))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "validation", "{err}");
    assert!(
        err.to_string().contains("`a`") && err.to_string().contains("`b`"),
        "{err}"
    );
    second.close().await.unwrap();
    // `item.title` is unique; drop its index behind objectql's back.
    let client = Client::with_uri_str(crate::common::url()).await.unwrap();
    let coll = client.database(&db_name(ns)).collection::<Document>("item");
    let names = coll.list_index_names().await.unwrap();
    let title = names
        .iter()
        .find(|n| n.contains("title"))
        .unwrap_or_else(|| panic!("no index on title: {names:?}"));
    coll.drop_index(title.as_str()).await.unwrap();
    let item = serde_json::json!({"name": "item", "fields": {
        "title": {"type": "text", "unique": true},
        "n": {"type": "integer"}
    }});
    let third = bare().await;
    let err = third.register_json(&item).await;
    // Registering runs `createIndexes` again, which restores a dropped index:
    // the check sees it back and the schema is accepted.
    err.unwrap();
    // An index of the same name over another field is not a unique `title`.
    coll.drop_index(title.as_str()).await.unwrap();
    coll.create_index(
        objectql_driver_mongo::mongodb::IndexModel::builder()
            .keys(objectql_driver_mongo::mongodb::bson::doc! {"n": 1})
            .options(
                objectql_driver_mongo::mongodb::options::IndexOptions::builder()
                    .name(title.clone())
                    .unique(true)
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let err = third.register_json(&item).await.unwrap_err();
    assert_eq!(
        err.driver_kind(),
        Some(DriverErrorKind::SchemaMismatch),
        "{err}"
    );
    third.close().await.unwrap();
    drop_database(ns).await;
}

/// Issue 13's fault target for MongoDB: 500 calls (inserts alone and in
/// transactions, rollbacks, updates, deletes, reads) cut off at seeded
/// random points. Every batch is whole or absent (outside a transaction a
/// batch of up to 300 documents is one `insert` command, which the server
/// runs whole once it has it), the connection pool is whole afterwards,
/// and the next query answers right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cancellations_leave_no_partial_writes() {
    use objectql_conformance::faults::{CutPlan, random_cuts, seed_from_env};
    let ns = "random_cuts";
    let engine = Engine::new();
    engine
        .add_datasource("default", &url_for(&db_name(ns)))
        .await
        .unwrap();
    let seed = seed_from_env(0x30a6_c075);
    let plan = CutPlan {
        iterations: 500,
        seed,
        max_cut: std::time::Duration::from_millis(150),
        max_batch: 300,
        isolation: objectql::IsolationLevel::RepeatableRead,
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
    crate::common::drop_database(ns).await;
}

/// A transaction whose first command is cut off before its answer — the
/// server has run it — must be aborted on the server when its handle goes.
/// The `mongodb` crate sends `abortTransaction` only for a transaction it
/// saw an answer in, so the abort was local only and the writes stayed in
/// a transaction nobody ended (`random_cancellations_leave_no_partial_writes`
/// found a rolled-back batch in the table under load). And a transaction
/// whose call ran out of time is closed at once: its commit used to
/// succeed (here a client-side no-op, the server's transaction left open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_cut_before_its_first_answer_is_aborted_on_the_server() {
    let ns = "drv_tx_first_cut";
    drop_database(ns).await;
    let proxy = crate::common::Proxy::start().await;
    let engine = Engine::new();
    engine
        .add_datasource("default", &proxy.url_for(&db_name(ns)))
        .await
        .unwrap();
    let direct = Engine::new();
    direct
        .add_datasource("default", &url_for(&db_name(ns)))
        .await
        .unwrap();
    let item = serde_json::json!({"name": "item", "fields": {"n": {"type": "integer"}}});
    engine.register_json(&item).await.unwrap();
    direct.register_json(&item).await.unwrap();
    assert!(
        engine
            .datasource("default")
            .unwrap()
            .capabilities()
            .has(objectql::Feature::Transactions),
        "this test needs a server with transactions (scripts/test's mongoeco has them)"
    );
    let rows = |tag: &str| -> Vec<objectql::Record> {
        (0..50)
            .map(|i| record! {"id" => format!("{tag}{i}"), "n" => i})
            .collect()
    };
    let db = engine.default_session();
    // 1. The caller gives up (drops the future), then drops the transaction.
    let tx = db
        .begin("default", objectql::IsolationLevel::RepeatableRead)
        .await
        .unwrap();
    proxy.freeze();
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        tx.insert_many("item", rows("a")),
    )
    .await;
    assert!(cut.is_err(), "the insert was not cut: {cut:?}");
    drop(tx);
    proxy.thaw();
    // 2. The call's own time limit runs out: the transaction is closed.
    let tx = db
        .clone()
        .with_timeout(std::time::Duration::from_millis(300))
        .begin("default", objectql::IsolationLevel::RepeatableRead)
        .await
        .unwrap();
    proxy.freeze();
    let e = tx.insert_many("item", rows("b")).await.unwrap_err();
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::Timeout), "{e}");
    proxy.thaw();
    let e = tx.commit().await.unwrap_err();
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::TransactionClosed),
        "{e}"
    );
    // Neither batch lands, now or later.
    let seen = direct.default_session();
    for _ in 0..20 {
        assert_eq!(seen.count("item", None).await.unwrap(), 0);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    engine.close().await.unwrap();
    direct.close().await.unwrap();
    drop_database(ns).await;
}
