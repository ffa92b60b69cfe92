//! Fault tests against a real MySQL/MariaDB server: connections killed
//! mid-stream, caller timeouts, pool exhaustion, transactions broken off,
//! and awkward values and names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{admin, database_name, drop_database, options_in, quoted};
use futures::StreamExt;
use objectql::{DriverErrorKind, Field, IsolationLevel, ObjectSchema, Query, Value, field, record};
use objectql_driver_mysql::{MySqlDriver, MySqlOptions};

fn fresh_namespace(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("f_{tag}_{}", N.fetch_add(1, Ordering::Relaxed))
}

/// An engine whose default datasource is a driver over a fresh database.
async fn engine_in(ns: &str, options: impl FnOnce(&mut MySqlOptions)) -> objectql::Engine {
    let mut o = options_in(ns, 4).await;
    options(&mut o);
    let engine = objectql::Engine::new();
    engine
        .add_driver("default", Arc::new(MySqlDriver::open(o).await.unwrap()))
        .unwrap();
    engine
}

/// The ids of the connections to `ns`'s database, other than the asking
/// one, that run a statement (`busy`: `Query`, `Execute`, …) or are idle
/// (`Sleep`).
async fn connections(admin: &mut sqlx::MySqlConnection, ns: &str, busy: bool) -> Vec<u64> {
    sqlx::query_scalar(
        "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND (COMMAND = 'Sleep') <> ? AND ID <> CONNECTION_ID()",
    )
    .bind(database_name(ns))
    .bind(busy)
    .fetch_all(admin)
    .await
    .unwrap()
}

async fn kill(admin: &mut sqlx::MySqlConnection, id: u64) {
    // KILL takes no placeholder; the id is a number the server gave us.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("KILL {id}")))
        .execute(admin)
        .await
        .unwrap();
}

/// `big`: `n` integer, `pad` text; filled server-side with `rows` rows (≤ 10^6).
async fn big_table(engine: &objectql::Engine, ns: &str, rows: u32) {
    engine
        .register(
            ObjectSchema::new("big")
                .field(Field::new("n", "integer"))
                .field(Field::new("pad", "text")),
        )
        .await
        .unwrap();
    let db = quoted(&database_name(ns));
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {db}.`digits` (`d` INT); \
         INSERT INTO {db}.`digits` VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {db}.`big` (`id`, `n`, `pad`) \
         SELECT CAST(n AS CHAR), n, REPEAT('x', 100) FROM ( \
           SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n \
           FROM {db}.`digits` a, {db}.`digits` b, {db}.`digits` c, \
                {db}.`digits` e, {db}.`digits` f, {db}.`digits` g) AS s \
         WHERE n < ?"
    )))
    .bind(rows)
    .execute(&mut admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_connection_killed_mid_stream_is_a_typed_error_and_the_pool_recovers() {
    let ns = fresh_namespace("kill");
    let engine = engine_in(&ns, |_| {}).await;
    big_table(&engine, &ns, 200_000).await;
    let db = engine.default_session();
    let mut stream = db.find_stream(&Query::new("big")).await.unwrap();
    assert!(
        stream.next().await.unwrap().is_ok(),
        "the first row arrives"
    );

    let mut admin = admin().await;
    let ids = connections(&mut admin, &ns, true).await;
    assert_eq!(ids.len(), 1, "exactly the streaming connection: {ids:?}");
    kill(&mut admin, ids[0]).await;

    let mut rows = 1_u64;
    let error = loop {
        match stream.next().await {
            Some(Ok(_)) => rows += 1,
            Some(Err(e)) => break e,
            None => panic!("the stream ended cleanly after {rows} rows of 200,000"),
        }
    };
    assert!(rows < 200_000);
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::ConnectionLost),
        "{error}"
    );
    drop(stream);
    assert_eq!(db.count("big", None).await.unwrap(), 200_000);
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

