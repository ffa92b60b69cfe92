//! Unit tests of `filter.rs`.

use super::*;
use objectql_query_ast::field;

fn cols() -> Columns {
    Columns::new(vec!["a".into(), "b".into(), "s".into()])
}

fn t(f: &Filter, row: &[Value]) -> Truth {
    Predicate::compile(f, &cols()).unwrap().eval(row)
}

fn row(a: impl Into<Value>, b: impl Into<Value>, s: impl Into<Value>) -> Vec<Value> {
    vec![a.into(), b.into(), s.into()]
}

fn n() -> Value {
    Value::Null
}

#[test]
fn truth_tables() {
    use Truth::{False as F, True as T, Unknown as U};
    assert_eq!(T.and(U), U);
    assert_eq!(F.and(U), F);
    assert_eq!(T.or(U), T);
    assert_eq!(F.or(U), U);
    assert_eq!(U.is_not_true(), T);
    assert_eq!(T.is_not_true(), F);
}

#[test]
fn empty_and_is_true_empty_or_is_false() {
    let r = row(1, 2, "x");
    assert_eq!(t(&Filter::always(), &r), Truth::True);
    assert_eq!(t(&Filter::never(), &r), Truth::False);
}

#[test]
fn eq_and_ordering_operators() {
    let r = row(5, 7, "x");
    assert_eq!(t(&field("a").eq(5), &r), Truth::True);
    assert_eq!(t(&field("a").eq(6), &r), Truth::False);
    assert_eq!(t(&field("a").gt(4), &r), Truth::True);
    assert_eq!(t(&field("a").gt(5), &r), Truth::False);
    assert_eq!(t(&field("a").gte(5), &r), Truth::True);
    assert_eq!(t(&field("a").lt(5), &r), Truth::False);
    assert_eq!(t(&field("a").lte(5), &r), Truth::True);
    assert_eq!(t(&field("a").eq(5.0), &r), Truth::True);
    assert_eq!(t(&field("a").eq("5"), &r), Truth::False);
    assert_eq!(t(&field("a").gt("5"), &r), Truth::Unknown);
}

#[test]
fn positive_operators_on_null_are_unknown() {
    let r = row(n(), 1, n());
    for f in [
        field("a").eq(1),
        field("a").gt(1),
        field("a").lte(1),
        field("a").in_list([1]),
        field("a").between(0, 2),
        field("s").contains("x"),
        field("s").starts_with("x"),
        field("s").ends_with("x"),
        field("s").icontains("x"),
        field("s").like("%"),
        field("s").ilike("%"),
    ] {
        assert_eq!(t(&f, &r), Truth::Unknown, "{f:?}");
        assert_eq!(t(&f.not(), &r), Truth::True);
    }
}

#[test]
fn eq_with_null_value_is_unknown() {
    let f = Filter::cond("a", Op::Eq(Operand::Value(Value::Null)));
    assert_eq!(t(&f, &row(1, 1, "x")), Truth::Unknown);
}

#[test]
fn ne_is_null_safe() {
    assert_eq!(t(&field("a").ne(1), &row(n(), 1, "x")), Truth::True);
    assert_eq!(t(&field("a").ne(1), &row(1, 1, "x")), Truth::False);
    assert_eq!(t(&field("a").ne(1), &row(2, 1, "x")), Truth::True);
    let null_ne = Filter::cond("a", Op::Ne(Operand::Value(Value::Null)));
    assert_eq!(t(&null_ne, &row(n(), 1, "x")), Truth::False);
    assert_eq!(t(&null_ne, &row(3, 1, "x")), Truth::True);
}

