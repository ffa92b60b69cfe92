//! Pipeline tests of [`execute`] and the aggregate functions.

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use indexmap::IndexMap;
use objectql_query_ast::{
    AggFunction, Aggregation, Cursor, DateGranularity, DriverErrorKind, NullsOrder, Query,
    SortItem, field,
};
use rust_decimal::Decimal;
use serde_json::json;

use super::*;

mod aggregates;
mod nearest;

fn columns(names: &[&str]) -> Columns {
    names.iter().copied().collect()
}

fn run(cols: &Columns, rows: &[Vec<Value>], q: &Query) -> Result<Relation> {
    execute(cols, rows.iter().map(Vec::as_slice), q)
}

/// id, team, n, price
fn people() -> (Columns, Vec<Vec<Value>>) {
    let d = |s: &str| Value::Decimal(Decimal::from_str(s).unwrap());
    let rows = vec![
        vec![Value::Int(1), Value::from("red"), Value::Int(10), d("1.50")],
        vec![Value::Int(2), Value::from("blue"), Value::Null, d("2.25")],
        vec![
            Value::Int(3),
            Value::from("red"),
            Value::Int(30),
            Value::Null,
        ],
        vec![Value::Int(4), Value::Null, Value::Int(20), d("0.25")],
        vec![
            Value::Int(5),
            Value::from("blue"),
            Value::Int(10),
            d("1.00"),
        ],
        vec![Value::Int(6), Value::Null, Value::Null, Value::Null],
    ];
    (columns(&["id", "team", "n", "price"]), rows)
}

fn ids(r: &Relation) -> Vec<i64> {
    let c = r.columns.index_of("id").unwrap();
    r.rows.iter().map(|row| row[c].as_i64().unwrap()).collect()
}

fn col(r: &Relation, name: &str) -> Vec<Value> {
    let c = r.columns.index_of(name).unwrap();
    r.rows.iter().map(|row| row[c].clone()).collect()
}

fn agg(function: AggFunction, f: Option<&str>, alias: &str) -> Aggregation {
    Aggregation::new(function, f, alias)
}

#[test]
fn filter_sort_limit_offset_projection() {
    let (c, rows) = people();
    let q = Query::new("p")
        .filter(field("n").ne(30))
        .desc("n")
        .asc("id")
        .offset(1)
        .limit(3)
        .select(["id", "n"]);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["id", "n"]);
    // n desc: 20(4), 10(1), 10(5), NULL(2), NULL(6) — NULLs last in desc.
    assert_eq!(ids(&r), vec![1, 5, 2]);
}

#[test]
fn no_projection_returns_all_columns_in_order() {
    let (c, rows) = people();
    let r = run(&c, &rows, &Query::new("p")).unwrap();
    assert_eq!(r.columns, c);
    assert_eq!(r.rows, rows);
}

#[test]
fn limit_zero_and_offset_past_the_end_return_nothing() {
    let (c, rows) = people();
    assert!(
        run(&c, &rows, &Query::new("p").limit(0))
            .unwrap()
            .rows
            .is_empty()
    );
    assert!(
        run(&c, &rows, &Query::new("p").asc("id").offset(99))
            .unwrap()
            .rows
            .is_empty()
    );
    assert_eq!(
        ids(&run(&c, &rows, &Query::new("p").offset(4)).unwrap()),
        vec![5, 6]
    );
}

#[test]
fn unsorted_limit_keeps_input_order() {
    let (c, rows) = people();
    assert_eq!(
        ids(&run(&c, &rows, &Query::new("p").limit(2)).unwrap()),
        vec![1, 2]
    );
}

#[test]
fn explicit_nulls_order_through_execute() {
    let (c, rows) = people();
    let mut item = SortItem::asc("n");
    item.nulls = Some(NullsOrder::Last);
    let q = Query::new("p").order_by(item).asc("id");
    assert_eq!(ids(&run(&c, &rows, &q).unwrap()), vec![1, 5, 4, 3, 2, 6]);
}

#[test]
fn cursor_pages_walk_every_row_once() {
    let (c, rows) = people();
    let mut seen = Vec::new();
    let mut after: Option<IndexMap<String, Value>> = None;
    loop {
        let mut q = Query::new("p").desc("n").asc("id").limit(2);
        if let Some(a) = after.take() {
            q = q.after(Cursor { after: a });
        }
        let page = run(&c, &rows, &q).unwrap();
        let Some(last) = page.rows.last() else { break };
        let mut a = IndexMap::new();
        a.insert("n".to_owned(), last[2].clone());
        a.insert("id".to_owned(), last[0].clone());
        after = Some(a);
        seen.extend(ids(&page));
    }
    assert_eq!(seen, vec![3, 4, 1, 5, 2, 6]);
}

