//! # objectql quickstart
//!
//! Define two objects, insert records, and read them back with filters,
//! sorting, paging, an aggregation and an `expand` — all through one
//! backend-neutral API. The datasource here is the embedded in-memory
//! driver, so no server is needed:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Swap the URL for another driver's and nothing else changes.

use objectql::{Engine, Query, Record, field, record};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> objectql::Result<()> {
    // 1. An engine with one datasource, named `default`.
    let engine = Engine::new();
    engine.add_datasource("default", "memory://").await?;

    // 2. Object schemas, in the ObjectStack JSON form. `owner` is a lookup
    //    into `person`, so it can be expanded.
    engine
        .register_json(&json!({
            "name": "person",
            "fields": {
                "name": {"type": "text", "required": true},
                "team": {"type": "select"}
            }
        }))
        .await?;
    engine
        .register_json(&json!({
            "name": "task",
            "fields": {
                "title": {"type": "text", "required": true},
                "status": {"type": "select", "defaultValue": "open"},
                "points": {"type": "integer"},
                "due": {"type": "date"},
                "owner": {"type": "lookup", "reference": "person"}
            }
        }))
        .await?;

    // 3. Writes. Ids are generated (UUIDv7) when absent; defaults applied.
    let db = engine.default_session();
    db.insert_many(
        "person",
        vec![
            record! {"id" => "ada", "name" => "Ada", "team" => "core"},
            record! {"id" => "bob", "name" => "Bob", "team" => "web"},
        ],
    )
    .await?;
    db.insert_many(
        "task",
        vec![
            record! {"title" => "Design the QueryAST", "points" => 8, "due" => "2026-03-02", "owner" => "ada"},
            record! {"title" => "Write the planner", "points" => 13, "due" => "2026-03-09", "owner" => "ada"},
            record! {"title" => "Landing page", "points" => 3, "status" => "done", "owner" => "bob"},
            record! {"title" => "Triage bugs", "points" => 2},
        ],
    )
    .await?;

    // 4. A filtered, sorted, paged query with the Rust builder…
    let open = Query::new("task")
        .select(["title", "points", "due"])
        .filter(field("status").eq("open").and(field("points").gte(3)))
        .desc("points")
        .limit(10);
    print("open tasks worth 3+ points", &db.find(&open).await?);

    // …and the same kind of query as JSON, in the array filter form, with
    // the related owner expanded from `person`.
    let q = Query::parse(
        r#"{
            "object": "task",
            "fields": ["title", "owner"],
            "where": ["and", ["title", "icontains", "the"], ["owner", "is_not_null"]],
            "orderBy": [{"field": "title", "order": "asc"}],
            "expand": {"owner": {"fields": ["name", "team"]}}
        }"#,
    )?;
    print("tasks with their owner expanded", &db.find(&q).await?);

    // 5. An aggregation: points per status, biggest first.
    let per_status = Query::new("task")
        .group_by("status")
        .count_as("tasks")
        .agg(objectql::AggFunction::Sum, "points", "points")
        .desc("points");
    print("points per status", &db.find(&per_status).await?);

    // 6. Mistakes are typed errors that point at the problem.
    let bad =
        Query::parse(r#"{"object": "task", "where": {"$or": [{"points": {"$gt": "lots"}}]}}"#)?;
    if let Err(e) = db.find(&bad).await {
        println!("\na bad query is refused: {e}");
    }
    Ok(())
}

fn print(title: &str, rows: &[Record]) {
    println!("\n{title}:");
    for r in rows {
        let fields: Vec<String> = r.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {}", fields.join("  "));
    }
}
