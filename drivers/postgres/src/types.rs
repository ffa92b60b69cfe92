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
    // The whole buffer at once: a multi-row INSERT binds up to 65,535
    // values, and growing the buffer value by value copies it again and again.
    args.reserve(params.len(), params.iter().map(encoded_len).sum());
    for (i, v) in params.into_iter().enumerate() {
        let st = types.get(i).copied().flatten();
        add(&mut args, v, st).map_err(|e| bind_err(&*e, i))?;
    }
    Ok(args)
}

/// About how many bytes `v` takes in the bind buffer (its 4-byte length
/// prefix included): only a capacity hint.
fn encoded_len(v: &Value) -> usize {
    4 + match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        Value::Bytes(b) => b.len(),
        // Numeric: an 8-byte header and 2 bytes per 4 decimal digits.
        Value::Decimal(_) => 24,
        Value::Array(items) => 20 + items.iter().map(encoded_len).sum::<usize>(),
        _ => 16,
    }
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
            // `jsonb` prints a float of 2^63 or more as digits.
            Self::Json => get::<serde_json::Value>(row, i)?.map(|mut j| {
                objectql_query_ast::restore_json_floats(&mut j);
                Value::json(j)
            }),
            Self::Uuid => get::<uuid::Uuid>(row, i)?.map(Value::Uuid),
        }
        .unwrap_or(Value::Null))
    }
}

/// Whether `v`, read from a column of storage type `st`, is already the
/// value `SqlDialect::decode` makes of it. `decode` returns such values
/// unchanged (as a clone), so the driver moves them into the record as
/// they are and calls `decode` only for the others (a `numeric` of another
/// scale, an aggregate's `numeric` in an integer column, …).
pub(crate) fn already_decoded(v: &Value, st: StorageType) -> bool {
    match (st, v) {
        (_, Value::Null)
        | (StorageType::Text, Value::String(_))
        | (StorageType::Integer, Value::Int(_))
        | (StorageType::Float, Value::Float(_))
        | (StorageType::Boolean, Value::Bool(_))
        | (StorageType::Date, Value::Date(_))
        | (StorageType::DateTime, Value::DateTime(_))
        | (StorageType::Time, Value::Time(_))
        | (StorageType::Json, Value::Json(_))
        | (StorageType::Binary, Value::Bytes(_)) => true,
        // `decode` normalizes and rescales to the column's scale: a nonzero
        // value already at that scale comes out identical (zero is left to
        // `decode`, which also turns -0 into 0).
        (StorageType::Decimal { scale, .. }, Value::Decimal(d)) => {
            d.scale() == scale && !d.is_zero()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectql_planner::sql::{PostgresDialect, SqlDialect};

    /// `already_decoded` may only skip `decode` where `decode` changes nothing.
    #[test]
    fn already_decoded_values_are_what_decode_returns() {
        let dialect = PostgresDialect { version: (16, 0) };
        let dec = |precision, scale| StorageType::Decimal { precision, scale };
        let t = DateTime::<Utc>::from_timestamp_micros(1_704_067_200_123_456).unwrap_or_default();
        let cases = [
            (Value::Null, StorageType::Text),
            (Value::Null, dec(12, 2)),
            (Value::String("x".into()), StorageType::Text),
            (Value::Int(-7), StorageType::Integer),
            (Value::Float(1.5), StorageType::Float),
            (Value::Bool(true), StorageType::Boolean),
            (Value::DateTime(t), StorageType::DateTime),
            (Value::Date(t.date_naive()), StorageType::Date),
            (Value::Time(t.time()), StorageType::Time),
            (
                Value::json(serde_json::json!({"a": [1]})),
                StorageType::Json,
            ),
            (Value::Bytes(vec![0, 1]), StorageType::Binary),
            (Value::Decimal(Decimal::new(12_345, 2)), dec(12, 2)),
            (Value::Decimal(Decimal::new(-100, 2)), dec(12, 2)),
            (Value::Decimal(Decimal::new(7, 4)), dec(20, 4)),
            // Left to `decode`:
            (Value::Decimal(-Decimal::new(0, 2)), dec(12, 2)),
            (Value::Decimal(Decimal::new(0, 2)), dec(12, 2)),
            (Value::Decimal(Decimal::new(12_340, 3)), dec(12, 2)),
            (Value::Decimal(Decimal::new(5, 0)), StorageType::Integer),
            (Value::Int(5), dec(12, 2)),
            (Value::Int(5), StorageType::Float),
        ];
        let mut skipped = 0;
        for (v, st) in cases {
            if !already_decoded(&v, st) {
                continue;
            }
            skipped += 1;
            let decoded = dialect.decode(v.clone(), st).expect("decodes");
            assert_eq!(decoded, v, "{st:?}");
            if let (Value::Decimal(a), Value::Decimal(b)) = (&decoded, &v) {
                assert_eq!(
                    (a.mantissa(), a.scale()),
                    (b.mantissa(), b.scale()),
                    "same representation"
                );
            }
        }
        assert_eq!(skipped, 14);
        assert!(!already_decoded(
            &Value::Decimal(Decimal::new(0, 2)),
            dec(12, 2)
        ));
        assert!(!already_decoded(
            &Value::Decimal(Decimal::new(12_340, 3)),
            dec(12, 2)
        ));
        assert!(!already_decoded(&Value::Int(5), StorageType::Float));
    }
}