#[test]
fn distinct_deduplicates_projected_rows_keeping_first() {
    let (c, rows) = people();
    let q = Query::new("p").select(["team"]).distinct();
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        col(&r, "team"),
        vec![Value::from("red"), Value::from("blue"), Value::Null]
    );
    let q = Query::new("p")
        .select(["team"])
        .distinct()
        .desc("team")
        .limit(2);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        col(&r, "team"),
        vec![Value::from("red"), Value::from("blue")]
    );
}

#[test]
fn distinct_unifies_json_and_numbers_by_value() {
    let c = columns(&["j", "x"]);
    let rows = vec![
        vec![Value::json(json!({"a": 1, "b": 2})), Value::Float(1.0)],
        vec![Value::json(json!({"b": 2.0, "a": 1})), Value::Int(1)],
        vec![Value::json(json!({"a": 1})), Value::Float(-0.0)],
        vec![Value::json(json!({"a": 1})), Value::Float(0.0)],
    ];
    let r = run(&c, &rows, &Query::new("t").distinct()).unwrap();
    assert_eq!(r.rows.len(), 2);
}

#[test]
fn distinct_sorting_on_an_unselected_field_is_a_plan_error() {
    let (c, rows) = people();
    let q = Query::new("p").select(["team"]).distinct().asc("n");
    assert_eq!(run(&c, &rows, &q).unwrap_err().category(), "plan");
}

#[test]
fn count_and_distinct_values() {
    let (c, rows) = people();
    let slices = || rows.iter().map(Vec::as_slice);
    assert_eq!(count(&c, slices(), None).unwrap(), 6);
    assert_eq!(count(&c, slices(), Some(&field("n").gt(10))).unwrap(), 2);
    assert_eq!(count(&c, slices(), Some(&field("n").ne(10))).unwrap(), 4);
    let v = distinct_values(&c, slices(), "n", None).unwrap();
    assert_eq!(v, vec![Value::Int(10), Value::Int(20), Value::Int(30)]);
    let v = distinct_values(&c, slices(), "team", Some(&field("n").is_not_null())).unwrap();
    assert_eq!(v, vec![Value::from("blue"), Value::from("red")]);
    assert_eq!(
        distinct_values(&c, slices(), "nope", None)
            .unwrap_err()
            .category(),
        "internal"
    );
}

#[test]
fn unknown_columns_are_internal_errors_not_panics() {
    let (c, rows) = people();
    for q in [
        Query::new("p").filter(field("zz").eq(1)),
        Query::new("p").asc("zz"),
        Query::new("p").select(["zz"]),
        Query::new("p").group_by("zz"),
        Query::new("p").aggregate(agg(AggFunction::Sum, Some("zz"), "s")),
    ] {
        assert_eq!(
            run(&c, &rows, &q).unwrap_err().category(),
            "internal",
            "{q:?}"
        );
    }
}

#[test]
fn top_k_over_many_rows_matches_a_full_sort() {
    let c = columns(&["id", "v"]);
    let rows: Vec<Vec<Value>> = (0..5_000_i64)
        .map(|i| {
            vec![
                Value::Int(i),
                if i % 7 == 0 {
                    Value::Null
                } else {
                    Value::Int((i * 7919) % 101)
                },
            ]
        })
        .collect();
    let full = run(&c, &rows, &Query::new("t").desc("v")).unwrap();
    for (offset, limit) in [(0, 10), (95, 10), (4_990, 50)] {
        let q = Query::new("t").desc("v").offset(offset).limit(limit);
        let page = run(&c, &rows, &q).unwrap();
        let start = usize::try_from(offset).unwrap().min(full.rows.len());
        let end = (start + usize::try_from(limit).unwrap()).min(full.rows.len());
        assert_eq!(page.rows, full.rows[start..end].to_vec());
    }
}

#[test]
fn joined_relation_feeds_execute() {
    let tasks = Relation::new(
        columns(&["id", "owner"]),
        vec![
            vec![Value::Int(1), Value::from("u1")],
            vec![Value::Int(2), Value::from("u2")],
        ],
    );
    let users = Relation::new(
        columns(&["id", "name"]),
        vec![
            vec![Value::from("u1"), Value::from("Ann")],
            vec![Value::from("u2"), Value::from("Bob")],
        ],
    );
    let j = join(
        tasks,
        &users,
        "u",
        objectql_query_ast::JoinType::Inner,
        &field("owner").eq_field("u.id"),
    )
    .unwrap();
    let q = Query::new("t")
        .filter(field("u.name").eq("Bob"))
        .select(["id", "u.name"]);
    let r = execute(&j.columns, j.rows.iter().map(Vec::as_slice), &q).unwrap();
    assert_eq!(r.rows, vec![vec![Value::Int(2), Value::from("Bob")]]);
}
