//! Value comparison, the total order used for sorting, and hashable keys.
//!
//! - [`compare`] is the SQL-like partial order: `None` for NULL and for
//!   values of different kinds. Integers, floats and decimals compare
//!   numerically and *exactly* with each other (no lossy conversion).
//! - [`total_cmp`] extends it to a total order over every value (NULL first,
//!   then kinds by rank), so sorting never sees an inconsistent comparator.
//!
//! Hashable keys consistent with [`compare`] equality are in `hash.rs`.

use std::cmp::Ordering;

use objectql_query_ast::Value;
use rust_decimal::Decimal;
use serde_json::Value as Json;

/// Compares two values: `None` when either is NULL or they are not comparable
/// (different kinds, NaN, JSON documents that differ).
///
/// Same-kind values compare naturally; numbers compare exactly across
/// integer, float and decimal; strings in binary (code point) order; JSON
/// documents only compare equal (structurally, numbers by value) or `None`.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value as V;
    match (a, b) {
        // NULL, and values of different kinds, fall through to `None`.
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::Float(x), V::Float(y)) => x.partial_cmp(y),
        (V::Decimal(x), V::Decimal(y)) => Some(x.cmp(y)),
        (V::Int(i), V::Float(f)) => cmp_float_exact(*f, int_parts(*i)).map(Ordering::reverse),
        (V::Float(f), V::Int(i)) => cmp_float_exact(*f, int_parts(*i)),
        (V::Int(i), V::Decimal(d)) => Some(Decimal::from(*i).cmp(d)),
        (V::Decimal(d), V::Int(i)) => Some(d.cmp(&Decimal::from(*i))),
        (V::Float(f), V::Decimal(d)) => cmp_float_exact(*f, decimal_parts(d)),
        (V::Decimal(d), V::Float(f)) => {
            cmp_float_exact(*f, decimal_parts(d)).map(Ordering::reverse)
        }
        (V::String(x), V::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (V::Bytes(x), V::Bytes(y)) => Some(x.cmp(y)),
        (V::Date(x), V::Date(y)) => Some(x.cmp(y)),
        (V::DateTime(x), V::DateTime(y)) => Some(x.cmp(y)),
        (V::Time(x), V::Time(y)) => Some(x.cmp(y)),
        (V::Uuid(x), V::Uuid(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (V::Json(x), V::Json(y)) => {
            (json_total_cmp(x, y) == Ordering::Equal).then_some(Ordering::Equal)
        }
        (V::Array(xs), V::Array(ys)) => {
            for (p, q) in xs.iter().zip(ys) {
                match compare(p, q)? {
                    Ordering::Equal => {}
                    other => return Some(other),
                }
            }
            Some(xs.len().cmp(&ys.len()))
        }
        _ => None,
    }
}

/// Whether two values are equal in the `$eq` sense (both non-NULL and
/// comparing equal).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

/// A total order over all values, consistent with [`compare`] wherever that
/// returns `Some`: NULL first, then values by kind (numbers of every type
/// together), NaN after every other number, JSON by a structural order.
pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
    use Value as V;
    if let Some(o) = compare(a, b) {
        return o;
    }
    let (ra, rb) = (kind_rank(a), kind_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (V::Json(x), V::Json(y)) => json_total_cmp(x, y),
        (V::Array(xs), V::Array(ys)) => {
            for (p, q) in xs.iter().zip(ys) {
                match total_cmp(p, q) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
        // Numbers that do not compare involve NaN: NaN is the largest number.
        _ => is_nan(a).cmp(&is_nan(b)),
    }
}

fn is_nan(v: &Value) -> bool {
    matches!(v, Value::Float(f) if f.is_nan())
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) | Value::Decimal(_) => 2,
        Value::String(_) => 3,
        Value::Bytes(_) => 4,
        Value::Date(_) => 5,
        Value::DateTime(_) => 6,
        Value::Time(_) => 7,
        Value::Uuid(_) => 8,
        Value::Json(_) => 9,
        Value::Array(_) => 10,
        _ => 11,
    }
}

// ---------------------------------------------------------------------------
// Exact float comparison.

/// An exact rational `±n / 10^scale`.
#[derive(Clone, Copy)]
pub(super) struct Exact {
    negative: bool,
    magnitude: u128,
    scale: u32,
}

fn int_parts(i: i64) -> Exact {
    Exact {
        negative: i < 0,
        magnitude: u128::from(i.unsigned_abs()),
        scale: 0,
    }
}

