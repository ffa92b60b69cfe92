//! Reading the shape of a table objectql did not create, so an existing
//! database can be used without DDL.

use objectql_planner::sql::{MySqlDialect, Statement};
use objectql_query_ast::{Error, Field, ObjectSchema, Result, Value};
use sqlx::mysql::MySqlConnection;

use crate::driver::{fetch_values, text_of};

/// One row of `information_schema.COLUMNS`.
struct ColumnInfo {
    name: String,
    data_type: String,
    column_type: String,
    max_length: Option<i64>,
    precision: Option<i64>,
    scale: Option<i64>,
    nullable: bool,
}

/// The objectql field for a MySQL column, or `None` when objectql has no
/// field type that holds it exactly. `json`: a MariaDB LONGTEXT column
/// with a `JSON_VALID` check (MariaDB's `JSON` alias).
fn field_for(c: &ColumnInfo, json: bool) -> Option<Field> {
    let u32_of = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    let mut f = match c.data_type.as_str() {
        _ if json => Field::new(&c.name, "json"),
        "varchar" | "char" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => {
            let mut f = Field::new(&c.name, "text");
            if matches!(c.data_type.as_str(), "varchar" | "char") {
                f.max_length = u32_of(c.max_length);
            }
            f
        }
        // MySQL's BOOLEAN is TINYINT(1).
        "tinyint" if c.column_type.starts_with("tinyint(1)") => Field::new(&c.name, "boolean"),
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "year" => {
            Field::new(&c.name, "integer")
        }
        "double" | "float" | "real" => Field::new(&c.name, "float"),
        "decimal" | "numeric" => {
            let mut f = Field::new(&c.name, "decimal");
            f.precision = Some(u32_of(c.precision).unwrap_or(10));
            f.scale = Some(u32_of(c.scale).unwrap_or(0));
            f
        }
        "date" => Field::new(&c.name, "date"),
        "datetime" | "timestamp" => Field::new(&c.name, "datetime"),
        "time" => Field::new(&c.name, "time"),
        "json" => Field::new(&c.name, "json"),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            Field::new(&c.name, "binary")
        }
        _ => return None,
    };
    f.name.clone_from(&c.name);
    Some(f)
}

pub(crate) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// The schema of table `table` in the connection's database, or `None`
/// when there is no such table.
pub(crate) async fn table(
    conn: &mut MySqlConnection,
    dialect: &MySqlDialect,
    table: &str,
) -> Result<Option<ObjectSchema>> {
    let name = || vec![Value::String(table.to_owned())];
    let rows = fetch_values(
        conn,
        Statement::new(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), \
             CAST(NUMERIC_PRECISION AS SIGNED), CAST(NUMERIC_SCALE AS SIGNED), IS_NULLABLE \
             FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            name(),
        ),
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let [n, dt, ct, len, p, s, nullable] = r.as_slice() else {
            return Err(Error::internal(
                "information_schema.COLUMNS row of the wrong width",
            ));
        };
        columns.push(ColumnInfo {
            name: text_of(n)?,
            data_type: text_of(dt)?.to_ascii_lowercase(),
            column_type: text_of(ct)?.to_ascii_lowercase(),
            max_length: int_of(len),
            precision: int_of(p),
            scale: int_of(s),
            nullable: text_of(nullable)? == "YES",
        });
    }
    // Single-column keys: (index name, unique, column).
    let keys = fetch_values(
        conn,
        Statement::new(
            "SELECT INDEX_NAME, CAST(MAX(NON_UNIQUE) AS SIGNED), MIN(COLUMN_NAME) \
             FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
             GROUP BY INDEX_NAME HAVING COUNT(*) = 1",
            name(),
        ),
    )
    .await?;
    let mut single = Vec::with_capacity(keys.len());
    for k in &keys {
        let [index, non_unique, column] = k.as_slice() else {
            return Err(Error::internal(
                "information_schema.STATISTICS row of the wrong width",
            ));
        };
        single.push((
            text_of(index)?,
            int_of(non_unique) == Some(0),
            text_of(column)?,
        ));
    }
    // MariaDB's JSON is LONGTEXT with a JSON_VALID check.
    let mut json_columns = Vec::new();
    if dialect.mariadb {
        let checks = fetch_values(
            conn,
            Statement::new(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                name(),
            ),
        )
        .await?;
        for c in checks.iter().filter_map(|r| r.first()) {
            let clause = text_of(c)?;
            if let Some(col) = clause
                .strip_prefix("json_valid(`")
                .and_then(|rest| rest.strip_suffix("`)"))
            {
                json_columns.push(col.replace("``", "`"));
            }
        }
    }
    let pk = single
        .iter()
        .find(|(index, _, _)| index == "PRIMARY")
        .map(|(_, _, c)| c.clone())
        .ok_or_else(|| {
            Error::unsupported(
                format!("table `{table}` without a single-column primary key"),
                "mysql",
            )
        })?;
    let mut schema = ObjectSchema::new(table).primary_key(pk.clone());
    for c in &columns {
        let json = c.data_type == "longtext" && json_columns.contains(&c.name);
        let Some(mut f) = field_for(c, json) else {
            return Err(Error::unsupported(
                format!(
                    "column `{}` of type {} (table `{table}`)",
                    c.name, c.column_type
                ),
                "mysql",
            ));
        };
        f.required = !c.nullable;
        let keyed = |unique: bool| {
            single
                .iter()
                .any(|(index, u, col)| index != "PRIMARY" && *u == unique && *col == c.name)
        };
        f.unique = c.name != pk && keyed(true);
        f.index = c.name != pk && !f.unique && keyed(false);
        schema = schema.field(f);
    }
    Ok(Some(schema))
}
