#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Peak memory of streaming 5,000,000 rows from PostgreSQL through
//! `Session::find_stream`.
//!
//! Fills `item(id text pk, n integer, price currency(12,2), category text,
//! created datetime)` with 5M rows server-side (`INSERT … SELECT
//! generate_series`), streams every row through `Session::find_stream`
//! (counting them, keeping none), and samples this process's resident set
//! (`VmRSS`, and its peak `VmHWM`, from `/proc/self/status`) before the
//! query, every 500,000 rows and at the end. Then, for reference, the same
//! with raw sqlx (`query(..).fetch(..)`, every column decoded) running the
//! same SQL, after resetting the peak (`/proc/self/clear_refs`).
//!
//! ```sh
//! cargo run --release -p objectql-benches --example stream_memory
//! ```
//!
//! The server: `OBJECTQL_BENCH_POSTGRES_URL`, else `OBJECTQL_TEST_POSTGRES_URL`,
//! else `postgres://postgres@127.0.0.1:5432/postgres`; the run works in a
//! schema of its own (`oql_mem_<pid>`), dropped at the end.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use objectql::{Engine, PostgresDriver, PostgresOptions, Query};
use objectql_benches::runtime;
use objectql_driver_postgres::sqlx::{self, AssertSqlSafe, Connection, Row};
use objectql_planner::sql::{PostgresDialect, SqlCompiler};
use objectql_query_ast::{ResolveContext, validate_query};
use rust_decimal::Decimal;
use serde_json::json;

/// Rows streamed.
const ROWS: u64 = 5_000_000;
/// Rows between two samples.
const EVERY: u64 = 500_000;

/// `(VmRSS, VmHWM)` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets `VmHWM` to the current resident set (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> String {
    format!("{}.{}", kib / 1024, (kib % 1024) * 10 / 1024)
}

/// One line of the table.
struct Sample {
    at: String,
    rows: u64,
    rss: u64,
    hwm: u64,
    secs: f64,
}

fn sample(at: &str, rows: u64, start: Instant) -> Sample {
    let (rss, hwm) = rss_kib();
    Sample {
        at: at.to_owned(),
        rows,
        rss,
        hwm,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn print_table(title: &str, samples: &[Sample]) {
    println!("\n{title}\n");
    println!("| point | rows | VmRSS (MiB) | VmHWM (MiB) | elapsed (s) |");
    println!("|---|---:|---:|---:|---:|");
    for s in samples {
        println!(
            "| {} | {} | {} | {} | {:.1} |",
            s.at,
            s.rows,
            mib(s.rss),
            mib(s.hwm),
            s.secs
        );
    }
}

async fn admin(url: &str, sql: String) {
    let mut conn = match sqlx::PgConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {url} ({e}); start a server there, or set \
             OBJECTQL_BENCH_POSTGRES_URL (or OBJECTQL_TEST_POSTGRES_URL)"
        ),
    };
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Drops the run's schema when dropped (also after a panic).
struct Scratch {
    url: String,
    schema: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        runtime().block_on(admin(&self.url, sql));
        eprintln!("stream_memory: dropped schema {}", self.schema);
    }
}

fn main() {
    let url = objectql_benches::postgres_url();
    let schema = format!("oql_mem_{}", std::process::id());
    runtime().block_on(admin(
        &url,
        format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\""),
    ));
    let scratch = Scratch { url, schema };
    let rt = runtime();
    rt.block_on(run(&scratch));
    drop(rt);
    drop(scratch);
}

async fn run(scratch: &Scratch) {
    let mut options = PostgresOptions::from_url(&scratch.url).unwrap();
    options.schema = Some(scratch.schema.clone());
    let driver = Arc::new(PostgresDriver::open(options).await.unwrap());
    let dialect = PostgresDialect {
        version: driver.version(),
    };
    let engine = Engine::new();
    engine.add_driver("default", driver.clone()).unwrap();
    engine
        .register_json(&json!({
            "name": "item",
            "fields": {
                "id": {"type": "text"},
                "n": {"type": "integer"},
                "price": {"type": "currency", "precision": 12, "scale": 2},
                "category": {"type": "text"},
                "created": {"type": "datetime"}
            }
        }))
        .await
        .unwrap();

    let t = Instant::now();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO item (id, n, price, category, created) \
         SELECT 'item-' || lpad(i::text, 7, '0'), (i * 7919) % 1000000, \
                ((i * 104729) % 10000000) / 100.0, 'c' || (i % 20), \
                timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' \
         FROM generate_series(0::bigint, {}) AS i; ANALYZE item",
        ROWS - 1
    )))
    .execute(driver.pool())
    .await
    .unwrap();
    eprintln!(
        "stream_memory: filled {ROWS} rows server-side in {:.1?} (PostgreSQL {}.{})",
        t.elapsed(),
        dialect.version.0,
        dialect.version.1
    );

    let db = engine.default_session();
    let query = Query::new("item");

    // objectql: Session::find_stream, one Record per row, none kept.
    let start = Instant::now();
    let mut ours = vec![sample("start (before the query)", 0, start)];
    let mut stream = db.find_stream(&query).await.unwrap();
    let mut n = 0u64;
    while let Some(r) = stream.next().await {
        black_box(r.unwrap());
        n += 1;
        if n.is_multiple_of(EVERY) {
            ours.push(sample("", n, start));
        }
    }
    drop(stream);
    ours.push(sample("end (stream dropped)", n, start));
    assert_eq!(n, ROWS);
    print_table(
        &format!("objectql `Session::find_stream` over {ROWS} rows (PostgreSQL driver)"),
        &ours,
    );

    // Reference: raw sqlx on the same SQL, every column decoded.
    let catalog = engine.catalog().unwrap();
    let typed = validate_query(&query, &catalog, &ResolveContext::now()).unwrap();
    let st = SqlCompiler::new(&dialect, &catalog).select(&typed).unwrap();
    assert!(st.params.is_empty());
    let reset = reset_peak();
    let start = Instant::now();
    let mut theirs = vec![sample(
        if reset {
            "start (peak reset)"
        } else {
            "start (peak NOT reset)"
        },
        0,
        start,
    )];
    {
        let mut rows = sqlx::query(AssertSqlSafe(st.sql.clone())).fetch(driver.pool());
        let mut n = 0u64;
        while let Some(row) = rows.next().await {
            let row = row.unwrap();
            let item: (String, i64, Decimal, String, DateTime<Utc>) = (
                row.try_get(0).unwrap(),
                row.try_get(1).unwrap(),
                row.try_get(2).unwrap(),
                row.try_get(3).unwrap(),
                row.try_get(4).unwrap(),
            );
            black_box(item);
            n += 1;
            if n.is_multiple_of(EVERY) {
                theirs.push(sample("", n, start));
            }
        }
        assert_eq!(n, ROWS);
        theirs.push(sample("end (stream dropped)", n, start));
    }
    print_table(
        &format!("raw sqlx `query(..).fetch(..)` over the same {ROWS} rows, same SQL"),
        &theirs,
    );
    println!("\nSQL: {}", st.sql);
    engine.close().await.unwrap();
}
