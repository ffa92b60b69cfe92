//! # Federation: one SQL query across two datasources
//!
//! Customers live in an embedded SQLite file, their orders in memory. One
//! SQL statement joins them: each object is a DataFusion table that pushes
//! its filters, projection and limit to its own driver, and DataFusion
//! joins the two streams. No server is needed:
//!
//! ```sh
//! cargo run --example federation --features federation
//! ```

use objectql::{Engine, Value, record};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> objectql::Result<()> {
    // 1. Two datasources: a SQLite file (in a scratch directory) and memory.
    let dir = std::env::temp_dir().join(format!("objectql-federation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| objectql::Error::config(e.to_string()))?;
    let url = format!("sqlite://{}", dir.join("crm.db").display());
    let engine = Engine::new();
    engine.add_datasource("lite", &url).await?;
    engine.add_datasource("mem", "memory://").await?;

    // 2. One object in each.
    engine
        .register_json(&json!({
            "name": "customers",
            "datasource": "lite",
            "fields": {"name": {"type": "text", "required": true}, "country": {"type": "text"}}
        }))
        .await?;
    engine
        .register_json(&json!({
            "name": "orders",
            "datasource": "mem",
            "fields": {
                "customer": {"type": "lookup", "reference": "customers"},
                "total": {"type": "currency", "scale": 2},
                "status": {"type": "select"}
            }
        }))
        .await?;

    let db = engine.default_session();
    db.upsert(
        "customers",
        vec![
            record! {"id" => "c1", "name" => "Ada", "country" => "UK"},
            record! {"id" => "c2", "name" => "Grace", "country" => "US"},
            record! {"id" => "c3", "name" => "Linus"},
        ],
        &[],
    )
    .await?;
    db.insert_many(
        "orders",
        vec![
            record! {"customer" => "c1", "total" => "120.50", "status" => "paid"},
            record! {"customer" => "c1", "total" => "30.00", "status" => "open"},
            record! {"customer" => "c2", "total" => "99.99", "status" => "paid"},
            record! {"customer" => "c3", "total" => "5.00", "status" => "paid"},
        ],
    )
    .await?;

    // 3. One SQL statement over both. `country <> 'US'` is pushed to SQLite
    //    as `country $ne 'US' AND country IS NOT NULL`: SQL's `<>` never
    //    matches NULL, so Linus (no country) is not in the answer.
    let sql = "SELECT c.name, SUM(o.total) AS paid
               FROM lite.customers c JOIN mem.orders o ON o.customer = c.id
               WHERE o.status = 'paid' AND c.country <> 'US'
               GROUP BY c.name ORDER BY c.name";
    let rows = db.sql_rows(sql).await?;
    for r in &rows {
        println!("{} paid {}", r["name"], r["paid"]);
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], Value::from("Ada"));

    // 4. Where each part runs, and the rows each datasource shipped.
    println!("\n{}", db.explain_sql(sql, true).await?);

    engine.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
