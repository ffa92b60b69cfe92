//! Reading the shape of a table objectql did not create, so an existing
//! database can be used without DDL.

use objectql_query_ast::{Error, Field, ObjectSchema, Result};
use sqlx::postgres::PgConnection;

use crate::error::from_sqlx;

/// The objectql field for a PostgreSQL column type, or `None` when objectql
/// has no field type that holds it exactly.
fn field_for(
    name: &str,
    data_type: &str,
    max_length: Option<i32>,
    precision: Option<i32>,
    scale: Option<i32>,
) -> Option<Field> {
    let u32_of = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    let f = match data_type {
        "text" | "character varying" | "character" | "citext" | "uuid" => {
            let mut f = Field::new(name, "text");
            f.max_length = u32_of(max_length);
            f
        }
        "bigint" | "integer" | "smallint" => Field::new(name, "integer"),
        "double precision" | "real" => Field::new(name, "float"),
        "numeric" => {
            let mut f = Field::new(name, "decimal");
            // An unconstrained numeric has no fixed scale: the widest objectql holds.
            f.precision = Some(u32_of(precision).unwrap_or(28));
            f.scale = Some(u32_of(scale).unwrap_or(10));
            f
        }
        "boolean" => Field::new(name, "boolean"),
        "date" => Field::new(name, "date"),
        "timestamp with time zone" | "timestamp without time zone" => Field::new(name, "datetime"),
        "time without time zone" => Field::new(name, "time"),
        "json" | "jsonb" => Field::new(name, "json"),
        "bytea" => Field::new(name, "binary"),
        _ => return None,
    };
    Some(f)
}

/// `column_name, data_type, character_maximum_length, numeric_precision,
/// numeric_scale, is_nullable` from `information_schema.columns`.
type ColumnRow = (
    String,
    String,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    String,
);

/// The schema of table `table` in the connection's current schema, or
/// `None` when there is no such table.
pub(crate) async fn table(conn: &mut PgConnection, table: &str) -> Result<Option<ObjectSchema>> {
    let columns: Vec<ColumnRow> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, character_maximum_length::int4, \
             numeric_precision::int4, numeric_scale::int4, is_nullable::text \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
             ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| from_sqlx(e, "introspecting a table"))?;
    if columns.is_empty() {
        return Ok(None);
    }
    // Single-column primary key and unique constraints.
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT tc.constraint_type::text, min(kcu.column_name)::text \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema \
         WHERE tc.table_schema = current_schema() AND tc.table_name = $1 \
           AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') \
         GROUP BY tc.constraint_name, tc.constraint_type \
         HAVING count(*) = 1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| from_sqlx(e, "introspecting a table"))?;
    let pk = keys
        .iter()
        .find(|(t, _)| t == "PRIMARY KEY")
        .map(|(_, c)| c.clone())
        .ok_or_else(|| {
            Error::unsupported(
                format!("table `{table}` without a single-column primary key"),
                "postgres",
            )
        })?;
    let mut schema = ObjectSchema::new(table).primary_key(pk.clone());
    for (name, data_type, max_length, precision, scale, nullable) in columns {
        let Some(mut f) = field_for(&name, &data_type, max_length, precision, scale) else {
            return Err(Error::unsupported(
                format!("column `{name}` of type {data_type} (table `{table}`)"),
                "postgres",
            ));
        };
        f.required = nullable == "NO";
        f.unique = name != pk && keys.iter().any(|(t, c)| t == "UNIQUE" && *c == name);
        schema = schema.field(f);
    }
    Ok(Some(schema))
}