#[tokio::test]
async fn a_caller_timeout_stops_the_query_on_the_server_within_a_second() {
    let ns = fresh_namespace("timeout");
    let engine = engine_in(&ns, |_| {}).await;
    big_table(&engine, &ns, 10).await;

    // Another session holds a lock the statements must wait for.
    let mut locker = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "LOCK TABLES {}.`big` WRITE",
        quoted(&database_name(&ns))
    )))
    .execute(&mut locker)
    .await
    .unwrap();

    let db = engine
        .default_session()
        .with_timeout(Duration::from_millis(300));
    for (what, outcome) in [
        ("find", db.find(&Query::new("big")).await.map(drop)),
        ("count", db.count("big", None).await.map(drop)),
        (
            "update",
            db.update_many("big", field("n").eq(1), record! {"pad" => "y"})
                .await
                .map(drop),
        ),
    ] {
        let error = outcome.expect_err(what);
        // A write cut off may have been applied: its outcome is unknown
        // (issue 13 §5), and it is not retryable.
        let expected = if what == "update" {
            DriverErrorKind::OutcomeUnknown
        } else {
            DriverErrorKind::Timeout
        };
        assert_eq!(error.driver_kind(), Some(expected), "{what}: {error}");
        assert_eq!(error.is_retryable(), what != "update", "{what}");
        let mut watcher = admin().await;
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let running = connections(&mut watcher, &ns, true).await;
            if running.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: connections {running:?} still run a statement a second after the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut stream = db.find_stream(&Query::new("big")).await.unwrap();
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::Timeout),
        "{error}"
    );
    drop(stream);

    sqlx::raw_sql("UNLOCK TABLES")
        .execute(&mut locker)
        .await
        .unwrap();
    assert_eq!(db.count("big", None).await.unwrap(), 10);
    assert_eq!(
        engine.default_session().count("big", None).await.unwrap(),
        10
    );
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

#[tokio::test]
async fn an_exhausted_pool_waits_boundedly_then_fails_without_leaking_a_slot() {
    let ns = fresh_namespace("pool");
    let engine = engine_in(&ns, |o| {
        o.max_connections = 1;
        o.acquire_timeout = Duration::from_millis(300);
    })
    .await;
    big_table(&engine, &ns, 3).await;
    let db = engine.default_session();
    let tx = db
        .begin("default", IsolationLevel::ReadCommitted)
        .await
        .unwrap();

    let started = Instant::now();
    let error = db.count("big", None).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::PoolTimeout),
        "{error}"
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    let driver = engine.datasource("default").unwrap();
    assert_eq!(driver.pool_stats().waiting, 0, "the waiter is gone");

    assert_eq!(tx.count("big", None).await.unwrap(), 3);
    tx.rollback().await.unwrap();
    for _ in 0..3 {
        assert_eq!(db.count("big", None).await.unwrap(), 3);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stats = driver.pool_stats();
        if (stats.total, stats.active, stats.waiting) == (1, 0, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "a slot leaked: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

#[tokio::test]
async fn a_transaction_broken_off_half_way_leaves_no_partial_writes() {
    let ns = fresh_namespace("broken");
    let engine = engine_in(&ns, |o| o.max_connections = 1).await;
    big_table(&engine, &ns, 0).await;
    let db = engine.default_session();

    // Killed between writes: the transaction's connection is the pool's only one.
    let tx = db
        .begin("default", IsolationLevel::Serializable)
        .await
        .unwrap();
    for i in 0..50 {
        tx.insert("big", record! {"id" => format!("k{i}"), "n" => i})
            .await
            .unwrap();
    }
    let mut admin = admin().await;
    let ids = connections(&mut admin, &ns, false).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    kill(&mut admin, ids[0]).await;
    let error = tx
        .insert("big", record! {"id" => "late", "n" => 99})
        .await
        .unwrap_err();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::ConnectionLost),
        "{error}"
    );
    assert!(
        tx.commit().await.is_err(),
        "a broken transaction cannot commit"
    );
    assert_eq!(db.count("big", None).await.unwrap(), 0);

    // Dropped without commit.
    {
        let tx = db
            .begin("default", IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert_many(
            "big",
            (0..20)
                .map(|i| record! {"id" => format!("d{i}"), "n" => i})
                .collect(),
        )
        .await
        .unwrap();
    }
    assert_eq!(db.count("big", None).await.unwrap(), 0);

    // A failed statement inside a bulk insert: none of its rows land.
    let mut rows: Vec<_> = (0..10)
        .map(|i| record! {"id" => format!("b{i}"), "n" => i})
        .collect();
    rows.push(record! {"id" => "b3", "n" => 3});
    let error = db.insert_many("big", rows).await.unwrap_err();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::UniqueViolation),
        "{error}"
    );
    assert_eq!(db.count("big", None).await.unwrap(), 0);
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

