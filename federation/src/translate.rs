//! DataFusion predicates → QueryAST filters, with SQL's meaning kept.
//!
//! DataFusion evaluates a `WHERE` clause in SQL's three-valued logic and
//! keeps the rows where it is TRUE. QueryAST filters are two-valued and
//! NULL-safe in their negations (`$ne`, `$nin`, `$not` match NULL). A
//! translated filter must select exactly the rows where the SQL predicate is
//! TRUE, so:
//!
//! - negations are pushed down to the leaves (De Morgan holds in Kleene
//!   logic), and a negated leaf excludes NULL explicitly: `a <> 1` becomes
//!   `{a: {$ne: 1, $null: false}}`, never a bare `$ne`;
//! - `IS DISTINCT FROM` is the one SQL comparison that is NULL-safe, so it
//!   alone becomes a bare `$ne`;
//! - `NOT IN` with a NULL in its list is never TRUE;
//! - `IS [NOT] TRUE/FALSE` become `$not` over the translated predicate,
//!   which is exactly "not TRUE";
//! - literals must already have the column's type: a comparison DataFusion
//!   had to cast (`CAST(int_col AS DOUBLE) = 1.5`) is not translated, and
//!   neither is a float `-0.0` (Arrow orders it below `0.0`; QueryAST
//!   normalises it to `0.0`), `ILIKE` (Unicode case folding in DataFusion,
//!   ASCII-only in QueryAST) or a `LIKE` with an escape character other
//!   than backslash.
//!
//! Whatever is not translated stays in DataFusion (`Unsupported`), where it
//! is evaluated with DataFusion's own semantics.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use objectql_query_ast::{Filter, ObjectSchema, Op, Operand, StorageType, Value};

/// Translates `expr` into a filter selecting exactly the rows where `expr`
/// is TRUE, or `None` when it cannot be translated with the same meaning.
///
/// Columns are matched by name against the stored fields of `schema`.
pub fn to_filter(expr: &Expr, schema: &ObjectSchema) -> Option<Filter> {
    let resolve = |c: &Column| {
        let st = schema.get(&c.name)?.storage_type().ok()?;
        (st != StorageType::Virtual).then(|| (c.name.clone(), st))
    };
    Translator { resolve: &resolve }.filter(expr, false)
}

/// [`to_filter`] over any set of columns: `resolve` gives a DataFusion
/// column's QueryAST key (a field, or `alias.field` of a join) and storage
/// type, or `None` when it has none.
pub(crate) fn to_filter_with(
    expr: &Expr,
    resolve: &dyn Fn(&Column) -> Option<(String, StorageType)>,
) -> Option<Filter> {
    Translator { resolve }.filter(expr, false)
}

struct Translator<'a> {
    resolve: &'a dyn Fn(&Column) -> Option<(String, StorageType)>,
}

/// A column: its QueryAST key and storage type.
struct Col {
    name: String,
    st: StorageType,
}

fn and(items: Vec<Filter>) -> Filter {
    Filter::And(items)
}

fn or(items: Vec<Filter>) -> Filter {
    Filter::Or(items)
}

fn cond(field: &str, op: Op) -> Filter {
    Filter::cond(field, op)
}

fn not_null(field: &str) -> Filter {
    cond(field, Op::Null(false))
}

/// The comparison that holds when `op` is FALSE (both sides non-null).
fn negate(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq => Operator::NotEq,
        Operator::NotEq => Operator::Eq,
        Operator::Lt => Operator::GtEq,
        Operator::LtEq => Operator::Gt,
        Operator::Gt => Operator::LtEq,
        Operator::GtEq => Operator::Lt,
        _ => return None,
    })
}

/// `a op b` as `b op' a`.
fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq | Operator::NotEq => op,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

