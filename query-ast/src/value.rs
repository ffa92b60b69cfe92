//! Values: what a field holds, what a filter compares against.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Path, Result};

/// The largest integer JSON can carry exactly (2^53); larger comparands are
/// refused in JSON queries because JavaScript peers would have rounded them.
pub const MAX_SAFE_JSON_INTEGER: i64 = 9_007_199_254_740_992;

/// How deeply a JSON field's value may nest arrays and objects.
///
/// `[]` and `{}` are one level, `[[1]]` two; scalars add none. 31 is
/// MariaDB's limit (its `JSON_VALID` refuses 32 nested containers); every
/// driver enforces it at validation, so nothing is written that some backend
/// cannot store or read back.
pub const MAX_JSON_DEPTH: usize = 31;

/// How many arrays and objects nest in `v` (a scalar is 0), counting at most
/// to `limit + 1`. Iterative: a hostile value a million levels deep costs no
/// stack.
pub fn json_depth(v: &serde_json::Value, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        let depth = depth + 1;
        deepest = deepest.max(depth);
        if deepest > limit {
            return deepest;
        }
        stack.extend(children.map(|c| (c, depth)));
    }
    deepest
}

/// The smallest magnitude at which serde_json prints a float in exponent
/// form (`1e16`); PostgreSQL's `jsonb` reads such a number back as an
/// integer, since every float this large is integral.
const JSON_FLOAT_AS_INTEGER: f64 = 1e16;

/// 2^63, exactly: the first float outside `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A JSON number whose form would not survive every backend: an integer
/// outside `i64` (MongoDB cannot store it, and it could be a float that
/// `jsonb` printed as digits), or a float of magnitude 1e16 or more that
/// fits `i64` (`jsonb` returns it as an integer).
fn json_number_needs_rewrite(n: &serde_json::Number) -> bool {
    if n.is_u64() {
        return n.as_i64().is_none();
    }
    n.as_f64()
        .is_some_and(|f| f.abs() >= JSON_FLOAT_AS_INTEGER && (-TWO_POW_63..TWO_POW_63).contains(&f))
}

/// Whether every number in `v` already has the one form every backend
/// returns (see [`canonical_json_numbers`]). Iterative.
pub fn json_numbers_canonical(v: &serde_json::Value) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Number(n) if json_number_needs_rewrite(n) => return false,
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    true
}

/// Puts every number inside a JSON field's value in the one form every
/// backend returns, so a value reads back exactly as it was written:
/// a float of magnitude 1e16 or more that fits `i64` becomes that integer
/// (it is one: no value changes; PostgreSQL's `jsonb` returned it as an
/// integer, the others as a float). An integer outside `i64` is refused
/// (the error says which), as it is outside JSON fields. Iterative.
pub fn canonical_json_numbers(v: &mut serde_json::Value) -> std::result::Result<(), String> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Number(n) if json_number_needs_rewrite(n) => {
                if n.is_u64() {
                    return Err(format!(
                        "the JSON integer {n} is outside the 64-bit signed range objectql stores"
                    ));
                }
                let f = n.as_f64().unwrap_or_default();
                // In range and integral (checked above), so exact.
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *n = serde_json::Number::from(i);
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            serde_json::Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
    Ok(())
}

/// Undoes a backend's rewriting of large floats, for a JSON value read
/// back from storage: PostgreSQL's `jsonb` prints a float of 2^63 or more
/// as digits, which parse as an integer beyond `i64`. Writes refuse such
/// integers ([`canonical_json_numbers`]), so every one read back was a
/// float, and becomes that float again. Iterative.
pub fn restore_json_floats(v: &mut serde_json::Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
                if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                    *n = f;
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            serde_json::Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
}

/// [`json_depth`] of a value as it would be written to a JSON field: nested
/// [`Value::Array`]s count like JSON arrays.
pub fn value_json_depth(v: &Value, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(items) => {
                let depth = depth + 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
                stack.extend(items.iter().map(|c| (c, depth)));
            }
            Value::Json(j) => {
                let d = depth + json_depth(j, limit.saturating_sub(depth));
                deepest = deepest.max(d);
                if deepest > limit {
                    return deepest;
                }
            }
            _ => {}
        }
    }
    deepest
}

