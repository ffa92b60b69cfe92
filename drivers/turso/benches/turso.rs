#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The Turso driver against raw libsql, measured in the same run, and
//! nearest-neighbour queries with and without a vector index.
//!
//! - `turso_read`: a point lookup by primary key and a scan of all 10,000
//!   rows of a local libSQL file, through the `Engine` (`find_one` / `find`)
//!   against libsql running the same SQL with the same parameters and
//!   decoding every column.
//! - `turso_vectors`: top-10 nearest neighbours (cosine) of a query vector
//!   among 100,000 vectors of dimension 384 (`OBJECTQL_BENCH_VECTORS`
//!   changes the count), exact (a full scan computing every distance) and
//!   approximate (`vector_top_k` over the `libsql_vector_idx` index), each
//!   also run as raw libsql with the same SQL. Prints the approximate
//!   answer's recall against the exact one. The vector table is built once
//!   and kept in the system temporary directory (building the index is
//!   slow); delete `objectql-bench-vectors-*.db` to rebuild it.
//!
//! Run with `cargo bench -p objectql-driver-turso --bench turso`; see
//! `benches/README.md` § Turso.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use objectql::{Engine, Query, Record, ResolveContext, Value, field};
use objectql_benches::{Lcg, interleaved, runtime};
use objectql_driver_turso::{TursoDriver, TursoOptions};
use objectql_planner::sql::{SqlCompiler, Statement};
use objectql_query_ast::{Nearest, validate_query};
use serde_json::json;

const READ_ROWS: usize = 10_000;
const DIMENSIONS: usize = 384;
const K: u64 = 10;

// ---------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------

async fn engine_on(path: &Path, schema: &serde_json::Value) -> (Engine, Arc<TursoDriver>) {
    let driver = Arc::new(TursoDriver::open(TursoOptions::file(path)).await.unwrap());
    let engine = Engine::new();
    engine.add_driver("default", driver.clone()).unwrap();
    engine.register_json(schema).await.unwrap();
    (engine, driver)
}

/// The statement the session sends for `query` (validated, everything
/// pushed, compiled with the driver's dialect).
fn compiled(engine: &Engine, driver: &TursoDriver, query: &Query) -> Statement {
    use objectql::Driver;
    let catalog = engine.catalog().unwrap();
    let object = query.object.clone().unwrap();
    let schema = catalog.get(&object).unwrap();
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
    assert!(planned.residual.is_none(), "libSQL runs the whole query");
    SqlCompiler::new(&driver.dialect(), &catalog)
        .select(&planned.pushed)
        .unwrap()
}

fn raw_params(params: &[Value]) -> Vec<libsql::Value> {
    params
        .iter()
        .map(|v| match v {
            Value::Null => libsql::Value::Null,
            Value::Int(i) => libsql::Value::Integer(*i),
            Value::Float(f) => libsql::Value::Real(*f),
            Value::String(s) => libsql::Value::Text(s.clone()),
            Value::Bytes(b) => libsql::Value::Blob(b.clone()),
            other => panic!("unexpected encoded parameter {other:?}"),
        })
        .collect()
}

/// Runs `sql` on libsql and decodes every column of every row into owned
/// values (what a program using libsql directly does).
async fn raw_query(
    conn: &libsql::Connection,
    sql: &str,
    params: Vec<libsql::Value>,
) -> Vec<Vec<libsql::Value>> {
    let mut rows = conn.query(sql, params).await.unwrap();
    let columns = usize::try_from(rows.column_count()).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(row.get_value(i32::try_from(i).unwrap()).unwrap());
        }
        out.push(values);
    }
    out
}

// ---------------------------------------------------------------------------
// turso_read
// ---------------------------------------------------------------------------

fn doc_schema() -> serde_json::Value {
    json!({"name": "doc", "fields": {
        "id": {"type": "text"},
        "n": {"type": "integer"},
        "category": {"type": "text"},
        "title": {"type": "text"}
    }})
}