#[tokio::test]
async fn awkward_values_and_names_round_trip_byte_identical() {
    let ns = fresh_namespace("awkward");
    let engine = engine_in(&ns, |_| {}).await;
    let object = "odd `object` \"name\"; DROP TABLE x --";
    let text_field = "a `quoted` column's name";
    engine
        .register(
            ObjectSchema::new(object)
                .field(Field::new(text_field, "text"))
                .field(Field::new("bytes", "binary"))
                .field(Field::new("doc", "json")),
        )
        .await
        .unwrap();
    let texts = [
        "it's",
        "\"double\"",
        "back\\slash \\\\ \\n",
        "%_ like metacharacters !\\",
        "'); DROP TABLE big; --",
        "Zürich 🚀 日本語 \u{200b}",
        "  padded  ",
        "padded",
        "",
    ];
    let bytes: Vec<u8> = (0..=255).collect();
    let db = engine.default_session();
    for (i, t) in texts.iter().enumerate() {
        db.insert(
            object,
            record! {
                "id" => format!("r{i}"),
                text_field => *t,
                "bytes" => Value::Bytes(bytes.clone()),
                "doc" => Value::json(serde_json::json!({"k'": t, "n": [1, "\\"]})),
            },
        )
        .await
        .unwrap();
    }
    for (i, t) in texts.iter().enumerate() {
        let rows = db
            .find(&Query::new(object).filter(field(text_field).eq(*t)))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "exactly one row equals {t:?}");
        let row = &rows[0];
        assert_eq!(row["id"], Value::String(format!("r{i}")));
        assert_eq!(row[text_field], Value::String((*t).to_owned()));
        assert_eq!(row["bytes"], Value::Bytes(bytes.clone()));
        assert_eq!(
            row["doc"],
            Value::json(serde_json::json!({"k'": t, "n": [1, "\\"]}))
        );
    }
    let hits = db
        .find(&Query::new(object).filter(field(text_field).contains("%_ like")))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    let mut admin = admin().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1",
    )
    .bind(database_name(&ns))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(tables.contains(&object.to_owned()), "{tables:?}");
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

/// The committed row count of `ns`'s `big`, read on a connection of its own.
async fn committed_rows(ns: &str) -> i64 {
    let mut admin = admin().await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.`big`",
        quoted(&database_name(ns))
    )))
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

/// The InnoDB transactions open on connections to `ns`'s database, as
/// `SHOW ENGINE INNODB STATUS` lists them (one block of text each).
///
/// Not `information_schema.innodb_trx`: InnoDB serves it from a cache it
/// refreshes only when the table was last read more than 0.1 s before, so
/// tests polling it concurrently kept it stale for good, and it showed a
/// transaction committed 30 s earlier as running (this status listed none).
async fn open_transactions(ns: &str) -> Vec<String> {
    let mut admin = admin().await;
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST WHERE DB = ?",
    )
    .bind(database_name(ns))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let (_, _, status): (String, String, String) = sqlx::query_as("SHOW ENGINE INNODB STATUS")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    status
        .split("\n---TRANSACTION ")
        .skip(1)
        .map(|block| block.split("\n----").next().unwrap_or_default())
        .filter(|block| {
            !block
                .lines()
                .next()
                .unwrap_or_default()
                .contains("not started")
        })
        .filter(|block| {
            block
                // "MariaDB thread id N" (MySQL: "MySQL thread id N").
                .split(" thread id ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|id| id.parse::<u64>().ok())
                .is_some_and(|id| ids.contains(&id))
        })
        .map(str::to_owned)
        .collect()
}

