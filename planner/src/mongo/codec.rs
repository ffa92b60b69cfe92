//! Values ↔ BSON, by storage type.
//!
//! | storage type | BSON | why |
//! |---|---|---|
//! | text | string | |
//! | integer | int64 | |
//! | float | double | |
//! | decimal | decimal128 | exact; compares and sums numerically on the server |
//! | boolean | bool | |
//! | date | date (midnight UTC) | date operators work on it (buckets, ISO weeks) |
//! | datetime | int64 microseconds since the Unix epoch | BSON dates hold milliseconds; the protocol keeps microseconds, and an int64 compares and sorts exactly |
//! | time | string `HH:MM:SS.ffffff` | fixed width, so string order is time order |
//! | json | string (the JSON text) | lossless (keys with `$` or `.`, number forms), and no stored value can ever be read as an operator |
//! | binary | binary (generic subtype) | |
//!
//! NULL is BSON null; a missing key also reads as NULL. Decoding is lenient
//! where data written by other tools is unambiguous (an int32 for an
//! integer, a BSON date for a datetime, an ObjectId for a text key) and a
//! typed `Decode` error otherwise.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Decimal128};
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use objectql_query_ast::{DriverErrorKind, Error, Result, StorageType, Value};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The BSON form of `value` stored in a field of type `storage`.
pub fn to_bson(value: &Value, storage: StorageType) -> Result<Bson> {
    Ok(match (value, storage) {
        (Value::Null, _) => Bson::Null,
        (Value::String(s), StorageType::Text) => Bson::String(s.clone()),
        (Value::Uuid(u), StorageType::Text) => Bson::String(u.to_string()),
        (Value::Int(i), StorageType::Integer) => Bson::Int64(*i),
        (Value::Float(f), StorageType::Float) => Bson::Double(*f),
        (Value::Int(i), StorageType::Float) => Bson::Double(int_to_f64(*i)),
        (Value::Decimal(d), StorageType::Decimal { .. }) => Bson::Decimal128(decimal_to_bson(*d)),
        (Value::Int(i), StorageType::Decimal { .. }) => {
            Bson::Decimal128(decimal_to_bson(Decimal::from(*i)))
        }
        (Value::Bool(b), StorageType::Boolean) => Bson::Boolean(*b),
        (Value::Date(d), StorageType::Date) => Bson::DateTime(date_to_bson(*d)),
        (Value::DateTime(t), StorageType::DateTime) => Bson::Int64(datetime_to_micros(*t)),
        (Value::Date(d), StorageType::DateTime) => {
            Bson::Int64(datetime_to_micros(d.and_time(NaiveTime::MIN).and_utc()))
        }
        (Value::Time(t), StorageType::Time) => Bson::String(time_to_string(*t)),
        (Value::Json(j), StorageType::Json) => Bson::String(j.to_string()),
        (v, StorageType::Json) => Bson::String(v.to_json().to_string()),
        (Value::Bytes(b), StorageType::Binary) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b.clone(),
        }),
        (v, st) => {
            return Err(Error::plan(format!(
                "a {} value cannot be stored in a {st:?} field on MongoDB",
                v.type_name()
            )));
        }
    })
}

