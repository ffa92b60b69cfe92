//! Binding values as MySQL parameters and decoding result columns by their
//! MySQL type.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use objectql_query_ast::{DriverErrorKind, Error, Result, StorageType, Value};
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlRow, MySqlTypeInfo};
use sqlx::{Arguments, Column, MySql, Row, Type, TypeInfo};

fn bind_err(e: &(dyn std::error::Error + Send + Sync), index: usize) -> Error {
    Error::driver(
        DriverErrorKind::Other,
        format!("cannot bind parameter {}: {e}", index + 1),
    )
}

/// Binds `params` in order. A NULL takes the type of the column it stands
/// for (`types`); JSON goes as its text (MariaDB stores it in LONGTEXT,
/// MySQL parses text into its JSON type), datetimes as UTC `DATETIME`s.
pub(crate) fn arguments(
    params: Vec<Value>,
    types: &[Option<StorageType>],
) -> Result<MySqlArguments> {
    let mut args = MySqlArguments::default();
    args.reserve(params.len(), params.len() * 8);
    for (i, v) in params.into_iter().enumerate() {
        let st = types.get(i).copied().flatten();
        add(&mut args, v, st).map_err(|e| bind_err(&*e, i))?;
    }
    Ok(args)
}

type AddResult = std::result::Result<(), sqlx::error::BoxDynError>;

fn add(args: &mut MySqlArguments, v: Value, st: Option<StorageType>) -> AddResult {
    match v {
        Value::Null => add_null(args, st),
        Value::Bool(b) => args.add(b),
        Value::Int(i) => args.add(i),
        Value::Float(f) => args.add(f),
        Value::Decimal(d) => args.add(d),
        Value::String(s) => args.add(s),
        Value::Bytes(b) => args.add(b),
        Value::Date(d) => args.add(d),
        Value::DateTime(t) => args.add(t.naive_utc()),
        Value::Time(t) => args.add(t),
        Value::Json(j) => args.add(j.to_string()),
        Value::Uuid(u) => args.add(u.hyphenated().to_string()),
        other => Err(format!("MySQL has no {} parameters", other.type_name()).into()),
    }
}

fn add_null(args: &mut MySqlArguments, st: Option<StorageType>) -> AddResult {
    match st {
        Some(StorageType::Integer) => args.add(None::<i64>),
        Some(StorageType::Float) => args.add(None::<f64>),
        Some(StorageType::Decimal { .. }) => args.add(None::<Decimal>),
        Some(StorageType::Boolean) => args.add(None::<bool>),
        Some(StorageType::Date) => args.add(None::<NaiveDate>),
        Some(StorageType::DateTime) => args.add(None::<NaiveDateTime>),
        Some(StorageType::Time) => args.add(None::<NaiveTime>),
        Some(StorageType::Binary) => args.add(None::<Vec<u8>>),
        _ => args.add(None::<String>),
    }
}

/// How a result column is read, decided once per statement from its MySQL
/// type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Any signed integer type (and BOOLEAN = TINYINT(1), YEAR).
    Int,
    /// An unsigned integer type: an error beyond `i64::MAX`.
    UInt,
    Float4,
    Float8,
    Decimal,
    /// Character data (any non-binary collation).
    Text,
    /// Binary strings (the `binary` collation), BIT.
    Bytes,
    Date,
    DateTime,
    Timestamp,
    Time,
    Json,
    /// `SELECT NULL`.
    Null,
}

impl Reader {
    /// The reader for a column of type `ti`.
    pub(crate) fn for_type(ti: &MySqlTypeInfo) -> Result<Self> {
        Ok(match ti.name() {
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
                Self::Int
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
            | "BIGINT UNSIGNED" => Self::UInt,
            "FLOAT" => Self::Float4,
            "DOUBLE" => Self::Float8,
            "DECIMAL" => Self::Decimal,
            "DATE" => Self::Date,
            "DATETIME" => Self::DateTime,
            "TIMESTAMP" => Self::Timestamp,
            "TIME" => Self::Time,
            "JSON" => Self::Json,
            "NULL" => Self::Null,
            "BIT" => Self::Bytes,
            // The type name says BINARY/BLOB for `_bin` collations too: the
            // collation (binary or not) decides between text and bytes.
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "BINARY"
            | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "ENUM" | "SET" => {
                if <String as Type<MySql>>::compatible(ti) {
                    Self::Text
                } else {
                    Self::Bytes
                }
            }
            other => {
                return Err(Error::driver(
                    DriverErrorKind::Decode,
                    format!("MySQL type {other} has no objectql value"),
                ));
            }
        })
    }

