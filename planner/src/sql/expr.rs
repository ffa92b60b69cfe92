//! Filters → SQL expressions, with eval's three-valued semantics.
//!
//! - `$ne`, `$nin`, `$notContains` and `$not` are NULL-safe (they match NULL);
//!   positive operators never match NULL.
//! - `$in` / `$nin` drop NULL list items; an empty `$in` is FALSE, an empty
//!   `$nin` TRUE; an empty `$and` is TRUE, an empty `$or` FALSE.
//! - Text equality and ordering are binary (the dialect's text keys).
//! - Text operators take their comparand literally (escaped LIKE / GLOB
//!   patterns, `instr`/`strpos`), case-sensitively unless `i`-prefixed, with
//!   ASCII-only case folding.

use indexmap::IndexMap;
use objectql_driver::Pushdown;
use objectql_query_ast::{
    Condition, Error, Filter, ObjectSchema, Op, Operand, Result, StorageType, Value,
};
use sqlparser::ast::{BinaryOperator, Expr};

use super::ast::{and_all, binop, boolean, is_not_null, is_null, or_any, paren};
use super::dialect::glob_escape;
use super::{Binder, SqlDialect};

/// A text operator, as the dialect hook [`SqlDialect::text_op`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// `$contains` (and, negated, `$notContains`).
    Contains,
    /// `$startsWith`.
    StartsWith,
    /// `$endsWith`.
    EndsWith,
    /// `$icontains` (ASCII-only folding).
    IContains,
    /// `$like` (case-sensitive pattern).
    Like,
    /// `$ilike` (ASCII-only folding).
    ILike,
}

/// A column visible to a clause: its SQL expression and storage type.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub expr: Expr,
    pub st: StorageType,
}

/// The columns a clause can name (fields, `alias.field`, output aliases).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub cols: IndexMap<String, Col>,
    /// Columns that hold no NULL (the primary key and required fields of
    /// the base object of a query without joins): sorting on them needs no
    /// NULL placement, so a plain `ORDER BY` can use their index.
    pub not_null: Vec<String>,
}

