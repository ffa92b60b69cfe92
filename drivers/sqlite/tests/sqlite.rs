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

/// An engine with no objects over `url`.
async fn bare_engine(url: &str) -> Engine {
    let engine = Engine::new();
    engine
        .add_driver(
            "default",
            Arc::new(SqliteDriver::connect(url).await.unwrap()),
        )
        .unwrap();
    engine
}

/// [`engine`] over a file in a fresh temporary directory (kept alive by
/// the returned guard).
async fn file_engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let driver = SqliteDriver::open(SqliteOptions::file(dir.path().join("test.db")))
        .await
        .unwrap();
    (dir, engine(driver).await)
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

/// Runs the `sqlite3` command-line shell; its absence is a failure that
/// says what to install, never a skip.
fn sqlite3_cli(db: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| {
            panic!("the `sqlite3` command-line shell is needed (apt-get install sqlite3): {e}")
        });
    assert!(
        out.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn files_interoperate_with_the_sqlite3_shell() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let url = format!("sqlite://{}", path.display());
        {
            let e = engine(SqliteDriver::connect(&url).await.unwrap()).await;
            e.default_session()
                .insert("item", record! {"id" => "ours", "name" => "written by objectql", "price" => "2.50"})
                .await
                .unwrap();
            e.close().await.unwrap();
        }
        // Ours → the shell: plain SQL sees the row (the decimal as cents).
        let out = sqlite3_cli(&path, r#"SELECT "id", "name", "price" FROM "item";"#);
        assert_eq!(out.trim(), "ours|written by objectql|250");
        // The shell → ours: a row inserted by the shell reads back typed.
        sqlite3_cli(&path, r#"INSERT INTO "item" ("id", "name", "price", "ok") VALUES ('theirs', 'from the shell', 1999, 0);"#);
        let e = engine(SqliteDriver::connect(&url).await.unwrap()).await;
        let row = e
            .default_session()
            .find_one(&Query::new("item").filter(field("id").eq("theirs")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row["name"], Value::from("from the shell"));
        assert_eq!(row["price"].to_json(), json!("19.99"));
        assert_eq!(row["ok"], Value::Bool(false));
    });
}

#[test]
fn a_locked_database_is_a_retryable_busy_error() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = engine(
            SqliteDriver::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap(),
        )
        .await;
        let waiter_url = format!("sqlite://{}?busy_timeout_ms=50", path.display());
        let waiter = engine(SqliteDriver::connect(&waiter_url).await.unwrap()).await;
        let tx = holder
            .default_session()
            .begin("default", objectql::IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("item", record! {"name" => "holding the write lock"})
            .await
            .unwrap();
        let e = waiter
            .default_session()
            .insert("item", record! {"name" => "blocked"})
            .await
            .unwrap_err();
        assert_eq!(
            e.driver_kind(),
            Some(objectql::DriverErrorKind::Busy),
            "{e}"
        );
        assert!(e.is_retryable());
        tx.commit().await.unwrap();
        waiter
            .default_session()
            .insert("item", record! {"name" => "retried"})
            .await
            .unwrap();
        assert_eq!(
            waiter.default_session().count("item", None).await.unwrap(),
            2
        );
    });
}

#[test]
fn schema_changes_migrate_existing_rows() {
    rt().block_on(async {
        let (_dir, e) = file_engine().await;
        let db = e.default_session();
        db.insert(
            "item",
            record! {"id" => "a", "name" => "kept", "price" => "1.00"},
        )
        .await
        .unwrap();
        // A new field with a default, and `price` dropped.
        e.register_json(&json!({
            "name": "item",
            "fields": {
                "name": {"type": "text", "required": true},
                "stock": {"type": "integer", "defaultValue": 7},
                "at": {"type": "datetime"},
                "ok": {"type": "boolean"},
                "meta": {"type": "json"}
            }
        }))
        .await
        .unwrap();
        let row = db.find_one(&Query::new("item")).await.unwrap().unwrap();
        assert_eq!(row["name"], Value::from("kept"));
        assert_eq!(row["stock"], Value::Int(7));
        assert!(!row.contains_key("price"));
        let schema = e
            .datasource("default")
            .unwrap()
            .introspect("item")
            .await
            .unwrap()
            .unwrap();
        assert!(schema.fields.contains_key("stock"));
    });
}