impl Translator<'_> {
    /// The rows where `expr` is TRUE (`negated`: where it is FALSE).
    fn filter(&self, expr: &Expr, negated: bool) -> Option<Filter> {
        match expr {
            Expr::Alias(a) => self.filter(&a.expr, negated),
            Expr::Not(inner) => self.filter(inner, !negated),
            Expr::BinaryExpr(b) => self.binary(b, negated),
            Expr::IsNull(x) => Some(cond(&self.column(x)?.name, Op::Null(!negated))),
            Expr::IsNotNull(x) => Some(cond(&self.column(x)?.name, Op::Null(negated))),
            // `x IS TRUE` is TRUE where x is TRUE, and FALSE elsewhere
            // (never NULL), so its negation is "x is not TRUE": `$not`.
            Expr::IsTrue(x) => self.is(x, false, negated),
            Expr::IsNotTrue(x) => self.is(x, false, !negated),
            Expr::IsFalse(x) => self.is(x, true, negated),
            Expr::IsNotFalse(x) => self.is(x, true, !negated),
            Expr::IsUnknown(x) => {
                let c = self.bool_column(x)?;
                Some(cond(&c.name, Op::Null(!negated)))
            }
            Expr::IsNotUnknown(x) => {
                let c = self.bool_column(x)?;
                Some(cond(&c.name, Op::Null(negated)))
            }
            Expr::Column(_) => {
                // A boolean column as a predicate: TRUE where it is true.
                let c = self.bool_column(expr)?;
                Some(cond(&c.name, Op::Eq(Operand::Value(Value::Bool(!negated)))))
            }
            Expr::Literal(ScalarValue::Boolean(b), _) => Some(match b {
                Some(b) if *b != negated => Filter::always(),
                // FALSE, or NULL (whose negation is NULL too): no row.
                _ => Filter::never(),
            }),
            Expr::Between(b) => {
                let c = self.column(&b.expr)?;
                let lo = literal(&b.low, c.st)?;
                let hi = literal(&b.high, c.st)?;
                if lo.is_null() || hi.is_null() {
                    return None;
                }
                Some(if b.negated == negated {
                    cond(&c.name, Op::Between(lo, hi))
                } else {
                    or(vec![
                        cond(&c.name, Op::Lt(Operand::Value(lo))),
                        cond(&c.name, Op::Gt(Operand::Value(hi))),
                    ])
                })
            }
            Expr::InList(l) => {
                let c = self.column(&l.expr)?;
                let values = l
                    .list
                    .iter()
                    .map(|e| literal(e, c.st))
                    .collect::<Option<Vec<Value>>>()?;
                let has_null = values.iter().any(Value::is_null);
                let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
                Some(if l.negated == negated {
                    // `x IN (1, NULL)` is TRUE only where x is 1.
                    cond(&c.name, Op::In(values))
                } else if has_null {
                    // `x NOT IN (1, NULL)` is never TRUE.
                    Filter::never()
                } else {
                    and(vec![cond(&c.name, Op::Nin(values)), not_null(&c.name)])
                })
            }
            Expr::Like(l) => {
                // DataFusion folds case with Unicode rules, QueryAST's
                // `$ilike` with ASCII rules only: not the same rows.
                if l.case_insensitive || !matches!(l.escape_char, None | Some('\\')) {
                    return None;
                }
                let c = self.column(&l.expr)?;
                if c.st != StorageType::Text {
                    return None;
                }
                let Value::String(pattern) = literal(&l.pattern, StorageType::Text)? else {
                    return None;
                };
                let like = cond(&c.name, Op::Like(pattern));
                Some(if l.negated == negated {
                    like
                } else {
                    and(vec![Filter::Not(Box::new(like)), not_null(&c.name)])
                })
            }
            _ => None,
        }
    }

    /// `x IS TRUE` (`of_false`: `x IS FALSE`), or with `negated` its
    /// complement, which includes the rows where `x` is NULL.
    fn is(&self, x: &Expr, of_false: bool, negated: bool) -> Option<Filter> {
        let holds = self.filter(x, of_false)?;
        Some(if negated {
            Filter::Not(Box::new(holds))
        } else {
            holds
        })
    }

    fn binary(&self, b: &BinaryExpr, negated: bool) -> Option<Filter> {
        match b.op {
            Operator::And | Operator::Or => {
                let l = self.filter(&b.left, negated)?;
                let r = self.filter(&b.right, negated)?;
                // NOT (a AND b) = NOT a OR NOT b, in three-valued logic too.
                Some(if (b.op == Operator::And) ^ negated {
                    and(vec![l, r])
                } else {
                    or(vec![l, r])
                })
            }
            Operator::IsDistinctFrom | Operator::IsNotDistinctFrom => {
                let (c, v) = self.column_and_value(&b.left, &b.right)?;
                let distinct = (b.op == Operator::IsDistinctFrom) != negated;
                Some(match (distinct, v.is_null()) {
                    (true, true) => not_null(&c.name),
                    (false, true) => cond(&c.name, Op::Null(true)),
                    // The one NULL-safe SQL comparison: a bare `$ne`.
                    (true, false) => cond(&c.name, Op::Ne(Operand::Value(v))),
                    (false, false) => cond(&c.name, Op::Eq(Operand::Value(v))),
                })
            }
            op => {
                let op = if negated { negate(op)? } else { op };
                self.comparison(&b.left, op, &b.right)
            }
        }
    }

    /// `left op right`, TRUE only where both sides are non-null.
    fn comparison(&self, left: &Expr, op: Operator, right: &Expr) -> Option<Filter> {
        let (field, operand, other) = match (self.column(left), self.column(right)) {
            (Some(l), Some(r)) => {
                // JSON values compare as documents in QueryAST, as text in
                // DataFusion.
                if l.st != r.st || matches!(l.st, StorageType::Json | StorageType::Vector { .. }) {
                    return None;
                }
                (l.name, Operand::Field(r.name.clone()), Some(r.name))
            }
            (Some(c), None) => (c.name, Operand::Value(literal(right, c.st)?), None),
            (None, Some(_)) => return self.comparison(right, flip(op)?, left),
            (None, None) => return None,
        };
        if let Operand::Value(v) = &operand
            && v.is_null()
        {
            // A comparison with NULL is never TRUE.
            return Some(Filter::never());
        }
        let leaf = match op {
            Operator::Eq => Op::Eq(operand),
            Operator::Lt => Op::Lt(operand),
            Operator::LtEq => Op::Lte(operand),
            Operator::Gt => Op::Gt(operand),
            Operator::GtEq => Op::Gte(operand),
            Operator::NotEq => {
                // `$ne` matches NULL; SQL's `<>` never does.
                let mut parts = vec![cond(&field, Op::Ne(operand)), not_null(&field)];
                if let Some(o) = other {
                    parts.push(not_null(&o));
                }
                return Some(and(parts));
            }
            _ => return None,
        };
        Some(cond(&field, leaf))
    }

    fn column_and_value(&self, a: &Expr, b: &Expr) -> Option<(Col, Value)> {
        if let Some(c) = self.column(a) {
            let v = literal(b, c.st)?;
            return Some((c, v));
        }
        let c = self.column(b)?;
        let v = literal(a, c.st)?;
        Some((c, v))
    }

    /// A column with a QueryAST key.
    fn column(&self, e: &Expr) -> Option<Col> {
        let Expr::Column(c) = e else { return None };
        let (name, st) = (self.resolve)(c)?;
        Some(Col { name, st })
    }

    fn bool_column(&self, e: &Expr) -> Option<Col> {
        self.column(e).filter(|c| c.st == StorageType::Boolean)
    }
}

