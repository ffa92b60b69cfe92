//! SQLite-specific behaviour: URLs, files readable by other SQLite tools,
//! busy handling, pool statistics, transactions left open.

use std::sync::Arc;

use objectql::{Engine, Query, Value, field, record};
use objectql_driver_sqlite::{SqliteDriver, SqliteOptions};
use serde_json::json;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn engine(driver: SqliteDriver) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", Arc::new(driver)).unwrap();
    engine
        .register_json(&json!({
            "name": "item",
            "fields": {
                "name": {"type": "text", "required": true},
                "price": {"type": "currency", "precision": 12, "scale": 2},
                "at": {"type": "datetime"},
                "ok": {"type": "boolean"},
                "meta": {"type": "json"}
            }
        }))
        .await
        .unwrap();
    engine
}

#[test]
fn urls_parse_and_bad_ones_are_config_errors() {
    assert!(
        SqliteOptions::from_url("sqlite::memory:")
            .unwrap()
            .path
            .is_none()
    );
    assert!(
        SqliteOptions::from_url("sqlite://:memory:")
            .unwrap()
            .path
            .is_none()
    );
    let o = SqliteOptions::from_url("sqlite://data/app.db?max_connections=2&busy_timeout_ms=10")
        .unwrap();
    assert_eq!(o.path.as_deref(), Some(std::path::Path::new("data/app.db")));
    assert_eq!(o.max_connections, 2);
    for bad in [
        "postgres://x",
        "sqlite://",
        "sqlite://x.db?nope=1",
        "sqlite://x.db?max_connections=0",
    ] {
        let e = SqliteOptions::from_url(bad).unwrap_err();
        assert!(matches!(e, objectql::Error::Config { .. }), "{bad}: {e}");
    }
    rt().block_on(async {
        let e = SqliteDriver::connect("sqlite:///no/such/dir/x.db")
            .await
            .unwrap_err();
        assert!(matches!(e, objectql::Error::Config { .. }), "{e}");
    });
}

#[test]
fn values_round_trip_exactly_through_a_file() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        {
            let e = engine(SqliteDriver::connect(&url).await.unwrap()).await;
            e.default_session()
                .insert(
                    "item",
                    record! {"id" => "a", "name" => "quote ' \" \\ é 🚀", "price" => "1234567890.12",
                             "at" => "2026-03-01T10:00:00.123456Z", "ok" => true},
                )
                .await
                .unwrap();
        }
        let e = engine(SqliteDriver::connect(&url).await.unwrap()).await;
        let rows = e.default_session().find(&Query::new("item")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["name"], Value::from("quote ' \" \\ é 🚀"));
        assert_eq!(rows[0]["price"].to_json(), json!("1234567890.12"));
        assert_eq!(rows[0]["at"].to_json(), json!("2026-03-01T10:00:00.123456Z"));
        assert_eq!(rows[0]["ok"], Value::Bool(true));
    });
}

#[test]
fn a_dropped_transaction_rolls_back_and_frees_its_connection() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let driver = SqliteDriver::open(SqliteOptions::file(dir.path().join("t.db")))
            .await
            .unwrap();
        let e = engine(driver).await;
        let db = e.default_session();
        {
            let tx = db
                .begin("default", objectql::IsolationLevel::Serializable)
                .await
                .unwrap();
            tx.insert("item", record! {"name" => "ghost"})
                .await
                .unwrap();
        }
        assert_eq!(db.count("item", None).await.unwrap(), 0);
        // The write lock is free again: a new write succeeds at once.
        db.insert("item", record! {"name" => "real"}).await.unwrap();
        let stats = e.datasource("default").unwrap().pool_stats();
        assert_eq!(stats.active, 0, "{stats:?}");
        let found = db
            .find(&Query::new("item").filter(field("name").eq("real")))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
    });
}