fn turso_read(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.db");
    let (engine, driver) = rt.block_on(engine_on(&path, &doc_schema()));
    let db = engine.default_session();
    let mut rng = Lcg(7);
    let rows: Vec<Record> = (0..READ_ROWS)
        .map(|i| {
            let mut r = Record::new();
            r.insert("id".into(), Value::from(format!("doc-{i:06}")));
            r.insert("n".into(), Value::from(i64::from(rng.below(1_000_000))));
            r.insert(
                "category".into(),
                Value::from(format!("c{}", rng.below(20))),
            );
            r.insert("title".into(), Value::from(format!("title number {i}")));
            r
        })
        .collect();
    rt.block_on(db.insert_many("doc", rows)).unwrap();

    let raw_db = rt
        .block_on(libsql::Builder::new_local(&path).build())
        .unwrap();
    let raw = raw_db.connect().unwrap();

    let q_point = Query::new("doc").filter(field("id").eq("doc-006666"));
    let st_point = compiled(&engine, &driver, &q_point.clone().limit(1));
    let q_scan = Query::new("doc");
    let st_scan = compiled(&engine, &driver, &q_scan);
    let p_point = raw_params(&st_point.params);
    let p_scan = raw_params(&st_scan.params);
    eprintln!("turso_read: point lookup SQL: {}", st_point.sql);
    rt.block_on(async {
        let ours = db.find_one(&q_point).await.unwrap().unwrap();
        let theirs = raw_query(&raw, &st_point.sql, p_point.clone()).await;
        assert_eq!(theirs.len(), 1);
        assert_eq!(ours["id"], Value::from("doc-006666"));
        assert_eq!(db.find(&q_scan).await.unwrap().len(), READ_ROWS);
        assert_eq!(
            raw_query(&raw, &st_scan.sql, p_scan.clone()).await.len(),
            READ_ROWS
        );
    });

    let mut g = c.benchmark_group("turso_read");
    g.sample_size(30)
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
    interleaved(
        &rt,
        "turso_read/point_lookup",
        "libsql",
        20_000,
        || async {
            db.find_one(&q_point).await.unwrap().unwrap();
        },
        || async {
            raw_query(&raw, &st_point.sql, p_point.clone()).await;
        },
    );
    interleaved(
        &rt,
        "turso_read/scan_10k",
        "libsql",
        100,
        || async {
            db.find(&q_scan).await.unwrap();
        },
        || async {
            raw_query(&raw, &st_scan.sql, p_scan.clone()).await;
        },
    );
}

// ---------------------------------------------------------------------------
// turso_vectors
// ---------------------------------------------------------------------------

fn vector_count() -> usize {
    std::env::var("OBJECTQL_BENCH_VECTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn embedding_schema() -> serde_json::Value {
    json!({"name": "passage", "fields": {
        "id": {"type": "integer"},
        "category": {"type": "text"},
        "embedding": {"type": "vector", "dimensions": DIMENSIONS, "metric": "cosine", "index": true}
    }})
}

fn random_vector(rng: &mut Lcg) -> Vec<Value> {
    (0..DIMENSIONS)
        .map(|_| Value::Float(f64::from(rng.below(2_001)) / 1_000.0 - 1.0))
        .collect()
}

/// The vector table, built once per count and kept (index builds are slow).
fn vector_db(rt: &tokio::runtime::Runtime, n: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!("objectql-bench-vectors-{n}x{DIMENSIONS}-v1.db"));
    if path.exists() {
        return path;
    }
    let building = path.with_extension("building");
    let _ = std::fs::remove_file(&building);
    let t = Instant::now();
    rt.block_on(async {
        let (engine, _) = engine_on(&building, &embedding_schema()).await;
        let db = engine.default_session();
        let mut rng = Lcg(384);
        let mut id: i64 = 0;
        while usize::try_from(id).unwrap() < n {
            let batch: Vec<Record> = (0..1_000)
                .take_while(|i| usize::try_from(id + i).unwrap() < n)
                .map(|i| {
                    let mut r = Record::new();
                    r.insert("id".into(), Value::from(id + i));
                    r.insert(
                        "category".into(),
                        Value::from(format!("c{}", rng.below(10))),
                    );
                    r.insert("embedding".into(), Value::Array(random_vector(&mut rng)));
                    r
                })
                .collect();
            id += i64::try_from(batch.len()).unwrap();
            db.insert_many("passage", batch).await.unwrap();
        }
        engine.close().await.unwrap();
    });
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
    }
    std::fs::rename(&building, &path).unwrap();
    eprintln!(
        "turso_vectors: built {n} vectors of dimension {DIMENSIONS} with their index in {:.1?}",
        t.elapsed()
    );
    path
}

