#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The MongoDB driver against the raw `mongodb` crate, measured in the same
//! run, and the pipeline compiler on its own.
//!
//! - `mongo_compile`: validate + plan + compile a typical query (a filter
//!   with a negation and a text match, a sort, a page, a projection) into a
//!   pipeline, and the compile step alone — no I/O.
//! - `mongo_read`: a point lookup by primary key and a read of all 10,000
//!   documents of a collection, through the `Engine` (`find_one` / `find`)
//!   against the raw driver running the same pipeline and collecting every
//!   document.
//!
//! Needs a server: `OBJECTQL_MONGO_URL` (e.g. the one `scripts/mongo.sh`
//! starts, or a real MongoDB). Run with
//! `cargo bench -p objectql-driver-mongo --bench mongo`; see
//! `benches/README.md` § MongoDB.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::TryStreamExt;
use objectql::{Driver, Engine, Query, Record, ResolveContext, Value, field};
use objectql_benches::{Lcg, interleaved, runtime};
use objectql_driver_mongo::MongoDriver;
use objectql_driver_mongo::mongodb::bson::Document;
use objectql_planner::mongo::{MongoCompiler, Pipeline};
use objectql_query_ast::validate_query;
use serde_json::json;

const READ_ROWS: usize = 10_000;

fn url() -> String {
    std::env::var("OBJECTQL_MONGO_URL").unwrap_or_else(|_| {
        panic!("OBJECTQL_MONGO_URL is not set: start a server (scripts/mongo.sh) or point it at MongoDB")
    })
}

fn url_for(db: &str) -> String {
    let u = url();
    let (scheme, rest) = u.split_once("://").unwrap();
    let (hosts, query) = match rest.find(['/', '?']) {
        Some(i) => {
            let tail = &rest[i..];
            (&rest[..i], tail.find('?').map_or("", |q| &tail[q..]))
        }
        None => (rest, ""),
    };
    format!("{scheme}://{hosts}/{db}{query}")
}

fn doc_schema() -> serde_json::Value {
    json!({"name": "doc", "fields": {
        "id": {"type": "text"},
        "n": {"type": "integer"},
        "category": {"type": "text"},
        "title": {"type": "text"}
    }})
}

/// The pipeline the session sends for `query`.
fn compiled(engine: &Engine, driver: &MongoDriver, query: &Query) -> Pipeline {
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
    assert!(planned.residual.is_none(), "MongoDB runs the whole query");
    MongoCompiler::new(&catalog).find(&planned.pushed).unwrap()
}

fn typical() -> Query {
    Query::new("doc")
        .filter(
            field("n")
                .gte(10)
                .and(field("category").ne("c3"))
                .and(field("title").contains("number 1")),
        )
        .desc("n")
        .limit(20)
        .offset(40)
        .select(["id", "n", "title"])
}

fn mongo_compile(c: &mut Criterion) {
    let rt = runtime();
    let catalog = rt.block_on(async {
        let engine = Engine::new();
        engine.add_datasource("default", "memory://").await.unwrap();
        engine.register_json(&doc_schema()).await.unwrap();
        engine.catalog().unwrap()
    });
    let q = typical();
    let typed = validate_query(&q, &catalog, &ResolveContext::now()).unwrap();
    let mut g = c.benchmark_group("mongo_compile");
    g.bench_function("validate_and_compile", |b| {
        b.iter(|| {
            let typed = validate_query(black_box(&q), &catalog, &ResolveContext::now()).unwrap();
            MongoCompiler::new(&catalog).find(&typed).unwrap()
        });
    });
    g.bench_function("compile", |b| {
        b.iter(|| {
            MongoCompiler::new(&catalog)
                .find(black_box(&typed))
                .unwrap()
        });
    });
    g.finish();
}

async fn raw_read(
    coll: &objectql_driver_mongo::mongodb::Collection<Document>,
    p: &Pipeline,
) -> Vec<Document> {
    coll.aggregate(p.stages.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn mongo_read(c: &mut Criterion) {
    let rt = runtime();
    let db_name = format!("oq_bench_{}", std::process::id());
    let (engine, driver) = rt.block_on(async {
        let driver = Arc::new(MongoDriver::connect(&url_for(&db_name)).await.unwrap());
        let engine = Engine::new();
        engine.add_driver("default", driver.clone()).unwrap();
        engine.register_json(&doc_schema()).await.unwrap();
        (engine, driver)
    });
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
    let coll = driver.database().collection::<Document>("doc");

    let q_point = Query::new("doc").filter(field("id").eq("doc-006666"));
    let p_point = compiled(&engine, &driver, &q_point.clone().limit(1));
    let q_scan = Query::new("doc");
    let p_scan = compiled(&engine, &driver, &q_scan);
    eprintln!("mongo_read: point lookup pipeline: {:?}", p_point.stages);
    rt.block_on(async {
        assert!(db.find_one(&q_point).await.unwrap().is_some());
        assert_eq!(raw_read(&coll, &p_point).await.len(), 1);
        assert_eq!(db.find(&q_scan).await.unwrap().len(), READ_ROWS);
        assert_eq!(raw_read(&coll, &p_scan).await.len(), READ_ROWS);
    });

    let mut g = c.benchmark_group("mongo_read");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("point_lookup/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find_one(black_box(&q_point)).await.unwrap().unwrap() });
    });
    g.bench_function("point_lookup/mongodb", |b| {
        b.to_async(&rt)
            .iter(|| raw_read(&coll, black_box(&p_point)));
    });
    g.bench_function("read_10k/objectql", |b| {
        b.to_async(&rt)
            .iter(|| async { db.find(black_box(&q_scan)).await.unwrap() });
    });
    g.bench_function("read_10k/mongodb", |b| {
        b.to_async(&rt).iter(|| raw_read(&coll, black_box(&p_scan)));
    });
    g.finish();
    interleaved(
        &rt,
        "mongo_read/point_lookup",
        "mongodb",
        2_000,
        || async {
            db.find_one(&q_point).await.unwrap().unwrap();
        },
        || async {
            raw_read(&coll, &p_point).await;
        },
    );
    interleaved(
        &rt,
        "mongo_read/read_10k",
        "mongodb",
        20,
        || async {
            db.find(&q_scan).await.unwrap();
        },
        || async {
            raw_read(&coll, &p_scan).await;
        },
    );
    rt.block_on(async { driver.database().drop().await })
        .unwrap();
}

criterion_group!(benches, mongo_compile, mongo_read);
criterion_main!(benches);
