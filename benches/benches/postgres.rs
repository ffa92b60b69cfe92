#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The PostgreSQL driver against raw sqlx, measured in the same run.
//!
//! - `postgres_read`: over 100,000 rows, through the `Engine`
//!   (`Session::find_one` / `Session::find_stream` / `Session::aggregate`)
//!   against sqlx (the driver's own re-export, so the versions match)
//!   running the same SQL text with the same parameters and decoding every
//!   column into plain Rust values: a point lookup by primary key, a
//!   streaming read of every row (consumed row by row), and a group-by
//!   aggregate (`count`, `sum(price)` per `category`); and pages ordered by
//!   the primary key (the first 20 rows, and a keyset page from the middle)
//!   against the natural `ORDER BY "id" LIMIT 20` a user writes by hand.
//! - `postgres_insert`: 100,000 rows in one `Session::insert_many` call
//!   against sqlx running the same multi-row `INSERT … RETURNING`
//!   statements the compiler emits, chunked the same way, in one
//!   transaction.
//!
//! The server: `OBJECTQL_BENCH_POSTGRES_URL`, else
//! `OBJECTQL_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`.
//! Every run works in a schema of its own (`oql_bench_<pid>`), dropped at
//! the end. An unreachable server is a panic, never a skip.
//!
//! Run with `cargo bench -p objectql-benches --bench postgres`; see
//! `benches/README.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, SamplingMode};
use futures::{StreamExt, TryStreamExt};
use objectql::{
    AggFunction, Engine, ObjectSchema, PostgresDriver, PostgresOptions, Query, Record, Value, field,
};
use objectql_benches::{EPOCH_2024_MICROS, Lcg, runtime};
use objectql_driver_postgres::sqlx::postgres::{
    PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow,
};
use objectql_driver_postgres::sqlx::{self, AssertSqlSafe, Connection, Postgres, Row};
use objectql_planner::sql::{PostgresDialect, SqlCompiler, Statement};
use objectql_query_ast::{Catalog, ResolveContext, validate_query};
use rust_decimal::Decimal;
use serde_json::json;

/// Rows in the `postgres_read` table.
const READ_ROWS: usize = 100_000;
/// Rows inserted per `postgres_insert` iteration (one `insert_many` call).
const INSERT_ROWS: usize = 100_000;
/// Distinct values of `category` (`c0` … `c19`).
const CATEGORIES: u32 = 20;
/// Connections in each pool (the driver's default).
const POOL_SIZE: u32 = 10;

// ---------------------------------------------------------------------------
// The server and the run's schema
// ---------------------------------------------------------------------------

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One admin statement on a connection of its own.
async fn admin(url: &str, sql: String) {
    let mut conn = match sqlx::PgConnection::connect(url).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {url} ({e}); start a server there, or set \
             OBJECTQL_BENCH_POSTGRES_URL (or OBJECTQL_TEST_POSTGRES_URL) to a server \
             you can create schemas on"
        ),
    };
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The schema this run works in: created at the start, dropped (with
/// everything in it) when this value is dropped, also after a panic.
struct Scratch {
    url: String,
    schema: String,
}

impl Scratch {
    fn create() -> Self {
        let url = objectql_benches::postgres_url();
        let schema = format!("oql_bench_{}", std::process::id());
        runtime().block_on(admin(
            &url,
            format!(
                "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
                quoted(&schema)
            ),
        ));
        eprintln!("postgres: working in schema {schema} of {url}");
        Self { url, schema }
    }

    /// The driver's options: the server, this schema, the default pool.
    fn options(&self) -> PostgresOptions {
        let mut o = PostgresOptions::from_url(&self.url).unwrap();
        o.schema = Some(self.schema.clone());
        o.max_connections = POOL_SIZE;
        o
    }

    /// A plain sqlx pool on the same server and schema (the raw side).
    async fn raw_pool(&self) -> PgPool {
        let connect: PgConnectOptions = self.options().connect;
        let connect = connect.options([("search_path", quoted(&self.schema))]);
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(connect)
            .await
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(&self.schema));
        runtime().block_on(admin(&self.url, sql));
        eprintln!("postgres: dropped schema {}", self.schema);
    }
}