/// The value of a field of type `storage` read from `bson` (`None`: the key
/// is missing, which reads as NULL).
pub fn from_bson(bson: Option<&Bson>, storage: StorageType) -> Result<Value> {
    let Some(bson) = bson else {
        return Ok(Value::Null);
    };
    let bad = || {
        Error::driver(
            DriverErrorKind::Decode,
            format!(
                "a BSON {:?} cannot be read as a {storage:?} value",
                bson.element_type()
            ),
        )
    };
    Ok(match (bson, storage) {
        (Bson::Null | Bson::Undefined, _) => Value::Null,
        (Bson::String(s), StorageType::Text) => Value::String(s.clone()),
        (Bson::ObjectId(o), StorageType::Text) => Value::String(o.to_hex()),
        (Bson::Int64(i), StorageType::Integer) => Value::Int(*i),
        (Bson::Int32(i), StorageType::Integer) => Value::Int(i64::from(*i)),
        (Bson::Double(f), StorageType::Integer) => Value::Int(exact_int(*f).ok_or_else(bad)?),
        // Integer sums are added as decimal128 (see the pipeline compiler).
        (Bson::Decimal128(d), StorageType::Integer) => Value::Int(decimal_to_int(d)?),
        (Bson::Decimal128(d), StorageType::Float) => {
            Value::Float(bson_to_decimal(d)?.to_f64().ok_or_else(bad)?)
        }
        // Stored floats are finite, so an infinite one is an aggregate
        // (`$sum`) that overflowed: NumericOverflow, as PostgreSQL and the
        // memory driver report it.
        (Bson::Double(f), StorageType::Float) if !f.is_finite() => {
            return Err(Error::driver(
                DriverErrorKind::NumericOverflow,
                format!("a float result overflowed to {f}"),
            ));
        }
        (Bson::Double(f), StorageType::Float) => Value::Float(*f),
        (Bson::Int64(i), StorageType::Float) => Value::Float(int_to_f64(*i)),
        (Bson::Int32(i), StorageType::Float) => Value::Float(f64::from(*i)),
        (Bson::Decimal128(d), StorageType::Decimal { .. }) => Value::Decimal(bson_to_decimal(d)?),
        (Bson::Int64(i), StorageType::Decimal { .. }) => Value::Decimal(Decimal::from(*i)),
        (Bson::Int32(i), StorageType::Decimal { .. }) => Value::Decimal(Decimal::from(*i)),
        (Bson::Double(f), StorageType::Decimal { .. }) => {
            Value::Decimal(Decimal::try_from(*f).map_err(|_| bad())?)
        }
        (Bson::Boolean(b), StorageType::Boolean) => Value::Bool(*b),
        (Bson::DateTime(d), StorageType::Date) => {
            Value::Date(bson_to_datetime(*d).ok_or_else(bad)?.date_naive())
        }
        (Bson::String(s), StorageType::Date) => {
            Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?)
        }
        (Bson::Int64(us), StorageType::DateTime) => {
            Value::DateTime(DateTime::from_timestamp_micros(*us).ok_or_else(bad)?)
        }
        (Bson::DateTime(d), StorageType::DateTime) => {
            Value::DateTime(bson_to_datetime(*d).ok_or_else(bad)?)
        }
        (Bson::String(s), StorageType::Time) => {
            Value::Time(NaiveTime::parse_from_str(s, "%H:%M:%S%.f").map_err(|_| bad())?)
        }
        (Bson::String(s), StorageType::Json) => {
            Value::json(serde_json::from_str(s).map_err(|e| {
                Error::driver(
                    DriverErrorKind::Decode,
                    format!("a json field holds invalid JSON: {e}"),
                )
            })?)
        }
        (b @ (Bson::Document(_) | Bson::Array(_)), StorageType::Json) => Value::json(to_json(b)),
        (Bson::Binary(b), StorageType::Binary) => Value::Bytes(b.bytes.clone()),
        _ => return Err(bad()),
    })
}

/// A document or array written by another tool, as JSON (numbers,
/// strings, booleans, nulls, nested documents and arrays; other BSON types
/// as their string forms).
pub fn to_json(b: &Bson) -> serde_json::Value {
    use serde_json::Value as J;
    match b {
        Bson::Null | Bson::Undefined => J::Null,
        Bson::Boolean(x) => J::Bool(*x),
        Bson::Int32(i) => J::from(*i),
        Bson::Int64(i) => J::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Bson::String(s) => J::String(s.clone()),
        Bson::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Bson::Document(d) => J::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        other => J::String(other.to_string()),
    }
}

