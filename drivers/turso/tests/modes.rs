//! Mode selection, URLs, tokens, and what each mode promises: files
//! persist, remote statements run on the server, replicas read locally,
//! forward writes, read their own writes and pull others' on sync.

use std::sync::Arc;
use std::time::Duration;

use objectql::{DriverErrorKind, Engine, Error, Query, Value, field, record};
use objectql_driver_turso::{TursoDriver, TursoOptions};
use serde_json::json;

use crate::common::{
    ServerLock, dir, fresh, give_back_replica_file, remote_options, replica_options, server_url,
    take_replica_file, token, wipe,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn note_schema(name: &str) -> serde_json::Value {
    json!({"name": name, "fields": {
        "title": {"type": "text", "required": true, "unique": true},
        "n": {"type": "integer"}
    }})
}

async fn engine_on(driver: TursoDriver, object: &str) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", Arc::new(driver)).unwrap();
    engine.register_json(&note_schema(object)).await.unwrap();
    engine
}

async fn titles(engine: &Engine, object: &str) -> Vec<String> {
    engine
        .default_session()
        .find(&Query::new(object).asc("title"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r.get("title") {
            Some(Value::String(s)) => s.clone(),
            other => panic!("title is {other:?}"),
        })
        .collect()
}

fn kind(e: &Error) -> Option<DriverErrorKind> {
    match e {
        Error::Driver { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[test]
fn a_file_database_persists_and_memory_does_not() {
    rt().block_on(async {
        let path = dir().join(format!("{}.db", fresh("persist")));
        let url = format!("file:{}", path.display());
        let driver = TursoDriver::connect(&url).await.unwrap();
        assert_eq!(driver.mode(), "file");
        let engine = engine_on(driver, "note").await;
        engine
            .default_session()
            .insert("note", record! {"title" => "kept", "n" => 1})
            .await
            .unwrap();
        engine.close().await.unwrap();
        drop(engine);
        let again = engine_on(TursoDriver::connect(&url).await.unwrap(), "note").await;
        assert_eq!(titles(&again, "note").await, ["kept"]);

        let memory = TursoDriver::connect(":memory:").await.unwrap();
        assert_eq!(memory.mode(), "memory");
        let stats = objectql::Driver::pool_stats(&memory);
        assert!(
            stats.total <= 1,
            "one connection to :memory: at most: {stats:?}"
        );
    });
}

#[test]
fn the_facade_reaches_every_mode_by_url() {
    rt().block_on(async {
        let engine = Engine::new();
        engine
            .add_datasource("mem", "libsql::memory:")
            .await
            .unwrap();
        let path = dir().join(format!("{}.db", fresh("facade")));
        engine
            .add_datasource("file", &format!("libsql:file:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(engine.datasource("mem").unwrap().name(), "turso");
        assert!(path.exists(), "the file database was created");
        let e = engine
            .add_datasource("bad", "libsql:ftp://x")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
    });
}

#[test]
fn bad_urls_fail_typed_before_any_connection() {
    rt().block_on(async {
        for url in [
            "postgres://x",
            "libsql://",
            "file:",
            "file:x.db?nope=1",
            "wss://db.example",
            "file:r.db?sync_url=ftp%3A%2F%2Fx",
        ] {
            let e = TursoDriver::connect(url).await.unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{url}: {e:?}");
        }
        let e = TursoDriver::connect("file:/no/such/dir/x.db")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    });
}

#[test]
fn sync_is_only_for_replicas() {
    rt().block_on(async {
        let d = TursoDriver::open(TursoOptions::in_memory()).await.unwrap();
        let e = d.sync().await.unwrap_err();
        assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    });
}

#[test]
fn local_modes_declare_vectors_and_one_dialect() {
    rt().block_on(async {
        use objectql::{Driver, Feature};
        let d = TursoDriver::open(TursoOptions::in_memory()).await.unwrap();
        assert!(d.capabilities().has(Feature::Vectors));
        assert_eq!(d.name(), "turso");
        let sqlite = objectql_driver_sqlite::SqliteDriver::open(
            objectql_driver_sqlite::SqliteOptions::in_memory(),
        )
        .await
        .unwrap();
        assert!(!sqlite.capabilities().has(Feature::Vectors));
    });
}

#[test]
fn a_remote_database_runs_statements_on_the_server() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let driver = TursoDriver::open(remote_options()).await.unwrap();
        assert_eq!(driver.mode(), "remote");
        let engine = engine_on(driver, "remote_note").await;
        let db = engine.default_session();
        db.insert("remote_note", record! {"title" => "a", "n" => 1})
            .await
            .unwrap();
        let e = db
            .insert("remote_note", record! {"title" => "a", "n" => 2})
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::UniqueViolation), "{e:?}");

        // Another client of the server sees the row: it is on the server.
        let other = engine_on(
            TursoDriver::open(remote_options()).await.unwrap(),
            "remote_note",
        )
        .await;
        assert_eq!(titles(&other, "remote_note").await, ["a"]);

        // A transaction holds a server-side stream; rollback discards.
        let tx = db
            .begin("default", objectql::IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("remote_note", record! {"title" => "b"})
            .await
            .unwrap();
        assert_eq!(tx.count("remote_note", None).await.unwrap(), 2);
        tx.rollback().await.unwrap();
        assert_eq!(titles(&other, "remote_note").await, ["a"]);

        // The explain output is the same SQL locally: one compiler.
        let q = Query::new("remote_note").filter(field("title").ne("x"));
        let remote_sql = db.explain(&q).await.unwrap()[0].detail.clone();
        let local = engine_on(
            TursoDriver::open(TursoOptions::in_memory()).await.unwrap(),
            "remote_note",
        )
        .await;
        let local_sql = local.default_session().explain(&q).await.unwrap()[0]
            .detail
            .clone();
        assert_eq!(remote_sql, local_sql);
        wipe().await.unwrap();
    });
}

#[test]
fn bad_tokens_and_unreachable_servers_are_typed_errors() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        let url = server_url();
        assert!(
            !token().is_empty(),
            "the test server must require a token (OBJECTQL_TURSO_AUTH_TOKEN)"
        );
        let e = TursoDriver::open(TursoOptions::remote(&url, "not-a-jwt"))
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::AuthFailed), "{e:?}");
        assert!(!e.is_retryable());
        let e = TursoDriver::open(TursoOptions::remote(&url, ""))
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::AuthFailed), "{e:?}");
        let path = dir().join(format!("{}.db", fresh("badtoken")));
        let e = TursoDriver::open(TursoOptions::replica(&path, &url, "not-a-jwt"))
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::AuthFailed), "{e:?}");
        // Port 1 on loopback: nothing listens.
        let e = TursoDriver::open(TursoOptions::remote("http://127.0.0.1:1", token()))
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::ConnectionLost), "{e:?}");
        assert!(e.is_retryable());
    });
}