/// A literal of the column's type, as a QueryAST value (`Value::Null` for a
/// NULL literal).
fn literal(e: &Expr, st: StorageType) -> Option<Value> {
    match e {
        Expr::Literal(v, _) => scalar_to_value(v, st),
        _ => None,
    }
}

/// A DataFusion literal as a value of storage type `st`, when it has
/// exactly that type's meaning. `Some(Value::Null)` for NULL.
pub fn scalar_to_value(v: &ScalarValue, st: StorageType) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    let int = |v: &ScalarValue| -> Option<i64> {
        Some(match v {
            ScalarValue::Int8(Some(i)) => i64::from(*i),
            ScalarValue::Int16(Some(i)) => i64::from(*i),
            ScalarValue::Int32(Some(i)) => i64::from(*i),
            ScalarValue::Int64(Some(i)) => *i,
            ScalarValue::UInt8(Some(i)) => i64::from(*i),
            ScalarValue::UInt16(Some(i)) => i64::from(*i),
            ScalarValue::UInt32(Some(i)) => i64::from(*i),
            ScalarValue::UInt64(Some(i)) => i64::try_from(*i).ok()?,
            _ => return None,
        })
    };
    match (st, v) {
        (StorageType::Integer, v) => int(v).map(Value::Int),
        (StorageType::Float, ScalarValue::Float64(Some(f))) => float(*f),
        (StorageType::Float, ScalarValue::Float32(Some(f))) => float(f64::from(*f)),
        (StorageType::Decimal { .. }, ScalarValue::Decimal128(Some(m), _, scale)) => {
            let scale = u32::try_from(*scale).ok()?;
            rust_decimal::Decimal::try_from_i128_with_scale(*m, scale)
                .ok()
                .map(Value::Decimal)
        }
        (StorageType::Boolean, ScalarValue::Boolean(Some(b))) => Some(Value::Bool(*b)),
        (
            StorageType::Text,
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Some(Value::String(s.clone())),
        (StorageType::Date, ScalarValue::Date32(Some(days))) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            epoch
                .checked_add_signed(chrono::TimeDelta::try_days(i64::from(*days))?)
                .map(Value::Date)
        }
        (StorageType::DateTime, ScalarValue::TimestampSecond(Some(s), _)) => {
            DateTime::<Utc>::from_timestamp(*s, 0).map(Value::DateTime)
        }
        (StorageType::DateTime, ScalarValue::TimestampMillisecond(Some(ms), _)) => {
            DateTime::<Utc>::from_timestamp_millis(*ms).map(Value::DateTime)
        }
        (StorageType::DateTime, ScalarValue::TimestampMicrosecond(Some(us), _)) => {
            DateTime::<Utc>::from_timestamp_micros(*us).map(Value::DateTime)
        }
        (StorageType::DateTime, ScalarValue::TimestampNanosecond(Some(ns), _)) => {
            // Stored instants have microseconds: a bound between two of
            // them would be rounded, so it is not translated.
            (ns % 1000 == 0)
                .then(|| DateTime::<Utc>::from_timestamp_micros(ns / 1000))?
                .map(Value::DateTime)
        }
        (StorageType::Time, ScalarValue::Time64Microsecond(Some(us))) => {
            let secs = u32::try_from(us.div_euclid(1_000_000)).ok()?;
            let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1000).ok()?;
            NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).map(Value::Time)
        }
        _ => None,
    }
}

