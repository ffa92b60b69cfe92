//! Raw values ↔ libsql values.
//!
//! The SQL compiler (`objectql_planner::sql`) owns the *type mapping*: it
//! encodes every typed value into one of the raw kinds SQLite stores
//! (NULL, INTEGER, REAL, TEXT, BLOB) and decodes them back with the column's
//! storage type — decimals as scaled integers, datetimes as fixed-width UTC
//! text, booleans as 0/1, JSON as text. This module only moves raw values
//! across the libsql boundary.

use objectql_query_ast::{Error, Result, Value};

/// A raw (already encoded) value as libsql carries it.
pub(crate) fn to_raw(v: Value) -> Result<libsql::Value> {
    Ok(match v {
        Value::Null => libsql::Value::Null,
        Value::Int(i) => libsql::Value::Integer(i),
        Value::Bool(b) => libsql::Value::Integer(i64::from(b)),
        Value::Float(f) => libsql::Value::Real(f),
        Value::String(s) => libsql::Value::Text(s),
        Value::Bytes(b) => libsql::Value::Blob(b),
        other => {
            return Err(Error::internal(format!(
                "a {} value reached SQLite without being encoded",
                other.type_name()
            )));
        }
    })
}

/// A libsql value as a raw value (decoded later with the column's type).
pub(crate) fn from_raw(v: libsql::Value) -> Value {
    match v {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(i) => Value::Int(i),
        libsql::Value::Real(f) => Value::Float(f),
        libsql::Value::Text(s) => Value::String(s),
        libsql::Value::Blob(b) => Value::Bytes(b),
    }
}