#[test]
fn field_operands_compare_two_columns() {
    let eq = field("a").eq_field("b");
    let gt = Filter::cond("a", Op::Gt(Operand::Field("b".into())));
    let ne = Filter::cond("a", Op::Ne(Operand::Field("b".into())));
    assert_eq!(t(&eq, &row(1, 1, "x")), Truth::True);
    assert_eq!(t(&eq, &row(1, 1.0, "x")), Truth::True);
    assert_eq!(t(&eq, &row(1, 2, "x")), Truth::False);
    assert_eq!(t(&eq, &row(n(), 2, "x")), Truth::Unknown);
    assert_eq!(t(&eq, &row(n(), n(), "x")), Truth::Unknown);
    assert_eq!(t(&gt, &row(3, 2, "x")), Truth::True);
    assert_eq!(t(&gt, &row(3, n(), "x")), Truth::Unknown);
    assert_eq!(t(&ne, &row(n(), n(), "x")), Truth::False);
    assert_eq!(t(&ne, &row(n(), 1, "x")), Truth::True);
    assert_eq!(t(&ne, &row(1, n(), "x")), Truth::True);
    assert_eq!(t(&ne, &row(1, 1, "x")), Truth::False);
}

#[test]
fn in_and_nin_with_nulls() {
    let in_f = Filter::cond("a", Op::In(vec![Value::Int(1), Value::Null]));
    let nin_f = Filter::cond("a", Op::Nin(vec![Value::Int(1), Value::Null]));
    assert_eq!(t(&in_f, &row(1, 0, "")), Truth::True);
    assert_eq!(t(&in_f, &row(2, 0, "")), Truth::False);
    assert_eq!(t(&in_f, &row(n(), 0, "")), Truth::Unknown);
    assert_eq!(t(&nin_f, &row(1, 0, "")), Truth::False);
    assert_eq!(t(&nin_f, &row(2, 0, "")), Truth::True);
    assert_eq!(t(&nin_f, &row(n(), 0, "")), Truth::True);
    let empty_in = Filter::cond("a", Op::In(vec![]));
    let empty_nin = Filter::cond("a", Op::Nin(vec![]));
    assert_eq!(t(&empty_in, &row(1, 0, "")), Truth::False);
    assert_eq!(t(&empty_nin, &row(1, 0, "")), Truth::True);
    assert_eq!(t(&empty_nin, &row(n(), 0, "")), Truth::True);
}

#[test]
fn long_in_lists_use_a_hash_set_with_the_same_semantics() {
    let list: Vec<Value> = (0..100).map(Value::Int).chain([Value::Null]).collect();
    let in_f = Filter::cond("a", Op::In(list.clone()));
    let nin_f = Filter::cond("a", Op::Nin(list));
    assert_eq!(t(&in_f, &row(42, 0, "")), Truth::True);
    assert_eq!(t(&in_f, &row(42.0, 0, "")), Truth::True);
    assert_eq!(t(&in_f, &row(100, 0, "")), Truth::False);
    assert_eq!(t(&in_f, &row("42", 0, "")), Truth::False);
    assert_eq!(t(&in_f, &row(n(), 0, "")), Truth::Unknown);
    assert_eq!(t(&nin_f, &row(100, 0, "")), Truth::True);
    assert_eq!(t(&nin_f, &row(n(), 0, "")), Truth::True);
}

#[test]
fn between_is_inclusive() {
    let f = field("a").between(2, 4);
    assert_eq!(t(&f, &row(2, 0, "")), Truth::True);
    assert_eq!(t(&f, &row(4, 0, "")), Truth::True);
    assert_eq!(t(&f, &row(5, 0, "")), Truth::False);
    assert_eq!(t(&field("a").between(4, 2), &row(3, 0, "")), Truth::False);
}

