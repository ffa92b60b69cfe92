//! Encoding of values into what a SQL client binds, and decoding of what it
//! returns, per storage type.
//!
//! SQLite carries only NULL / integer / real / text / blob, so its encoding
//! maps every storage type onto those without losing anything and keeping
//! SQL comparison and sorting correct: decimals as integers scaled by
//! `10^scale`, booleans as 0/1, dates, datetimes and times as fixed-width
//! text (so text order is time order), JSON as its text. PostgreSQL and
//! MySQL clients carry typed values, so their encoding is mostly identity.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike, Utc};
use objectql_query_ast::{DriverErrorKind, Error, Result, StorageType, Value, parse_datetime};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The largest decimal precision SQLite's scaled-integer encoding holds exactly.
pub const SQLITE_MAX_DECIMAL_PRECISION: u32 = 18;

fn mismatch(v: &Value, st: StorageType) -> Error {
    Error::internal(format!(
        "cannot encode a {} value for a {} column (values reach the SQL compiler validated)",
        v.type_name(),
        st.name()
    ))
}

fn decode_err(v: &Value, st: StorageType) -> Error {
    Error::driver(
        DriverErrorKind::Decode,
        format!("cannot decode {} value {v} as {}", v.type_name(), st.name()),
    )
}

fn overflow(what: &str) -> Error {
    Error::driver(
        DriverErrorKind::NumericOverflow,
        format!("{what} does not fit its type"),
    )
}

/// `10^scale` as an i64, when it fits.
pub(crate) fn pow10(scale: u32) -> Option<i64> {
    10_i64.checked_pow(scale)
}

/// A decimal as an integer scaled by `10^scale` (exact, or an error).
pub fn decimal_to_scaled(d: Decimal, scale: u32) -> Result<i64> {
    let mut r = d;
    r.rescale(scale);
    if r != d {
        return Err(Error::internal(format!(
            "decimal {d} has more than {scale} digits after the point"
        )));
    }
    i64::try_from(r.mantissa()).map_err(|_| overflow("decimal"))
}

/// An integer scaled by `10^scale` back to a decimal.
pub fn scaled_to_decimal(i: i64, scale: u32) -> Result<Decimal> {
    Decimal::try_from_i128_with_scale(i128::from(i), scale).map_err(|_| overflow("decimal"))
}

/// Fixed-width `YYYY-MM-DD` (years 0–9999).
pub fn date_text(d: NaiveDate) -> Result<String> {
    if !(0..=9999).contains(&d.year()) {
        return Err(Error::unsupported(
            format!("date {d} beyond year 9999"),
            "sql",
        ));
    }
    Ok(d.format("%Y-%m-%d").to_string())
}

/// Fixed-width `YYYY-MM-DDTHH:MM:SS.ffffffZ`: text order is time order.
pub fn datetime_text(t: &DateTime<Utc>) -> Result<String> {
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::unsupported(
            format!("datetime {t} beyond year 9999"),
            "sql",
        ));
    }
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// Fixed-width `HH:MM:SS.ffffff`.
pub fn time_text(t: NaiveTime) -> String {
    // A leap second (nanosecond ≥ 10^9) is written as :59.999999.
    let t = if t.nanosecond() >= 1_000_000_000 {
        t.with_nanosecond(999_999_999).unwrap_or(t)
    } else {
        t
    };
    t.format("%H:%M:%S%.6f").to_string()
}

/// SQLite's encoding (see the module docs).
pub fn encode_sqlite(v: &Value, st: StorageType) -> Result<Value> {
    Ok(match (st, v) {
        (_, Value::Null) => Value::Null,
        (StorageType::Text, Value::String(s)) => Value::String(s.clone()),
        (StorageType::Text, Value::Uuid(u)) => Value::String(u.to_string()),
        (StorageType::Integer, Value::Int(i)) => Value::Int(*i),
        (StorageType::Float, Value::Float(f)) => Value::Float(*f),
        (StorageType::Float, Value::Int(i)) => {
            Value::Float(objectql_query_ast::int_to_f64(*i).ok_or_else(|| mismatch(v, st))?)
        }
        (StorageType::Decimal { scale, .. }, Value::Decimal(d)) => {
            Value::Int(decimal_to_scaled(*d, scale)?)
        }
        (StorageType::Decimal { scale, .. }, Value::Int(i)) => Value::Int(
            pow10(scale)
                .and_then(|p| i.checked_mul(p))
                .ok_or_else(|| overflow("decimal"))?,
        ),
        (StorageType::Boolean, Value::Bool(b)) => Value::Int(i64::from(*b)),
        (StorageType::Date, Value::Date(d)) => Value::String(date_text(*d)?),
        (StorageType::DateTime, Value::DateTime(t)) => Value::String(datetime_text(t)?),
        (StorageType::Time, Value::Time(t)) => Value::String(time_text(*t)),
        (StorageType::Json, Value::Json(j)) => Value::String(j.to_string()),
        (StorageType::Json, other) => Value::String(other.to_json().to_string()),
        (StorageType::Binary, Value::Bytes(b)) => Value::Bytes(b.clone()),
        (StorageType::Vector { .. }, _) => {
            return Err(Error::unsupported("vector fields", "sqlite"));
        }
        _ => return Err(mismatch(v, st)),
    })
}

