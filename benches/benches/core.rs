#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! objectql against DataFusion, measured in the same run.
//!
//! - `plan`: parse + validate + plan a typical query (and each step alone),
//!   against DataFusion's SQL parse + bind + optimize + physical plan.
//! - `scan_1m`: four queries over 1,000,000 rows held by the memory driver
//!   (through the `Engine`), against DataFusion over the same rows as one
//!   Arrow `MemTable`, single-threaded.
//!
//! Run with `cargo bench -p objectql-benches`; see `benches/README.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, AsArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use objectql::{AggFunction, Engine, ObjectSchema, Query, Record, Value, field};
use objectql_benches::{EPOCH_2024_MICROS, Lcg, runtime};
use objectql_driver::Driver;
use objectql_driver_memory::MemoryDriver;
use objectql_query_ast::{Catalog, ResolveContext, validate_query};
use serde_json::json;

/// Rows in the `scan_1m` table.
const ROWS: usize = 1_000_000;
/// Distinct values of `category` (`c0` … `c19`).
const CATEGORIES: u64 = 20;
/// Rows per Arrow batch (DataFusion's default `batch_size`).
const BATCH_ROWS: usize = 8192;
/// Records per `insert_many` call while loading the memory driver.
const INSERT_CHUNK: usize = 50_000;

// ---------------------------------------------------------------------------
// Shared setup
// ---------------------------------------------------------------------------

/// The object both sides query: `item(id text, n integer, price float,
/// category select, created datetime)`.
fn item_schema_json() -> serde_json::Value {
    json!({
        "name": "item",
        "fields": {
            "id": {"type": "text"},
            "n": {"type": "integer"},
            "price": {"type": "float"},
            "category": {"type": "select"},
            "created": {"type": "datetime"}
        }
    })
}

/// The same object as an Arrow schema (the types the memory driver's own
/// Arrow output uses).
fn item_arrow_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ArrowField::new("id", DataType::Utf8, false),
        ArrowField::new("n", DataType::Int64, true),
        ArrowField::new("price", DataType::Float64, true),
        ArrowField::new("category", DataType::Utf8, true),
        ArrowField::new(
            "created",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// The generated table, column by column.
struct Rows {
    id: Vec<String>,
    n: Vec<i64>,
    price: Vec<f64>,
    category: Vec<String>,
    /// Microseconds since the Unix epoch, UTC.
    created: Vec<i64>,
}

fn generate(len: usize) -> Rows {
    let mut rng = Lcg(42);
    let mut rows = Rows {
        id: Vec::with_capacity(len),
        n: Vec::with_capacity(len),
        price: Vec::with_capacity(len),
        category: Vec::with_capacity(len),
        created: Vec::with_capacity(len),
    };
    let mut created = EPOCH_2024_MICROS;
    for i in 0..len {
        rows.id.push(format!("item-{i:07}"));
        rows.n.push(i64::from(rng.below(1_000_000)));
        rows.price.push(f64::from(rng.below(10_000_000)) / 100.0);
        rows.category.push(format!(
            "c{}",
            rng.below(u32::try_from(CATEGORIES).unwrap())
        ));
        created += i64::from(rng.below(60_000_000)); // up to a minute apart
        rows.created.push(created);
    }
    rows
}

fn record_at(rows: &Rows, i: usize) -> Record {
    let created = DateTime::<Utc>::from_timestamp_micros(rows.created[i]).unwrap();
    let mut r = Record::new();
    r.insert("id".into(), Value::from(rows.id[i].as_str()));
    r.insert("n".into(), Value::from(rows.n[i]));
    r.insert("price".into(), Value::from(rows.price[i]));
    r.insert("category".into(), Value::from(rows.category[i].as_str()));
    r.insert("created".into(), Value::from(created));
    r
}

/// An engine with one `memory://` datasource holding `rows`.
async fn objectql_engine(rows: &Rows) -> Engine {
    let engine = Engine::new();
    engine.add_datasource("default", "memory://").await.unwrap();
    engine.register_json(&item_schema_json()).await.unwrap();
    let db = engine.default_session();
    let len = rows.id.len();
    for start in (0..len).step_by(INSERT_CHUNK) {
        let end = (start + INSERT_CHUNK).min(len);
        let chunk: Vec<Record> = (start..end).map(|i| record_at(rows, i)).collect();
        db.insert_many("item", chunk).await.unwrap();
    }
    engine
}

fn record_batches(rows: &Rows) -> Vec<RecordBatch> {
    let schema = item_arrow_schema();
    let len = rows.id.len();
    (0..len)
        .step_by(BATCH_ROWS)
        .map(|start| {
            let end = (start + BATCH_ROWS).min(len);
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from_iter_values(&rows.id[start..end])),
                    Arc::new(Int64Array::from(rows.n[start..end].to_vec())),
                    Arc::new(Float64Array::from(rows.price[start..end].to_vec())),
                    Arc::new(StringArray::from_iter_values(&rows.category[start..end])),
                    Arc::new(
                        TimestampMicrosecondArray::from(rows.created[start..end].to_vec())
                            .with_timezone("UTC"),
                    ),
                ],
            )
            .unwrap()
        })
        .collect()
}

