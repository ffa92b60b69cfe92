//! Unit tests of `compare.rs`.

use super::*;
use crate::eval::hash::{hash_row, key_eq};
use chrono::NaiveDate;
use serde_json::json;
use std::str::FromStr;

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::from_str(s).unwrap())
}

fn h(v: &Value) -> u64 {
    hash_row([v])
}

#[test]
fn null_is_incomparable() {
    assert_eq!(compare(&Value::Null, &Value::Int(1)), None);
    assert_eq!(compare(&Value::Int(1), &Value::Null), None);
    assert_eq!(compare(&Value::Null, &Value::Null), None);
}

#[test]
fn different_kinds_are_incomparable() {
    assert_eq!(compare(&Value::String("1".into()), &Value::Int(1)), None);
    assert_eq!(compare(&Value::Bool(true), &Value::Int(1)), None);
    let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    assert_eq!(
        compare(&Value::Date(d), &Value::String("2026-03-01".into())),
        None
    );
}

#[test]
fn int_float_compare_exactly_beyond_2_pow_53() {
    let big = 9_007_199_254_740_993_i64; // 2^53 + 1, not a float
    let f = 9_007_199_254_740_992.0_f64; // 2^53
    assert_eq!(
        compare(&Value::Int(big), &Value::Float(f)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        compare(&Value::Float(f), &Value::Int(big)),
        Some(Ordering::Less)
    );
    assert_eq!(
        compare(&Value::Int(big - 1), &Value::Float(f)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        compare(&Value::Int(i64::MAX), &Value::Float(9.3e18)),
        Some(Ordering::Less)
    );
    assert_eq!(
        compare(&Value::Int(i64::MIN), &Value::Float(-9.3e18)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        compare(&Value::Int(2), &Value::Float(2.5)),
        Some(Ordering::Less)
    );
    assert_eq!(
        compare(&Value::Int(-2), &Value::Float(-2.5)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        compare(&Value::Int(0), &Value::Float(-0.0)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        compare(&Value::Int(0), &Value::Float(1e-300)),
        Some(Ordering::Less)
    );
    assert_eq!(compare(&Value::Int(0), &Value::Float(f64::NAN)), None);
}

#[test]
fn float_decimal_compare_exactly() {
    // 0.1 as a float is slightly above the decimal 0.1.
    assert_eq!(
        compare(&Value::Float(0.1), &dec("0.1")),
        Some(Ordering::Greater)
    );
    assert_eq!(
        compare(&Value::Float(0.5), &dec("0.50")),
        Some(Ordering::Equal)
    );
    assert_eq!(
        compare(&dec("-1.25"), &Value::Float(-1.25)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        compare(&dec("-1.26"), &Value::Float(-1.25)),
        Some(Ordering::Less)
    );
    assert_eq!(
        compare(&dec("1e20"), &Value::Float(1e20)),
        Some(Ordering::Equal)
    );
    assert_eq!(
        compare(&dec("3"), &Value::Float(1e300)),
        Some(Ordering::Less)
    );
    assert_eq!(
        compare(
            &dec("0.0000000000000000000000000001"),
            &Value::Float(1e-300)
        ),
        Some(Ordering::Greater)
    );
}

#[test]
fn int_decimal_compare() {
    assert_eq!(
        compare(&Value::Int(2), &dec("1.99")),
        Some(Ordering::Greater)
    );
    assert_eq!(compare(&dec("2.00"), &Value::Int(2)), Some(Ordering::Equal));
}

#[test]
fn strings_compare_binary_with_trailing_spaces() {
    let s = |x: &str| Value::String(x.into());
    assert_eq!(compare(&s("a"), &s("a ")), Some(Ordering::Less));
    assert!(!values_equal(&s("a"), &s("a ")));
    assert_eq!(compare(&s("B"), &s("a")), Some(Ordering::Less));
    assert_eq!(compare(&s("z"), &s("é")), Some(Ordering::Less));
}

#[test]
fn json_equality_is_structural_without_order() {
    let a = Value::json(json!({"a": 1, "b": [1, 2.0]}));
    let b = Value::json(json!({"b": [1.0, 2], "a": 1.0}));
    let c = Value::json(json!({"a": 2}));
    assert_eq!(compare(&a, &b), Some(Ordering::Equal));
    assert_eq!(compare(&a, &c), None);
    assert!(key_eq(&a, &b));
    assert_eq!(h(&a), h(&b));
    assert_ne!(total_cmp(&a, &c), Ordering::Equal);
}

#[test]
fn arrays_compare_elementwise() {
    let a = Value::Array(vec![Value::Int(1), Value::Int(2)]);
    let b = Value::Array(vec![Value::Int(1), Value::Int(3)]);
    let c = Value::Array(vec![Value::Int(1)]);
    assert_eq!(compare(&a, &b), Some(Ordering::Less));
    assert_eq!(compare(&c, &a), Some(Ordering::Less));
}

#[test]
fn keys_unify_equal_numbers() {
    let vals = [Value::Int(1), Value::Float(1.0), dec("1.000")];
    for x in &vals {
        for y in &vals {
            assert!(key_eq(x, y));
            assert_eq!(h(x), h(y));
        }
    }
    assert_eq!(h(&Value::Float(0.0)), h(&Value::Float(-0.0)));
    assert_eq!(h(&Value::Float(0.5)), h(&dec("0.5")));
    assert!(key_eq(&Value::Float(f64::NAN), &Value::Float(f64::NAN)));
    assert!(key_eq(&Value::Null, &Value::Null));
    assert!(!key_eq(&Value::Null, &Value::Int(0)));
}

#[test]
fn total_cmp_orders_mixed_kinds() {
    let mut v = [
        Value::String("a".into()),
        Value::Float(f64::NAN),
        Value::Int(3),
        Value::Null,
        Value::Bool(true),
        Value::Float(1.5),
    ];
    v.sort_by(total_cmp);
    assert!(v[0].is_null());
    assert_eq!(v[1], Value::Bool(true));
    assert_eq!(v[2], Value::Float(1.5));
    assert_eq!(v[3], Value::Int(3));
    assert!(matches!(v[4], Value::Float(f) if f.is_nan()));
    assert_eq!(v[5], Value::String("a".into()));
}
