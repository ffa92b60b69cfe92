//! QueryAST → DataFusion expressions, with the protocol's meaning kept.
//!
//! The reverse of [`to_filter`](crate::to_filter): a QueryAST filter or sort
//! lowered onto DataFusion operators must select and order exactly the rows
//! objectql's reference evaluator does. DataFusion has SQL's meaning, so:
//!
//! - `$ne` is `IS DISTINCT FROM` (NULL-safe), `$nin` and `$notContains`
//!   keep NULL explicitly (`x IS NULL OR NOT …`), and `$not p` is
//!   `p IS NOT TRUE`;
//! - an empty `$and` is TRUE and an empty `$or` FALSE;
//! - every sort key carries its NULL placement (NULL is the smallest value
//!   unless `nulls` says otherwise);
//! - text operators are DataFusion's literal `contains`, `starts_with` and
//!   `ends_with` (no pattern, so nothing to escape), on text columns only;
//! - a literal is used only when the comparand has the column's exact Arrow
//!   type (an integer column compared with `2.5`, a decimal with more
//!   digits than its column, a datetime with nanoseconds are not), so no
//!   comparison depends on DataFusion's implicit casts;
//! - everything else (`$icontains` and `$ilike` with their ASCII-only case
//!   folding, `$like`, comparisons across types, JSON and UUID columns) runs
//!   as `objectql_filter`: a scalar function that evaluates the condition
//!   with the reference evaluator itself.
//!
//! Only columns of the types in [`native`] are lowered; a query over others
//! stays in the evaluator (the caller asks [`native`] first).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Expr, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    SortExpr, Volatility, binary_expr, lit, not,
};
use objectql_driver::arrow_data_type;
use objectql_planner::eval::{Columns, Predicate, Truth};
use objectql_query_ast::{
    Condition, Cursor, Error, Filter, Op, Operand, Result, SortItem, SortOrder, StorageType, Value,
};
use rust_decimal::Decimal;

use crate::error::to_datafusion;
use crate::value::scalar_value;

/// Whether a column of `st` is lowered onto DataFusion: its Arrow type
/// holds every value exactly and orders and compares as the reference
/// evaluator does (JSON and UUID travel as text, vectors as lists: they
/// do not).
pub fn native(st: StorageType) -> bool {
    matches!(
        st,
        StorageType::Text
            | StorageType::Integer
            | StorageType::Float
            | StorageType::Decimal { .. }
            | StorageType::Boolean
            | StorageType::Date
            | StorageType::DateTime
            | StorageType::Time
            | StorageType::Binary
    )
}

/// The columns an expression may name: the QueryAST key, the DataFusion
/// column it is, and its storage type.
pub(crate) trait Scope {
    /// The DataFusion column and storage type of QueryAST column `name`.
    fn column(&self, name: &str) -> Option<(Column, StorageType)>;
}

/// A conjunction or disjunction as a balanced tree (a long `$and` must not
/// become a left-deep chain thousands of levels deep).
fn balanced(mut items: Vec<Expr>, and: bool) -> Expr {
    if items.is_empty() {
        return lit(and);
    }
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut it = items.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) if and => a.and(b),
                Some(b) => a.or(b),
                None => a,
            });
        }
        items = next;
    }
    items.pop().unwrap_or_else(|| lit(and))
}

/// `f` as a DataFusion predicate over `scope`'s columns: TRUE exactly on
/// the rows where the reference evaluator's [`Predicate`] is TRUE.
pub(crate) fn filter(f: &Filter, scope: &dyn Scope) -> Result<Expr> {
    Ok(match f {
        Filter::And(items) => balanced(
            items
                .iter()
                .map(|i| filter(i, scope))
                .collect::<Result<_>>()?,
            true,
        ),
        Filter::Or(items) => balanced(
            items
                .iter()
                .map(|i| filter(i, scope))
                .collect::<Result<_>>()?,
            false,
        ),
        Filter::Not(inner) => filter(inner, scope)?.is_not_true(),
        Filter::Condition(c) => match condition(c, scope)? {
            Some(e) => e,
            None => ReferenceFilter::expr(f, scope)?,
        },
        #[allow(unreachable_patterns)]
        other => ReferenceFilter::expr(other, scope)?,
    })
}

fn unknown(name: &str) -> Error {
    Error::internal(format!("a lowered filter names unknown column `{name}`"))
}

