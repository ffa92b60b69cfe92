//! MySQL / MariaDB snapshots.
use objectql_planner::sql::MySqlDialect;

const D: MySqlDialect = MySqlDialect {
    mariadb: false,
    version: (8, 0, 36),
};
const MARIADB: MySqlDialect = MySqlDialect {
    mariadb: true,
    version: (11, 4, 2),
};

common_cases!(D);

#[test]
fn mysql_icontains_is_inexact() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let cond = objectql_query_ast::Condition {
        field: "title".into(),
        op: objectql_query_ast::Op::IContains("a".into()),
    };
    assert_eq!(
        c.classify(cat.get("task").unwrap(), &cond),
        objectql_driver::Pushdown::Inexact
    );
    // Under $not it cannot be pushed at all.
    let out = sel(
        &D,
        json!({"object": "task", "where": {"$not": {"title": {"$icontains": "a"}}}}),
    );
    assert!(out.starts_with("error:"), "{out}");
}

#[test]
fn mariadb_has_insert_returning_and_json_text() {
    let cat = catalog();
    let c = SqlCompiler::new(&MARIADB, &cat);
    let mut r = Record::new();
    r.insert("id".into(), Value::String("r1".into()));
    r.insert("title".into(), Value::String("t".into()));
    r.insert("meta".into(), Value::json(json!({"a": 1})));
    let mut sts = c.insert("task", &[r]).unwrap();
    sts.extend(c.create_table(cat.get("task").unwrap()).unwrap());
    insta::assert_snapshot!(show_all(&sts));
}

#[test]
fn mysql_text_group_keys_decode_from_bytes() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let st = c.select(&crate::common::query(json!({"object": "task", "groupBy": ["title"], "aggregations": [{"function": "count", "alias": "c"}]}))).unwrap();
    let r = c
        .decode_row(
            &st.columns,
            vec![Value::Bytes(b"a ".to_vec()), Value::Int(2)],
        )
        .unwrap();
    assert_eq!(r.get("title"), Some(&Value::String("a ".into())));
}

#[test]
fn servers_without_a_nopad_binary_collation_compare_text_as_binary() {
    // MySQL 5.7 and MariaDB < 10.2 only have the PAD SPACE utf8mb4_bin.
    for old in [
        MySqlDialect {
            mariadb: false,
            version: (5, 7, 44),
        },
        MySqlDialect {
            mariadb: true,
            version: (10, 1, 48),
        },
    ] {
        assert_eq!(old.exact_collation(), None);
        let out = sel(
            &old,
            json!({"object": "task", "fields": ["id"], "where": {"title": "a "}, "orderBy": [{"field": "title"}]}),
        );
        assert!(
            out.contains("WHERE CAST(`title` AS BINARY) = ?")
                && out.contains("CAST(`title` AS BINARY) ASC"),
            "{out}"
        );
        let cat = catalog();
        let ddl = SqlCompiler::new(&old, &cat)
            .create_table(cat.get("user").unwrap())
            .unwrap();
        assert!(ddl[0].sql.contains("COLLATE utf8mb4_bin"), "{}", ddl[0].sql);
    }
    assert_eq!(D.exact_collation(), Some("utf8mb4_0900_bin"));
    assert_eq!(MARIADB.exact_collation(), Some("utf8mb4_nopad_bin"));
}

#[test]
fn mariadb_updates_have_no_returning() {
    // MariaDB has INSERT … RETURNING but not UPDATE … RETURNING.
    let cat = catalog();
    let c = SqlCompiler::new(&MARIADB, &cat);
    let mut patch = Record::new();
    patch.insert("title".into(), Value::String("t".into()));
    let st = c
        .update_by_id("task", &Value::String("r1".into()), &patch)
        .unwrap();
    assert!(!st.sql.contains("RETURNING"), "{}", st.sql);
    assert!(st.columns.is_empty());
}

#[test]
fn full_join_emulation_binds_in_text_order() {
    // Both halves of the union compile the join condition: its value is
    // bound twice, before the outer WHERE and LIMIT.
    let out = sel(
        &MARIADB,
        json!({"object": "task", "fields": ["id", "u.name"],
               "joins": [{"type": "full", "object": "user", "alias": "u",
                          "on": {"$and": [{"owner": {"$eq": {"$field": "u.id"}}}, {"u.name": {"$ne": "x"}}]}}],
               "where": {"n": {"$gt": 3}}, "limit": 5}),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn full_join_after_a_right_join_is_refused() {
    let out = sel(
        &D,
        json!({"object": "task", "fields": ["id"],
               "joins": [{"type": "right", "object": "user", "alias": "u", "on": {"owner": {"$eq": {"$field": "u.id"}}}},
                         {"type": "full", "object": "user", "alias": "v", "on": {"owner": {"$eq": {"$field": "v.id"}}}}]}),
    );
    assert!(
        out.starts_with("error:") && out.contains("full join"),
        "{out}"
    );
}

/// MariaDB's float `sum`/`avg` answer 0 when the total overflows, but
/// arithmetic on them is checked: `+ 0e0` turns the overflow into error
/// 1690 (`NumericOverflow`) and changes no finite total (issue 12 §8).
#[test]
fn mariadb_float_sums_are_checked() {
    insta::assert_snapshot!(sel(
        &MARIADB,
        json!({"object": "task", "aggregations": [
            {"function": "sum", "field": "score", "alias": "s"},
            {"function": "avg", "field": "score", "alias": "a"}
        ]})
    ));
}