#[test]
fn explain_shows_the_sql_and_its_bound_parameters() {
    rt().block_on(async {
        let e = engine(
            SqliteDriver::open(SqliteOptions::in_memory())
                .await
                .unwrap(),
        )
        .await;
        let q = Query::new("item")
            .filter(field("name").contains("x").and(field("ok").eq(true)))
            .asc("name")
            .limit(5);
        let steps = e.default_session().explain(&q).await.unwrap();
        let sql = steps
            .iter()
            .find(|s| s.operation == "sql")
            .expect("an sql step");
        assert_eq!(sql.location, "driver:sqlite");
        assert!(
            sql.detail.contains("SELECT") && sql.detail.contains("bound parameters"),
            "{}",
            sql.detail
        );
        assert!(
            !sql.detail.contains("'x'"),
            "values are bound, never inlined: {}",
            sql.detail
        );
    });
}

#[test]
fn a_refused_query_shape_runs_locally_on_every_entry_point() {
    use futures::TryStreamExt;
    rt().block_on(async {
        let e = engine(
            SqliteDriver::open(SqliteOptions::in_memory())
                .await
                .unwrap(),
        )
        .await;
        let db = e.session(
            objectql::ResolveContext::at(chrono::Utc::now()).with_timezone(chrono_tz::Asia::Tokyo),
        );
        db.insert_many(
            "item",
            vec![
                // 23:30 UTC on the 1st is the 2nd in Tokyo.
                record! {"name" => "a", "at" => "2026-03-01T23:30:00Z"},
                record! {"name" => "b", "at" => "2026-03-02T01:00:00Z"},
            ],
        )
        .await
        .unwrap();
        // SQLite cannot bucket in a timezone: its compiler refuses the shape.
        let q = Query::new("item")
            .group_by_date("at", objectql::DateGranularity::Day, "day")
            .count_as("n");
        let found = db.find(&q).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["day"], Value::from("2026-03-02"));
        let streamed: Vec<_> = db
            .find_stream(&q)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed, found);
        let batches: Vec<_> = db
            .find_arrow(&q)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let rows: usize = batches.iter().map(arrow_array::RecordBatch::num_rows).sum();
        assert_eq!(rows, 1);
        let steps = db.explain(&q).await.unwrap();
        assert!(
            steps
                .iter()
                .any(|s| s.location == "local" && s.operation == "aggregate"),
            "{steps:?}"
        );
    });
}

/// Every hostile name (quotes, backslashes, comment markers, placeholders)
/// is stored as exactly itself: read back through objectql and listed as
/// such in `sqlite_master` / `pragma_table_info` (issue 12 §1: `inj\"` once
/// closed the identifier and ran `CREATE TABLE … AS SELECT`).
#[test]
fn hostile_identifiers_round_trip_into_the_catalog() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.db");
        let url = format!("sqlite://{}", path.display());
        let e = bare_engine(&url).await;
        let names = objectql_conformance::identifiers::hostile_names(12, 64);
        let catalog = || async {
            let out = sqlite3_cli(
                &path,
                "SELECT hex(m.name) || ' ' || hex(p.name) FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table';",
            );
            let unhex = |h: &str| {
                let bytes: Vec<u8> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect();
                String::from_utf8(bytes).unwrap()
            };
            out.lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(t, c)| (unhex(t), unhex(c)))
                .collect()
        };
        objectql_conformance::identifiers::roundtrip(&e, &names, catalog)
            .await
            .unwrap();
        e.close().await.unwrap();
    });
}