/// One condition as native DataFusion operators, or `None` when it has no
/// exact native form (it then runs as a [`ReferenceFilter`]).
fn condition(c: &Condition, scope: &dyn Scope) -> Result<Option<Expr>> {
    let (column, st) = scope.column(&c.field).ok_or_else(|| unknown(&c.field))?;
    if !native(st) {
        return Ok(None);
    }
    let x = Expr::Column(column);
    // The right-hand side of a comparison: a literal of the column's exact
    // type, or another column of the same storage type.
    let rhs = |o: &Operand| -> Result<Option<Expr>> {
        Ok(match o {
            Operand::Value(v) => literal(v, st).map(lit),
            Operand::Field(other) => {
                let (col, ost) = scope.column(other).ok_or_else(|| unknown(other))?;
                (ost == st).then_some(Expr::Column(col))
            }
        })
    };
    let text = st == StorageType::Text;
    let string = |s: &str| lit(ScalarValue::Utf8(Some(s.to_owned())));
    Ok(match &c.op {
        Op::Eq(o) => rhs(o)?.map(|r| x.eq(r)),
        Op::Gt(o) => rhs(o)?.map(|r| x.gt(r)),
        Op::Gte(o) => rhs(o)?.map(|r| x.gt_eq(r)),
        Op::Lt(o) => rhs(o)?.map(|r| x.lt(r)),
        Op::Lte(o) => rhs(o)?.map(|r| x.lt_eq(r)),
        Op::Ne(o) => rhs(o)?.map(|r| binary_expr(x, Operator::IsDistinctFrom, r)),
        Op::In(list) | Op::Nin(list) => {
            let negated = matches!(c.op, Op::Nin(_));
            // NULL entries never match (and never exclude).
            let values: Option<Vec<Expr>> = list
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| literal(v, st).map(lit))
                .collect();
            values.map(|values| match (values.is_empty(), negated) {
                (true, false) => lit(false),
                (true, true) => lit(true),
                (false, false) => x.in_list(values, false),
                (false, true) => x.clone().is_null().or(x.in_list(values, true)),
            })
        }
        Op::Between(low, high) => match (literal(low, st), literal(high, st)) {
            (Some(l), Some(h)) => Some(x.clone().gt_eq(lit(l)).and(x.lt_eq(lit(h)))),
            _ => None,
        },
        Op::Contains(s) if text => Some(contains(x, string(s))),
        Op::NotContains(s) if text => Some(x.clone().is_null().or(not(contains(x, string(s))))),
        Op::StartsWith(s) if text => Some(starts_with(x, string(s))),
        Op::EndsWith(s) if text => Some(ends_with(x, string(s))),
        Op::Null(want) => Some(if *want { x.is_null() } else { x.is_not_null() }),
        Op::Exists(present) => Some(if *present {
            x.is_not_null()
        } else {
            x.is_null()
        }),
        // `$icontains`, `$ilike` (ASCII-only folding), `$like`, and text
        // operators on non-text columns.
        _ => None,
    })
}

fn contains(x: Expr, s: Expr) -> Expr {
    datafusion::functions::string::expr_fn::contains(x, s)
}

fn starts_with(x: Expr, s: Expr) -> Expr {
    datafusion::functions::string::expr_fn::starts_with(x, s)
}

fn ends_with(x: Expr, s: Expr) -> Expr {
    datafusion::functions::string::expr_fn::ends_with(x, s)
}

/// `v` as a literal of the Arrow type of `st`, when it has that type
/// exactly (no rounding, no cross-type comparison).
pub(crate) fn literal(v: &Value, st: StorageType) -> Option<ScalarValue> {
    Some(match (st, v) {
        (StorageType::Integer, Value::Int(i)) => ScalarValue::Int64(Some(*i)),
        (StorageType::Float, Value::Float(f)) if f.is_finite() => {
            // -0.0 orders below 0.0 in Arrow; QueryAST has one zero.
            ScalarValue::Float64(Some(if *f == 0.0 { 0.0 } else { *f }))
        }
        (StorageType::Float, Value::Int(i)) => {
            ScalarValue::Float64(Some(objectql_query_ast::int_to_f64(*i)?))
        }
        (StorageType::Decimal { precision, scale }, Value::Decimal(d)) => {
            decimal(*d, precision, scale)?
        }
        (StorageType::Decimal { precision, scale }, Value::Int(i)) => {
            decimal(Decimal::from(*i), precision, scale)?
        }
        (StorageType::Boolean, Value::Bool(b)) => ScalarValue::Boolean(Some(*b)),
        (StorageType::Text, Value::String(s)) => ScalarValue::Utf8(Some(s.clone())),
        (StorageType::Binary, Value::Bytes(b)) => ScalarValue::Binary(Some(b.clone())),
        (StorageType::Date, Value::Date(d)) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            ScalarValue::Date32(Some(
                i32::try_from(d.signed_duration_since(epoch).num_days()).ok()?,
            ))
        }
        (StorageType::DateTime, Value::DateTime(t)) => {
            // Sub-microsecond instants do not fit the column's unit.
            if t.timestamp_subsec_nanos() % 1_000 != 0 {
                return None;
            }
            ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
        }
        (StorageType::Time, Value::Time(t)) => {
            use chrono::Timelike;
            if t.nanosecond() % 1_000 != 0 || t.nanosecond() >= 1_000_000_000 {
                return None;
            }
            ScalarValue::Time64Microsecond(Some(
                i64::from(t.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(t.nanosecond() / 1_000),
            ))
        }
        _ => return None,
    })
}