/// A vector as libSQL's `F32_BLOB`: its components as little-endian
/// float32s, 4 bytes each.
pub fn encode_f32_blob(v: &Value, dimensions: u32) -> Result<Value> {
    let st = StorageType::Vector { dimensions };
    let items = match v {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) if u32::try_from(items.len()).ok() == Some(dimensions) => items,
        _ => return Err(mismatch(v, st)),
    };
    let mut out = Vec::with_capacity(items.len() * 4);
    for x in items {
        let f = match x {
            Value::Float(f) => *f,
            Value::Int(i) => objectql_query_ast::int_to_f64(*i).ok_or_else(|| mismatch(v, st))?,
            _ => return Err(mismatch(v, st)),
        };
        // Validation rounded every component to float32, so this cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let f = f as f32;
        out.extend_from_slice(&f.to_le_bytes());
    }
    Ok(Value::Bytes(out))
}

/// A `F32_BLOB` back to a vector value; `None` when its length is not
/// `4 × dimensions` or a component is not finite.
pub fn decode_f32_blob(b: &[u8], dimensions: u32) -> Option<Value> {
    if u32::try_from(b.len()).ok() != dimensions.checked_mul(4) {
        return None;
    }
    b.chunks_exact(4)
        .map(|c| {
            let f = f32::from_le_bytes(<[u8; 4]>::try_from(c).ok()?);
            f.is_finite().then(|| Value::Float(f64::from(f)))
        })
        .collect::<Option<Vec<Value>>>()
        .map(Value::Array)
}

/// Identity encoding for clients with typed values (PostgreSQL, MySQL);
/// `json_as_text` sends JSON as its text (MariaDB's JSON is LONGTEXT).
pub fn encode_typed(v: &Value, st: StorageType, json_as_text: bool) -> Result<Value> {
    Ok(match (st, v) {
        (_, Value::Null) => Value::Null,
        (StorageType::Text, Value::String(_))
        | (StorageType::Integer, Value::Int(_))
        | (StorageType::Float, Value::Float(_))
        | (StorageType::Decimal { .. }, Value::Decimal(_))
        | (StorageType::Boolean, Value::Bool(_))
        | (StorageType::Date, Value::Date(_))
        | (StorageType::DateTime, Value::DateTime(_))
        | (StorageType::Time, Value::Time(_))
        | (StorageType::Binary, Value::Bytes(_)) => v.clone(),
        (StorageType::Text, Value::Uuid(u)) => Value::String(u.to_string()),
        (StorageType::Float, Value::Int(i)) => {
            Value::Float(objectql_query_ast::int_to_f64(*i).ok_or_else(|| mismatch(v, st))?)
        }
        (StorageType::Decimal { .. }, Value::Int(i)) => Value::Decimal(Decimal::from(*i)),
        (StorageType::Json, other) => {
            let j = match other {
                Value::Json(j) => (**j).clone(),
                o => o.to_json(),
            };
            if json_as_text {
                Value::String(j.to_string())
            } else {
                Value::json(j)
            }
        }
        (StorageType::Vector { .. }, _) => {
            return Err(Error::unsupported("vector fields", "sql"));
        }
        _ => return Err(mismatch(v, st)),
    })
}

