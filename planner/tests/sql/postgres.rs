//! PostgreSQL snapshots.
use objectql_planner::sql::PostgresDialect;

const D: PostgresDialect = PostgresDialect { version: (16, 2) };

common_cases!(D);

#[test]
fn postgres_integer_sum_beyond_i64_is_numeric_overflow() {
    let cat = catalog();
    let c = SqlCompiler::new(&D, &cat);
    let st = c.select(&crate::common::query(json!({"object": "task", "aggregations": [{"function": "sum", "field": "n", "alias": "s"}]}))).unwrap();
    let big = rust_decimal::Decimal::from(i64::MAX) + rust_decimal::Decimal::ONE;
    let e = c
        .decode_row(&st.columns, vec![Value::Decimal(big)])
        .unwrap_err();
    assert_eq!(e.category(), "numeric_overflow");
    let ok = c
        .decode_row(
            &st.columns,
            vec![Value::Decimal(rust_decimal::Decimal::from(7))],
        )
        .unwrap();
    assert_eq!(ok.get("s"), Some(&Value::Int(7)));
}
