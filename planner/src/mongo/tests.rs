//! Pipeline snapshots and the compiler's refusals.

use super::*;
use objectql_query_ast::{Field, Query, Value, field};
use serde_json::json;

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    let task = ObjectSchema::from_json(&json!({
        "name": "task",
        "fields": {
            "title": {"type": "text"},
            "priority": {"type": "integer"},
            "estimate": {"type": "number"},
            "price": {"type": "currency", "scale": 2},
            "done": {"type": "boolean"},
            "due": {"type": "date"},
            "created": {"type": "datetime"},
            "meta": {"type": "json"},
            "blob": {"type": "binary"},
            "owner": {"type": "text", "columnName": "owner_id"}
        }
    }))
    .unwrap();
    c.insert(task).unwrap();
    c
}

fn validated(q: &serde_json::Value) -> Query {
    let catalog = catalog();
    objectql_query_ast::validate_query(
        &Query::from_json(q).unwrap(),
        &catalog,
        &objectql_query_ast::ResolveContext::now(),
    )
    .unwrap()
}

fn stages(q: &serde_json::Value) -> serde_json::Value {
    let catalog = catalog();
    let p = MongoCompiler::new(&catalog).find(&validated(q)).unwrap();
    serde_json::Value::Array(
        p.stages
            .into_iter()
            .map(|d| codec::to_json(&bson::Bson::Document(d)))
            .collect(),
    )
}

fn refusal(q: &serde_json::Value) -> String {
    let catalog = catalog();
    match MongoCompiler::new(&catalog).find(&validated(q)) {
        Err(Error::Unsupported { feature, .. }) => feature,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn null_safe_negations_and_lists() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["id", "title"],
        "where": {"$and": [
            {"title": {"$ne": "x"}},
            {"priority": {"$nin": [1, null]}},
            {"priority": {"$in": [null]}},
            {"$not": {"done": true}},
            {"$or": []},
        ]}
    })));
}

#[test]
fn text_operators_are_literal_regexes() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["id"],
        "where": {"$or": [
            {"title": {"$contains": "a.b*"}},
            {"title": {"$notContains": "(x)"}},
            {"title": {"$startsWith": "^s"}},
            {"title": {"$endsWith": "e$"}},
            {"title": {"$icontains": "Ab"}},
            {"title": {"$like": "a%b_\\%"}},
            {"title": {"$ilike": "q%"}},
        ]}
    })));
}

#[test]
fn values_never_become_operators() {
    // A string that looks like an operator document stays a string in a
    // value slot; a json comparand never reaches a filter.
    let s = stages(&json!({
        "object": "task",
        "where": {"title": {"$eq": "{\"$gt\": \"\"}"}, "owner": "$where"}
    }));
    assert_eq!(
        s[0],
        json!({"$match": {"$and": [
            {"title": {"$eq": "{\"$gt\": \"\"}"}},
            {"owner_id": {"$eq": "$where"}}
        ]}})
    );
    let text = serde_json::to_string(&s).unwrap();
    for forbidden in ["$where\":", "$function", "$accumulator"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
}

#[test]
fn sort_page_and_null_placement() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["title", "priority"],
        "orderBy": [
            {"field": "priority", "order": "asc", "nulls": "last"},
            {"field": "title", "order": "desc"}
        ],
        "offset": 5,
        "limit": 10
    })));
}

#[test]
fn keyset_cursor() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["id", "priority"],
        "orderBy": [{"field": "priority", "order": "desc"}],
        "cursor": {"after": {"priority": 3, "id": "t9"}},
        "limit": 2
    })));
}

#[test]
fn group_by_with_date_buckets_and_having() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "groupBy": [
            {"field": "created", "dateGranularity": "week", "alias": "wk"},
            {"field": "due", "dateGranularity": "quarter", "alias": "q"},
            "done"
        ],
        "aggregations": [
            {"function": "count", "alias": "n"},
            {"function": "sum", "field": "priority", "alias": "total"},
            {"function": "avg", "field": "estimate", "alias": "mean"},
            {"function": "count_distinct", "field": "title", "alias": "titles"},
            {"function": "max", "field": "price", "alias": "top"}
        ],
        "having": {"n": {"$gt": 1}},
        "orderBy": [{"field": "n", "order": "desc"}]
    })));
}

#[test]
fn aggregate_without_group_by_has_an_empty_input_row() {
    let catalog = catalog();
    let q = validated(&json!({
        "object": "task",
        "aggregations": [
            {"function": "count", "alias": "n"},
            {"function": "sum", "field": "priority", "alias": "s"}
        ],
        "having": {"n": {"$gte": 0}}
    }));
    let p = MongoCompiler::new(&catalog).find(&q).unwrap();
    let row = p.empty_input.clone().unwrap();
    assert_eq!(row.get("n"), Some(&Value::Int(0)));
    assert_eq!(row.get("s"), Some(&Value::Null));
    assert_eq!(empty_input_rows(&q, &row).unwrap(), vec![row.clone()]);
    // `having` excludes it, and so does an offset.
    let mut q2 = q.clone();
    q2.having = Some(field("n").gt(0));
    assert!(empty_input_rows(&q2, &row).unwrap().is_empty());
    let mut q3 = q;
    q3.offset = Some(1);
    assert!(empty_input_rows(&q3, &row).unwrap().is_empty());
}