pub(super) fn decimal_parts(d: &Decimal) -> Exact {
    Exact {
        negative: d.is_sign_negative() && !d.is_zero(),
        magnitude: d.mantissa().unsigned_abs(),
        scale: d.scale(),
    }
}

/// Compares a float with an exact rational, without rounding either.
pub(super) fn cmp_float_exact(f: f64, x: Exact) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    let sign_f: i8 = if f == 0.0 {
        0
    } else if f < 0.0 {
        -1
    } else {
        1
    };
    let sign_x: i8 = if x.magnitude == 0 {
        0
    } else if x.negative {
        -1
    } else {
        1
    };
    if sign_f != sign_x || sign_f == 0 {
        return Some(sign_f.cmp(&sign_x));
    }
    if f.is_infinite() {
        return Some(if sign_f > 0 {
            Ordering::Greater
        } else {
            Ordering::Less
        });
    }
    let o = cmp_magnitude(f.abs(), x.magnitude, x.scale)?;
    Some(if sign_f < 0 { o.reverse() } else { o })
}

/// Compares a positive finite float `m·2^e` with `n / 10^s`:
/// equivalently `m·5^s·2^(e+s)` with `n`, all in `u128` (m < 2^53 and
/// 5^s < 2^66 for s ≤ 28, so `m·5^s` fits).
fn cmp_magnitude(float: f64, numerator: u128, scale: u32) -> Option<Ordering> {
    let bits = float.to_bits();
    let exp_bits = i32::try_from((bits >> 52) & 0x7ff).ok()?;
    let frac = bits & ((1_u64 << 52) - 1);
    let (mantissa, exponent) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1_u64 << 52), exp_bits - 1075)
    };
    let mut pow5: u128 = 1;
    for _ in 0..scale {
        pow5 = pow5.checked_mul(5)?;
    }
    // float·10^scale = lhs·2^shift, compared with `numerator`.
    let lhs = u128::from(mantissa).checked_mul(pow5)?;
    let shift = exponent.checked_add(i32::try_from(scale).ok()?)?;
    if lhs == 0 {
        return Some(0.cmp(&numerator));
    }
    if shift >= 0 {
        let up = u32::try_from(shift).ok()?;
        if up > lhs.leading_zeros() {
            return Some(Ordering::Greater); // lhs·2^up ≥ 2^128 > numerator
        }
        Some((lhs << up).cmp(&numerator))
    } else {
        let down = u32::try_from(shift.checked_neg()?).ok()?;
        if numerator == 0 {
            return Some(Ordering::Greater);
        }
        if down > numerator.leading_zeros() {
            return Some(Ordering::Less); // numerator·2^down ≥ 2^128 > lhs
        }
        Some(lhs.cmp(&(numerator << down)))
    }
}

// ---------------------------------------------------------------------------
// JSON.

fn json_rank(j: &Json) -> u8 {
    match j {
        Json::Null => 0,
        Json::Bool(_) => 1,
        Json::Number(_) => 2,
        Json::String(_) => 3,
        Json::Array(_) => 4,
        Json::Object(_) => 5,
    }
}

/// A JSON number as a value (exactly: big unsigned integers become decimals).
pub(crate) fn json_number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else if let Some(u) = n.as_u64() {
        Value::Decimal(Decimal::from(u))
    } else {
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A total structural order over JSON documents: numbers by value, object
/// keys in sorted order (so key order does not matter).
pub(crate) fn json_total_cmp(a: &Json, b: &Json) -> Ordering {
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => total_cmp(&json_number(x), &json_number(y)),
        (Json::String(x), Json::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Json::Array(xs), Json::Array(ys)) => {
            for (p, q) in xs.iter().zip(ys) {
                match json_total_cmp(p, q) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Json::Object(xm), Json::Object(ym)) => {
            let mut xs: Vec<(&String, &Json)> = xm.iter().collect();
            let mut ys: Vec<(&String, &Json)> = ym.iter().collect();
            xs.sort_unstable_by(|p, q| p.0.cmp(q.0));
            ys.sort_unstable_by(|p, q| p.0.cmp(q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                match kx.cmp(ky).then_with(|| json_total_cmp(vx, vy)) {
                    Ordering::Equal => {}
                    other => return other,
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => json_rank(a).cmp(&json_rank(b)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "compare_tests.rs"]
mod tests;