/// Waits (up to 30 s) until no connection to `ns`'s database is inside
/// a transaction. A cancelled write's connection is closed at once, but the
/// server finishes the statement in flight before it rolls back.
async fn until_no_open_transactions(ns: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = open_transactions(ns).await;
        if open.is_empty() {
            return;
        }
        // Everything that tells whose transaction it is: its age, state,
        // rows changed and locked, the session's thread and statement.
        assert!(
            Instant::now() < deadline,
            "{what}: {} transactions still open 30 s later:\n{}",
            open.len(),
            open.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The check the tests below rely on sees a transaction open on an idle
/// pooled connection, and sees it end.
#[tokio::test]
async fn an_open_transaction_is_seen_until_it_commits() {
    let ns = fresh_namespace("seen");
    let engine = engine_in(&ns, |_| {}).await;
    big_table(&engine, &ns, 0).await;
    let db = engine.default_session();
    let tx = db
        .begin("default", IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    tx.insert("big", record! {"id" => "a", "n" => 1})
        .await
        .unwrap();
    let open = open_transactions(&ns).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].contains("ACTIVE"), "{open:?}");
    tx.commit().await.unwrap();
    until_no_open_transactions(&ns, "after the commit").await;
    assert_eq!(committed_rows(&ns).await, 1);
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

fn bulk(prefix: &str, n: usize) -> Vec<objectql::Record> {
    (0..n)
        .map(|i| record! {"id" => format!("{prefix}{i}"), "n" => i64::try_from(i).unwrap(), "pad" => "x"})
        .collect()
}

/// Issue 13 §1: a bulk insert cancelled outside a transaction (its future
/// dropped) is all or nothing, and its connection returns clean. It used to
/// leave a raw `BEGIN` open on the pooled connection: the next insert was
/// acknowledged but invisible, and the next bulk write committed the
/// partial batch.
#[tokio::test]
async fn a_cancelled_bulk_insert_is_all_or_nothing_and_leaves_the_connection_clean() {
    let ns = fresh_namespace("cancelbulk");
    let engine = engine_in(&ns, |o| o.max_connections = 1).await;
    big_table(&engine, &ns, 0).await;
    let db = engine.default_session();
    let rows = bulk("r", 50_000);
    let mut cancelled = 0;
    for (i, cut) in [2_u64, 10, 30, 60, 100, 150, 250, 400, 700]
        .into_iter()
        .enumerate()
    {
        let outcome = tokio::time::timeout(
            Duration::from_millis(cut),
            db.insert_many("big", rows.clone()),
        )
        .await;
        let landed = committed_rows(&ns).await;
        match outcome {
            Err(_) => {
                cancelled += 1;
                assert!(
                    landed == 0 || landed == 50_000,
                    "cut at {cut} ms: {landed} of 50,000 rows committed"
                );
            }
            Ok(r) => {
                r.unwrap();
                assert_eq!(landed, 50_000);
            }
        }
        db.insert("big", record! {"id" => format!("probe{i}"), "n" => -1})
            .await
            .unwrap();
        assert_eq!(
            committed_rows(&ns).await,
            landed + 1,
            "cut at {cut} ms: an acknowledged insert is not committed"
        );
        until_no_open_transactions(&ns, &format!("cut at {cut} ms")).await;
        db.delete_many("big", objectql::Filter::always())
            .await
            .unwrap();
    }
    assert!(
        cancelled >= 3,
        "only {cancelled} of 9 inserts were cut short"
    );
    let tx = db
        .begin("default", IsolationLevel::Serializable)
        .await
        .unwrap();
    tx.insert("big", record! {"id" => "after", "n" => 1})
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(committed_rows(&ns).await, 1);
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

/// Issue 13 §2: a bulk insert cancelled inside a transaction commits none
/// of its rows: cut midway, it rolls the transaction back and `commit`
/// fails with `TransactionClosed`. It used to leave its savepoint open, so
/// `commit` returned Ok and kept the first chunks.
#[tokio::test]
async fn a_bulk_insert_cancelled_inside_a_transaction_commits_none_of_its_rows() {
    let ns = fresh_namespace("cancelintx");
    let engine = engine_in(&ns, |o| o.max_connections = 1).await;
    big_table(&engine, &ns, 0).await;
    let db = engine.default_session();
    let rows = bulk("r", 50_000);
    let mut cancelled = 0;
    for cut in [2_u64, 10, 30, 60, 100, 150, 250, 400, 700] {
        let tx = db
            .begin("default", IsolationLevel::ReadCommitted)
            .await
            .unwrap();
        tx.insert_many("big", bulk("kept", 10)).await.unwrap();
        let outcome = tokio::time::timeout(
            Duration::from_millis(cut),
            tx.insert_many("big", rows.clone()),
        )
        .await;
        let committed = tx.commit().await;
        let landed = committed_rows(&ns).await;
        let what = format!(
            "cut at {cut} ms (insert {}, commit {:?}, {landed} rows landed)",
            if outcome.is_ok() {
                "returned"
            } else {
                "cut off"
            },
            committed.as_ref().map_err(ToString::to_string)
        );
        match (outcome, committed) {
            (Ok(r), Ok(())) => {
                r.unwrap();
                assert_eq!(landed, 50_010, "cut at {cut} ms");
            }
            (Err(_), Ok(())) => {
                cancelled += 1;
                assert_eq!(
                    landed, 10,
                    "cut at {cut} ms: commit kept rows of a cancelled insert"
                );
            }
            (Err(_), Err(e)) => {
                cancelled += 1;
                assert_eq!(
                    e.driver_kind(),
                    Some(DriverErrorKind::TransactionClosed),
                    "{e}"
                );
                assert_eq!(landed, 0, "cut at {cut} ms: a failed commit kept rows");
            }
            (Ok(_), Err(e)) => {
                panic!("cut at {cut} ms: the insert returned but commit failed: {e}")
            }
        }
        until_no_open_transactions(&ns, &what).await;
        db.delete_many("big", objectql::Filter::always())
            .await
            .unwrap();
    }
    assert!(
        cancelled >= 3,
        "only {cancelled} of 9 inserts were cut short"
    );
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

/// A small seeded generator (xorshift64*): reproducible cut points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Issue 13, kept fixed: 500 writes, begins, commits and reads cut off at
/// random points (seeded: `OBJECTQL_FAULT_SEED` replays a run). Afterwards
/// each batch is all or nothing, InnoDB lists no open transaction,
/// the pool is whole and the next query answers right.
#[tokio::test]
async fn random_cancellations_leave_no_partial_writes_and_no_open_transactions() {
    let seed = std::env::var("OBJECTQL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0b_1ec7_u64);
    let mut rng = Rng(seed | 1);
    let ns = fresh_namespace("random");
    let engine = engine_in(&ns, |o| o.max_connections = 2).await;
    big_table(&engine, &ns, 0).await;
    let db = engine.default_session();
    let mut batches: Vec<(String, i64)> = Vec::new();
    for i in 0..500 {
        let tag = format!("b{i}-");
        let size = 1 + usize::try_from(rng.below(3_000)).unwrap();
        let cut = Duration::from_micros(rng.below(8_000));
        let op = rng.below(4);
        let work = async {
            match op {
                0 => db.insert_many("big", bulk(&tag, size)).await.map(drop),
                1 => {
                    let tx = db.begin("default", IsolationLevel::ReadCommitted).await?;
                    tx.insert_many("big", bulk(&tag, size)).await?;
                    tx.commit().await
                }
                2 => db
                    .update_many("big", field("n").lt(50), record! {"pad" => format!("u{i}")})
                    .await
                    .map(drop),
                _ => db.find(&Query::new("big").limit(100)).await.map(drop),
            }
        };
        let _ = tokio::time::timeout(cut, work).await;
        if op < 2 {
            batches.push((tag, i64::try_from(size).unwrap()));
        }
    }
    until_no_open_transactions(&ns, &format!("seed {seed}")).await;
    let mut admin = admin().await;
    for (tag, size) in &batches {
        let landed: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {}.`big` WHERE `id` LIKE ?",
            quoted(&database_name(&ns))
        )))
        .bind(format!("{tag}%"))
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(
            landed == 0 || landed == *size,
            "seed {seed}: batch {tag} left {landed} of {size} rows"
        );
    }
    let total = committed_rows(&ns).await;
    assert_eq!(
        i64::try_from(db.count("big", None).await.unwrap()).unwrap(),
        total,
        "seed {seed}: the next query answers right"
    );
    let driver = engine.datasource("default").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = driver.pool_stats();
        if stats.active == 0 && stats.waiting == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: a slot leaked: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.close().await.unwrap();
    drop_database(&ns).await;
}

/// Issue 13 §8, kept fixed: 1,000 tasks aborted at random points (0–2 ms:
/// inside `begin`, mid-`find`, mid-insert, before `commit`) on a pool of
/// one connection. Once sqlx-mysql's cancel-safety left a slot counted as
/// active forever (every later call a `PoolTimeout`), or a transaction open
/// on an idle pooled connection (later acknowledged inserts lost). After
/// the aborts the pool is whole, InnoDB lists no open transaction,
/// and an acknowledged insert is there for a new engine to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_aborted_tasks_leave_the_pool_whole_and_no_transaction_open() {
    let seed = std::env::var("OBJECTQL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0ab0_27ed_u64);
    let mut rng = Rng(seed | 1);
    let ns = fresh_namespace("aborts");
    let engine = engine_in(&ns, |o| {
        o.max_connections = 1;
        o.acquire_timeout = Duration::from_secs(5);
    })
    .await;
    big_table(&engine, &ns, 2_000).await;
    for i in 0..1_000 {
        let db = engine.default_session();
        let op = rng.below(4);
        let task = tokio::spawn(async move {
            match op {
                0 => db.find(&Query::new("big").limit(500)).await.map(drop),
                1 => db
                    .begin("default", IsolationLevel::ReadCommitted)
                    .await
                    .map(drop),
                2 => {
                    let tx = db.begin("default", IsolationLevel::ReadCommitted).await?;
                    tx.insert("big", record! {"id" => format!("a{i}"), "n" => -1})
                        .await?;
                    tx.commit().await
                }
                _ => db
                    .insert("big", record! {"id" => format!("s{i}"), "n" => -2})
                    .await
                    .map(drop),
            }
        });
        tokio::time::sleep(Duration::from_micros(rng.below(2_000))).await;
        task.abort();
        // Failures are fine (a call may wait on the one connection); a
        // panic in the task is not.
        if let Err(e) = task.await {
            assert!(e.is_cancelled(), "seed {seed}: task {i} failed: {e}");
        }
    }
    let driver = engine.datasource("default").unwrap();
    objectql_conformance::faults::until_pool_whole(driver.as_ref())
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    until_no_open_transactions(&ns, &format!("seed {seed}")).await;
    // The one connection is clean: an acknowledged insert is committed.
    let db = engine.default_session();
    db.insert("big", record! {"id" => "after", "n" => -3})
        .await
        .unwrap();
    engine.close().await.unwrap();
    let mut admin = admin().await;
    let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.`big` WHERE `id` = 'after'",
        quoted(&database_name(&ns))
    )))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(found, 1, "seed {seed}: an acknowledged insert was lost");
    drop_database(&ns).await;
}
