//! Binding values as typed PostgreSQL parameters and decoding result
//! columns by their PostgreSQL type.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use objectql_query_ast::{DriverErrorKind, Error, Result, StorageType, Value};
use rust_decimal::Decimal;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Column, Row, TypeInfo};

fn bind_err(e: &(dyn std::error::Error + Send + Sync), index: usize) -> Error {
    Error::driver(
        DriverErrorKind::Other,
        format!("cannot bind parameter ${}: {e}", index + 1),
    )
}

/// Binds `params` in order. A NULL takes the type of the column it stands
/// for (`types`), so the server never has to guess (and never refuses a
/// `text` NULL for a `bigint` column).
pub(crate) fn arguments(params: Vec<Value>, types: &[Option<StorageType>]) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    args.reserve(params.len(), params.len() * 8);
    for (i, v) in params.into_iter().enumerate() {
        let st = types.get(i).copied().flatten();
        add(&mut args, v, st).map_err(|e| bind_err(&*e, i))?;
    }
    Ok(args)
}

type AddResult = std::result::Result<(), sqlx::error::BoxDynError>;

fn add(args: &mut PgArguments, v: Value, st: Option<StorageType>) -> AddResult {
    match v {
        Value::Null => add_null(args, st),
        Value::Bool(b) => args.add(b),
        Value::Int(i) => args.add(i),
        Value::Float(f) => args.add(f),
        Value::Decimal(d) => args.add(d),
        Value::String(s) => args.add(s),
        Value::Bytes(b) => args.add(b),
        Value::Date(d) => args.add(d),
        Value::DateTime(t) => args.add(t),
        Value::Time(t) => args.add(t),
        Value::Json(j) => args.add(*j),
        Value::Uuid(u) => args.add(u),
        Value::Array(items) => add_array(args, items),
        other => Err(format!("no PostgreSQL parameter for {} values", other.type_name()).into()),
    }
}

fn add_null(args: &mut PgArguments, st: Option<StorageType>) -> AddResult {
    match st {
        Some(StorageType::Integer) => args.add(None::<i64>),
        Some(StorageType::Float) => args.add(None::<f64>),
        Some(StorageType::Decimal { .. }) => args.add(None::<Decimal>),
        Some(StorageType::Boolean) => args.add(None::<bool>),
        Some(StorageType::Date) => args.add(None::<NaiveDate>),
        Some(StorageType::DateTime) => args.add(None::<DateTime<Utc>>),
        Some(StorageType::Time) => args.add(None::<NaiveTime>),
        Some(StorageType::Json) => args.add(None::<serde_json::Value>),
        Some(StorageType::Binary) => args.add(None::<Vec<u8>>),
        _ => args.add(None::<String>),
    }
}

/// An array parameter (`= ANY($1)`): every element has the first one's type.
fn add_array(args: &mut PgArguments, items: Vec<Value>) -> AddResult {
    fn all<T>(items: Vec<Value>, f: impl Fn(Value) -> Option<T>) -> Option<Vec<T>> {
        items.into_iter().map(f).collect()
    }
    let mismatch = || -> sqlx::error::BoxDynError { "array elements of mixed types".into() };
    match items.first() {
        None | Some(Value::String(_)) => args.add(
            all(items, |v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .ok_or_else(mismatch)?,
        ),
        Some(Value::Int(_)) => args.add(
            all(items, |v| match v {
                Value::Int(i) => Some(i),
                _ => None,
            })
            .ok_or_else(mismatch)?,
        ),
        Some(Value::Uuid(_)) => args.add(
            all(items, |v| match v {
                Value::Uuid(u) => Some(u),
                _ => None,
            })
            .ok_or_else(mismatch)?,
        ),
        Some(other) => Err(format!("no array parameters of {}", other.type_name()).into()),
    }
}

/// How a result column is read, decided once per statement from its
/// PostgreSQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytes,
    Date,
    Timestamptz,
    Timestamp,
    Time,
    Json,
    Uuid,
}

impl Reader {
    /// The reader for a column of PostgreSQL type `name` (`INT8`, `TEXT`, …).
    pub(crate) fn for_type(name: &str) -> Result<Self> {
        Ok(match name {
            "BOOL" => Self::Bool,
            "INT2" => Self::Int2,
            "INT4" => Self::Int4,
            "INT8" => Self::Int8,
            "FLOAT4" => Self::Float4,
            "FLOAT8" => Self::Float8,
            "NUMERIC" => Self::Numeric,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => Self::Text,
            "BYTEA" => Self::Bytes,
            "DATE" => Self::Date,
            "TIMESTAMPTZ" => Self::Timestamptz,
            "TIMESTAMP" => Self::Timestamp,
            "TIME" => Self::Time,
            "JSON" | "JSONB" => Self::Json,
            "UUID" => Self::Uuid,
            other => {
                return Err(Error::driver(
                    DriverErrorKind::Decode,
                    format!("PostgreSQL type {other} has no objectql value"),
                ));
            }
        })
    }

    /// The readers for the columns of `row`.
    pub(crate) fn for_row(row: &PgRow) -> Result<Vec<Self>> {
        row.columns()
            .iter()
            .map(|c| Self::for_type(c.type_info().name()))
            .collect()
    }

    /// Reads column `i` of `row`.
    pub(crate) fn read(self, row: &PgRow, i: usize) -> Result<Value> {
        fn get<'r, T>(row: &'r PgRow, i: usize) -> Result<Option<T>>
        where
            T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        {
            row.try_get::<Option<T>, usize>(i)
                .map_err(|e| Error::Driver {
                    kind: DriverErrorKind::Decode,
                    message: format!("cannot decode column {i}: {e}"),
                    source: Some(Box::new(e)),
                })
        }
        Ok(match self {
            Self::Bool => get::<bool>(row, i)?.map(Value::Bool),
            Self::Int2 => get::<i16>(row, i)?.map(|v| Value::Int(v.into())),
            Self::Int4 => get::<i32>(row, i)?.map(|v| Value::Int(v.into())),
            Self::Int8 => get::<i64>(row, i)?.map(Value::Int),
            Self::Float4 => get::<f32>(row, i)?.map(|v| Value::Float(v.into())),
            Self::Float8 => get::<f64>(row, i)?.map(Value::Float),
            Self::Numeric => get::<Decimal>(row, i)?.map(Value::Decimal),
            Self::Text => get::<String>(row, i)?.map(Value::String),
            Self::Bytes => get::<Vec<u8>>(row, i)?.map(Value::Bytes),
            Self::Date => get::<NaiveDate>(row, i)?.map(Value::Date),
            Self::Timestamptz => get::<DateTime<Utc>>(row, i)?.map(Value::DateTime),
            Self::Timestamp => get::<NaiveDateTime>(row, i)?.map(|t| Value::DateTime(t.and_utc())),
            Self::Time => get::<NaiveTime>(row, i)?.map(Value::Time),
            Self::Json => get::<serde_json::Value>(row, i)?.map(Value::json),
            Self::Uuid => get::<uuid::Uuid>(row, i)?.map(Value::Uuid),
        }
        .unwrap_or(Value::Null))
    }
}

/// Reads every column of `row` with `readers`.
pub(crate) fn read_row(readers: &[Reader], row: &PgRow) -> Result<Vec<Value>> {
    readers
        .iter()
        .enumerate()
        .map(|(i, r)| r.read(row, i))
        .collect()
}