// ---------------------------------------------------------------------------
// Shared setup
// ---------------------------------------------------------------------------

/// `<name>(id text pk, n integer, price currency(12,2), category text,
/// created datetime)`: in PostgreSQL `text COLLATE "C"`, `bigint`,
/// `numeric(12,2)`, `text COLLATE "C"`, `timestamptz`.
fn item_schema_json(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "fields": {
            "id": {"type": "text"},
            "n": {"type": "integer"},
            "price": {"type": "currency", "precision": 12, "scale": 2},
            "category": {"type": "text"},
            "created": {"type": "datetime"}
        }
    })
}

/// One generated row, as plain Rust values (also what the raw side decodes into).
#[derive(Debug, Clone, PartialEq)]
struct Item {
    id: String,
    n: i64,
    price: Decimal,
    category: String,
    created: DateTime<Utc>,
}

/// The same rows as `sqlite.rs` (same LCG, same seed).
fn generate(len: usize) -> Vec<Item> {
    let mut rng = Lcg(42);
    let mut created = EPOCH_2024_MICROS;
    (0..len)
        .map(|i| {
            created += i64::from(rng.below(60_000_000)); // up to a minute apart
            Item {
                id: format!("item-{i:07}"),
                n: i64::from(rng.below(1_000_000)),
                price: Decimal::new(i64::from(rng.below(10_000_000)), 2),
                category: format!("c{}", rng.below(CATEGORIES)),
                created: DateTime::<Utc>::from_timestamp_micros(created).unwrap(),
            }
        })
        .collect()
}

fn record_of(item: &Item) -> Record {
    let mut r = Record::new();
    r.insert("id".into(), Value::from(item.id.as_str()));
    r.insert("n".into(), Value::from(item.n));
    r.insert("price".into(), Value::from(item.price));
    r.insert("category".into(), Value::from(item.category.as_str()));
    r.insert("created".into(), Value::from(item.created));
    r
}

/// A record read through objectql, as an [`Item`] (to compare both sides).
fn item_of(r: &Record) -> Item {
    let Value::Decimal(price) = &r["price"] else {
        panic!("price is not a decimal: {:?}", r["price"]);
    };
    let Value::DateTime(created) = &r["created"] else {
        panic!("created is not a datetime: {:?}", r["created"]);
    };
    assert_eq!(price.scale(), 2);
    Item {
        id: r["id"].as_str().unwrap().to_owned(),
        n: r["n"].as_i64().unwrap(),
        price: *price,
        category: r["category"].as_str().unwrap().to_owned(),
        created: *created,
    }
}

/// One `item` row decoded from sqlx into plain Rust values.
fn decode_item(row: &PgRow) -> Item {
    Item {
        id: row.try_get(0).unwrap(),
        n: row.try_get(1).unwrap(),
        price: row.try_get(2).unwrap(),
        category: row.try_get(3).unwrap(),
        created: row.try_get(4).unwrap(),
    }
}

/// An engine whose default datasource is the PostgreSQL driver over the
/// run's schema, with `object` registered (its table created), and the
/// dialect of that server.
async fn postgres_engine(scratch: &Scratch, object: &str) -> (Engine, PostgresDialect) {
    let driver = match PostgresDriver::open(scratch.options()).await {
        Ok(d) => d,
        Err(e) => panic!("cannot open the PostgreSQL driver on {}: {e}", scratch.url),
    };
    let dialect = PostgresDialect {
        version: driver.version(),
    };
    let engine = Engine::new();
    engine.add_driver("default", Arc::new(driver)).unwrap();
    engine
        .register_json(&item_schema_json(object))
        .await
        .unwrap();
    (engine, dialect)
}