#[test]
fn text_operators_are_case_sensitive_and_literal() {
    let r = row(0, 0, "Hello 50% w_rld.");
    assert_eq!(t(&field("s").contains("llo"), &r), Truth::True);
    assert_eq!(t(&field("s").contains("LLO"), &r), Truth::False);
    assert_eq!(t(&field("s").contains("50%"), &r), Truth::True);
    assert_eq!(t(&field("s").contains("w_r"), &r), Truth::True);
    assert_eq!(t(&field("s").contains("w%r"), &r), Truth::False);
    assert_eq!(t(&field("s").starts_with("Hell"), &r), Truth::True);
    assert_eq!(t(&field("s").starts_with("hell"), &r), Truth::False);
    assert_eq!(t(&field("s").ends_with("rld."), &r), Truth::True);
    assert_eq!(t(&field("s").ends_with("rld"), &r), Truth::False);
}

#[test]
fn not_contains_is_null_safe() {
    assert_eq!(
        t(&field("s").not_contains("x"), &row(0, 0, n())),
        Truth::True
    );
    assert_eq!(
        t(&field("s").not_contains("x"), &row(0, 0, "axb")),
        Truth::False
    );
    assert_eq!(
        t(&field("s").not_contains("x"), &row(0, 0, "ab")),
        Truth::True
    );
}

#[test]
fn icontains_folds_ascii_only() {
    assert_eq!(
        t(&field("s").icontains("cafe"), &row(0, 0, "CAFe")),
        Truth::True
    );
    assert_eq!(
        t(&field("s").icontains("café"), &row(0, 0, "CAFÉ")),
        Truth::False
    );
    assert_eq!(
        t(&field("s").icontains("CAFé"), &row(0, 0, "xcafé")),
        Truth::True
    );
    assert_eq!(t(&field("s").icontains(""), &row(0, 0, "")), Truth::True);
}

#[test]
fn null_and_exists_are_two_valued() {
    let r = row(n(), 1, "x");
    assert_eq!(t(&field("a").is_null(), &r), Truth::True);
    assert_eq!(t(&field("a").is_not_null(), &r), Truth::False);
    assert_eq!(t(&field("b").is_null(), &r), Truth::False);
    assert_eq!(t(&Filter::cond("a", Op::Exists(true)), &r), Truth::False);
    assert_eq!(t(&Filter::cond("a", Op::Exists(false)), &r), Truth::True);
    assert_eq!(t(&Filter::cond("b", Op::Exists(true)), &r), Truth::True);
}

#[test]
fn and_or_not_three_valued() {
    let r = row(n(), 1, "x");
    let unknown = field("a").eq(1);
    let yes = field("b").eq(1);
    let no = field("b").eq(2);
    assert_eq!(
        t(&Filter::And(vec![unknown.clone(), yes.clone()]), &r),
        Truth::Unknown
    );
    assert_eq!(
        t(&Filter::And(vec![unknown.clone(), no.clone()]), &r),
        Truth::False
    );
    assert_eq!(
        t(&Filter::Or(vec![unknown.clone(), yes.clone()]), &r),
        Truth::True
    );
    assert_eq!(
        t(&Filter::Or(vec![unknown.clone(), no.clone()]), &r),
        Truth::Unknown
    );
    assert_eq!(
        t(&Filter::Or(vec![unknown.clone(), no]).not(), &r),
        Truth::True
    );
    assert_eq!(t(&yes.not(), &r), Truth::False);
    assert_eq!(t(&unknown.not().not(), &r), Truth::False);
}

#[test]
fn unknown_column_is_an_internal_error() {
    let e = Predicate::compile(&field("nope").eq(1), &cols()).unwrap_err();
    assert_eq!(e.category(), "internal");
    let e = Predicate::compile(&field("a").eq_field("nope"), &cols()).unwrap_err();
    assert_eq!(e.category(), "internal");
}

#[test]
fn short_rows_read_as_null() {
    let p = Predicate::compile(&field("s").is_null(), &cols()).unwrap();
    assert!(p.matches(&[Value::Int(1)]));
}

#[test]
fn absurdly_deep_filters_are_refused() {
    let mut f = field("a").eq(1);
    for _ in 0..1000 {
        f = f.not();
    }
    assert!(Predicate::compile(&f, &cols()).is_err());
}