/// Decodes a raw value as the client returned it. `scaled_decimals`: an
/// integer in a decimal column is scaled by `10^scale` (SQLite).
#[allow(clippy::needless_pass_by_value)] // raw values are moved in from the client's row.
pub fn decode(v: Value, st: StorageType, scaled_decimals: bool) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if let Value::Float(f) = v
        && !f.is_finite()
    {
        // Stored floats are finite (writes refuse NaN/±Inf), so an infinite
        // result is an aggregate that overflowed (SQLite's `sum` of two
        // 1e308s): the protocol's NumericOverflow, never `Float(inf)`.
        return Err(Error::driver(
            objectql_query_ast::DriverErrorKind::NumericOverflow,
            format!("a float result overflowed to {f}"),
        ));
    }
    let out = match (st, &v) {
        (StorageType::Text, Value::String(_))
        | (StorageType::Integer, Value::Int(_))
        | (StorageType::Float, Value::Float(_))
        | (StorageType::Boolean, Value::Bool(_))
        | (StorageType::Date, Value::Date(_))
        | (StorageType::DateTime, Value::DateTime(_))
        | (StorageType::Time, Value::Time(_))
        | (StorageType::Json, Value::Json(_))
        | (StorageType::Binary, Value::Bytes(_)) => Some(v.clone()),
        (StorageType::Text, Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .map(|s| Value::String(s.to_owned())),
        (StorageType::Text, Value::Uuid(u)) => Some(Value::String(u.to_string())),
        (StorageType::Integer, Value::Decimal(d)) => {
            if d.fract().is_zero() {
                return d
                    .to_i64()
                    .map(Value::Int)
                    .ok_or_else(|| overflow("integer sum"));
            }
            None
        }
        // A split integer sum (see `SqlDialect::split_integer_sums`) whose
        // total left 64 bits comes back as a float of at least 2^63.
        (StorageType::Integer, Value::Float(f)) if f.abs() >= 2f64.powi(63) => {
            return Err(overflow("integer sum"));
        }
        (StorageType::Float, Value::Int(i)) => objectql_query_ast::int_to_f64(*i).map(Value::Float),
        (StorageType::Float, Value::Decimal(d)) => d.to_f64().map(Value::Float),
        (StorageType::Decimal { scale, .. }, Value::Int(i)) => {
            Some(Value::Decimal(if scaled_decimals {
                scaled_to_decimal(*i, scale)?
            } else {
                let mut d = Decimal::from(*i);
                d.rescale(scale);
                d
            }))
        }
        (StorageType::Decimal { scale, .. }, Value::Decimal(d)) => {
            let mut r = d.normalize();
            if r.scale() <= scale {
                r.rescale(scale);
                Some(Value::Decimal(r))
            } else {
                Some(Value::Decimal(*d))
            }
        }
        (StorageType::Boolean, Value::Int(0)) => Some(Value::Bool(false)),
        (StorageType::Boolean, Value::Int(1)) => Some(Value::Bool(true)),
        (StorageType::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(Value::Date),
        (StorageType::DateTime, Value::String(s)) => parse_datetime(s).map(Value::DateTime),
        (StorageType::Time, Value::String(s)) => NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
            .ok()
            .map(Value::Time),
        (StorageType::Json, Value::String(s)) => serde_json::from_str(s).ok().map(Value::json),
        (StorageType::Json, Value::Bytes(b)) => serde_json::from_slice(b).ok().map(Value::json),
        (StorageType::Vector { dimensions }, Value::Bytes(b)) => decode_f32_blob(b, dimensions),
        _ => None,
    };
    out.ok_or_else(|| decode_err(&v, st))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A split integer sum whose total left 64 bits comes back as a float
    /// of at least 2^63: NumericOverflow. A smaller float in an integer
    /// column stays a decode error.
    #[test]
    fn an_integer_sum_past_64_bits_is_numeric_overflow() {
        for f in [9.3e18, -9.3e18, 2f64.powi(63)] {
            let e = decode(Value::Float(f), StorageType::Integer, true).unwrap_err();
            assert_eq!(
                e.driver_kind(),
                Some(objectql_query_ast::DriverErrorKind::NumericOverflow),
                "{e}"
            );
        }
        let e = decode(Value::Float(1.5), StorageType::Integer, true).unwrap_err();
        assert_ne!(
            e.driver_kind(),
            Some(objectql_query_ast::DriverErrorKind::NumericOverflow)
        );
    }

    /// SQLite's `sum` of two 1e308 floats comes back as +inf: it decodes as
    /// NumericOverflow, never as a float the protocol does not have.
    #[test]
    fn an_infinite_float_is_numeric_overflow() {
        for f in [f64::INFINITY, f64::NEG_INFINITY] {
            let e = decode(Value::Float(f), StorageType::Float, false).unwrap_err();
            assert_eq!(
                e.driver_kind(),
                Some(objectql_query_ast::DriverErrorKind::NumericOverflow),
                "{e}"
            );
        }
        assert_eq!(
            decode(Value::Float(f64::MAX), StorageType::Float, false).unwrap(),
            Value::Float(f64::MAX)
        );
    }
}
