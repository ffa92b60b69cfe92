//! SQLite snapshots.
use objectql_planner::sql::SqliteDialect;

const D: SqliteDialect = SqliteDialect {
    version: (3, 45, 1),
    vectors: false,
};
const OLD: SqliteDialect = SqliteDialect {
    version: (3, 25, 0),
    vectors: false,
};

common_cases!(D);

#[test]
fn sqlite_old_versions_emulate_nulls_order_filter_and_distinct() {
    insta::assert_snapshot!(sel(
        &OLD,
        json!({"object": "task", "fields": ["id"], "where": {"n": {"$ne": 3}, "title": {"$ne": {"$field": "owner"}}}, "orderBy": [{"field": "n", "order": "asc"}]})
    ));
}

#[test]
fn sqlite_old_versions_use_case_for_aggregate_filters() {
    insta::assert_snapshot!(sel(
        &OLD,
        json!({"object": "task", "aggregations": [{"function": "sum", "field": "n", "alias": "s", "filter": {"title": "a"}}]})
    ));
}

#[test]
fn sqlite_old_versions_refuse_full_joins_and_returning() {
    let out = sel(
        &OLD,
        json!({"object": "task", "fields": ["id"], "joins": [{"type": "right", "object": "user", "alias": "u", "on": {"owner": {"$eq": {"$field": "u.id"}}}}]}),
    );
    assert!(out.starts_with("error:"), "{out}");
    let cat = catalog();
    let c = SqlCompiler::new(&OLD, &cat);
    let sts = c
        .update_by_id("task", &Value::String("a".into()), &Record::new())
        .unwrap();
    assert!(!sts.sql.contains("RETURNING"));
}

#[test]
fn sqlite_decimals_are_scaled_integers() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let st = c
        .select(&crate::common::query(
            json!({"object": "task", "fields": ["price"], "where": {"price": {"$gt": "1.5"}}}),
        ))
        .unwrap();
    assert_eq!(st.params, vec![Value::Int(150)]);
    let r = c.decode_row(&st.columns, vec![Value::Int(1999)]).unwrap();
    assert_eq!(
        r.get("price"),
        Some(&Value::Decimal(rust_decimal::Decimal::new(1999, 2)))
    );
}

#[test]
fn sqlite_migrate_rebuilds_the_table_for_type_changes() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let old = objectql_query_ast::ObjectSchema::new("m")
        .field(objectql_query_ast::Field::new("a", "integer"))
        .field(objectql_query_ast::Field::new("gone", "text"));
    let new = objectql_query_ast::ObjectSchema::new("m")
        .field(objectql_query_ast::Field::new("a", "currency").decimal(12, 2))
        .field(
            objectql_query_ast::Field::new("b", "text")
                .required()
                .unique(),
        );
    insta::assert_snapshot!(show_all(&c.migrate(&old, &new).unwrap()));
}

#[test]
fn sqlite_refuses_decimals_beyond_18_digits() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let s = objectql_query_ast::ObjectSchema::new("m")
        .field(objectql_query_ast::Field::new("a", "currency").decimal(20, 2));
    assert_eq!(c.create_table(&s).unwrap_err().category(), "unsupported");
}

/// A float `sum`/`avg` past the largest double raises "integer overflow"
/// on the server (`NumericOverflow`) instead of an infinity that Hrana
/// carries as null (issue 12 §8).
#[test]
fn sqlite_float_sums_raise_on_overflow() {
    insta::assert_snapshot!(sel(
        &D,
        json!({"object": "task", "aggregations": [
            {"function": "sum", "field": "score", "alias": "s", "filter": {"title": "a"}},
            {"function": "avg", "field": "score", "alias": "a"}
        ]})
    ));
}