#[test]
fn a_replica_reads_locally_forwards_writes_and_syncs() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let primary = engine_on(TursoDriver::open(remote_options()).await.unwrap(), "rnote").await;
        primary
            .default_session()
            .insert("rnote", record! {"title" => "before"})
            .await
            .unwrap();

        // Synced on connect: the replica starts with the primary's rows.
        let path = take_replica_file();
        let driver = TursoDriver::open(replica_options(&path)).await.unwrap();
        assert_eq!(driver.mode(), "replica");
        let driver = Arc::new(driver);
        let replica = Engine::new();
        replica.add_driver("default", driver.clone()).unwrap();
        replica.register_json(&note_schema("rnote")).await.unwrap();
        assert_eq!(titles(&replica, "rnote").await, ["before"]);

        // Writes go to the primary; the writer reads them at once.
        replica
            .default_session()
            .insert("rnote", record! {"title" => "mine"})
            .await
            .unwrap();
        assert_eq!(titles(&replica, "rnote").await, ["before", "mine"]);
        assert_eq!(titles(&primary, "rnote").await, ["before", "mine"]);

        // Someone else's write reaches the replica on sync(), not before.
        primary
            .default_session()
            .insert("rnote", record! {"title" => "theirs"})
            .await
            .unwrap();
        assert_eq!(titles(&replica, "rnote").await, ["before", "mine"]);
        let report = driver.sync().await.unwrap();
        assert!(report.frame_no.is_some(), "{report:?}");
        assert_eq!(
            titles(&replica, "rnote").await,
            ["before", "mine", "theirs"]
        );

        // A failed forwarded write is classified like a local one.
        let e = replica
            .default_session()
            .insert("rnote", record! {"title" => "theirs"})
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(DriverErrorKind::UniqueViolation), "{e:?}");
        replica.close().await.unwrap();
        drop((replica, driver));
        give_back_replica_file(path);
        wipe().await.unwrap();
    });
}

#[test]
fn a_replica_with_an_interval_pulls_changes_by_itself() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let primary = engine_on(TursoDriver::open(remote_options()).await.unwrap(), "inote").await;
        let path = take_replica_file();
        let options = replica_options(&path).sync_interval(Duration::from_millis(100));
        let replica = engine_on(TursoDriver::open(options).await.unwrap(), "inote").await;
        primary
            .default_session()
            .insert("inote", record! {"title" => "later"})
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if titles(&replica, "inote").await == ["later"] {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the replica did not pull the write within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        replica.close().await.unwrap();
        drop(replica);
        give_back_replica_file(path);
        wipe().await.unwrap();
    });
}

/// A float sum past the largest double is `NumericOverflow` on the server
/// too: Hrana has no infinity (sqld sends `{"type": "float", "value":
/// null}`), so the compiled `CASE` raises on the server before any
/// infinity is sent (issue 12 §8).
#[test]
fn a_remote_float_sum_overflow_is_numeric_overflow() {
    let _turn = ServerLock::take();
    rt().block_on(async {
        wipe().await.unwrap();
        let engine = Engine::new();
        engine
            .add_driver(
                "default",
                Arc::new(TursoDriver::open(remote_options()).await.unwrap()),
            )
            .unwrap();
        engine
            .register_json(&serde_json::json!({"name": "fov", "fields": {"f": {"type": "float"}}}))
            .await
            .unwrap();
        let db = engine.default_session();
        for id in ["a", "b"] {
            db.insert("fov", record! {"id" => id, "f" => 1e308})
                .await
                .unwrap();
        }
        let q = Query::from_json(&serde_json::json!({"object": "fov", "aggregations": [{"function": "sum", "field": "f", "alias": "s"}]})).unwrap();
        let got = db.find(&q).await;
        let plan = db.explain(&q).await.unwrap();
        let e = got.expect_err(&format!("plan: {plan:?}"));
        assert_eq!(kind(&e), Some(DriverErrorKind::NumericOverflow), "{e:?}");
        wipe().await.unwrap();
    });
}