/// SQLite folds ASCII case in table and column names: `CaseObj` and
/// `caseobj` would be one table, so the second is refused and the first's
/// rows are untouched (issue 12 §4: `delete_many("caseobj")` once deleted
/// CaseObj's rows). Columns that fold together are refused too.
#[test]
fn names_that_fold_together_are_refused() {
    rt().block_on(async {
        let e = bare_engine("sqlite::memory:").await;
        e.register_json(&json!({"name": "CaseObj", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap();
        let db = e.default_session();
        db.insert("CaseObj", record! {"id" => "a", "v" => 1}).await.unwrap();
        let err = e
            .register_json(&json!({"name": "caseobj", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.category(), "validation", "{msg}");
        assert!(msg.contains("`CaseObj`") && msg.contains("`caseobj`"), "{msg}");
        assert!(db.delete_many("caseobj", field("v").eq(1)).await.is_err());
        assert_eq!(db.count("CaseObj", None).await.unwrap(), 1);
        // Reserved names: SQLite's own and objectql's catalog.
        for name in ["sqlite_stat9", "SQLITE_x", "_objectql_schema"] {
            let err = e
                .register_json(&json!({"name": name, "fields": {"v": {"type": "integer"}}}))
                .await
                .unwrap_err();
            assert_eq!(err.category(), "validation", "{name}: {err}");
        }
        // Two fields whose columns fold together.
        let err = e
            .register_json(&json!({"name": "cols", "fields": {"Ab": {"type": "text"}, "aB": {"type": "text"}}}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("`Ab`"), "{err}");
    });
}

/// Another process's objects count too (issue 12 §4): the file's schema
/// table holds `CaseObj`, registered by an engine that is gone, so a new
/// engine refuses `caseobj` although its own catalog is empty.
#[test]
fn collisions_count_objects_synced_by_other_engines() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("shared.db").display());
        let first = bare_engine(&url).await;
        first
            .register_json(&json!({"name": "CaseObj", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap();
        first
            .default_session()
            .insert("CaseObj", record! {"id" => "a", "v" => 1})
            .await
            .unwrap();
        first.close().await.unwrap();
        let second = bare_engine(&url).await;
        let err = second
            .register_json(&json!({"name": "caseobj", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.category(), "validation", "{msg}");
        assert!(
            msg.contains("`CaseObj`") && msg.contains("`caseobj`"),
            "{msg}"
        );
        // Re-registering the same object from the new engine is fine.
        second
            .register_json(&json!({"name": "CaseObj", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap();
        assert_eq!(
            second
                .default_session()
                .count("CaseObj", None)
                .await
                .unwrap(),
            1
        );
    });
}

/// `drop_object` drops the object's own table (its `tableName`), not
/// another object's table that carries its name.
#[test]
fn drop_object_drops_its_own_table() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("drop.db").display());
        let engine = bare_engine(&url).await;
        objectql_conformance::storage::drop_object_drops_its_own_table(&engine)
            .await
            .unwrap();
        engine.close().await.unwrap();
    });
}

/// A write waiting for the lock held by a transaction does not block the
/// runtime: on a one-thread runtime a transaction holds the write lock
/// across an await while another task inserts. The waiting insert lets the
/// transaction's task run, the transaction commits, then the insert goes
/// in. Before, SQLite's own busy handler slept on the only thread for the
/// whole busy timeout, the transaction could not move, and the insert
/// failed with `Busy`.
#[test]
fn a_write_waiting_for_the_lock_lets_the_lock_holder_run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?busy_timeout_ms=2000",
            dir.path().join("wait.db").display()
        );
        let e = bare_engine(&url).await;
        e.register_json(&json!({"name": "w", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap();
        let db = e.default_session();
        let tx = db
            .begin("default", objectql::IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("w", record! {"id" => "in-tx", "v" => 1})
            .await
            .unwrap();
        let other = e.default_session();
        let waiter = tokio::spawn(async move {
            other
                .insert("w", record! {"id" => "waiter", "v" => 2})
                .await
        });
        // Let the waiter start and meet the lock.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.insert("w", record! {"id" => "in-tx-2", "v" => 3})
            .await
            .unwrap();
        tx.commit().await.unwrap();
        waiter
            .await
            .unwrap()
            .unwrap_or_else(|err| panic!("the waiting insert failed: {err}"));
        assert_eq!(db.count("w", None).await.unwrap(), 3);
        e.close().await.unwrap();
    });
}

/// Two processes registering colliding names at the same moment (issue 12
/// §4): the collision check and the DDL share one write transaction, so
/// exactly one of `CaseObj` and `caseobj` registers, the other is refused
/// with a validation error, and the file holds one table and one stored
/// schema. Before, both read an empty catalog, both passed the check, and
/// the second `CREATE TABLE IF NOT EXISTS` shared the first one's table.
#[test]
fn concurrent_registrations_of_colliding_names_admit_one() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..60 {
            let path = dir.path().join(format!("race{round}.db"));
            let url = format!("sqlite://{}", path.display());
            let (a, b) = (bare_engine(&url).await, bare_engine(&url).await);
            let register = |e: Engine, name: &'static str| {
                tokio::spawn(async move {
                    let r = e
                        .register_json(&json!({"name": name, "fields": {"v": {"type": "integer"}}}))
                        .await;
                    (e, r)
                })
            };
            let (ra, rb) = tokio::join!(register(a, "CaseObj"), register(b, "caseobj"));
            let ((a, ra), (b, rb)) = (ra.unwrap(), rb.unwrap());
            let (winner, loser) = match (&ra, &rb) {
                (Ok(()), Err(e)) => ("CaseObj", e),
                (Err(e), Ok(())) => ("caseobj", e),
                _ => panic!("round {round}: expected one registration to win, got {ra:?} and {rb:?}"),
            };
            assert_eq!(loser.category(), "validation", "round {round}: {loser}");
            assert!(
                loser.to_string().contains("`CaseObj`") && loser.to_string().contains("`caseobj`"),
                "round {round}: {loser}"
            );
            a.close().await.unwrap();
            b.close().await.unwrap();
            let tables = sqlite3_cli(
                &path,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_objectql%' ESCAPE '\\';",
            );
            assert_eq!(tables.trim(), winner, "round {round}: tables {tables:?}");
            let stored = sqlite3_cli(&path, "SELECT name FROM _objectql_schema;");
            assert_eq!(stored.trim(), winner, "round {round}: stored {stored:?}");
        }
    });
}

/// A unique constraint missing on the server is found at sync (issue 12
/// §5): once an index of the right name but other columns made
/// `CREATE UNIQUE INDEX IF NOT EXISTS` a no-op and duplicates went in.
/// Here the index is dropped, then replaced by one over another column
/// under the same name, by hand; registering the schema again is refused
/// with `SchemaMismatch` instead of accepting duplicates.
#[test]
fn a_missing_unique_constraint_is_found_at_sync() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let url = format!("sqlite://{}", path.display());
        let schema = json!({"name": "ixa", "fields": {
            "b_c": {"type": "text", "unique": true},
            "c": {"type": "text"}
        }});
        let first = bare_engine(&url).await;
        first.register_json(&schema).await.unwrap();
        first.close().await.unwrap();
        let index = sqlite3_cli(
            &path,
            "SELECT name FROM pragma_index_list('ixa') WHERE \"unique\" = 1 AND origin = 'c';",
        );
        let index = index.trim().to_owned();
        assert!(!index.is_empty(), "no unique index was created");
        let q = index.replace('"', "\"\"");
        sqlite3_cli(&path, &format!("DROP INDEX \"{q}\";"));
        let second = bare_engine(&url).await;
        let err = second.register_json(&schema).await.unwrap_err();
        assert_eq!(
            err.driver_kind(),
            Some(objectql::DriverErrorKind::SchemaMismatch),
            "{err}"
        );
        assert!(err.to_string().contains("unique field `b_c`"), "{err}");
        second.close().await.unwrap();
        // The same name over another column does not count either.
        sqlite3_cli(
            &path,
            &format!("CREATE UNIQUE INDEX \"{q}\" ON \"ixa\" (\"c\");"),
        );
        let third = bare_engine(&url).await;
        let err = third.register_json(&schema).await.unwrap_err();
        assert!(err.to_string().contains("(c)"), "{err}");
        third.close().await.unwrap();
        // Restored by hand, the schema registers again.
        sqlite3_cli(
            &path,
            &format!("DROP INDEX \"{q}\"; CREATE UNIQUE INDEX \"{q}\" ON \"ixa\" (\"b_c\");"),
        );
        let fourth = bare_engine(&url).await;
        fourth.register_json(&schema).await.unwrap();
    });
}

