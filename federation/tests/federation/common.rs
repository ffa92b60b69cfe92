//! Fixtures shared by the federation tests.

use std::sync::Arc;

use objectql_driver::{Cx, Driver};
use objectql_query_ast::{Catalog, ObjectSchema, Record, Value};

/// The object every rule runs on: one column per storage type a filter can
/// compare, and rows that put NULL, trailing spaces, case, LIKE
/// metacharacters and calendar edges in each.
pub fn rules_schema(datasource: &str) -> ObjectSchema {
    ObjectSchema::from_json(&serde_json::json!({
        "name": "t",
        "datasource": datasource,
        "fields": {
            "n": {"type": "integer"},
            "f": {"type": "number"},
            "s": {"type": "text"},
            "b": {"type": "boolean"},
            "d": {"type": "date"},
            "ts": {"type": "datetime"},
            "dec": {"type": "currency", "precision": 10, "scale": 2}
        }
    }))
    .expect("schema")
}

fn row(pairs: &[(&str, Value)]) -> Record {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn s(v: &str) -> Value {
    Value::from(v)
}

/// The rows of `t`.
pub fn rules_rows() -> Vec<Record> {
    let null = Value::Null;
    vec![
        row(&[
            ("id", s("r01")),
            ("n", 1.into()),
            ("f", 1.5.into()),
            ("s", s("a")),
            ("b", true.into()),
            ("d", s("2026-03-01")),
            ("ts", s("2026-03-01T00:00:00Z")),
            ("dec", s("1.50")),
        ]),
        row(&[
            ("id", s("r02")),
            ("n", 2.into()),
            ("f", (-2.25).into()),
            ("s", s("a ")),
            ("b", false.into()),
            ("d", s("2026-02-28")),
            ("ts", s("2026-03-01T23:59:59.999Z")),
            ("dec", s("2.00")),
        ]),
        row(&[
            ("id", s("r03")),
            ("n", 3.into()),
            ("f", 0.0.into()),
            ("s", s("A")),
            ("b", null.clone()),
            ("d", s("2024-02-29")),
            ("ts", s("2026-02-28T12:00:00Z")),
            ("dec", s("-1.25")),
        ]),
        row(&[
            ("id", s("r04")),
            ("n", null.clone()),
            ("f", null.clone()),
            ("s", null.clone()),
            ("b", null.clone()),
            ("d", null.clone()),
            ("ts", null.clone()),
            ("dec", null.clone()),
        ]),
        row(&[
            ("id", s("r05")),
            ("n", 2.into()),
            ("f", 1.5.into()),
            ("s", s("ab%c")),
            ("b", true.into()),
            ("d", s("1970-01-01")),
            ("ts", s("1970-01-01T00:00:00Z")),
            ("dec", s("0.00")),
        ]),
        row(&[
            ("id", s("r06")),
            ("n", (-5).into()),
            ("f", 1e300.into()),
            ("s", s("_x")),
            ("b", false.into()),
            ("d", s("2000-02-29")),
            ("ts", s("2000-01-01T00:00:00.000001Z")),
            ("dec", s("99999.99")),
        ]),
        row(&[
            ("id", s("r07")),
            ("n", 0.into()),
            ("f", null.clone()),
            ("s", s("é")),
            ("b", true.into()),
            ("d", s("2026-03-02")),
            ("ts", null.clone()),
            ("dec", s("1.5")),
        ]),
        row(&[
            ("id", s("r08")),
            ("n", null.clone()),
            ("f", 3.0.into()),
            ("s", s("a\\b")),
            ("b", null.clone()),
            ("d", s("2026-03-01")),
            ("ts", s("2026-03-01T12:00:00Z")),
            ("dec", null.clone()),
        ]),
        row(&[
            ("id", s("r09")),
            ("n", 1.into()),
            ("f", 2.0.into()),
            ("s", s("%")),
            ("b", false.into()),
            ("d", null.clone()),
            ("ts", s("2026-03-02T00:00:00Z")),
            ("dec", s("-0.01")),
        ]),
        row(&[
            ("id", s("r10")),
            ("n", 4.into()),
            ("f", (-0.5).into()),
            ("s", s("abc")),
            ("b", true.into()),
            ("d", s("2026-12-31")),
            ("ts", s("2026-12-31T23:59:59Z")),
            ("dec", s("10")),
        ]),
        row(&[
            ("id", s("r11")),
            ("n", 3.into()),
            ("f", 7.25.into()),
            ("s", s("Ab")),
            ("b", null.clone()),
            ("d", s("2026-01-01")),
            ("ts", s("2026-01-01T00:00:00Z")),
            ("dec", s("3.33")),
        ]),
        // U+212A KELVIN SIGN: Unicode case folding makes it `k`, ASCII folding does not.
        row(&[
            ("id", s("r12")),
            ("n", 2.into()),
            ("f", 0.25.into()),
            ("s", s("\u{212A}")),
            ("b", false.into()),
            ("d", s("2026-03-01")),
            ("ts", s("2026-03-01T00:00:00.5Z")),
            ("dec", s("2.5")),
        ]),
    ]
}

/// Creates `schema`'s storage on `driver` and inserts `rows` (validated
/// like the engine does).
pub async fn load(driver: &Arc<dyn Driver>, catalog: &Catalog, object: &str, rows: Vec<Record>) {
    let schema = catalog.get(object).expect("object");
    driver.sync_schema(schema).await.expect("sync schema");
    let typed = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            objectql_query_ast::validate_record(
                r,
                schema,
                objectql_query_ast::WriteMode::Insert,
                &objectql_query_ast::Path::root("rows").index(i),
            )
            .expect("valid row")
        })
        .collect();
    driver
        .insert(Cx::new(catalog), object, typed)
        .await
        .expect("insert");
}

/// A fresh memory driver.
pub fn memory() -> Arc<dyn Driver> {
    Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://").expect("memory driver"))
}

/// A SQLite driver over a fresh file in `dir`.
pub async fn sqlite(dir: &std::path::Path, name: &str) -> Arc<dyn Driver> {
    let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
    Arc::new(
        objectql_driver_sqlite::SqliteDriver::connect(&url)
            .await
            .expect("sqlite driver"),
    )
}

/// The values of column `col` of `rows`, rendered as JSON text.
pub fn column(rows: &[Record], col: &str) -> Vec<String> {
    rows.iter()
        .map(|r| {
            r.get(col)
                .map(|v| v.to_json().to_string())
                .unwrap_or_default()
        })
        .collect()
}