/// A decimal as a literal of `DECIMAL(precision, scale)`, when it has at
/// most `scale` fractional digits and fits the precision.
fn decimal(d: Decimal, precision: u32, scale: u32) -> Option<ScalarValue> {
    let mut r = d;
    r.rescale(scale);
    if r != d || r.scale() != scale {
        return None;
    }
    let m = r.mantissa();
    let bound = 10_i128.checked_pow(precision)?;
    if m.unsigned_abs() >= bound.unsigned_abs() {
        return None;
    }
    Some(ScalarValue::Decimal128(
        Some(m),
        u8::try_from(precision).ok()?,
        i8::try_from(scale).ok()?,
    ))
}

/// The rows strictly after a keyset cursor's position in the order of
/// `order_by` (which names every key `cursor` has a value for), as a
/// filter: for some key, every earlier key equal to the position and this
/// one after it, with NULL placed as the sort places it. The reference
/// evaluator's cursor keeps exactly these rows.
pub(crate) fn after_cursor(order_by: &[SortItem], cursor: &Cursor) -> Result<Filter> {
    let mut branches = Vec::with_capacity(order_by.len());
    let mut equal_so_far: Vec<Filter> = Vec::with_capacity(order_by.len());
    for item in order_by {
        let p = cursor.after.get(&item.field).ok_or_else(|| {
            Error::plan(format!(
                "cursor lacks a value for sort key `{}`",
                item.field
            ))
        })?;
        let f = item.field.as_str();
        let nulls_first = item.nulls_first();
        let after = if p.is_null() {
            // NULL first: every value comes after it; NULL last: none.
            if nulls_first {
                Filter::cond(f, Op::Null(false))
            } else {
                Filter::never()
            }
        } else {
            let beyond = if item.order == SortOrder::Desc {
                Filter::cond(f, Op::Lt(Operand::Value(p.clone())))
            } else {
                Filter::cond(f, Op::Gt(Operand::Value(p.clone())))
            };
            if nulls_first {
                beyond
            } else {
                Filter::Or(vec![beyond, Filter::cond(f, Op::Null(true))])
            }
        };
        let mut branch = equal_so_far.clone();
        branch.push(after);
        branches.push(Filter::And(branch));
        equal_so_far.push(if p.is_null() {
            Filter::cond(f, Op::Null(true))
        } else {
            Filter::cond(f, Op::Eq(Operand::Value(p.clone())))
        });
    }
    Ok(Filter::Or(branches))
}

/// One sort item as a DataFusion sort key with its NULL placement.
pub(crate) fn sort(item: &SortItem, scope: &dyn Scope) -> Result<SortExpr> {
    let (column, st) = scope
        .column(&item.field)
        .ok_or_else(|| unknown(&item.field))?;
    if !native(st) {
        return Err(Error::internal(format!(
            "sort key `{}` is not of a lowered type",
            item.field
        )));
    }
    Ok(SortExpr::new(
        Expr::Column(column),
        item.order == SortOrder::Asc,
        item.nulls_first(),
    ))
}

/// A filter evaluated by objectql's reference evaluator, as a DataFusion
/// scalar function of the columns it names. Used for the conditions that
/// have no exact native form; exact by construction, slower than a native
/// operator (each row's cells become values).
#[derive(Debug)]
pub(crate) struct ReferenceFilter {
    /// The filter's JSON text: its identity (equality and hash).
    key: String,
    predicate: Predicate,
    /// The columns passed as arguments, in order, with their storage types.
    columns: Vec<(String, StorageType)>,
    signature: Signature,
}

impl PartialEq for ReferenceFilter {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.columns == other.columns
    }
}

impl Eq for ReferenceFilter {}

impl Hash for ReferenceFilter {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.columns.hash(state);
    }
}