fn rows(n: usize) -> Vec<objectql::Record> {
    (0..n)
        .map(|i| record! {"id" => format!("r{i}"), "name" => format!("n{i}"), "ok" => true})
        .collect()
}

/// A 50,000-row `insert_many` lets the runtime's other tasks run between
/// its statements (issue 13 §10: it held a worker for its whole duration).
/// On a one-thread runtime, a task that counts its turns gets some while
/// the insert is in flight, and none could before.
#[test]
fn a_long_insert_lets_other_tasks_run() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_dir, e) = file_engine().await;
        let db = e.default_session();
        let (written, during) = objectql_conformance::liveness::other_task_turns_during(
            db.insert_many("item", rows(50_000)),
        )
        .await;
        let written = written.unwrap();
        assert_eq!(written.len(), 50_000);
        assert!(
            during >= 2,
            "the other task ran {during} times during the insert"
        );
    });
}

/// `insert_many` cancelled between its statements inside a transaction
/// leaves nothing to commit: the transaction is closed, `commit` fails
/// with `TransactionClosed`, and no row is written (issue 13 §2, for the
/// SQLite engine: the yields between statements, and the remote mode's
/// network waits, are points where a caller may drop the future).
#[test]
fn a_cancelled_insert_in_a_transaction_commits_nothing() {
    rt().block_on(async {
        let (_dir, e) = file_engine().await;
        let db = e.default_session();
        let tx = db
            .begin("default", objectql::IsolationLevel::Serializable)
            .await
            .unwrap();
        {
            let mut write = Box::pin(tx.insert_many("item", rows(50_000)));
            for _ in 0..2 {
                assert!(
                    futures::poll!(write.as_mut()).is_pending(),
                    "the insert finished without yielding"
                );
            }
        }
        let err = tx.commit().await.unwrap_err();
        assert_eq!(
            err.driver_kind(),
            Some(objectql::DriverErrorKind::TransactionClosed),
            "{err}"
        );
        assert_eq!(db.count("item", None).await.unwrap(), 0);
        // The connection is whole again: the next write lands.
        db.insert("item", record! {"name" => "after"})
            .await
            .unwrap();
        assert_eq!(db.count("item", None).await.unwrap(), 1);
    });
}