/// The statement the session sends to the driver for `query`: validated,
/// planned against the PostgreSQL driver's capabilities (everything
/// pushed), compiled with the PostgreSQL dialect.
#[allow(clippy::trivially_copy_pass_by_ref)] // mirrors the sqlite bench helper.
fn compiled_select(engine: &Engine, dialect: PostgresDialect, query: &Query) -> Statement {
    let catalog = engine.catalog().unwrap();
    let schema = catalog.get(query.object.as_deref().unwrap()).unwrap();
    let driver = engine.datasource("default").unwrap();
    let typed = validate_query(query, &catalog, &ResolveContext::now()).unwrap();
    let classify = |c: &objectql_query_ast::Condition| driver.classify(schema, c);
    let planned = objectql_planner::plan(
        &typed,
        schema,
        driver.name(),
        driver.capabilities(),
        &classify,
    )
    .unwrap();
    assert!(
        planned.residual.is_none(),
        "PostgreSQL runs the whole query"
    );
    assert_eq!(
        planned.pushed, typed,
        "the pushed query is the validated one"
    );
    SqlCompiler::new(&dialect, &catalog).select(&typed).unwrap()
}

/// A parameter as a raw sqlx program holds it: a plain Rust value of the
/// type objectql binds (built once, outside the timing).
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
    Decimal(Decimal),
    DateTime(DateTime<Utc>),
    TextArray(Vec<String>),
}

fn raw_params(params: &[Value]) -> Vec<Param> {
    params
        .iter()
        .map(|v| match v {
            Value::String(s) => Param::Text(s.clone()),
            Value::Int(i) => Param::Int(*i),
            Value::Decimal(d) => Param::Decimal(*d),
            Value::DateTime(t) => Param::DateTime(*t),
            Value::Array(items) => Param::TextArray(
                items
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned())
                    .collect(),
            ),
            other => panic!("unexpected encoded parameter {other:?}"),
        })
        .collect()
}

/// `sql` (shared, like a `&'static str` in a program) with `params` bound
/// in order, by reference.
fn raw_query<'q>(
    sql: &Arc<str>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    let mut q = sqlx::query(AssertSqlSafe(Arc::clone(sql)));
    for p in params {
        q = match p {
            Param::Text(s) => q.bind(s.as_str()),
            Param::Int(i) => q.bind(*i),
            Param::Decimal(d) => q.bind(*d),
            Param::DateTime(t) => q.bind(*t),
            Param::TextArray(a) => q.bind(a.as_slice()),
        };
    }
    q
}

/// The output columns the compiler emitted must be `item`'s, in order (the
/// raw side decodes by position).
fn assert_item_columns(st: &Statement) {
    let names: Vec<&str> = st.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "n", "price", "category", "created"]);
}

// ---------------------------------------------------------------------------
// Paired, interleaved measurement (wall and this thread's CPU time)
// ---------------------------------------------------------------------------

/// Nanoseconds this thread has spent on a CPU, user and kernel
/// (`/proc/thread-self/schedstat`); 0 where that file is missing. The
/// current-thread runtime runs the whole client (sqlx's connections
/// included) on this thread; the server's time is not in it.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What one iteration cost.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall_ns: f64,
    cpu_ns: f64,
}

/// Runs `work` (`iters` iterations) and returns its cost per iteration.
async fn measured(iters: u32, work: impl Future<Output = ()>) -> Cost {
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    work.await;
    let cpu = thread_cpu_ns().saturating_sub(cpu);
    let n = f64::from(iters);
    Cost {
        wall_ns: t.elapsed().as_secs_f64() * 1e9 / n,
        // CPU nanoseconds of one batch stay far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        cpu_ns: cpu as f64 / n,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// A check on criterion's figures that machine drift cannot skew: `rounds`
/// rounds, each running objectql's side and the raw side once (alternating
/// which goes first); each returns its cost per iteration. Prints the
/// medians of wall time and of this thread's CPU time (the client's work:
/// the server's is the same on both sides by construction).
async fn paired<O, FO, R, FR>(label: &str, rounds: usize, mut ours: O, mut raw: R)
where
    O: FnMut() -> FO,
    FO: Future<Output = Cost>,
    R: FnMut() -> FR,
    FR: Future<Output = Cost>,
{
    let (mut o, mut r) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            o.push(ours().await);
            r.push(raw().await);
        } else {
            r.push(raw().await);
            o.push(ours().await);
        }
    }
    let wall = |v: &[Cost]| median(v.iter().map(|c| c.wall_ns).collect());
    let cpu = |v: &[Cost]| median(v.iter().map(|c| c.cpu_ns).collect());
    let (ow, rw, oc, rc) = (wall(&o), wall(&r), cpu(&o), cpu(&r));
    eprintln!(
        "paired {label}: objectql {} wall, {} client CPU | raw {} wall, {} client CPU | \
         wall ratio {:.2}x, extra client CPU {} per iteration ({rounds} interleaved rounds)",
        human(ow),
        human(oc),
        human(rw),
        human(rc),
        ow / rw,
        human(oc - rc),
    );
}