/// Microseconds since the Unix epoch.
pub fn datetime_to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A date as a BSON date at midnight UTC.
pub fn date_to_bson(d: NaiveDate) -> bson::DateTime {
    bson::DateTime::from_millis(d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

fn bson_to_datetime(d: bson::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(d.timestamp_millis())
}

/// `HH:MM:SS.ffffff`: fixed width, so string order is time order.
pub fn time_to_string(t: NaiveTime) -> String {
    // A leap second (nanosecond ≥ 1e9) is written as :59.999999.
    let micros = (t.nanosecond() / 1_000).min(999_999);
    format!("{}.{micros:06}", t.format("%H:%M:%S"))
}

fn int_to_f64(i: i64) -> f64 {
    // Integers up to 2^53 are exact in a double; validation keeps JSON
    // integers within that range, and a float field never holds more.
    #[allow(clippy::cast_precision_loss)]
    let f = i as f64;
    f
}

fn exact_int(f: f64) -> Option<i64> {
    if f.fract() != 0.0 || !f.is_finite() || f.abs() > 9_007_199_254_740_992.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    Some(f as i64)
}

/// An integral decimal128 as an i64; beyond it, the integer sum overflowed.
fn decimal_to_int(d: &Decimal128) -> Result<i64> {
    let overflow = || {
        Error::driver(
            DriverErrorKind::NumericOverflow,
            "integer sum overflows its type",
        )
    };
    let d = bson_to_decimal(d).map_err(|_| overflow())?;
    if !d.fract().is_zero() {
        return Err(Error::driver(
            DriverErrorKind::Decode,
            "a fractional decimal128 cannot be read as an integer",
        ));
    }
    d.to_i64().ok_or_else(overflow)
}

const DEC_EXPONENT_BIAS: i32 = 6176;

/// A decimal as IEEE 754-2008 decimal128 (BID encoding): the 96-bit
/// coefficient always fits the 113-bit form, the exponent is `-scale`.
pub fn decimal_to_bson(d: Decimal) -> Decimal128 {
    let mantissa = d.mantissa(); // i128, |m| < 2^96
    let negative = mantissa < 0;
    let coefficient = mantissa.unsigned_abs();
    let scale = i32::try_from(d.scale()).unwrap_or(0);
    let biased = u128::try_from(DEC_EXPONENT_BIAS - scale).unwrap_or(0);
    let mut bits: u128 = coefficient | (biased << 113);
    if negative {
        bits |= 1 << 127;
    }
    Decimal128::from_bytes(bits.to_le_bytes())
}

/// A BSON decimal128 as a decimal; NaN, infinities and values beyond
/// `rust_decimal`'s 96-bit range are a `NumericOverflow` error.
pub fn bson_to_decimal(d: &Decimal128) -> Result<Decimal> {
    let bits = u128::from_le_bytes(d.bytes());
    let negative = bits >> 127 == 1;
    let combination = (bits >> 122) & 0x1f;
    if combination == 0x1f || combination == 0x1e {
        return Err(Error::driver(
            DriverErrorKind::NumericOverflow,
            "a decimal128 NaN or infinity cannot be read as a decimal",
        ));
    }
    let (exponent, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
        // The second form: coefficients ≥ 2^113 are non-canonical (zero).
        (((bits >> 111) & 0x3fff), 0u128)
    } else {
        (((bits >> 113) & 0x3fff), bits & ((1u128 << 113) - 1))
    };
    let exponent = i32::try_from(exponent).unwrap_or(0) - DEC_EXPONENT_BIAS;
    let overflow = || {
        Error::driver(
            DriverErrorKind::NumericOverflow,
            "a decimal128 value is out of the decimal type's range",
        )
    };
    // value = coefficient × 10^exponent; rust_decimal keeps scales 0..=28.
    let mut coefficient = i128::try_from(coefficient).map_err(|_| overflow())?;
    let mut exponent = exponent;
    while exponent > 0 {
        coefficient = coefficient.checked_mul(10).ok_or_else(overflow)?;
        exponent -= 1;
    }
    let mut scale = u32::try_from(-exponent).map_err(|_| overflow())?;
    while scale > 28 && coefficient % 10 == 0 {
        coefficient /= 10;
        scale -= 1;
    }
    if negative {
        coefficient = -coefficient;
    }
    Decimal::try_from_i128_with_scale(coefficient, scale).map_err(|_| overflow())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn an_infinite_float_is_numeric_overflow() {
        for f in [f64::INFINITY, f64::NEG_INFINITY] {
            let e = from_bson(Some(&Bson::Double(f)), StorageType::Float).unwrap_err();
            assert_eq!(
                e.driver_kind(),
                Some(DriverErrorKind::NumericOverflow),
                "{e}"
            );
        }
        let ok = from_bson(Some(&Bson::Double(f64::MAX)), StorageType::Float).unwrap();
        assert_eq!(ok, Value::Float(f64::MAX));
    }

    #[test]
    fn decimals_round_trip_through_decimal128() {
        for s in [
            "0",
            "1",
            "-1",
            "123.45",
            "-0.000001",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "1.50",
        ] {
            let d = Decimal::from_str(s).unwrap();
            let b = decimal_to_bson(d);
            let back = bson_to_decimal(&b).unwrap();
            assert_eq!(back, d, "{s}");
            assert_eq!(back.scale(), d.scale(), "{s} keeps its scale");
        }
        // The canonical bytes of 1 (from the decimal128 spec): 0x3040…01.
        let one = decimal_to_bson(Decimal::ONE).bytes();
        assert_eq!(one[15], 0x30);
        assert_eq!(one[14], 0x40);
        assert_eq!(one[0], 1);
    }

    #[test]
    fn values_round_trip() {
        let cases = [
            (Value::String("a\0b".into()), StorageType::Text),
            (Value::Int(i64::MIN), StorageType::Integer),
            (Value::Float(-0.5), StorageType::Float),
            (Value::Bool(true), StorageType::Boolean),
            (
                Value::Date(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()),
                StorageType::Date,
            ),
            (
                Value::DateTime(DateTime::from_timestamp_micros(-1).unwrap()),
                StorageType::DateTime,
            ),
            (
                Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 59, 1).unwrap()),
                StorageType::Time,
            ),
            (
                Value::json(serde_json::json!({"$gt": 1, "a.b": [1.5, null]})),
                StorageType::Json,
            ),
            (Value::Bytes((0..=255).collect()), StorageType::Binary),
        ];
        for (v, st) in cases {
            let b = to_bson(&v, st).unwrap();
            assert_eq!(from_bson(Some(&b), st).unwrap(), v, "{st:?}");
        }
        assert_eq!(from_bson(None, StorageType::Text).unwrap(), Value::Null);
        let e = from_bson(Some(&Bson::String("x".into())), StorageType::Integer).unwrap_err();
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::Decode));
    }

    #[test]
    fn time_strings_sort_like_times() {
        let a = time_to_string(NaiveTime::from_hms_micro_opt(9, 0, 0, 5).unwrap());
        let b = time_to_string(NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        assert_eq!(a, "09:00:00.000005");
        assert!(a < b);
    }
}
