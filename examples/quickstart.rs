//! # objectql quickstart
//!
//! Define two objects, write records, and read them back with filters,
//! sorting, paging, an aggregation and an `expand` — all through one
//! backend-neutral API. The datasource is an embedded SQLite file, so no
//! server is needed and the data persists between runs:
//!
//! ```sh
//! cargo run --example quickstart                      # sqlite://quickstart.db
//! OBJECTQL_URL=memory:// cargo run --example quickstart
//! ```
//!
//! Swap the URL for another driver's and nothing else changes.

use objectql::{Engine, Query, Record, field, record};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> objectql::Result<()> {
    // 1. An engine with one datasource, named `default`.
    let url = std::env::var("OBJECTQL_URL").unwrap_or_else(|_| "sqlite://quickstart.db".to_owned());
    let engine = Engine::new();
    engine.add_datasource("default", &url).await?;

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
    engine
        .register_json(
            &json!({"name": "run", "fields": {"at": {"type": "datetime", "required": true}}}),
        )
        .await?;

    // 3. Writes. `upsert` keeps the example repeatable on a persistent
    //    database; `insert` generates ids (UUIDv7) and applies defaults.
    let db = engine.default_session();
    let now = objectql::Value::DateTime(std::time::SystemTime::now().into());
    db.insert("run", record! {"at" => now}).await?;
    let runs = db.count("run", None).await?;
    println!("{url}: this database has seen {runs} run(s) of the quickstart");
    db.upsert(
        "person",
        vec![
            record! {"id" => "ada", "name" => "Ada", "team" => "core"},
            record! {"id" => "bob", "name" => "Bob", "team" => "web"},
        ],
        &[],
    )
    .await?;
    db.upsert(
        "task",
        vec![
            record! {"id" => "t1", "title" => "Design the QueryAST", "status" => "open", "points" => 8, "due" => "2026-03-02", "owner" => "ada"},
            record! {"id" => "t2", "title" => "Write the planner", "status" => "open", "points" => 13, "due" => "2026-03-09", "owner" => "ada"},
            record! {"id" => "t3", "title" => "Landing page", "status" => "done", "points" => 3, "owner" => "bob"},
            record! {"id" => "t4", "title" => "Triage bugs", "status" => "open", "points" => 2},
        ],
        &[],
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