/// A single-threaded DataFusion context with `batches` registered as `item`
/// (one partition).
fn datafusion_context(batches: Vec<RecordBatch>) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let table = MemTable::try_new(item_arrow_schema(), vec![batches]).unwrap();
    ctx.register_table("item", Arc::new(table)).unwrap();
    ctx
}

async fn datafusion_rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

fn batch_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// The values of string column `name`, in order.
fn batch_strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(name).unwrap().as_string::<i32>();
            (0..col.len())
                .map(|i| col.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn record_strings(records: &[Record], name: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| r[name].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// plan: parse + validate + plan
// ---------------------------------------------------------------------------

/// A typical query: `$and`/`$or` over four fields, two sort keys, a limit.
const PLAN_JSON: &str = r#"{
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

/// The same query in SQL.
const PLAN_SQL: &str = "SELECT id, n, price, category, created FROM item \
    WHERE category IN ('c1', 'c2', 'c3') AND (n > 1000 OR price < 9.5) \
    AND created >= TIMESTAMP '2024-01-01T00:00:00Z' \
    ORDER BY price DESC, created ASC LIMIT 20";

fn plan(c: &mut Criterion) {
    let rt = runtime();

    // objectql: a catalog with `item`, the memory driver's capabilities.
    let schema = ObjectSchema::from_json(&item_schema_json()).unwrap();
    let mut catalog = Catalog::new();
    catalog.insert(schema.clone()).unwrap();
    let driver = MemoryDriver::new();
    let ctx = ResolveContext::now();
    let caps = driver.capabilities();
    let classify = |cond: &objectql_query_ast::Condition| driver.classify(&schema, cond);

    let parsed = Query::parse(PLAN_JSON).unwrap();
    let typed = validate_query(&parsed, &catalog, &ctx).unwrap();
    let planned = objectql_planner::plan(&typed, &schema, driver.name(), caps, &classify).unwrap();
    assert!(
        planned.residual.is_none(),
        "the memory driver runs the whole query"
    );

    // DataFusion: the same table, empty (planning does not read data).
    let df = datafusion_context(Vec::new());
    let state = df.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(PLAN_SQL, &dialect).unwrap();
    let logical = rt
        .block_on(state.statement_to_plan(statement.clone()))
        .unwrap();
    rt.block_on(state.create_physical_plan(&logical)).unwrap();

    let mut g = c.benchmark_group("plan");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));

    g.bench_function("full/objectql", |b| {
        b.iter(|| {
            let q = Query::parse(black_box(PLAN_JSON)).unwrap();
            let typed = validate_query(&q, &catalog, &ctx).unwrap();
            objectql_planner::plan(&typed, &schema, driver.name(), caps, &classify).unwrap()
        });
    });
    g.bench_function("full/datafusion", |b| {
        b.to_async(&rt).iter(|| async {
            let logical = state
                .create_logical_plan(black_box(PLAN_SQL))
                .await
                .unwrap();
            state.create_physical_plan(&logical).await.unwrap()
        });
    });

    g.bench_function("parse/objectql", |b| {
        b.iter(|| Query::parse(black_box(PLAN_JSON)).unwrap());
    });
    g.bench_function("parse/datafusion", |b| {
        b.iter(|| {
            state
                .sql_to_statement(black_box(PLAN_SQL), &dialect)
                .unwrap()
        });
    });

    g.bench_function("validate/objectql", |b| {
        b.iter(|| validate_query(black_box(&parsed), &catalog, &ctx).unwrap());
    });
    // Binding the parsed statement to the catalog (names, types, coercions).
    g.bench_function("validate/datafusion", |b| {
        b.to_async(&rt).iter_batched(
            || statement.clone(),
            |s| async { state.statement_to_plan(s).await.unwrap() },
            BatchSize::SmallInput,
        );
    });

    g.bench_function("plan_only/objectql", |b| {
        b.iter(|| {
            objectql_planner::plan(black_box(&typed), &schema, driver.name(), caps, &classify)
                .unwrap()
        });
    });
    // Logical optimization + physical planning of the bound plan.
    g.bench_function("plan_only/datafusion", |b| {
        b.to_async(&rt).iter(|| async {
            state
                .create_physical_plan(black_box(&logical))
                .await
                .unwrap()
        });
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// scan_1m: four queries over 1,000,000 rows
// ---------------------------------------------------------------------------

fn scan_1m(c: &mut Criterion) {
    let rt = runtime();

    let t = Instant::now();
    let rows = generate(ROWS);
    eprintln!("scan_1m: generated {ROWS} rows in {:.2?}", t.elapsed());

    let t = Instant::now();
    let engine = rt.block_on(objectql_engine(&rows));
    eprintln!(
        "scan_1m: loaded the memory driver (insert_many, {INSERT_CHUNK} per call) in {:.2?}",
        t.elapsed()
    );

    let t = Instant::now();
    let df = datafusion_context(record_batches(&rows));
    eprintln!("scan_1m: built the Arrow MemTable in {:.2?}", t.elapsed());

    let db = engine.default_session();

    // (a) filter + sort + limit. objectql adds the primary key as the last
    // sort key of every paged query; the SQL says so explicitly.
    let q_top = Query::new("item")
        .filter(field("category").eq("c7").and(field("n").gt(500_000)))
        .desc("price")
        .limit(10);
    let sql_top = "SELECT * FROM item WHERE category = 'c7' AND n > 500000 ORDER BY price DESC, id ASC LIMIT 10";

    // (b) group-by aggregate.
    let q_group = Query::new("item")
        .group_by("category")
        .count_as("cnt")
        .agg(AggFunction::Sum, "price", "sum_price")
        .agg(AggFunction::Avg, "n", "avg_n");
    let sql_group = "SELECT category, count(*) AS cnt, sum(price) AS sum_price, avg(n) AS avg_n \
        FROM item GROUP BY category";

    // (c) point lookup by primary key: `find_one` (limit 1).
    let key = rows.id[ROWS * 2 / 3].clone();
    let q_point = Query::new("item").filter(field("id").eq(key.as_str()));
    let sql_point = format!("SELECT * FROM item WHERE id = '{key}' LIMIT 1");

    // (d) small result (~11 rows).
    let q_small = Query::new("item").filter(field("n").between(1000, 1010));
    let sql_small = "SELECT * FROM item WHERE n BETWEEN 1000 AND 1010";

    // Both sides must give the same answers.
    rt.block_on(async {
        let ours = db.find(&q_top).await.unwrap();
        let theirs = datafusion_rows(&df, sql_top).await;
        assert_eq!(ours.len(), 10);
        assert_eq!(record_strings(&ours, "id"), batch_strings(&theirs, "id"));

        let ours = db.find(&q_group).await.unwrap();
        let theirs = datafusion_rows(&df, sql_group).await;
        assert_eq!(ours.len(), usize::try_from(CATEGORIES).unwrap());
        assert_eq!(batch_rows(&theirs), ours.len());
        let total: i64 = ours.iter().map(|r| r["cnt"].as_i64().unwrap()).sum();
        assert_eq!(total, i64::try_from(ROWS).unwrap());

        let ours = db.find_one(&q_point).await.unwrap().unwrap();
        let theirs = datafusion_rows(&df, &sql_point).await;
        assert_eq!(ours["id"].as_str(), Some(key.as_str()));
        assert_eq!(batch_strings(&theirs, "id"), vec![key.clone()]);

        let mut ours = record_strings(&db.find(&q_small).await.unwrap(), "id");
        let mut theirs = batch_strings(&datafusion_rows(&df, sql_small).await, "id");
        ours.sort();
        theirs.sort();
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs);
        eprintln!(
            "scan_1m: `n BETWEEN 1000 AND 1010` matches {} rows",
            ours.len()
        );
    });
    drop(rows);

    let mut g = c.benchmark_group("scan_1m");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    g.bench_function("filter_sort_limit/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_top)).await.unwrap() });
    });
    g.bench_function("filter_sort_limit/datafusion", |b| {
        b.to_async(&rt)
            .iter(|| datafusion_rows(&df, black_box(sql_top)));
    });

    g.bench_function("group_by/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_group)).await.unwrap() });
    });
    g.bench_function("group_by/datafusion", |b| {
        b.to_async(&rt)
            .iter(|| datafusion_rows(&df, black_box(sql_group)));
    });

    g.bench_function("point_lookup/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find_one(black_box(&q_point)).await.unwrap() });
    });
    g.bench_function("point_lookup/datafusion", |b| {
        b.to_async(&rt)
            .iter(|| datafusion_rows(&df, black_box(&sql_point)));
    });

    g.bench_function("small_result/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_small)).await.unwrap() });
    });
    g.bench_function("small_result/datafusion", |b| {
        b.to_async(&rt)
            .iter(|| datafusion_rows(&df, black_box(sql_small)));
    });
    g.finish();
}

criterion_group!(benches, plan, scan_1m);
criterion_main!(benches);