/// A finite float with DataFusion's meaning. `-0.0` is not: Arrow orders it
/// below `0.0`, while QueryAST makes it `0.0`.
fn float(f: f64) -> Option<Value> {
    (f.is_finite() && !(f == 0.0 && f.is_sign_negative())).then_some(Value::Float(f))
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};
    use objectql_query_ast::{Field, field};

    use super::*;

    fn schema() -> ObjectSchema {
        ObjectSchema::new("t")
            .field(Field::new("a", "integer"))
            .field(Field::new("s", "text"))
            .field(Field::new("b", "boolean"))
            .field(Field::new("f", "number"))
            .field(Field::new("j", "json"))
    }

    fn binary(l: Expr, op: Operator, r: Expr) -> Expr {
        Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)))
    }

    fn t(e: &Expr) -> Option<Filter> {
        to_filter(e, &schema())
    }

    #[test]
    fn not_equal_excludes_null() {
        assert_eq!(
            t(&col("a").not_eq(lit(1_i64))),
            Some(field("a").ne(1).and(field("a").is_not_null()))
        );
        // NOT (a = 1) is the same predicate.
        assert_eq!(
            t(&Expr::Not(Box::new(col("a").eq(lit(1_i64))))),
            t(&col("a").not_eq(lit(1_i64)))
        );
    }

    #[test]
    fn is_distinct_from_is_the_bare_ne() {
        assert_eq!(
            t(&binary(col("a"), Operator::IsDistinctFrom, lit(1_i64))),
            Some(field("a").ne(1))
        );
        assert_eq!(
            t(&binary(col("a"), Operator::IsNotDistinctFrom, lit(1_i64))),
            Some(field("a").eq(1))
        );
    }

    #[test]
    fn negations_reach_the_leaves() {
        let e = Expr::Not(Box::new(col("a").lt(lit(3_i64)).and(col("s").eq(lit("x")))));
        assert_eq!(
            t(&e),
            Some(Filter::Or(vec![
                field("a").gte(3),
                field("s").ne("x").and(field("s").is_not_null()),
            ]))
        );
    }

    #[test]
    fn not_in_with_a_null_is_never_true() {
        let e = col("a").in_list(vec![lit(1_i64), lit(ScalarValue::Int64(None))], true);
        assert_eq!(t(&e), Some(Filter::never()));
        let e = col("a").in_list(vec![lit(1_i64), lit(ScalarValue::Int64(None))], false);
        assert_eq!(t(&e), Some(Filter::cond("a", Op::In(vec![Value::Int(1)]))));
    }

    #[test]
    fn refused_translations() {
        // ILIKE folds Unicode case in DataFusion, ASCII only in QueryAST.
        assert_eq!(t(&col("s").ilike(lit("x%"))), None);
        // A cast column, a mistyped literal, -0.0, a JSON column.
        assert_eq!(t(&col("a").eq(lit(1.5_f64))), None);
        assert_eq!(t(&col("f").eq(lit(-0.0_f64))), None);
        assert_eq!(t(&col("j").eq(lit("{}"))), None);
        assert_eq!(t(&col("nope").eq(lit(1_i64))), None);
        // Two JSON columns: documents in QueryAST, text in DataFusion.
        assert_eq!(t(&col("j").eq(col("j"))), None);
    }

    #[test]
    fn literal_on_the_left_flips() {
        assert_eq!(t(&lit(3_i64).lt(col("a"))), Some(field("a").gt(3)));
    }
}