/// A paged read ordered by the primary key walks its index: no temporary
/// b-tree sorts the table (issue 14 §5).
#[test]
fn paged_reads_by_the_primary_key_use_its_index() {
    rt().block_on(async {
        let e = engine(
            SqliteDriver::open(SqliteOptions::in_memory())
                .await
                .unwrap(),
        )
        .await;
        let db = e.default_session();
        db.insert_many("item", rows(2_000)).await.unwrap();
        for q in [
            Query::new("item").asc("id").limit(20),
            Query::new("item").desc("id").limit(20),
        ] {
            let steps = db.explain(&q).await.unwrap();
            let text: Vec<String> = steps.iter().map(|s| s.detail.clone()).collect();
            let text = text.join("\n");
            assert!(!text.contains("TEMP B-TREE"), "{text}");
            assert_eq!(db.find(&q).await.unwrap().len(), 20);
        }
    });
}

/// Issue 14 §5 at scale: over 1,000,000 rows (written by the sqlite3
/// shell), a primary-key-ordered `limit 20` read and keyset-cursor pages in
/// both directions are answered by walking the primary key's index: the
/// plan has no temporary B-tree for the order and no full scan of the
/// table, so the `LIMIT` stops the walk after the page.
#[test]
fn ordered_pages_over_a_million_rows_walk_the_index() {
    use objectql::Cursor;
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("million.db");
        let url = format!("sqlite://{}", path.display());
        let e = bare_engine(&url).await;
        e.register_json(&json!({"name": "big", "fields": {"v": {"type": "integer"}}}))
            .await
            .unwrap();
        sqlite3_cli(
            &path,
            "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 999999) \
             INSERT INTO big (id, v) SELECT printf('k%07d', n), n % 7 FROM g; ANALYZE;",
        );
        let cursor = |id: &str| Cursor {
            after: [("id".to_owned(), Value::from(id))].into_iter().collect(),
        };
        let db = e.default_session();
        assert_eq!(db.count("big", None).await.unwrap(), 1_000_000);
        for (label, q, first) in [
            (
                "first page",
                Query::new("big").asc("id").limit(20),
                "k0000000",
            ),
            (
                "last page",
                Query::new("big").desc("id").limit(20),
                "k0999999",
            ),
            (
                "keyset page",
                Query::new("big")
                    .asc("id")
                    .limit(20)
                    .after(cursor("k0500000")),
                "k0500001",
            ),
            (
                "keyset page, descending",
                Query::new("big")
                    .desc("id")
                    .limit(20)
                    .after(cursor("k0500000")),
                "k0499999",
            ),
        ] {
            let steps = db.explain(&q).await.unwrap();
            let text: Vec<String> = steps.iter().map(|s| s.detail.clone()).collect();
            let text = text.join("\n");
            assert!(!text.contains("TEMP B-TREE"), "{label}: {text}");
            assert!(
                text.contains("USING INDEX") || text.contains("USING PRIMARY KEY"),
                "{label}: {text}"
            );
            let got = db.find(&q).await.unwrap();
            assert_eq!(got.len(), 20, "{label}");
            assert_eq!(got[0]["id"], Value::from(first), "{label}");
        }
        e.close().await.unwrap();
    });
}

