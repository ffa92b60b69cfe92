#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The SQLite driver against raw libsql, measured in the same run.
//!
//! - `compile`: `SqlCompiler::select` of a validated filter + sort + limit
//!   query, per dialect (SQLite, PostgreSQL, MySQL, MariaDB).
//! - `sqlite_read`: a point lookup by primary key and a scan of all 10,000
//!   rows of a SQLite file, through the `Engine` (`Session::find_one` /
//!   `Session::find`) against libsql running the same SQL with the same
//!   parameters and decoding every column into plain Rust values.
//! - `sqlite_insert`: 100,000 rows with `Session::insert_many` (10,000 per
//!   call) against libsql running the same multi-row INSERT statements, one
//!   `BEGIN IMMEDIATE` … `COMMIT` per batch.
//!
//! Run with `cargo bench -p objectql-benches --bench sqlite`; see
//! `benches/README.md`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use objectql::{Engine, ObjectSchema, Query, Record, SqliteDriver, SqliteOptions, Value, field};
use objectql_benches::{EPOCH_2024_MICROS, Lcg, runtime};
use objectql_planner::sql::types::datetime_text;
use objectql_planner::sql::{
    MySqlDialect, PostgresDialect, SqlCompiler, SqlDialect, SqliteDialect, Statement,
};
use objectql_query_ast::{Catalog, ResolveContext, validate_query};
use rust_decimal::Decimal;
use serde_json::json;

/// Rows in the `sqlite_read` table.
const READ_ROWS: usize = 10_000;
/// Rows inserted per `sqlite_insert` iteration.
const INSERT_ROWS: usize = 100_000;
/// Records per `insert_many` call (a service writing in batches).
const INSERT_BATCH: usize = 10_000;
/// Distinct values of `category` (`c0` … `c19`).
const CATEGORIES: u32 = 20;

// ---------------------------------------------------------------------------
// Shared setup
// ---------------------------------------------------------------------------

/// `item(id text pk, n integer, price currency(12,2), category text,
/// created datetime)`. SQLite stores `price` as an INTEGER scaled by 100 and
/// `created` as fixed-width UTC text.
fn item_schema_json() -> serde_json::Value {
    json!({
        "name": "item",
        "fields": {
            "id": {"type": "text"},
            "n": {"type": "integer"},
            "price": {"type": "currency", "precision": 12, "scale": 2},
            "category": {"type": "text"},
            "created": {"type": "datetime"}
        }
    })
}

fn item_catalog() -> Catalog {
    let mut catalog = Catalog::new();
    catalog
        .insert(ObjectSchema::from_json(&item_schema_json()).unwrap())
        .unwrap();
    catalog
}

/// One generated row, as plain Rust values (also what the raw side decodes
/// into: `price` in cents, `created` as the stored text).
#[derive(Debug, Clone, PartialEq)]
struct Item {
    id: String,
    n: i64,
    price_cents: i64,
    category: String,
    created: String,
}

fn generate(len: usize) -> Vec<Item> {
    let mut rng = Lcg(42);
    let mut created = EPOCH_2024_MICROS;
    (0..len)
        .map(|i| {
            created += i64::from(rng.below(60_000_000)); // up to a minute apart
            let t = DateTime::<Utc>::from_timestamp_micros(created).unwrap();
            Item {
                id: format!("item-{i:07}"),
                n: i64::from(rng.below(1_000_000)),
                price_cents: i64::from(rng.below(10_000_000)),
                category: format!("c{}", rng.below(CATEGORIES)),
                created: datetime_text(&t).unwrap(),
            }
        })
        .collect()
}

fn record_of(item: &Item) -> Record {
    let created = DateTime::parse_from_rfc3339(&item.created)
        .unwrap()
        .with_timezone(&Utc);
    let mut r = Record::new();
    r.insert("id".into(), Value::from(item.id.as_str()));
    r.insert("n".into(), Value::from(item.n));
    r.insert(
        "price".into(),
        Value::from(Decimal::new(item.price_cents, 2)),
    );
    r.insert("category".into(), Value::from(item.category.as_str()));
    r.insert("created".into(), Value::from(created));
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
        price_cents: i64::try_from(price.mantissa()).unwrap(),
        category: r["category"].as_str().unwrap().to_owned(),
        created: datetime_text(created).unwrap(),
    }
}

