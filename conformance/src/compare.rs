//! Result comparison: JSON equality where integers and floats compare by value.

use serde_json::Value as Json;

/// Equality of JSON values, with numbers compared by value (`2` = `2.0`) and
/// floats within a relative 1e-9.
pub fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(left), Json::Number(right)) => {
            if let (Some(li), Some(ri)) = (left.as_i64(), right.as_i64()) {
                return li == ri;
            }
            match (left.as_f64(), right.as_f64()) {
                (Some(lf), Some(rf)) => {
                    lf == rf || (lf - rf).abs() <= 1e-9 * lf.abs().max(rf.abs())
                }
                _ => false,
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// How close two vector distances must be: a relative 1e-6, and an
/// absolute 1e-6 near zero.
///
/// Vector components are float32 everywhere, but backends compute distances
/// differently: libSQL in float32 arithmetic (its answer, a float32, is
/// within a few float32 ulps ≈ 1e-7 relative of the exact distance), the
/// memory driver (the reference) in float64. Both are correct to float32
/// precision, so distances are compared to that precision. The absolute
/// floor covers distances that are exactly 0 in float64 but come out as
/// ~1e-7 in float32 (a cosine of two parallel vectors).
pub const DISTANCE_TOLERANCE: f64 = 1e-6;

/// Equality of two vector distances within [`DISTANCE_TOLERANCE`].
pub fn distance_eq(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= DISTANCE_TOLERANCE * x.abs().max(y.abs()).max(1.0),
        _ => json_eq(a, b),
    }
}

/// Equality of two result rows, where the field `distance` (a nearest
/// query's distance column, if any) is compared with [`distance_eq`] and
/// every other value with [`json_eq`].
pub fn row_eq(expected: &Json, actual: &Json, distance: Option<&str>) -> bool {
    match (distance, expected, actual) {
        (Some(key), Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k).is_some_and(|w| {
                        if k == key {
                            distance_eq(v, w)
                        } else {
                            json_eq(v, w)
                        }
                    })
                })
        }
        _ => json_eq(expected, actual),
    }
}

/// Whether two lists hold the same elements, in any order.
pub fn multiset_eq(expected: &[Json], actual: &[Json]) -> bool {
    multiset_eq_by(expected, actual, json_eq)
}

/// Whether two lists hold the same elements, in any order, by `eq`.
pub fn multiset_eq_by(
    expected: &[Json],
    actual: &[Json],
    eq: impl Fn(&Json, &Json) -> bool,
) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let mut used = vec![false; actual.len()];
    expected.iter().all(|e| {
        let found = actual
            .iter()
            .enumerate()
            .find(|(i, a)| !used.get(*i).copied().unwrap_or(true) && eq(e, a));
        match found {
            Some((i, _)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                true
            }
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_by_value_and_multisets() {
        assert!(json_eq(&json!(2), &json!(2.0)));
        assert!(!json_eq(&json!(2), &json!(2.5)));
        assert!(!json_eq(&json!("2"), &json!(2)));
        assert!(multiset_eq(
            &[json!(1), json!(2), json!(2)],
            &[json!(2), json!(1), json!(2)]
        ));
        assert!(!multiset_eq(&[json!(1), json!(1)], &[json!(1), json!(2)]));
    }

    #[test]
    fn distances_compare_to_float32_precision() {
        let row = |d: f64| json!({"id": "a", "_distance": d});
        let key = Some("_distance");
        // libSQL's float32 cosine of parallel vectors, and a float32 rounding.
        assert!(row_eq(&row(0.0), &row(1.2e-7), key));
        assert!(row_eq(
            &row(0.358_466_982_841_491_7),
            &row(0.358_466_997_2),
            key
        ));
        assert!(row_eq(&row(1_000.0), &row(1_000.000_9), key));
        assert!(!row_eq(&row(1_000.0), &row(1_000.002), key));
        assert!(!row_eq(&row(0.1), &row(0.100_01), key));
        // Only the distance field is loose.
        assert!(!row_eq(&row(0.0), &row(1.2e-7), None));
        assert!(!row_eq(
            &json!({"x": 0.1, "_distance": 0}),
            &json!({"x": 0.100_000_1, "_distance": 0}),
            key
        ));
    }
}