impl ReferenceFilter {
    /// The call of a reference filter for `f` over `scope`.
    fn expr(f: &Filter, scope: &dyn Scope) -> Result<Expr> {
        let mut names = Vec::new();
        referenced(f, &mut names);
        Self::call(f, scope, names, Volatility::Immutable)
    }

    /// The call of a reference filter for `f` over `scope` taking the
    /// columns `names` (a superset of those `f` names).
    fn call(
        f: &Filter,
        scope: &dyn Scope,
        names: Vec<String>,
        volatility: Volatility,
    ) -> Result<Expr> {
        let mut args = Vec::with_capacity(names.len());
        let mut columns = Vec::with_capacity(names.len());
        for n in names {
            let (col, st) = scope.column(&n).ok_or_else(|| unknown(&n))?;
            args.push(Expr::Column(col));
            columns.push((n, st));
        }
        let header = Columns::new(columns.iter().map(|(n, _)| n.clone()).collect());
        let predicate = Predicate::compile(f, &header)?;
        let types: Vec<DataType> = columns.iter().map(|(_, st)| arrow_data_type(*st)).collect();
        let udf = Self {
            key: f.to_json().to_string(),
            predicate,
            columns,
            signature: Signature::exact(types, volatility),
        };
        Ok(ScalarUDF::new_from_impl(udf).call(args))
    }
}

/// `f` (TRUE when `None`) as one opaque predicate that takes every column
/// of `names` and that DataFusion neither splits nor moves (it is
/// volatile): every column it takes is computed for every row before any
/// row is dropped. An aggregation's groups are filtered so: an overflowing
/// sum in a group that `having` drops is still an error, as in the
/// reference evaluator, which finishes every group before `having`.
pub(crate) fn barrier(f: Option<&Filter>, scope: &dyn Scope, names: Vec<String>) -> Result<Expr> {
    let always = Filter::And(Vec::new());
    ReferenceFilter::call(f.unwrap_or(&always), scope, names, Volatility::Volatile)
}