// ---------------------------------------------------------------------------
// postgres_read: point lookup, 100k-row stream, group-by aggregate
// ---------------------------------------------------------------------------

/// A raw point lookup: the one row, decoded.
async fn raw_point(pool: &PgPool, sql: &Arc<str>, params: &[Param]) -> Option<Item> {
    raw_query(sql, params)
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|row| decode_item(&row))
}

/// A raw streaming read: every row decoded as it arrives; returns the count.
async fn raw_stream(pool: &PgPool, sql: &Arc<str>, params: &[Param]) -> usize {
    let mut rows = raw_query(sql, params).fetch(pool);
    let mut n = 0;
    while let Some(row) = rows.next().await {
        black_box(decode_item(&row.unwrap()));
        n += 1;
    }
    n
}

/// objectql's streaming read: every record as it arrives; returns the count.
async fn ours_stream(db: &objectql::Session, q: &Query) -> usize {
    let mut rows = db.find_stream(q).await.unwrap();
    let mut n = 0;
    while let Some(r) = rows.next().await {
        black_box(r.unwrap());
        n += 1;
    }
    n
}

/// A raw group-by: `(category, count, sum)` per group.
async fn raw_group(pool: &PgPool, sql: &Arc<str>, params: &[Param]) -> Vec<(String, i64, Decimal)> {
    raw_query(sql, params)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get(0).unwrap(),
                row.try_get(1).unwrap(),
                row.try_get(2).unwrap(),
            )
        })
        .collect()
}

