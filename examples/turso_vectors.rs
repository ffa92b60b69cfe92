//! # Vector search on Turso / libSQL
//!
//! Stores articles with an embedding (`vector` field, libSQL's native
//! `F32_BLOB` column with a `libsql_vector_idx` index) and asks for the
//! nearest neighbours of a query vector — exactly, combined with a `where`
//! filter and a projection, and approximately through the index.
//!
//! ```sh
//! cargo run -p objectql --features turso --example turso_vectors
//! OBJECTQL_URL=libsql:file:vectors.db cargo run -p objectql --features turso --example turso_vectors
//! OBJECTQL_URL='libsql://my-db.turso.io?auth_token=…' cargo run -p objectql --features turso --example turso_vectors
//! ```
//!
//! The default is an in-memory database (`libsql::memory:`): no server.
//! Real embeddings have hundreds of dimensions; these have four so the
//! distances can be checked by hand.

use objectql::{Engine, Nearest, Query, Value, VectorMetric, field, record};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> objectql::Result<()> {
    let url = std::env::var("OBJECTQL_URL").unwrap_or_else(|_| "libsql::memory:".to_owned());
    let engine = Engine::new();
    engine.add_datasource("default", &url).await?;
    engine
        .register_json(&json!({
            "name": "article",
            "fields": {
                "title": {"type": "text", "required": true, "unique": true},
                "topic": {"type": "select"},
                // Cosine distance, and an approximate-nearest-neighbour index.
                "embedding": {"type": "vector", "dimensions": 4, "metric": "cosine", "index": true}
            }
        }))
        .await?;
    let db = engine.default_session();

    // Idempotent: a second run on a file finds the rows already there.
    if db.count("article", None).await? == 0 {
        let articles = [
            ("Sourdough at home", "food", [0.9, 0.1, 0.0, 0.0]),
            ("Knife skills", "food", [0.7, 0.3, 0.0, 0.0]),
            ("Trail running", "sport", [0.0, 0.2, 0.9, 0.1]),
            ("Marathon pacing", "sport", [0.0, 0.1, 1.0, 0.0]),
            ("Bread and running", "sport", [0.6, 0.0, 0.6, 0.0]),
            ("Rust async", "tech", [0.0, 0.0, 0.1, 1.0]),
        ];
        let records = articles
            .iter()
            .map(|(title, topic, v)| {
                record! {
                    "title" => *title,
                    "topic" => *topic,
                    "embedding" => Value::Array(v.iter().map(|x| Value::Float(*x)).collect()),
                }
            })
            .collect();
        db.insert_many("article", records).await?;
    }

    // "Something about baking": the three nearest articles, any topic.
    let baking = [1.0, 0.0, 0.0, 0.0];
    let nearest = Query::new("article")
        .select(["title", "topic"])
        .nearest(Nearest::new("embedding", baking, 3));
    println!("nearest to {baking:?} (cosine distance):");
    for row in db.find(&nearest).await? {
        println!(
            "  {:<20} {:<6} {}",
            str_of(&row["title"]),
            str_of(&row["topic"]),
            distance(&row)
        );
    }

    // The same question inside a filter, by Euclidean distance.
    let sporty = Query::new("article")
        .select(["title"])
        .filter(field("topic").eq("sport"))
        .nearest(Nearest::new("embedding", baking, 2).metric(VectorMetric::L2));
    println!("nearest sport articles (L2 distance):");
    for row in db.find(&sporty).await? {
        println!("  {:<20} {}", str_of(&row["title"]), distance(&row));
    }

    // Approximate: answered from the vector index (`vector_top_k`); on big
    // tables much faster, and it may miss some of the true neighbours.
    let quick = Query::new("article")
        .select(["title"])
        .nearest(Nearest::new("embedding", [0.0, 0.0, 1.0, 0.0], 2).approximate());
    println!("approximately nearest to a running query:");
    for row in db.find(&quick).await? {
        println!("  {:<20} {}", str_of(&row["title"]), distance(&row));
    }
    for step in db.explain(&quick).await? {
        if step.operation == "sql" {
            println!("  ran: {}", step.detail);
        }
    }
    engine.close().await
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn distance(row: &objectql::Record) -> String {
    match row.get("_distance") {
        Some(Value::Float(d)) => format!("{d:.4}"),
        other => format!("{other:?}"),
    }
}