/// An engine whose default datasource is the SQLite file `path`, with `item`
/// registered, and the dialect of the SQLite libsql embeds.
async fn sqlite_engine(path: &Path) -> (Engine, SqliteDialect) {
    let driver = SqliteDriver::open(SqliteOptions::file(path)).await.unwrap();
    let dialect = SqliteDialect {
        version: driver.version(),
        vectors: false,
    };
    let engine = Engine::new();
    engine.add_driver("default", Arc::new(driver)).unwrap();
    engine.register_json(&item_schema_json()).await.unwrap();
    (engine, dialect)
}

/// The statement the session sends to the driver for `query`: validated,
/// planned against the SQLite driver's capabilities (everything pushed),
/// compiled with the SQLite dialect.
fn compiled_select(engine: &Engine, dialect: &SqliteDialect, query: &Query) -> Statement {
    let catalog = engine.catalog().unwrap();
    let schema = catalog.get("item").unwrap();
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
    assert!(planned.residual.is_none(), "SQLite runs the whole query");
    assert_eq!(
        planned.pushed, typed,
        "the pushed query is the validated one"
    );
    SqlCompiler::new(dialect, &catalog).select(&typed).unwrap()
}

/// objectql's encoded parameters as libsql values (done once, outside the
/// timing: a raw libsql program holds its values as libsql values).
fn raw_params(params: &[Value]) -> Vec<libsql::Value> {
    params
        .iter()
        .map(|v| match v {
            Value::Null => libsql::Value::Null,
            Value::Int(i) => libsql::Value::Integer(*i),
            Value::Float(f) => libsql::Value::Real(*f),
            Value::String(s) => libsql::Value::Text(s.clone()),
            other => panic!("unexpected encoded parameter {other:?}"),
        })
        .collect()
}

/// One `item` row decoded from libsql into plain Rust values.
fn decode_item(row: &libsql::Row) -> Item {
    Item {
        id: row.get(0).unwrap(),
        n: row.get(1).unwrap(),
        price_cents: row.get(2).unwrap(),
        category: row.get(3).unwrap(),
        created: row.get(4).unwrap(),
    }
}

/// Runs `sql` with `params` on libsql and decodes every row.
async fn raw_query(conn: &libsql::Connection, sql: &str, params: Vec<libsql::Value>) -> Vec<Item> {
    let mut rows = conn.query(sql, params).await.unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.push(decode_item(&row));
    }
    out
}

/// The output columns the compiler emitted must be `item`'s, in order (the
/// raw side decodes by position).
fn assert_item_columns(st: &Statement) {
    let names: Vec<&str> = st.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "n", "price", "category", "created"]);
}

// ---------------------------------------------------------------------------
// compile: SqlCompiler::select per dialect
// ---------------------------------------------------------------------------

/// A typical query: `$and`/`$or` over four fields, two sort keys, a limit.
const COMPILE_JSON: &str = r#"{
    "object": "item",
    "fields": ["id", "n", "price", "category", "created"],
    "where": {"$and": [
        {"category": {"$in": ["c1", "c2", "c3"]}},
        {"$or": [{"n": {"$gt": 1000}}, {"price": {"$lt": 9.5}}]},
        {"created": {"$gte": "2024-01-01T00:00:00Z"}}
    ]},
    "orderBy": [{"field": "price", "order": "desc"}, {"field": "created", "order": "asc"}],
    "limit": 20
}"#;

