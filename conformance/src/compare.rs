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

/// Whether two lists hold the same elements, in any order.
pub fn multiset_eq(expected: &[Json], actual: &[Json]) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let mut used = vec![false; actual.len()];
    expected.iter().all(|e| {
        let found = actual
            .iter()
            .enumerate()
            .find(|(i, a)| !used.get(*i).copied().unwrap_or(true) && json_eq(e, a));
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
}