fn ids(rows: &[Record]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn turso_vectors(c: &mut Criterion) {
    let rt = runtime();
    let n = vector_count();
    let path = vector_db(&rt, n);
    let (engine, driver) = rt.block_on(engine_on(&path, &embedding_schema()));
    let db = engine.default_session();
    let raw_db = rt
        .block_on(libsql::Builder::new_local(&path).build())
        .unwrap();
    let raw = raw_db.connect().unwrap();

    let mut rng = Lcg(2024);
    let target: Vec<f64> = random_vector(&mut rng)
        .into_iter()
        .map(|v| match v {
            Value::Float(f) => f,
            other => panic!("{other:?}"),
        })
        .collect();
    let exact = Query::new("passage")
        .select(["id", "category"])
        .nearest(Nearest::new("embedding", target.clone(), K));
    let approximate = Query::new("passage")
        .select(["id", "category"])
        .nearest(Nearest::new("embedding", target, K).approximate());
    let st_exact = compiled(&engine, &driver, &exact);
    let st_approx = compiled(&engine, &driver, &approximate);
    assert!(st_approx.sql.contains("vector_top_k"), "{}", st_approx.sql);
    assert!(!st_exact.sql.contains("vector_top_k"), "{}", st_exact.sql);
    let p_exact = raw_params(&st_exact.params);
    let p_approx = raw_params(&st_approx.params);

    rt.block_on(async {
        let e = db.find(&exact).await.unwrap();
        let a = db.find(&approximate).await.unwrap();
        assert_eq!(e.len(), 10);
        let exact_ids = ids(&e);
        let found = ids(&a).iter().filter(|id| exact_ids.contains(id)).count();
        eprintln!(
            "turso_vectors: {n} x {DIMENSIONS}: approximate top-{K} recall {found}/{K} against the exact answer"
        );
        assert_eq!(raw_query(&raw, &st_exact.sql, p_exact.clone()).await.len(), 10);
        let ran = db.explain(&exact).await.unwrap();
        assert_eq!(ran[0].detail.split(" -- ").next(), Some(st_exact.sql.as_str()), "both sides run the same SQL");
        eprintln!("turso_vectors: exact SQL: {}", st_exact.sql);
        eprintln!("turso_vectors: approximate SQL: {}", st_approx.sql);
    });

    let mut g = c.benchmark_group("turso_vectors");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("top10_exact/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&exact)).await.unwrap() });
    });
    g.bench_function("top10_exact/libsql", |b| {
        b.to_async(&rt).iter_batched(
            || p_exact.clone(),
            |p| raw_query(&raw, black_box(&st_exact.sql), p),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("top10_index/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&approximate)).await.unwrap() });
    });
    g.bench_function("top10_index/libsql", |b| {
        b.to_async(&rt).iter_batched(
            || p_approx.clone(),
            |p| raw_query(&raw, black_box(&st_approx.sql), p),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, turso_read, turso_vectors);
criterion_main!(benches);