    /// The readers for the columns of `row`.
    pub(crate) fn for_row(row: &MySqlRow) -> Result<Vec<Self>> {
        row.columns()
            .iter()
            .map(|c| Self::for_type(c.type_info()))
            .collect()
    }

    /// Reads column `i` of `row`.
    pub(crate) fn read(self, row: &MySqlRow, i: usize) -> Result<Value> {
        // The reader was chosen from the column's type, so sqlx's own
        // compatibility check (stricter about collations and widths) is
        // skipped; the decoders still check what they read.
        fn get<'r, T>(row: &'r MySqlRow, i: usize) -> Result<Option<T>>
        where
            T: sqlx::Decode<'r, MySql> + Type<MySql>,
        {
            row.try_get_unchecked::<Option<T>, usize>(i)
                .map_err(|e| Error::Driver {
                    kind: DriverErrorKind::Decode,
                    message: format!("cannot decode column {i}: {e}"),
                    source: Some(Box::new(e)),
                })
        }
        let decode_err = |what: String| Error::driver(DriverErrorKind::Decode, what);
        Ok(match self {
            Self::Int => get::<i64>(row, i)?.map(Value::Int),
            Self::UInt => match get::<u64>(row, i)? {
                None => None,
                Some(u) => Some(Value::Int(i64::try_from(u).map_err(|_| {
                    decode_err(format!("column {i}: {u} does not fit a 64-bit integer"))
                })?)),
            },
            Self::Float4 => get::<f32>(row, i)?.map(|v| Value::Float(v.into())),
            Self::Float8 => get::<f64>(row, i)?.map(Value::Float),
            // DECIMAL arrives as text in both protocols; a sum wider than
            // rust_decimal's 28 digits is an overflow, not garbage.
            Self::Decimal => match get::<String>(row, i)? {
                None => None,
                Some(s) => Some(Value::Decimal(s.parse::<Decimal>().map_err(|e| {
                    let numeric = s
                        .trim_start_matches('-')
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.');
                    Error::Driver {
                        kind: if numeric {
                            DriverErrorKind::NumericOverflow
                        } else {
                            DriverErrorKind::Decode
                        },
                        message: format!("column {i}: decimal {s} does not fit 28 digits"),
                        source: Some(Box::new(e)),
                    }
                })?)),
            },
            Self::Text => get::<String>(row, i)?.map(Value::String),
            Self::Bytes => get::<Vec<u8>>(row, i)?.map(Value::Bytes),
            Self::Date => get::<NaiveDate>(row, i)?.map(Value::Date),
            Self::DateTime => get::<NaiveDateTime>(row, i)?.map(|t| Value::DateTime(t.and_utc())),
            Self::Timestamp => get::<DateTime<Utc>>(row, i)?.map(Value::DateTime),
            Self::Time => get::<NaiveTime>(row, i)?.map(Value::Time),
            Self::Json => match get::<Vec<u8>>(row, i)? {
                None => None,
                Some(b) => Some(Value::json(serde_json::from_slice(&b).map_err(|e| {
                    Error::Driver {
                        kind: DriverErrorKind::Decode,
                        message: format!("column {i} is not JSON"),
                        source: Some(Box::new(e)),
                    }
                })?)),
            },
            Self::Null => None,
        }
        .unwrap_or(Value::Null))
    }
}

/// Reads every column of `row` with `readers`.
pub(crate) fn read_row(readers: &[Reader], row: &MySqlRow) -> Result<Vec<Value>> {
    readers
        .iter()
        .enumerate()
        .map(|(i, r)| r.read(row, i))
        .collect()
}