/// Random cancellation points over `insert_many`, inside and outside
/// transactions, 500 times (seeded: `OBJECTQL_FAULT_SEED` replays a run):
/// a write cut off between its statements leaves none of its rows, inside
/// a transaction the cut closes it (`commit` fails with
/// `TransactionClosed`), a write that finished is all there, and at the end
/// the pool is whole (issue 13, for the SQLite engine).
#[test]
fn random_cancellations_leave_no_partial_writes() {
    use std::task::Poll;
    let seed = std::env::var("OBJECTQL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0b1e_c75e_u64);
    let mut state = seed | 1;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    rt().block_on(async {
        let (_dir, e) = file_engine().await;
        let db = e.default_session();
        let mut expected = 0_u64;
        let (mut cut, mut finished) = (0, 0);
        for i in 0..500 {
            // One statement, or two or three (32,766 bound values a
            // statement, six columns a row).
            let n = [1, 300, 6_000, 11_000][usize::try_from(next(4)).unwrap()];
            let polls = next(4);
            let in_tx = next(2) == 0;
            let rows: Vec<objectql::Record> = (0..n)
                .map(|k| record! {"id" => format!("i{i}_{k}"), "name" => "x", "ok" => true})
                .collect();
            let tx = if in_tx {
                Some(
                    db.begin("default", objectql::IsolationLevel::Serializable)
                        .await
                        .unwrap(),
                )
            } else {
                None
            };
            let outcome = {
                let mut write = match &tx {
                    Some(tx) => Box::pin(tx.insert_many("item", rows)),
                    None => Box::pin(db.insert_many("item", rows)),
                };
                let mut outcome = None;
                for _ in 0..=polls {
                    if let Poll::Ready(r) = futures::poll!(write.as_mut()) {
                        outcome = Some(r);
                        break;
                    }
                }
                outcome
            };
            match (outcome, tx) {
                (Some(r), tx) => {
                    assert_eq!(r.unwrap().len(), n, "iteration {i} (seed {seed})");
                    if let Some(tx) = tx {
                        tx.commit().await.unwrap();
                    }
                    expected += n as u64;
                    finished += 1;
                }
                (None, Some(tx)) => {
                    let err = tx.commit().await.unwrap_err();
                    assert_eq!(
                        err.driver_kind(),
                        Some(objectql::DriverErrorKind::TransactionClosed),
                        "iteration {i} (seed {seed}): {err}"
                    );
                    cut += 1;
                }
                (None, None) => cut += 1,
            }
            assert_eq!(
                db.count("item", None).await.unwrap(),
                expected,
                "iteration {i} (seed {seed}): a cut-off write left rows, or a finished one lost some"
            );
        }
        assert!(cut > 0 && finished > 0, "cut {cut}, finished {finished}");
        // Cut-off connections roll back in the background, then return.
        for _ in 0..100 {
            if e.datasource("default").unwrap().pool_stats().active == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let stats = e.datasource("default").unwrap().pool_stats();
        assert_eq!(stats.active, 0, "{stats:?}");
        db.insert("item", record! {"name" => "after"}).await.unwrap();
        assert_eq!(db.count("item", None).await.unwrap(), expected + 1);
    });
}