impl Scope {
    pub fn get(&self, name: &str) -> Result<&Col> {
        self.cols.get(name).ok_or_else(|| {
            Error::plan(format!(
                "the SQL compiler does not know column `{name}` (was the query validated?)"
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Any,
    One,
    Lit(char),
}

/// Parses a `$like` pattern as eval does: `%`, `_`, backslash escapes the next
/// character, a trailing lone backslash is literal.
fn like_tokens(p: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        let t = match c {
            '%' if out.last() == Some(&Tok::Any) => continue,
            '%' => Tok::Any,
            '_' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        };
        out.push(t);
    }
    out
}

/// A `$like` pattern re-written for SQL `LIKE … ESCAPE esc`.
pub(crate) fn like_pattern(p: &str, esc: char) -> String {
    let mut out = String::with_capacity(p.len() + 2);
    for t in like_tokens(p) {
        match t {
            Tok::Any => out.push('%'),
            Tok::One => out.push('_'),
            Tok::Lit(c) => {
                if c == '%' || c == '_' || c == esc {
                    out.push(esc);
                }
                out.push(c);
            }
        }
    }
    out
}

/// A `$like` pattern re-written for SQLite's (case-sensitive) `GLOB`.
pub(crate) fn glob_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 2);
    for t in like_tokens(p) {
        match t {
            Tok::Any => out.push('*'),
            Tok::One => out.push('?'),
            Tok::Lit(c) => out.push_str(&glob_escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

fn text_op_of(op: &Op) -> Option<(TextOp, &str)> {
    Some(match op {
        Op::Contains(s) | Op::NotContains(s) => (TextOp::Contains, s.as_str()),
        Op::StartsWith(s) => (TextOp::StartsWith, s.as_str()),
        Op::EndsWith(s) => (TextOp::EndsWith, s.as_str()),
        Op::IContains(s) => (TextOp::IContains, s.as_str()),
        Op::Like(s) => (TextOp::Like, s.as_str()),
        Op::ILike(s) => (TextOp::ILike, s.as_str()),
        _ => return None,
    })
}

/// Classifies one condition on a field of type `st` (`other`: the type of a
/// `$field` comparand).
pub(crate) fn classify_op(
    d: &dyn SqlDialect,
    st: StorageType,
    other: Option<StorageType>,
    op: &Op,
) -> Pushdown {
    if st == StorageType::Virtual {
        return Pushdown::Unsupported;
    }
    if let Op::Null(_) | Op::Exists(_) = op {
        return Pushdown::Exact;
    }
    if matches!(st, StorageType::Vector { .. }) {
        return Pushdown::Unsupported;
    }
    if st == StorageType::Json {
        // JSON equality is structural in eval; no dialect matches it exactly.
        return Pushdown::Unsupported;
    }
    if let Op::Eq(Operand::Field(_))
    | Op::Ne(Operand::Field(_))
    | Op::Gt(Operand::Field(_))
    | Op::Gte(Operand::Field(_))
    | Op::Lt(Operand::Field(_))
    | Op::Lte(Operand::Field(_)) = op
    {
        return match other {
            Some(o) => d.classify_field_compare(st, o),
            None => Pushdown::Unsupported,
        };
    }
    if let Some((t, _)) = text_op_of(op) {
        let p = d.classify_text(t);
        // The negation of a superset is not a superset.
        if matches!(op, Op::NotContains(_)) && p != Pushdown::Exact {
            return Pushdown::Unsupported;
        }
        return p;
    }
    if let Op::In(vs) | Op::Nin(vs) = op
        && !d.in_list_as_one_parameter(st)
        && vs.len() > d.max_bind_params() / 2
    {
        // One placeholder per value would pass the bind limit (half of it
        // is left to the rest of the statement): evaluated locally.
        return Pushdown::Unsupported;
    }
    match op {
        Op::Eq(_)
        | Op::Ne(_)
        | Op::Gt(_)
        | Op::Gte(_)
        | Op::Lt(_)
        | Op::Lte(_)
        | Op::In(_)
        | Op::Nin(_)
        | Op::Between(..) => Pushdown::Exact,
        _ => Pushdown::Unsupported,
    }
}

/// [`classify_op`] for a condition on a field of `schema`.
pub(crate) fn classify(d: &dyn SqlDialect, schema: &ObjectSchema, c: &Condition) -> Pushdown {
    let storage = |name: &str| schema.get(name).and_then(|f| f.storage_type().ok());
    let Some(st) = storage(&c.field) else {
        return Pushdown::Unsupported;
    };
    let other = match &c.op {
        Op::Eq(Operand::Field(o))
        | Op::Ne(Operand::Field(o))
        | Op::Gt(Operand::Field(o))
        | Op::Gte(Operand::Field(o))
        | Op::Lt(Operand::Field(o))
        | Op::Lte(Operand::Field(o)) => match storage(o) {
            Some(o) => Some(o),
            None => return Pushdown::Unsupported,
        },
        _ => None,
    };
    classify_op(d, st, other, &c.op)
}

/// Compiles filters against a scope.
pub(crate) struct FilterCx<'x, 'b> {
    pub d: &'x dyn SqlDialect,
    pub scope: &'x Scope,
    pub b: &'x mut Binder<'b>,
}

/// How many equalities an OR needs before it is compiled as an `IN` list.
const OR_AS_IN_LIST: usize = 32;

/// `items` as one `field $in [values]` condition, when there are at least
/// [`OR_AS_IN_LIST`] of them and every one is `field = value` on the same
/// field with a non-NULL value.
fn same_field_equalities(items: &[Filter]) -> Option<Condition> {
    same_field_values(items, false)
}

/// `items` as one `field $nin [values]` condition, when there are at least
/// [`OR_AS_IN_LIST`] of them and every one is `field $ne value` on the
/// same field with a non-NULL value. Both sides are NULL-safe in the
/// protocol (a NULL field matches `$ne` and `$nin`), so the answer is the
/// same; the statement is one list instead of a 10,000-term chain (which
/// ran into sqld's statement time limit on a loaded machine).
fn same_field_inequalities(items: &[Filter]) -> Option<Condition> {
    same_field_values(items, true)
}

fn same_field_values(items: &[Filter], negated: bool) -> Option<Condition> {
    if items.len() < OR_AS_IN_LIST {
        return None;
    }
    let mut field: Option<&str> = None;
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let Filter::Condition(c) = item else {
            return None;
        };
        let ((Op::Eq(Operand::Value(v)), false) | (Op::Ne(Operand::Value(v)), true)) =
            (&c.op, negated)
        else {
            return None;
        };
        if v.is_null() || field.is_some_and(|f| f != c.field) {
            return None;
        }
        field = Some(&c.field);
        values.push(v.clone());
    }
    Some(Condition {
        field: field?.to_owned(),
        op: if negated {
            Op::Nin(values)
        } else {
            Op::In(values)
        },
    })
}

impl FilterCx<'_, '_> {
    /// `filter` as a boolean expression. `inexact_ok`: an `Inexact`
    /// condition may be compiled as a superset (only in a positive position of
    /// a WHERE the planner re-checks); elsewhere it is refused.
    pub fn filter(&mut self, f: &Filter, inexact_ok: bool) -> Result<Expr> {
        Ok(match f {
            Filter::And(items) => match same_field_inequalities(items) {
                Some(c) => self.condition(&c, inexact_ok)?,
                None => and_all(
                    items
                        .iter()
                        .map(|i| self.filter(i, inexact_ok))
                        .collect::<Result<_>>()?,
                ),
            },
            Filter::Or(items) => match same_field_equalities(items) {
                // A long OR of equalities on one field is one `IN` list: the
                // same answer in three-valued logic (no comparand is NULL),
                // and a statement the server parses and plans in linear
                // time (a 10,000-term OR chain ran into sqld's statement
                // time limit).
                Some(c) => self.condition(&c, inexact_ok)?,
                None => or_any(
                    items
                        .iter()
                        .map(|i| self.filter(i, inexact_ok))
                        .collect::<Result<_>>()?,
                ),
            },
            // NULL-safe negation: `(p) IS NOT TRUE`.
            Filter::Not(inner) => Expr::IsNotTrue(Box::new(paren(self.filter(inner, false)?))),
            Filter::Condition(c) => self.condition(c, inexact_ok)?,
        })
    }

    fn key_eq(&self, col: &Col) -> Expr {
        if col.st == StorageType::Text {
            self.d.text_eq_key(col.expr.clone())
        } else {
            col.expr.clone()
        }
    }

    fn key_ord(&self, col: &Col) -> Expr {
        if col.st == StorageType::Text {
            self.d.text_order_key(col.expr.clone())
        } else {
            col.expr.clone()
        }
    }

    fn condition(&mut self, c: &Condition, inexact_ok: bool) -> Result<Expr> {
        let col = self.scope.get(&c.field)?.clone();
        let other = match &c.op {
            Op::Eq(Operand::Field(o))
            | Op::Ne(Operand::Field(o))
            | Op::Gt(Operand::Field(o))
            | Op::Gte(Operand::Field(o))
            | Op::Lt(Operand::Field(o))
            | Op::Lte(Operand::Field(o)) => Some(self.scope.get(o)?.clone()),
            _ => None,
        };
        match classify_op(self.d, col.st, other.as_ref().map(|o| o.st), &c.op) {
            Pushdown::Exact => {}
            Pushdown::Inexact if inexact_ok => {}
            _ => {
                return Err(Error::unsupported(
                    format!("`{}` on {} field `{}`", c.op.name(), col.st.name(), c.field),
                    self.d.name(),
                ));
            }
        }
        let st = col.st;
        let cmp =
            |this: &mut Self, op: BinaryOperator, o: &Operand, ordered: bool| -> Result<Expr> {
                let key = |this: &Self, c: &Col| {
                    if ordered {
                        this.key_ord(c)
                    } else {
                        this.key_eq(c)
                    }
                };
                let left = key(this, &col);
                let right = match (o, &other) {
                    (Operand::Field(_), Some(oc)) => key(this, oc),
                    (Operand::Value(v), _) => this.b.bind_typed(v, st)?,
                    (Operand::Field(f), None) => {
                        return Err(Error::internal(format!("unresolved field `{f}`")));
                    }
                };
                Ok(binop(left, op, right))
            };
        Ok(match &c.op {
            Op::Eq(o) => cmp(self, BinaryOperator::Eq, o, false)?,
            Op::Gt(o) => cmp(self, BinaryOperator::Gt, o, true)?,
            Op::Gte(o) => cmp(self, BinaryOperator::GtEq, o, true)?,
            Op::Lt(o) => cmp(self, BinaryOperator::Lt, o, true)?,
            Op::Lte(o) => cmp(self, BinaryOperator::LtEq, o, true)?,
            Op::Ne(Operand::Value(Value::Null)) => is_not_null(col.expr.clone()),
            Op::Ne(o) => {
                let left = self.key_eq(&col);
                let right = match (o, &other) {
                    (Operand::Field(_), Some(oc)) => self.key_eq(oc),
                    (Operand::Value(v), _) => self.b.bind_typed(v, st)?,
                    (Operand::Field(f), None) => {
                        return Err(Error::internal(format!("unresolved field `{f}`")));
                    }
                };
                self.d
                    .null_safe_ne(left, right, matches!(o, Operand::Value(_)))
            }
            Op::In(list) | Op::Nin(list) => {
                let negated = matches!(c.op, Op::Nin(_));
                let items: Vec<&Value> = list.iter().filter(|v| !v.is_null()).collect();
                if items.is_empty() {
                    return Ok(boolean(negated));
                }
                let encoded = items
                    .iter()
                    .map(|v| self.d.encode(v, st))
                    .collect::<Result<Vec<_>>>()?;
                let key = paren(self.key_eq(&col));
                let e = match self.d.in_array(key.clone(), encoded, st, negated, self.b) {
                    Some(e) => e,
                    None => Expr::InList {
                        expr: Box::new(key),
                        list: items
                            .into_iter()
                            .map(|v| self.b.bind_typed(v, st))
                            .collect::<Result<Vec<_>>>()?,
                        negated,
                    },
                };
                if negated {
                    or_any(vec![e, is_null(col.expr.clone())])
                } else {
                    e
                }
            }
            Op::Between(low, high) => Expr::Between {
                expr: Box::new(paren(self.key_ord(&col))),
                negated: false,
                low: Box::new(self.b.bind_typed(low, st)?),
                high: Box::new(self.b.bind_typed(high, st)?),
            },
            Op::Null(want) | Op::Exists(want) => {
                let want_null = if matches!(c.op, Op::Null(_)) {
                    *want
                } else {
                    !*want
                };
                if want_null {
                    is_null(col.expr.clone())
                } else {
                    is_not_null(col.expr.clone())
                }
            }
            op => {
                let Some((t, pattern)) = text_op_of(op) else {
                    return Err(Error::unsupported(
                        format!("operator `{}`", op.name()),
                        self.d.name(),
                    ));
                };
                let e = self.d.text_op(col.expr.clone(), t, pattern, self.b)?;
                if matches!(op, Op::NotContains(_)) {
                    Expr::IsNotTrue(Box::new(paren(e)))
                } else {
                    e
                }
            }
        })
    }
}

/// Keeps `and_all` for callers that build conjunctions of compiled filters.
pub(crate) fn conjunction(items: Vec<Expr>) -> Option<Expr> {
    if items.is_empty() {
        None
    } else {
        Some(and_all(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_or_of_equalities_on_one_field_is_an_in_list() {
        let eqs = |n: i64| -> Vec<Filter> {
            (0..n)
                .map(|i| Filter::cond("n", Op::Eq(Operand::Value(Value::Int(i)))))
                .collect()
        };
        let c = same_field_equalities(&eqs(40)).unwrap();
        assert_eq!(c.field, "n");
        assert!(matches!(&c.op, Op::In(vs) if vs.len() == 40));
        // Short, mixed fields, a NULL, or another operator: left alone.
        assert!(same_field_equalities(&eqs(5)).is_none());
        let mut mixed = eqs(40);
        mixed.push(Filter::cond("m", Op::Eq(Operand::Value(Value::Int(1)))));
        assert!(same_field_equalities(&mixed).is_none());
        let mut null = eqs(40);
        null.push(Filter::cond("n", Op::Eq(Operand::Value(Value::Null))));
        assert!(same_field_equalities(&null).is_none());
        let mut other = eqs(40);
        other.push(Filter::cond("n", Op::Gt(Operand::Value(Value::Int(1)))));
        assert!(same_field_equalities(&other).is_none());
    }

    #[test]
    fn a_long_and_of_inequalities_on_one_field_is_a_nin_list() {
        let nes = |n: i64| -> Vec<Filter> {
            (0..n)
                .map(|i| Filter::cond("n", Op::Ne(Operand::Value(Value::Int(i)))))
                .collect()
        };
        let c = same_field_inequalities(&nes(40)).unwrap();
        assert_eq!(c.field, "n");
        assert!(matches!(&c.op, Op::Nin(vs) if vs.len() == 40));
        // Equalities are not inequalities, and the other way round.
        assert!(same_field_equalities(&nes(40)).is_none());
        assert!(same_field_inequalities(&nes(5)).is_none());
        let mut null = nes(40);
        null.push(Filter::cond("n", Op::Ne(Operand::Value(Value::Null))));
        assert!(same_field_inequalities(&null).is_none());
        let mut mixed = nes(40);
        mixed.push(Filter::cond("m", Op::Ne(Operand::Value(Value::Int(1)))));
        assert!(same_field_inequalities(&mixed).is_none());
    }
}
