//! Shared fixtures and the cases every dialect snapshots.

use chrono::{TimeZone, Utc};
use objectql_planner::sql::{SqlCompiler, SqlDialect, Statement};
use objectql_query_ast::{
    Catalog, Field, Index, ObjectSchema, Query, ResolveContext, validate_query,
};

pub fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(
        ObjectSchema::new("task")
            .field(Field::new("title", "text").required())
            .field(Field::new("n", "integer"))
            .field(Field::new("price", "currency").decimal(10, 2))
            .field(Field::new("score", "number"))
            .field(Field::new("done", "boolean"))
            .field(Field::new("due", "datetime"))
            .field(Field::new("day", "date"))
            .field(Field::new("at", "time"))
            .field(Field::new("meta", "json"))
            .field(Field::new("owner", "lookup").reference("user").unique())
            .index(
                serde_json::from_value::<Index>(serde_json::json!({"fields": ["n", "day"]}))
                    .unwrap(),
            ),
    )
    .unwrap();
    c.insert(ObjectSchema::new("user").field(Field::new("name", "text")))
        .unwrap();
    c
}

pub fn ctx() -> ResolveContext {
    ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap())
}

pub fn query(json: serde_json::Value) -> Query {
    validate_query(&Query::from_json(&json).unwrap(), &catalog(), &ctx()).unwrap()
}

pub fn show(st: &Statement) -> String {
    let params: Vec<String> = st.params.iter().map(|p| format!("{p:?}")).collect();
    let cols: Vec<String> = st
        .columns
        .iter()
        .map(|c| format!("{}: {}", c.name, c.storage.name()))
        .collect();
    let mut out = format!("{}\n-- params: [{}]", st.sql, params.join(", "));
    if !cols.is_empty() {
        out.push_str(&format!("\n-- columns: [{}]", cols.join(", ")));
    }
    out
}

pub fn show_all(sts: &[Statement]) -> String {
    sts.iter().map(show).collect::<Vec<_>>().join("\n\n")
}

pub fn sel(d: &dyn SqlDialect, json: serde_json::Value) -> String {
    let cat = catalog();
    match SqlCompiler::new(d, &cat).select(&query(json)) {
        Ok(st) => show(&st),
        Err(e) => format!("error: {e}"),
    }
}

