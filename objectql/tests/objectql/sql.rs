//! SQL through the facade (the `federation` feature): writes, and what a
//! transaction refuses.

use objectql::{Engine, IsolationLevel, Query, Value};
use serde_json::json;

async fn engine(dir: &std::path::Path) -> Engine {
    let engine = Engine::new();
    let url = format!("sqlite://{}", dir.join("s.db").display());
    engine.add_datasource("lite", &url).await.expect("sqlite");
    engine
        .add_datasource("mem", "memory://")
        .await
        .expect("memory");
    for (name, ds) in [("src", "lite"), ("dst", "mem")] {
        engine
            .register_json(&json!({
                "name": name, "datasource": ds,
                "fields": {"n": {"type": "integer"}, "s": {"type": "text", "defaultValue": "none"}}
            }))
            .await
            .expect("register");
    }
    engine
}

#[tokio::test]
async fn execute_sql_writes_through_the_owning_drivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path()).await;
    let n = engine
        .execute_sql("INSERT INTO lite.src (n) VALUES (1), (2), (3)")
        .await
        .expect("insert");
    assert_eq!(n, 3);
    let db = engine.default_session();
    let rows = db.find(&Query::new("src")).await.expect("find");
    // Omitted columns took their default.
    assert!(
        rows.iter()
            .all(|r| r.get("s") == Some(&Value::from("none")))
    );
    assert_eq!(
        engine
            .execute_sql("INSERT INTO mem.dst SELECT * FROM lite.src WHERE n >= 2")
            .await
            .expect("copy"),
        2
    );
    assert_eq!(
        engine
            .execute_sql("UPDATE mem.dst SET s = 'moved'")
            .await
            .expect("update"),
        2
    );
    assert_eq!(
        engine
            .execute_sql("DELETE FROM lite.src WHERE n >= 2")
            .await
            .expect("delete"),
        2
    );
    assert_eq!(db.count("src", None).await.expect("count"), 1);
    let moved = engine
        .sql_rows("SELECT n FROM mem.dst WHERE s = 'moved' ORDER BY n")
        .await
        .expect("rows");
    assert_eq!(moved.len(), 2);
}

#[tokio::test]
async fn sql_inside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = engine(dir.path()).await;
    let tx = engine
        .default_session()
        .begin("lite", IsolationLevel::default())
        .await
        .expect("begin");
    let e = tx
        .execute_sql("INSERT INTO lite.src (n) VALUES (1)")
        .await
        .expect_err("outside the transaction");
    assert_eq!(e.category(), "unsupported", "{e}");
    // Reads too: they would miss the transaction's own writes.
    let e = tx
        .sql_rows("SELECT n FROM lite.src")
        .await
        .expect_err("reads outside the transaction");
    assert_eq!(e.category(), "unsupported", "{e}");
    tx.rollback().await.expect("rollback");
    assert_eq!(
        engine
            .default_session()
            .count("src", None)
            .await
            .expect("count"),
        0
    );
}

/// An engine's SQL on Ballista standalone: the executor connects its own
/// drivers from the URLs the datasources were added with, and returns what
/// the in-process federation returns.
#[cfg(feature = "ballista")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engines_sql_runs_on_ballista_with_drivers_connected_from_its_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new();
    for name in ["crm", "shop"] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        );
        engine.add_datasource(name, &url).await.expect("sqlite");
    }
    for (name, ds) in [("people", "crm"), ("sales", "shop")] {
        engine
            .register_json(&json!({
                "name": name, "datasource": ds,
                "fields": {"who": {"type": "text"}, "n": {"type": "integer"}}
            }))
            .await
            .expect("register");
    }
    engine
        .execute_sql("INSERT INTO crm.people (who, n) VALUES ('ada', 1), ('bob', 2), ('cy', NULL)")
        .await
        .expect("people");
    engine
        .execute_sql(
            "INSERT INTO shop.sales (who, n) VALUES ('ada', 10), ('ada', 5), ('bob', 7), ('dee', 1)",
        )
        .await
        .expect("sales");
    let sql = "SELECT p.who, SUM(s.n) AS total, COUNT(s.n) AS k FROM crm.people p \
               LEFT JOIN shop.sales s ON s.who = p.who GROUP BY p.who ORDER BY p.who";
    let want = engine.sql_rows(sql).await.expect("in process");
    assert_eq!(want.len(), 3);
    let cluster = engine
        .default_session()
        .ballista_standalone()
        .await
        .expect("ballista");
    assert_eq!(cluster.sql_rows(sql).await.expect("ballista"), want);
    assert!(cluster.codec().scans_decoded() >= 2);
    cluster.close().await.expect("close");

    // A driver added as it is has no URL for the executor.
    engine
        .add_driver(
            "loose",
            engine.connect_url("memory://").await.expect("memory"),
        )
        .expect("add");
    let error = engine
        .default_session()
        .ballista_standalone()
        .await
        .expect_err("no URL for `loose`");
    assert!(error.to_string().contains("`loose`"), "{error}");
}