/// A single value of a field.
///
/// Values read from JSON are *untyped* (`"2026-03-01"` is a [`Value::String`]);
/// validating a query or a record against an object schema coerces them to the
/// field's storage type ([`crate::StorageType`]).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL, a missing field.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float (never NaN or infinite once stored).
    Float(f64),
    /// An exact decimal.
    Decimal(Decimal),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes (base64 in JSON).
    Bytes(Vec<u8>),
    /// A calendar date.
    Date(NaiveDate),
    /// An instant, in UTC.
    DateTime(DateTime<Utc>),
    /// A time of day.
    Time(NaiveTime),
    /// A JSON document (json, multiselect, address… fields). Boxed, so a
    /// `Value` stays 32 bytes: rows of values are scanned in bulk.
    Json(Box<serde_json::Value>),
    /// A list of values (vectors, `$in` lists built in Rust).
    Array(Vec<Value>),
    /// A UUID.
    Uuid(uuid::Uuid),
}

impl Value {
    /// A JSON document value.
    pub fn json(j: serde_json::Value) -> Self {
        Self::Json(Box::new(j))
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Int(_) => "integer",
            Self::Float(_) => "float",
            Self::Decimal(_) => "decimal",
            Self::String(_) => "string",
            Self::Bytes(_) => "bytes",
            Self::Date(_) => "date",
            Self::DateTime(_) => "datetime",
            Self::Time(_) => "time",
            Self::Json(_) => "json",
            Self::Array(_) => "array",
            Self::Uuid(_) => "uuid",
        }
    }

    /// Converts untyped JSON into a value: objects become [`Value::Json`],
    /// arrays [`Value::Array`], integers beyond `i64` are refused.
    pub fn from_json(json: &serde_json::Value, path: &Path) -> Result<Self> {
        Ok(match json {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i)
                } else if n.is_u64() {
                    return Err(path.err(format!("integer {n} does not fit in 64 bits")));
                } else {
                    match n.as_f64() {
                        Some(f) if f.is_finite() => Self::Float(f),
                        _ => return Err(path.err(format!("number {n} is not finite"))),
                    }
                }
            }
            serde_json::Value::String(s) => Self::String(s.clone()),
            serde_json::Value::Array(items) => Self::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::from_json(v, &path.index(i)))
                    .collect::<Result<_>>()?,
            ),
            serde_json::Value::Object(_) => Self::json(json.clone()),
        })
    }

    /// Converts a value to its JSON form (dates as ISO-8601 strings, decimals
    /// as strings so no digit is lost, bytes as base64).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Int(i) => J::from(*i),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Self::Decimal(d) => J::String(d.to_string()),
            Self::String(s) => J::String(s.clone()),
            Self::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Self::Date(d) => J::String(format_date(*d)),
            Self::DateTime(t) => J::String(format_datetime(t)),
            Self::Time(t) => J::String(format_time(*t)),
            Self::Json(j) => (**j).clone(),
            Self::Array(items) => J::Array(items.iter().map(Self::to_json).collect()),
            Self::Uuid(u) => J::String(u.to_string()),
        }
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// RFC 3339 in UTC with `Z`, with as many fractional digits as needed (0, 3, 6 or 9).
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `HH:MM:SS` with optional fraction.
pub fn format_time(t: NaiveTime) -> String {
    t.format("%H:%M:%S%.f").to_string()
}

/// Decodes base64 (standard alphabet, padded).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(&json, &Path::empty()).map_err(serde::de::Error::custom)
    }
}

macro_rules! impl_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Self::$variant(v.into())
            }
        })*
    };
}

impl_from! {
    bool => Bool,
    i32 => Int,
    i64 => Int,
    u32 => Int,
    f64 => Float,
    Decimal => Decimal,
    String => String,
    &str => String,
    Vec<u8> => Bytes,
    NaiveDate => Date,
    DateTime<Utc> => DateTime,
    NaiveTime => Time,
    uuid::Uuid => Uuid,
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Self::json(json)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_is_32_bytes() {
        assert_eq!(std::mem::size_of::<super::Value>(), 32);
    }
}
