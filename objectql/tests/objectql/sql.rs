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