fn compile(c: &mut Criterion) {
    let catalog = item_catalog();
    let typed = validate_query(
        &Query::parse(COMPILE_JSON).unwrap(),
        &catalog,
        &ResolveContext::now(),
    )
    .unwrap();

    let dialects: [(&str, Box<dyn SqlDialect>); 4] = [
        (
            "sqlite",
            Box::new(SqliteDialect {
                version: (3, 45, 1),
                vectors: false,
            }),
        ),
        ("postgres", Box::new(PostgresDialect { version: (16, 0) })),
        (
            "mysql",
            Box::new(MySqlDialect {
                mariadb: false,
                version: (8, 0, 36),
            }),
        ),
        (
            "mariadb",
            Box::new(MySqlDialect {
                mariadb: true,
                version: (11, 4, 2),
            }),
        ),
    ];
    for (name, d) in &dialects {
        let st = SqlCompiler::new(d.as_ref(), &catalog)
            .select(&typed)
            .unwrap();
        eprintln!("compile/{name}: {} ({} params)", st.sql, st.params.len());
    }

    let mut g = c.benchmark_group("compile");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for (name, d) in &dialects {
        let compiler = SqlCompiler::new(d.as_ref(), &catalog);
        g.bench_function(*name, |b| {
            b.iter(|| compiler.select(black_box(&typed)).unwrap());
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------
// sqlite_read: point lookup and 10k-row scan
// ---------------------------------------------------------------------------

fn sqlite_read(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");

    let items = generate(READ_ROWS);
    let t = Instant::now();
    let (engine, dialect) = rt.block_on(sqlite_engine(&path));
    let db = engine.default_session();
    rt.block_on(db.insert_many("item", items.iter().map(record_of).collect()))
        .unwrap();
    eprintln!(
        "sqlite_read: loaded {READ_ROWS} rows (one insert_many) in {:.2?}",
        t.elapsed()
    );

    // The raw side: its own libsql database handle and one connection.
    let raw_db = rt
        .block_on(libsql::Builder::new_local(&path).build())
        .unwrap();
    let raw = raw_db.connect().unwrap();

    // (a) point lookup: `find_one` is the query with `limit 1`.
    let key = items[READ_ROWS * 2 / 3].id.clone();
    let q_point = Query::new("item").filter(field("id").eq(key.as_str()));
    let st_point = compiled_select(&engine, &dialect, &q_point.clone().limit(1));
    // (b) scan: every row.
    let q_scan = Query::new("item");
    let st_scan = compiled_select(&engine, &dialect, &q_scan);
    assert_item_columns(&st_point);
    assert_item_columns(&st_scan);
    eprintln!(
        "sqlite_read: point lookup SQL: {} {:?}",
        st_point.sql, st_point.params
    );
    eprintln!("sqlite_read: scan SQL: {}", st_scan.sql);
    let p_point = raw_params(&st_point.params);
    let p_scan = raw_params(&st_scan.params);

    // Both sides must give the same rows.
    rt.block_on(async {
        let ours = db.find_one(&q_point).await.unwrap().unwrap();
        let theirs = raw_query(&raw, &st_point.sql, p_point.clone()).await;
        assert_eq!(vec![item_of(&ours)], theirs);
        assert_eq!(theirs[0], items[READ_ROWS * 2 / 3]);

        let ours: Vec<Item> = db
            .find(&q_scan)
            .await
            .unwrap()
            .iter()
            .map(item_of)
            .collect();
        let mut theirs = raw_query(&raw, &st_scan.sql, p_scan.clone()).await;
        assert_eq!(ours.len(), READ_ROWS);
        assert_eq!(ours, theirs);
        theirs.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(theirs, items);
    });

    let mut g = c.benchmark_group("sqlite_read");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    g.bench_function("point_lookup/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find_one(black_box(&q_point)).await.unwrap().unwrap() });
    });
    g.bench_function("point_lookup/libsql", |b| {
        b.to_async(&rt).iter_batched(
            || p_point.clone(),
            |p| raw_query(&raw, black_box(&st_point.sql), p),
            BatchSize::SmallInput,
        );
    });

    g.bench_function("scan_10k/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_scan)).await.unwrap() });
    });
    g.bench_function("scan_10k/libsql", |b| {
        b.to_async(&rt).iter_batched(
            || p_scan.clone(),
            |p| raw_query(&raw, black_box(&st_scan.sql), p),
            BatchSize::SmallInput,
        );
    });
    g.finish();
    drop(raw);
    rt.block_on(engine.close()).unwrap();
}

// ---------------------------------------------------------------------------
// sqlite_insert: 100,000 rows in batches of 10,000
// ---------------------------------------------------------------------------

/// Empties `item` and checkpoints the WAL, so every iteration starts from
/// the same file state.
async fn reset(conn: &libsql::Connection) {
    conn.execute("DELETE FROM item", ()).await.unwrap();
    let mut rows = conn
        .query("PRAGMA wal_checkpoint(TRUNCATE)", ())
        .await
        .unwrap();
    while rows.next().await.unwrap().is_some() {}
}

/// One batch as raw libsql runs it: the compiler's statements (SQL text and
/// libsql parameters) inside `BEGIN IMMEDIATE` … `COMMIT`. The statements
/// end in `RETURNING`, so every returned row is read and decoded, as the
/// driver does. Returns the rows returned.
async fn raw_insert_batch(
    conn: &libsql::Connection,
    statements: Vec<(Arc<str>, Vec<libsql::Value>)>,
) -> usize {
    conn.execute("BEGIN IMMEDIATE", ()).await.unwrap();
    let mut returned = 0;
    for (sql, params) in statements {
        let mut rows = conn.query(&sql, params).await.unwrap();
        while let Some(row) = rows.next().await.unwrap() {
            black_box(decode_item(&row));
            returned += 1;
        }
    }
    conn.execute("COMMIT", ()).await.unwrap();
    returned
}

fn sqlite_insert(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("insert.db");

    let items = generate(INSERT_ROWS);
    let batches: Vec<Vec<Record>> = items
        .chunks(INSERT_BATCH)
        .map(|chunk| chunk.iter().map(record_of).collect())
        .collect();

    let (engine, dialect) = rt.block_on(sqlite_engine(&path));
    let db = engine.default_session();

    // The statements the driver runs for each batch (the session validates
    // the records first; the validated records are what the driver compiles).
    let catalog = engine.catalog().unwrap();
    let schema = catalog.get("item").unwrap().clone();
    let compiler = SqlCompiler::new(&dialect, &catalog);
    let raw_batches: Vec<Vec<(Arc<str>, Vec<libsql::Value>)>> = batches
        .iter()
        .map(|batch| {
            let typed: Vec<Record> = batch
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
            compiler
                .insert("item", &typed)
                .unwrap()
                .into_iter()
                .map(|st| {
                    assert_item_columns(&st);
                    (Arc::from(st.sql.as_str()), raw_params(&st.params))
                })
                .collect()
        })
        .collect();
    let per_batch = raw_batches[0].len();
    eprintln!(
        "sqlite_insert: {} batches of {INSERT_BATCH} rows, {per_batch} INSERT … RETURNING statements each \
         ({} rows in the first)",
        raw_batches.len(),
        raw_batches[0][0].1.len() / 5,
    );

    let raw_db = rt
        .block_on(libsql::Builder::new_local(&path).build())
        .unwrap();
    let raw = raw_db.connect().unwrap();

    let count = |conn: &libsql::Connection| {
        let conn = conn.clone();
        async move {
            let mut rows = conn.query("SELECT count(*) FROM item", ()).await.unwrap();
            let n: i64 = rows.next().await.unwrap().unwrap().get(0).unwrap();
            usize::try_from(n).unwrap()
        }
    };

    // Both sides must write the same rows.
    rt.block_on(async {
        reset(&raw).await;
        let mut written = 0;
        for batch in batches.clone() {
            written += db.insert_many("item", batch).await.unwrap().len();
        }
        assert_eq!(written, INSERT_ROWS);
        assert_eq!(count(&raw).await, INSERT_ROWS);
        let scan = Query::new("item").asc("id");
        let ours: Vec<Item> = db.find(&scan).await.unwrap().iter().map(item_of).collect();
        assert_eq!(ours, items);

        reset(&raw).await;
        let mut written = 0;
        for batch in raw_batches.clone() {
            written += raw_insert_batch(&raw, batch).await;
        }
        assert_eq!(written, INSERT_ROWS);
        let theirs: Vec<Item> = db.find(&scan).await.unwrap().iter().map(item_of).collect();
        assert_eq!(theirs, items);
        reset(&raw).await;
    });

    let mut g = c.benchmark_group("sqlite_insert");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));

    g.bench_function("insert_100k/objectql", |b| {
        b.to_async(&rt).iter_batched(
            || {
                futures::executor::block_on(reset(&raw));
                batches.clone()
            },
            |batches| async {
                for batch in batches {
                    db.insert_many("item", batch).await.unwrap();
                }
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function("insert_100k/libsql", |b| {
        b.to_async(&rt).iter_batched(
            || {
                futures::executor::block_on(reset(&raw));
                raw_batches.clone()
            },
            |batches| async {
                for batch in batches {
                    raw_insert_batch(&raw, batch).await;
                }
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
    rt.block_on(async {
        assert_eq!(count(&raw).await, INSERT_ROWS);
    });
    drop(raw);
    rt.block_on(engine.close()).unwrap();
}

criterion_group!(benches, compile, sqlite_read, sqlite_insert);
criterion_main!(benches);