/// Cases that every dialect snapshots (names say what they pin).
#[macro_export]
macro_rules! common_cases {
    ($d:expr) => {
        use serde_json::json;
        use $crate::common::{catalog, sel, show_all};
        use objectql_planner::sql::SqlCompiler;
        use objectql_query_ast::{Filter, Record, Value, field};

        #[test]
        fn all_columns_are_quoted() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task"})));
        }
        #[test]
        fn eq_and_comparisons_bind_every_value() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"n": {"$gt": 1, "$lte": 5}, "title": "a", "score": {"$lt": 1.5}, "price": {"$gte": "2.50"}}})));
        }
        #[test]
        fn ne_is_null_safe() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$ne": "a"}, "n": {"$ne": null}}})));
        }
        #[test]
        fn in_drops_nulls_and_empty_is_false() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"$or": [{"n": {"$in": [1, null, 2]}}, {"title": {"$in": []}}]}})));
        }
        #[test]
        fn nin_matches_null_and_empty_is_true() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"$and": [{"n": {"$nin": [1, null]}}, {"title": {"$nin": [null]}}]}})));
        }
        #[test]
        fn not_is_null_safe_and_empty_and_or_are_constants() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"$and": [{"$not": {"n": {"$gt": 2}}}, {"$and": []}, {"$not": {"$or": []}}]}})));
        }
        #[test]
        fn between_and_null_checks() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$between": ["a", "m"]}, "day": {"$null": true}, "at": {"$exists": true}, "done": false}})));
        }
        #[test]
        fn contains_is_literal_and_case_sensitive() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$contains": "50%_\\"}}})));
        }
        #[test]
        fn not_contains_is_null_safe() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$notContains": "x"}}})));
        }
        #[test]
        fn starts_and_ends_with_escape_metacharacters() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$startsWith": "a_%*?[", "$endsWith": "!\\"}}})));
        }
        #[test]
        fn icontains_folds_ascii_only() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$icontains": "CaFÉ_"}}})));
        }
        #[test]
        fn like_and_ilike_keep_backslash_escapes() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"$or": [{"title": {"$like": "a\\%b_%"}}, {"title": {"$ilike": "%X\\"}}]}})));
        }
        #[test]
        fn field_to_field_comparison() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"title": {"$ne": {"$field": "owner"}}, "n": {"$lt": {"$field": "price"}}}})));
        }
        #[test]
        fn json_equality_is_refused() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "where": {"meta": {"$ne": 5}}})));
        }
        #[test]
        fn whole_day_bounds_on_datetimes() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "where": {"due": {"$lte": "2026-03-01", "$gt": "2026-02-01"}}})));
        }
        #[test]
        fn order_by_puts_nulls_first_in_asc_last_in_desc() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "orderBy": [{"field": "title", "order": "asc"}, {"field": "n", "order": "desc"}, {"field": "day", "order": "asc", "nulls": "last"}]})));
        }
        #[test]
        fn limit_and_offset() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "limit": 10, "offset": 20})));
        }
        #[test]
        fn offset_without_limit() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "offset": 5})));
        }
        #[test]
        fn limit_zero() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "limit": 0})));
        }
        #[test]
        fn keyset_cursor_respects_direction_and_nulls() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "orderBy": [{"field": "n", "order": "desc"}, {"field": "title", "order": "asc", "nulls": "last"}], "limit": 2, "cursor": {"after": {"n": 3, "title": null, "id": "r1"}}})));
        }
        #[test]
        fn distinct_rows_sorted() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["title", "n"], "distinct": true, "orderBy": [{"field": "title", "order": "asc"}]})));
        }
        #[test]
        fn aggregates_with_filter_and_having() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "groupBy": ["title"], "aggregations": [
                {"function": "count", "alias": "rows"},
                {"function": "count", "field": "n", "alias": "ns", "filter": {"done": true}},
                {"function": "count_distinct", "field": "owner", "alias": "owners"},
                {"function": "sum", "field": "price", "alias": "total"},
                {"function": "avg", "field": "n", "alias": "mean", "filter": {"n": {"$gt": 0}}},
                {"function": "min", "field": "title", "alias": "first"},
                {"function": "max", "field": "done", "alias": "any_done"}],
                "having": {"rows": {"$gt": 1}}, "orderBy": [{"field": "total", "order": "desc"}], "limit": 5})));
        }
        #[test]
        fn avg_of_decimal_is_a_float() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "aggregations": [{"function": "avg", "field": "price", "alias": "p"}]})));
        }
        #[test]
        fn date_buckets_with_iso_weeks() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "groupBy": [
                {"field": "day", "dateGranularity": "week", "alias": "w"},
                {"field": "due", "dateGranularity": "quarter", "alias": "q"}],
                "aggregations": [{"function": "count", "alias": "c"}]})));
        }
        #[test]
        fn date_buckets_in_a_timezone() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "groupBy": [
                {"field": "due", "dateGranularity": "month", "alias": "m", "timezone": "Europe/Paris"}],
                "aggregations": [{"function": "count", "alias": "c"}]})));
        }
        #[test]
        fn array_agg_is_refused() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "aggregations": [{"function": "array_agg", "field": "n", "alias": "ns"}]})));
        }
        #[test]
        fn joins_qualify_and_alias_columns() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["title", "u.name"], "joins": [{"type": "left", "object": "user", "alias": "u", "on": {"owner": {"$eq": {"$field": "u.id"}}}}], "where": {"u.name": {"$ne": "x"}}})));
        }
        #[test]
        fn full_join() {
            insta::assert_snapshot!(sel(&$d, json!({"object": "task", "fields": ["id"], "joins": [{"type": "full", "object": "user", "alias": "u", "on": {"owner": {"$eq": {"$field": "u.id"}}}}]})));
        }
        #[test]
        fn count_and_distinct_values() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let f = field("n").gt(1);
            let a = c.count("task", Some(&f)).unwrap();
            let b = c.distinct("task", "title", Some(&f)).unwrap();
            insta::assert_snapshot!(show_all(&[a, b]));
        }
        #[test]
        fn insert_chunks_under_the_bind_limit() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let rec = |i: i64| -> Record {
                let mut r = Record::new();
                r.insert("id".into(), Value::String(format!("r{i}")));
                r.insert("title".into(), Value::String("t".into()));
                r.insert("price".into(), Value::Decimal(rust_decimal::Decimal::new(1250, 2)));
                r
            };
            let sts = c.insert("task", &[rec(1), rec(2)]).unwrap();
            let max = c.dialect().max_bind_params();
            let many: Vec<Record> = (0..(max / 3 + 1) as i64).map(rec).collect();
            let chunks = c.insert("task", &many).unwrap();
            assert_eq!(chunks.len(), 2);
            assert!(chunks.iter().all(|s| s.params.len() <= max));
            assert_eq!(chunks.iter().map(|s| s.params.len()).sum::<usize>(), many.len() * 3);
            insta::assert_snapshot!(show_all(&sts));
        }
        #[test]
        fn upsert_on_conflict() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let mut r = Record::new();
            r.insert("id".into(), Value::String("r1".into()));
            r.insert("title".into(), Value::String("t".into()));
            r.insert("done".into(), Value::Bool(true));
            let cf = objectql_driver::Conflict { fields: vec!["id".into()], update_fields: vec!["title".into(), "done".into()] };
            insta::assert_snapshot!(show_all(&c.upsert("task", &[r], &cf).unwrap()));
        }
        #[test]
        fn update_and_delete() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let mut patch = Record::new();
            patch.insert("title".into(), Value::String("new".into()));
            patch.insert("day".into(), Value::Date(chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()));
            let id = Value::String("r1".into());
            let f: Filter = field("n").ne(3);
            let sts = vec![
                c.update_by_id("task", &id, &patch).unwrap(),
                c.update_by_id("task", &id, &Record::new()).unwrap(),
                c.update_where("task", &f, &patch).unwrap(),
                c.delete_by_id("task", &id).unwrap(),
                c.delete_where("task", &f).unwrap(),
            ];
            insta::assert_snapshot!(show_all(&sts));
        }
        #[test]
        fn create_and_drop_table() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let mut sts = c.create_table(cat.get("task").unwrap()).unwrap();
            sts.push(c.drop_table("task").unwrap());
            insta::assert_snapshot!(show_all(&sts));
        }
        #[test]
        fn migrate_adds_columns_and_indexes() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let old = cat.get("user").unwrap().clone();
            let mut f = objectql_query_ast::Field::new("email", "email");
            f.index = true;
            let new = old.clone().field(f).field(objectql_query_ast::Field::new("age", "integer"));
            insta::assert_snapshot!(show_all(&c.migrate(&old, &new).unwrap()));
        }
        #[test]
        fn decode_row_is_strict() {
            let cat = catalog();
            let c = SqlCompiler::new(&$d, &cat);
            let st = c.select(&$crate::common::query(json!({"object": "task", "fields": ["n", "title"]}))).unwrap();
            let ok = c.decode_row(&st.columns, vec![Value::Int(3), Value::String("a".into())]).unwrap();
            assert_eq!(ok.get("n"), Some(&Value::Int(3)));
            let bad = c.decode_row(&st.columns, vec![Value::String("x".into()), Value::Null]).unwrap_err();
            assert_eq!(bad.category(), "decode");
        }
    };
}