/// The distinct columns `f` names, in first-seen order.
fn referenced(f: &Filter, out: &mut Vec<String>) {
    let mut push = |n: &String| {
        if !out.contains(n) {
            out.push(n.clone());
        }
    };
    match f {
        Filter::And(items) | Filter::Or(items) => {
            for i in items {
                referenced(i, out);
            }
        }
        Filter::Not(inner) => referenced(inner, out),
        Filter::Condition(c) => {
            push(&c.field);
            if let Op::Eq(Operand::Field(o))
            | Op::Ne(Operand::Field(o))
            | Op::Gt(Operand::Field(o))
            | Op::Gte(Operand::Field(o))
            | Op::Lt(Operand::Field(o))
            | Op::Lte(Operand::Field(o)) = &c.op
            {
                push(o);
            }
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

impl ScalarUDFImpl for ReferenceFilter {
    fn name(&self) -> &'static str {
        "objectql_filter"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arrays(args)?;
        let mut out = BooleanBuilder::with_capacity(rows);
        let mut row: Vec<Value> = Vec::with_capacity(arrays.len());
        for i in 0..rows {
            row.clear();
            for (array, (name, _)) in arrays.iter().zip(&self.columns) {
                row.push(cell(array, i, name)?);
            }
            match self.predicate.eval(&row) {
                Truth::True => out.append_value(true),
                Truth::False => out.append_value(false),
                Truth::Unknown => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A scalar function's arguments as arrays of its rows.
pub(crate) fn arrays(args: ScalarFunctionArgs) -> DfResult<Vec<ArrayRef>> {
    let rows = args.number_rows;
    args.args.into_iter().map(|a| a.into_array(rows)).collect()
}

/// Row `i` of a lowered column as a value.
pub(crate) fn cell(array: &ArrayRef, i: usize, name: &str) -> DfResult<Value> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let s = ScalarValue::try_from_array(array, i)?;
    scalar_value(&s, name).map_err(to_datafusion)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use objectql_query_ast::{NullsOrder, field};

    struct Two;

    impl Scope for Two {
        fn column(&self, name: &str) -> Option<(Column, StorageType)> {
            let st = match name {
                "t" | "u" => StorageType::Text,
                "i" | "j" => StorageType::Integer,
                "f" => StorageType::Float,
                "doc" => StorageType::Json,
                _ => return None,
            };
            Some((Column::new_unqualified(name), st))
        }
    }

    fn shown(f: &Filter) -> String {
        filter(f, &Two).expect("lowers").to_string()
    }

    #[test]
    fn negations_keep_null_rows() {
        assert_eq!(shown(&field("i").ne(1)), "i IS DISTINCT FROM Int64(1)");
        assert_eq!(
            shown(&Filter::Not(Box::new(field("i").gt(1)))),
            "i > Int64(1) IS NOT TRUE"
        );
        let nin = shown(&Filter::cond(
            "i",
            Op::Nin(vec![Value::Int(1), Value::Null]),
        ));
        assert_eq!(nin, "i IS NULL OR i NOT IN ([Int64(1)])");
        let nc = shown(&Filter::cond("t", Op::NotContains("%".into())));
        assert_eq!(nc, "t IS NULL OR NOT contains(t, Utf8(\"%\"))");
    }

    #[test]
    fn empty_connectives_are_their_identities() {
        assert_eq!(shown(&Filter::And(Vec::new())), "Boolean(true)");
        assert_eq!(shown(&Filter::Or(Vec::new())), "Boolean(false)");
        assert_eq!(
            shown(&Filter::cond("i", Op::In(vec![Value::Null]))),
            "Boolean(false)"
        );
    }

    #[test]
    fn text_operators_are_literal_functions_on_text_only() {
        assert_eq!(
            shown(&Filter::cond("t", Op::StartsWith("a_%".into()))),
            "starts_with(t, Utf8(\"a_%\"))"
        );
        assert_eq!(
            shown(&Filter::cond("t", Op::EndsWith("\\".into()))),
            "ends_with(t, Utf8(\"\\\"))"
        );
        // ASCII-only folding, patterns, JSON columns: the reference evaluator.
        for f in [
            Filter::cond("t", Op::IContains("a".into())),
            Filter::cond("t", Op::ILike("a%".into())),
            Filter::cond("t", Op::Like("a%".into())),
            Filter::cond("doc", Op::Eq(Operand::Value(Value::from("x")))),
        ] {
            assert!(shown(&f).starts_with("objectql_filter("), "{f:?}");
        }
    }

    #[test]
    fn comparands_of_another_type_are_never_cast() {
        // 2.5 against an integer column, an integer beyond 2^53 against a
        // float column, an integer column against a float column.
        for f in [
            field("i").gt(2.5),
            field("f").eq(9_007_199_254_740_993_i64),
            Filter::cond("i", Op::Lt(Operand::Field("f".into()))),
        ] {
            assert!(shown(&f).starts_with("objectql_filter("), "{f:?}");
        }
        assert_eq!(shown(&field("f").eq(2)), "f = Float64(2)");
        assert_eq!(
            shown(&Filter::cond("i", Op::Lte(Operand::Field("j".into())))),
            "i <= j"
        );
    }

    #[test]
    fn decimals_and_instants_must_fit_their_column() {
        let dec = StorageType::Decimal {
            precision: 5,
            scale: 2,
        };
        let d = |s: &str| Value::Decimal(s.parse().unwrap());
        assert!(literal(&d("123.45"), dec).is_some());
        assert!(literal(&d("123.4"), dec).is_some());
        assert!(literal(&d("1.234"), dec).is_none(), "a third decimal digit");
        assert!(literal(&d("1234.5"), dec).is_none(), "six digits");
        let t = chrono::DateTime::from_timestamp(0, 1_500).unwrap();
        assert!(literal(&Value::DateTime(t), StorageType::DateTime).is_none());
        let t = chrono::DateTime::from_timestamp(0, 2_000).unwrap();
        assert!(literal(&Value::DateTime(t), StorageType::DateTime).is_some());
    }

    #[test]
    fn sort_keys_place_nulls_explicitly() {
        let asc = sort(&SortItem::asc("i"), &Two).unwrap();
        assert!(asc.asc && asc.nulls_first);
        let desc = sort(&SortItem::desc("i"), &Two).unwrap();
        assert!(!desc.asc && !desc.nulls_first);
        let mut last = SortItem::asc("t");
        last.nulls = Some(NullsOrder::Last);
        assert!(!sort(&last, &Two).unwrap().nulls_first);
        assert!(sort(&SortItem::asc("doc"), &Two).is_err());
    }

    #[test]
    fn long_conjunctions_are_balanced() {
        fn depth(e: &Expr) -> usize {
            match e {
                Expr::BinaryExpr(b) => 1 + depth(&b.left).max(depth(&b.right)),
                _ => 0,
            }
        }
        let f = Filter::And((0..1024).map(|n| field("i").ne(n)).collect());
        let e = filter(&f, &Two).unwrap();
        assert!(depth(&e) <= 12, "depth {}", depth(&e));
    }
}
