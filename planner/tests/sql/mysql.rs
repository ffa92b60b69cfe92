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