fn postgres_read(c: &mut Criterion, scratch: &Scratch) {
    let rt = runtime();
    let items = generate(READ_ROWS);
    let (engine, dialect) = rt.block_on(postgres_engine(scratch, "item"));
    let db = engine.default_session();
    let t = Instant::now();
    rt.block_on(db.insert_many("item", items.iter().map(record_of).collect()))
        .unwrap();
    rt.block_on(admin(
        &scratch.url,
        format!("VACUUM ANALYZE {}.\"item\"", quoted(&scratch.schema)),
    ));
    eprintln!(
        "postgres_read: loaded {READ_ROWS} rows (one insert_many) in {:.2?}, PostgreSQL {}.{}",
        t.elapsed(),
        dialect.version.0,
        dialect.version.1
    );
    let raw = rt.block_on(scratch.raw_pool());

    // (a) point lookup: `find_one` is the query with `limit 1`.
    let key = items[READ_ROWS * 2 / 3].id.clone();
    let q_point = Query::new("item").filter(field("id").eq(key.as_str()));
    let st_point = compiled_select(&engine, dialect, &q_point.clone().limit(1));
    // (b) stream: every row.
    let q_scan = Query::new("item");
    let st_scan = compiled_select(&engine, dialect, &q_scan);
    // (c) group by a text column with count and sum.
    let q_group = Query::new("item")
        .group_by("category")
        .count_as("count")
        .agg(AggFunction::Sum, "price", "total");
    let st_group = compiled_select(&engine, dialect, &q_group);
    assert_item_columns(&st_point);
    assert_item_columns(&st_scan);
    let group_cols: Vec<&str> = st_group.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(group_cols, ["category", "count", "total"]);
    for (name, st) in [
        ("point lookup", &st_point),
        ("stream", &st_scan),
        ("group by", &st_group),
    ] {
        eprintln!("postgres_read: {name} SQL: {} {:?}", st.sql, st.params);
    }
    let sql_point: Arc<str> = Arc::from(st_point.sql.as_str());
    let sql_scan: Arc<str> = Arc::from(st_scan.sql.as_str());
    let sql_group: Arc<str> = Arc::from(st_group.sql.as_str());
    let p_point = raw_params(&st_point.params);
    let p_scan = raw_params(&st_scan.params);
    let p_group = raw_params(&st_group.params);

    // Both sides must give the same rows.
    rt.block_on(async {
        let ours = db.find_one(&q_point).await.unwrap().unwrap();
        let theirs = raw_point(&raw, &sql_point, &p_point).await.unwrap();
        assert_eq!(item_of(&ours), theirs);
        assert_eq!(theirs, items[READ_ROWS * 2 / 3]);

        let mut ours: Vec<Item> = db
            .find_stream(&q_scan)
            .await
            .unwrap()
            .map(|r| item_of(&r.unwrap()))
            .collect()
            .await;
        let mut theirs: Vec<Item> = raw_query(&sql_scan, &p_scan)
            .fetch(&raw)
            .map(|r| decode_item(&r.unwrap()))
            .collect()
            .await;
        assert_eq!(ours.len(), READ_ROWS);
        assert_eq!(ours, theirs);
        ours.sort_by(|a, b| a.id.cmp(&b.id));
        theirs.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(theirs, items);
        assert_eq!(ours, items);
        assert_eq!(ours_stream(&db, &q_scan).await, READ_ROWS);
        assert_eq!(raw_stream(&raw, &sql_scan, &p_scan).await, READ_ROWS);

        let mut ours: Vec<(String, i64, Decimal)> = db
            .aggregate(&q_group)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let Value::Decimal(total) = &r["total"] else {
                    panic!("total is not a decimal: {:?}", r["total"]);
                };
                (
                    r["category"].as_str().unwrap().to_owned(),
                    r["count"].as_i64().unwrap(),
                    *total,
                )
            })
            .collect();
        let mut theirs = raw_group(&raw, &sql_group, &p_group).await;
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
        assert_eq!(theirs.len(), CATEGORIES as usize);
        let mut expected: Vec<(String, i64, Decimal)> = Vec::new();
        for it in &items {
            match expected.iter_mut().find(|(c, _, _)| *c == it.category) {
                Some(g) => {
                    g.1 += 1;
                    g.2 += it.price;
                }
                None => expected.push((it.category.clone(), 1, it.price)),
            }
        }
        expected.sort();
        assert_eq!(theirs, expected);
    });

    let mut g = c.benchmark_group("postgres_read");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("point_lookup/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find_one(black_box(&q_point)).await.unwrap().unwrap() });
    });
    g.bench_function("point_lookup/raw", |b| {
        b.to_async(&rt).iter(|| async {
            raw_point(&raw, black_box(&sql_point), &p_point)
                .await
                .unwrap()
        });
    });

    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("stream_100k/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(ours_stream(&db, black_box(&q_scan)).await, READ_ROWS) });
    });
    g.bench_function("stream_100k/raw", |b| {
        b.to_async(&rt).iter(|| async {
            assert_eq!(
                raw_stream(&raw, black_box(&sql_scan), &p_scan).await,
                READ_ROWS
            );
        });
    });

    // (d) ordered pages by the primary key (issue 14 §5): the first page
    // and a keyset page from the middle, against the natural SQL a user
    // writes by hand (`ORDER BY id LIMIT 20`, `WHERE id > $1`).
    let middle = items[READ_ROWS / 2].id.clone();
    let q_first = Query::new("item").asc("id").limit(20);
    let q_keyset = Query::new("item")
        .asc("id")
        .limit(20)
        .after(objectql::Cursor {
            after: [("id".to_owned(), Value::from(middle.as_str()))]
                .into_iter()
                .collect(),
        });
    let natural = format!(
        "SELECT \"id\", \"n\", \"price\", \"category\", \"created\" FROM {}.\"item\"",
        quoted(&scratch.schema)
    );
    let sql_first: Arc<str> = Arc::from(format!("{natural} ORDER BY \"id\" LIMIT 20").as_str());
    let sql_keyset: Arc<str> =
        Arc::from(format!("{natural} WHERE \"id\" > $1 ORDER BY \"id\" LIMIT 20").as_str());
    let p_first: Vec<Param> = Vec::new();
    let p_keyset = vec![Param::Text(middle.clone())];
    let raw_page = |sql: Arc<str>, params: Vec<Param>| {
        let raw = raw.clone();
        async move {
            raw_query(&sql, &params)
                .fetch_all(&raw)
                .await
                .unwrap()
                .iter()
                .map(decode_item)
                .collect::<Vec<Item>>()
        }
    };
    rt.block_on(async {
        for (q, sql, params, from) in [
            (&q_first, &sql_first, &p_first, 0),
            (&q_keyset, &sql_keyset, &p_keyset, READ_ROWS / 2 + 1),
        ] {
            let ours: Vec<Item> = db.find(q).await.unwrap().iter().map(item_of).collect();
            let theirs = raw_page(Arc::clone(sql), params.clone()).await;
            assert_eq!(ours, theirs);
            let mut sorted = items.clone();
            sorted.sort_by(|a, b| a.id.cmp(&b.id));
            assert_eq!(theirs, sorted[from..from + 20]);
        }
    });
    g.sample_size(50).sampling_mode(SamplingMode::Auto);
    g.bench_function("first_page/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_first)).await.unwrap() });
    });
    g.bench_function("first_page/raw", |b| {
        b.to_async(&rt)
            .iter(|| raw_page(Arc::clone(&sql_first), p_first.clone()));
    });
    g.bench_function("keyset_page/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_keyset)).await.unwrap() });
    });
    g.bench_function("keyset_page/raw", |b| {
        b.to_async(&rt)
            .iter(|| raw_page(Arc::clone(&sql_keyset), p_keyset.clone()));
    });

    g.sample_size(30).sampling_mode(SamplingMode::Auto);
    g.bench_function("group_by/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.aggregate(black_box(&q_group)).await.unwrap() });
    });
    g.bench_function("group_by/raw", |b| {
        b.to_async(&rt)
            .iter(|| async { raw_group(&raw, black_box(&sql_group), &p_group).await });
    });
    g.finish();

    rt.block_on(async {
        const LOOKUPS: u32 = 200;
        const GROUPS: u32 = 5;
        paired(
            "postgres_read/point_lookup",
            21,
            || {
                measured(LOOKUPS, async {
                    for _ in 0..LOOKUPS {
                        black_box(db.find_one(&q_point).await.unwrap().unwrap());
                    }
                })
            },
            || {
                measured(LOOKUPS, async {
                    for _ in 0..LOOKUPS {
                        black_box(raw_point(&raw, &sql_point, &p_point).await.unwrap());
                    }
                })
            },
        )
        .await;
        paired(
            "postgres_read/stream_100k",
            11,
            || {
                measured(1, async {
                    assert_eq!(ours_stream(&db, &q_scan).await, READ_ROWS);
                })
            },
            || {
                measured(1, async {
                    assert_eq!(raw_stream(&raw, &sql_scan, &p_scan).await, READ_ROWS);
                })
            },
        )
        .await;
        paired(
            "postgres_read/group_by",
            11,
            || {
                measured(GROUPS, async {
                    for _ in 0..GROUPS {
                        black_box(db.aggregate(&q_group).await.unwrap());
                    }
                })
            },
            || {
                measured(GROUPS, async {
                    for _ in 0..GROUPS {
                        black_box(raw_group(&raw, &sql_group, &p_group).await);
                    }
                })
            },
        )
        .await;
        raw.close().await;
        engine.close().await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// postgres_insert: 100,000 rows in one insert_many call
// ---------------------------------------------------------------------------

/// The raw side of one bulk insert: the compiler's statements, in one
/// transaction; every returned row is read and decoded, as the driver
/// does. Returns the rows returned.
async fn raw_insert(pool: &PgPool, statements: &[(Arc<str>, Vec<Param>)]) -> usize {
    let mut tx = pool.begin().await.unwrap();
    let mut returned = 0;
    for (sql, params) in statements {
        let mut rows = raw_query(sql, params).fetch(&mut *tx);
        while let Some(row) = rows.try_next().await.unwrap() {
            black_box(decode_item(&row));
            returned += 1;
        }
    }
    tx.commit().await.unwrap();
    returned
}

async fn truncate(pool: &PgPool) {
    sqlx::raw_sql("TRUNCATE item_insert")
        .execute(pool)
        .await
        .unwrap();
}

async fn count(pool: &PgPool) -> usize {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM item_insert")
        .fetch_one(pool)
        .await
        .unwrap();
    usize::try_from(n).unwrap()
}

fn postgres_insert(c: &mut Criterion, scratch: &Scratch) {
    let rt = runtime();
    let items = generate(INSERT_ROWS);
    let records: Vec<Record> = items.iter().map(record_of).collect();
    let (engine, dialect) = rt.block_on(postgres_engine(scratch, "item_insert"));
    let db = engine.default_session();
    let raw = rt.block_on(scratch.raw_pool());

    // The statements the driver runs (the session validates the records
    // first; the validated records are what the driver compiles).
    let catalog: Arc<Catalog> = engine.catalog().unwrap();
    let schema: ObjectSchema = catalog.get("item_insert").unwrap().clone();
    let typed: Vec<Record> = records
        .iter()
        .map(|r| {
            objectql_query_ast::validate_record(
                r.clone(),
                &schema,
                objectql_query_ast::WriteMode::Insert,
                &objectql_query_ast::Path::root("rows"),
            )
            .unwrap()
        })
        .collect();
    let statements: Vec<(Arc<str>, Vec<Param>)> = SqlCompiler::new(&dialect, &catalog)
        .insert("item_insert", &typed)
        .unwrap()
        .into_iter()
        .map(|st| {
            assert_item_columns(&st);
            (Arc::from(st.sql.as_str()), raw_params(&st.params))
        })
        .collect();
    drop(typed);
    eprintln!(
        "postgres_insert: {INSERT_ROWS} rows in one insert_many = {} INSERT … RETURNING statements \
         ({} rows in the first) in one transaction",
        statements.len(),
        statements[0].1.len() / 5,
    );

    let scan = Query::new("item_insert").asc("id");
    // Both sides must write the same rows.
    rt.block_on(async {
        truncate(&raw).await;
        let written = db
            .insert_many("item_insert", records.clone())
            .await
            .unwrap();
        assert_eq!(written.len(), INSERT_ROWS);
        assert_eq!(count(&raw).await, INSERT_ROWS);
        let ours: Vec<Item> = db.find(&scan).await.unwrap().iter().map(item_of).collect();
        assert_eq!(ours, items);

        truncate(&raw).await;
        assert_eq!(raw_insert(&raw, &statements).await, INSERT_ROWS);
        let theirs: Vec<Item> = db.find(&scan).await.unwrap().iter().map(item_of).collect();
        assert_eq!(theirs, items);
    });

    let mut g = c.benchmark_group("postgres_insert");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    // Every iteration starts from an empty table (`TRUNCATE`, untimed);
    // objectql's records are cloned outside the timing too.
    g.bench_function("insert_100k/objectql", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (db, raw, records) = (&db, &raw, &records);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    truncate(raw).await;
                    let batch = records.clone();
                    let t = Instant::now();
                    let written = db.insert_many("item_insert", batch).await.unwrap();
                    drop(black_box(written));
                    total += t.elapsed();
                }
                total
            }
        });
    });
    g.bench_function("insert_100k/raw", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (raw, statements) = (&raw, &statements);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    truncate(raw).await;
                    let t = Instant::now();
                    assert_eq!(raw_insert(raw, statements).await, INSERT_ROWS);
                    total += t.elapsed();
                }
                total
            }
        });
    });
    g.finish();

    rt.block_on(async {
        paired(
            "postgres_insert/insert_100k",
            5,
            || async {
                truncate(&raw).await;
                let batch = records.clone();
                measured(1, async {
                    let written = db.insert_many("item_insert", batch).await.unwrap();
                    drop(black_box(written));
                })
                .await
            },
            || async {
                truncate(&raw).await;
                measured(1, async {
                    assert_eq!(raw_insert(&raw, &statements).await, INSERT_ROWS);
                })
                .await
            },
        )
        .await;
        assert_eq!(count(&raw).await, INSERT_ROWS);
        raw.close().await;
        engine.close().await.unwrap();
    });
}

fn main() {
    let scratch = Scratch::create();
    let mut c = Criterion::default().configure_from_args();
    postgres_read(&mut c, &scratch);
    postgres_insert(&mut c, &scratch);
    c.final_summary();
    drop(scratch);
}