#[test]
fn distinct_rows_group_null_with_missing() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["done", "priority"],
        "distinct": true,
        "orderBy": [{"field": "priority", "order": "asc"}]
    })));
}

#[test]
fn field_to_field_comparisons_use_field_paths_only() {
    insta::assert_json_snapshot!(stages(&json!({
        "object": "task",
        "fields": ["id"],
        "where": {"priority": {"$gt": {"$field": "estimate"}}, "title": {"$ne": {"$field": "owner"}}}
    })));
}

#[test]
fn limit_zero_is_empty_and_the_primary_key_is_id() {
    let catalog = catalog();
    let p = MongoCompiler::new(&catalog)
        .find(&validated(
            &json!({"object": "task", "fields": ["id"], "limit": 0}),
        ))
        .unwrap();
    assert!(p.empty);
    assert_eq!(
        p.stages.last().unwrap().to_string(),
        r#"{ "$project": { "_id": 0, "id": "$_id" } }"#
    );
}

#[test]
fn what_cannot_be_exact_is_refused() {
    assert!(
        refusal(&json!({"object": "task", "orderBy": [{"field": "blob", "order": "asc"}]}))
            .contains("binary")
    );
    assert!(refusal(&json!({"object": "task", "aggregations": [{"function": "array_agg", "field": "title", "alias": "a"}]})).contains("array_agg"));
    assert!(refusal(&json!({"object": "task", "aggregations": [{"function": "avg", "field": "price", "alias": "a"}]})).contains("avg"));
    assert!(
        refusal(
            &json!({"object": "task", "aggregations": [{"function": "count", "alias": "a.b"}]})
        )
        .contains("a.b")
    );
    assert!(
        refusal(&json!({"object": "task", "aggregations": [{"function": "count", "alias": "$x"}]}))
            .contains("$x")
    );
    let schema = catalog().get("task").unwrap().clone();
    let c = objectql_query_ast::Condition {
        field: "blob".into(),
        op: objectql_query_ast::Op::Gt(objectql_query_ast::Operand::Value(Value::Bytes(vec![1]))),
    };
    assert_eq!(MongoCompiler::classify(&schema, &c), Pushdown::Unsupported);
    let c = objectql_query_ast::Condition {
        field: "title".into(),
        op: objectql_query_ast::Op::Contains("x".into()),
    };
    assert_eq!(MongoCompiler::classify(&schema, &c), Pushdown::Exact);
}

#[test]
fn field_names_that_are_not_plain_keys_are_refused() {
    for bad in ["$set", "a.b", "_id", ""] {
        assert!(!is_plain_key(bad), "{bad}");
    }
    let mut f = Field::new("x", "text");
    f.column_name = Some("a.b".into());
    let s = ObjectSchema::new("t").field(f);
    assert_eq!(check_schema(&s).unwrap_err().category(), "validation");
    assert!(check_schema(&ObjectSchema::new("t").field(Field::new("ok", "text"))).is_ok());
}

fn join_catalog() -> Catalog {
    let mut c = Catalog::new();
    for s in [
        json!({"name": "customer", "fields": {"name": {"type": "text"}, "tier": {"type": "text"}}}),
        json!({"name": "order", "fields": {"customer_id": {"type": "text"}, "total": {"type": "integer"}}}),
    ] {
        c.insert(ObjectSchema::from_json(&s).unwrap()).unwrap();
    }
    c
}

fn join_stages(q: &serde_json::Value) -> Result<Pipeline> {
    let catalog = join_catalog();
    let typed = objectql_query_ast::validate_query(
        &Query::from_json(q).unwrap(),
        &catalog,
        &objectql_query_ast::ResolveContext::now(),
    )
    .unwrap();
    MongoCompiler::new(&catalog).find(&typed)
}

#[test]
fn inner_and_left_joins_are_lookups() {
    let p = join_stages(&json!({
        "object": "order",
        "fields": ["id", "c.name"],
        "where": {"total": {"$gt": 5}, "c.tier": {"$ne": "gold"}},
        "joins": [{"type": "left", "object": "customer", "alias": "c", "on": {"customer_id": {"$field": "c.id"}}}],
        "orderBy": [{"field": "c.name", "order": "asc"}]
    }))
    .unwrap();
    let names: Vec<_> = p
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.key.as_str()))
        .collect();
    assert_eq!(names, vec![("id", "c0"), ("c.name", "c1")]);
    insta::assert_json_snapshot!(serde_json::Value::Array(
        p.stages
            .into_iter()
            .map(|d| codec::to_json(&bson::Bson::Document(d)))
            .collect()
    ));
}

#[test]
fn right_full_and_non_equality_joins_are_refused() {
    for (t, on) in [
        ("right", json!({"customer_id": {"$field": "c.id"}})),
        ("full", json!({"customer_id": {"$field": "c.id"}})),
        ("inner", json!({"customer_id": {"$gt": {"$field": "c.id"}}})),
    ] {
        let e = join_stages(&json!({
            "object": "order",
            "joins": [{"type": t, "object": "customer", "alias": "c", "on": on}]
        }))
        .unwrap_err();
        assert_eq!(e.category(), "unsupported", "{t}: {e}");
    }
}
