//! Exact nearest-neighbour search in [`execute`].

use objectql_query_ast::{Nearest, VectorMetric};

use super::*;

fn vector(xs: &[f64]) -> Value {
    Value::Array(xs.iter().map(|&x| Value::Float(x)).collect())
}

/// id, lang, e (in this input order, so ties are not in id order).
fn docs() -> (Columns, Vec<Vec<Value>>) {
    let row = |id: i64, lang: &str, e: Value| vec![Value::Int(id), Value::from(lang), e];
    let rows = vec![
        row(7, "en", vector(&[1.0, 0.0, 0.0])),
        row(2, "en", vector(&[0.0, 1.0, 0.0])),
        row(3, "fr", vector(&[1.0, 1.0, 0.0])),
        row(4, "en", Value::Null),
        row(5, "en", vector(&[0.0, 0.0, 0.0])),
        row(6, "fr", vector(&[-1.0, 0.0, 0.0])),
        row(1, "en", vector(&[1.0, 0.0, 0.0])),
    ];
    (columns(&["id", "lang", "e"]), rows)
}

fn near(q: &[f64], k: u64) -> Nearest {
    let mut n = Nearest::new("e", q.iter().copied(), k);
    n.tie_breaker = Some("id".into());
    n
}

fn distances(r: &Relation) -> Vec<f64> {
    col(r, "_distance")
        .into_iter()
        .map(|v| match v {
            Value::Float(f) => f,
            other => panic!("distance {other:?}"),
        })
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn cosine_top_k_by_distance_then_primary_key() {
    let (c, rows) = docs();
    let q = Query::new("d").nearest(near(&[1.0, 0.0, 0.0], 4));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["id", "lang", "e", "_distance"]);
    // 1 and 7 tie at 0 (id order); then 3 at 1 − 1/√2; then 2 at 1.
    assert_eq!(ids(&r), vec![1, 7, 3, 2]);
    let d = distances(&r);
    assert!(
        close(&d, &[0.0, 0.0, 1.0 - 1.0 / 2f64.sqrt(), 1.0]),
        "{d:?}"
    );
}

#[test]
fn null_and_zero_vectors_have_no_cosine_distance() {
    let (c, rows) = docs();
    let q = Query::new("d").nearest(near(&[1.0, 0.0, 0.0], 100));
    let r = run(&c, &rows, &q).unwrap();
    // 4 (NULL) and 5 (zero vector) are left out; k beyond the rows is fine.
    assert_eq!(ids(&r), vec![1, 7, 3, 2, 6]);
    assert!((distances(&r)[4] - 2.0).abs() < 1e-12);
}

#[test]
fn l2_measures_the_zero_vector_too() {
    let (c, rows) = docs();
    let q = Query::new("d").nearest(near(&[0.5, 0.0, 0.0], 3).metric(VectorMetric::L2));
    let r = run(&c, &rows, &q).unwrap();
    // 1, 7 at 0.5; 5 (zero vector) at 0.5 too — then by id: 1, 5, 7.
    assert_eq!(ids(&r), vec![1, 5, 7]);
    assert!(close(&distances(&r), &[0.5, 0.5, 0.5]));
    let q = Query::new("d").nearest(near(&[1.0, 1.0, 0.0], 2).metric(VectorMetric::L2));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(ids(&r), vec![3, 1]);
    assert!(close(&distances(&r), &[0.0, 1.0]));
}

#[test]
fn where_applies_before_the_top_k_and_projection_keeps_the_distance() {
    let (c, rows) = docs();
    let q = Query::new("d")
        .filter(field("lang").eq("fr"))
        .select(["lang"])
        .nearest(near(&[1.0, 0.0, 0.0], 1).distance_as("dist"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["lang", "dist"]);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0][0], Value::from("fr"));
    assert!(
        matches!(r.rows[0][1], Value::Float(d) if (d - (1.0 - 1.0 / 2f64.sqrt())).abs() < 1e-12)
    );
}

#[test]
fn without_a_tie_breaker_ties_keep_the_input_order() {
    let (c, rows) = docs();
    let mut n = near(&[1.0, 0.0, 0.0], 2);
    n.tie_breaker = None;
    let r = run(&c, &rows, &Query::new("d").nearest(n)).unwrap();
    assert_eq!(ids(&r), vec![7, 1]);
}

#[test]
fn a_malformed_stored_vector_is_an_internal_error_not_a_panic() {
    let c = columns(&["id", "e"]);
    let rows = vec![vec![Value::Int(1), vector(&[1.0, 2.0])]];
    let e = run(
        &c,
        &rows,
        &Query::new("d").nearest(near(&[1.0, 0.0, 0.0], 1)),
    )
    .unwrap_err();
    assert_eq!(e.category(), "internal");
    let rows = vec![vec![Value::Int(1), Value::from("x")]];
    let e = run(
        &c,
        &rows,
        &Query::new("d").nearest(near(&[1.0, 0.0, 0.0], 1)),
    )
    .unwrap_err();
    assert_eq!(e.category(), "internal");
}
