//! Reads: `select` (rows, distinct, aggregates, joins, cursors, paging),
//! `count` and `distinct`.
//!
//! Aggregate and distinct queries are two-level: the inner SELECT computes
//! the named outputs (group keys and aggregates, or the distinct rows), the
//! outer one filters (`having`, cursor), sorts, pages and projects them by
//! name — so `having` and `orderBy` can use aliases in every dialect.
//!
//! Placeholders are bound in the order they appear in the text (`?` is
//! positional): inner projection, join conditions, WHERE, outer WHERE,
//! LIMIT, OFFSET.

use objectql_query_ast::{
    AggFunction, Aggregation, Cursor, Error, Filter, JoinType, Op, Query, Result, SortItem,
    StorageType, Value,
};
use sqlparser::ast::{
    BinaryOperator, Expr, Join, JoinConstraint, JoinOperator, OrderByExpr, SelectItem, SetExpr,
    SetOperator, SetQuantifier, TableWithJoins,
};

use super::ast::{
    and_all, binop, case_when, cast, count_star, derived, function, is_not_null, is_null, num,
    or_any, order_item, paren, query, select as select_node, select_item, table,
};
use super::dialect::{AvgForm, FloatOverflow};
use super::expr::{Col, FilterCx, Scope, conjunction};
use super::types::pow10;
use super::{Binder, OutputColumn, SqlCompiler, SqlDialect, Statement};

const DERIVED: &str = "q";
/// The derived table of an emulated full join.
const FULL_JOIN: &str = "fj";

/// The FROM clause and the columns it makes visible, before any binding.
struct Source {
    from: TableWithJoins,
    scope: Scope,
    /// `(alias, join type, on)` compiled after the projection.
    joins: Vec<(String, JoinType, Filter, String)>,
    /// A full join the dialect lacks, emulated by a derived table.
    full_join: Option<FullJoin>,
}

/// `base … FULL JOIN j ON c …` for dialects without full joins, as a
/// derived table whose columns are named by their scope keys:
/// `(SELECT … FROM base … LEFT JOIN j ON c …) UNION ALL (SELECT … FROM base
/// … RIGHT JOIN j ON c … WHERE base.pk IS NULL)` — every row of the left
/// join, plus the rows of `j` that matched nothing. Exact when the other
/// joins are inner or left joins (so `base.pk` is NULL only where the
/// right side matched nothing).
struct FullJoin {
    /// The columns of the base table and its joins, qualified.
    inner: Scope,
    /// The base table's primary key column, qualified.
    base_key: Expr,
}

fn source(c: &SqlCompiler<'_>, q: &Query) -> Result<Source> {
    let object = q
        .object
        .as_deref()
        .ok_or_else(|| Error::plan("the query has no object"))?;
    let schema = c.schema(object)?;
    let qualified = !q.joins.is_empty();
    let base = c.ident(schema.table());
    let mut scope = Scope::default();
    let add = |scope: &mut Scope,
               prefix: Option<&str>,
               qualifier: &sqlparser::ast::Ident,
               s: &objectql_query_ast::ObjectSchema|
     -> Result<()> {
        for (name, f) in &s.fields {
            let st = f.storage_type()?;
            if st == StorageType::Virtual {
                continue;
            }
            let col = c.ident(f.column());
            let expr = if qualified {
                Expr::CompoundIdentifier(vec![qualifier.clone(), col])
            } else {
                Expr::Identifier(col)
            };
            let key = match prefix {
                Some(p) => format!("{p}.{name}"),
                None => name.clone(),
            };
            scope.cols.insert(key, Col { expr, st });
        }
        Ok(())
    };
    add(&mut scope, None, &base, schema)?;
    if !qualified {
        scope.not_null = schema
            .fields
            .iter()
            .filter(|(name, f)| **name == schema.primary_key || f.required)
            .map(|(name, _)| name.clone())
            .collect();
    }
    let (right_ok, full_ok) = c.dialect.right_full_joins();
    let mut joins = Vec::new();
    for j in &q.joins {
        let js = c.schema(&j.object)?;
        if j.alias == schema.table() {
            return Err(c.unsupported(format!(
                "a join alias equal to the base table name `{}`",
                j.alias
            )));
        }
        match j.join_type {
            JoinType::Right if !right_ok => return Err(c.unsupported("right joins")),
            _ => {}
        }
        add(&mut scope, Some(&j.alias), &c.ident(&j.alias), js)?;
        joins.push((
            j.alias.clone(),
            j.join_type,
            j.on.clone(),
            js.table().to_owned(),
        ));
    }
    let mut full_join = None;
    if !full_ok && q.joins.iter().any(|j| j.join_type == JoinType::Full) {
        if !right_ok {
            // The emulation needs a right join.
            return Err(c.unsupported("full joins"));
        }
        let plain = |t: JoinType| matches!(t, JoinType::Inner | JoinType::Left);
        if q.joins.iter().filter(|j| !plain(j.join_type)).count() > 1 {
            return Err(c.unsupported("a full join with another full or right join"));
        }
        let key = scope.get(&schema.primary_key)?.expr.clone();
        let outer = Scope {
            not_null: Vec::new(),
            cols: scope
                .cols
                .iter()
                .map(|(k, col)| {
                    let expr = Expr::Identifier(c.ident(k));
                    (k.clone(), Col { expr, st: col.st })
                })
                .collect(),
        };
        full_join = Some(FullJoin {
            inner: std::mem::replace(&mut scope, outer),
            base_key: key,
        });
    }
    Ok(Source {
        from: TableWithJoins {
            relation: table(base, None),
            joins: Vec::new(),
        },
        scope,
        joins,
        full_join,
    })
}

/// Compiles the join conditions (binding their values) into `from`;
/// `full_as`: how a full join is written (itself, or the left or right
/// join of its emulation).
fn join_into(
    c: &SqlCompiler<'_>,
    from: &mut TableWithJoins,
    joins: &[(String, JoinType, Filter, String)],
    scope: &Scope,
    full_as: JoinType,
    b: &mut Binder<'_>,
) -> Result<()> {
    for (alias, jt, on, tbl) in joins {
        let on = FilterCx {
            d: c.dialect,
            scope,
            b,
        }
        .filter(on, false)?;
        let constraint = JoinConstraint::On(on);
        let jt = if *jt == JoinType::Full { full_as } else { *jt };
        let join_operator = match jt {
            JoinType::Inner => JoinOperator::Inner(constraint),
            JoinType::Left => JoinOperator::LeftOuter(constraint),
            JoinType::Right => JoinOperator::RightOuter(constraint),
            JoinType::Full => JoinOperator::FullOuter(constraint),
        };
        from.joins.push(Join {
            relation: table(c.ident(tbl), Some(c.ident(alias))),
            global: false,
            join_operator,
        });
    }
    Ok(())
}

/// Compiles the joins (binding their values) into `src.from`.
fn bind_joins(c: &SqlCompiler<'_>, src: &mut Source, b: &mut Binder<'_>) -> Result<()> {
    let joins = std::mem::take(&mut src.joins);
    let Some(fj) = src.full_join.take() else {
        return join_into(c, &mut src.from, &joins, &src.scope, JoinType::Full, b);
    };
    // The emulation (see `FullJoin`); placeholders in text order: left part, right part.
    let items: Vec<SelectItem> = fj
        .inner
        .cols
        .iter()
        .map(|(k, col)| select_item(col.expr.clone(), Some(c.ident(k))))
        .collect();
    let part = |side: JoinType, b: &mut Binder<'_>| -> Result<SetExpr> {
        let mut from = src.from.clone();
        join_into(c, &mut from, &joins, &fj.inner, side, b)?;
        let selection = (side == JoinType::Right).then(|| is_null(fj.base_key.clone()));
        Ok(SetExpr::Select(Box::new(select_node(
            items.clone(),
            vec![from],
            selection,
            Vec::new(),
            false,
        ))))
    };
    let left = part(JoinType::Left, b)?;
    let right = part(JoinType::Right, b)?;
    let union = SetExpr::SetOperation {
        left: Box::new(left),
        op: SetOperator::Union,
        set_quantifier: SetQuantifier::All,
        right: Box::new(right),
    };
    src.from = TableWithJoins {
        relation: derived(query(union, Vec::new(), None, None), c.ident(FULL_JOIN)),
        joins: Vec::new(),
    };
    Ok(())
}

pub(super) fn where_clause(
    c: &SqlCompiler<'_>,
    scope: &Scope,
    filter: Option<&Filter>,
    b: &mut Binder<'_>,
) -> Result<Option<Expr>> {
    filter
        .map(|f| {
            FilterCx {
                d: c.dialect,
                scope,
                b,
            }
            .filter(f, true)
        })
        .transpose()
}

pub(super) fn key_ord(c: &SqlCompiler<'_>, col: &Col) -> Expr {
    if col.st == StorageType::Text {
        c.dialect.text_order_key(col.expr.clone())
    } else {
        col.expr.clone()
    }
}

fn key_eq(c: &SqlCompiler<'_>, col: &Col) -> Expr {
    if col.st == StorageType::Text {
        c.dialect.text_eq_key(col.expr.clone())
    } else {
        col.expr.clone()
    }
}

/// ORDER BY items with eval's NULL placement (emulated where the dialect
/// lacks NULLS FIRST/LAST).
fn order_by(c: &SqlCompiler<'_>, scope: &Scope, items: &[SortItem]) -> Result<Vec<OrderByExpr>> {
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        let col = scope.get(&s.field)?;
        if !col.st.is_ordered() {
            return Err(c.unsupported(format!("sorting by {} values", col.st.name())));
        }
        let asc = s.order == objectql_query_ast::SortOrder::Asc;
        let nulls_first = s.nulls_first();
        if scope.not_null.contains(&s.field) {
            // No NULL to place: the bare key matches the column's index
            // (PostgreSQL's btree is `ASC NULLS LAST`, so `NULLS FIRST`
            // forced a full sort even on the primary key).
            out.push(order_item(key_ord(c, col), asc, None));
        } else if c.dialect.nulls_first_last() {
            out.push(order_item(key_ord(c, col), asc, Some(nulls_first)));
        } else {
            out.push(order_item(is_null(col.expr.clone()), !nulls_first, None));
            out.push(order_item(key_ord(c, col), asc, None));
        }
    }
    Ok(out)
}

/// Rows strictly after the cursor position in the sort order: an OR over
/// sort keys of (equal on every earlier key AND after on this one).
fn cursor_clause(
    c: &SqlCompiler<'_>,
    scope: &Scope,
    items: &[SortItem],
    cursor: &Cursor,
    b: &mut Binder<'_>,
) -> Result<Expr> {
    let mut branches = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let v = position(cursor, &item.field)?;
        let nulls_first = item.nulls_first();
        if v.is_null() && !nulls_first {
            // Nothing sorts after a NULL placed last: no branch (and no binding).
            continue;
        }
        let mut parts = Vec::new();
        for prev in items.iter().take(i) {
            let col = scope.get(&prev.field)?;
            let v = position(cursor, &prev.field)?;
            parts.push(if v.is_null() {
                is_null(col.expr.clone())
            } else {
                binop(
                    key_ord(c, col),
                    BinaryOperator::Eq,
                    b.bind_typed(v, col.st)?,
                )
            });
        }
        let col = scope.get(&item.field)?;
        let after = if v.is_null() {
            // After NULL come the values when NULLs are first; nothing otherwise.
            nulls_first.then(|| is_not_null(col.expr.clone()))
        } else {
            let op = if item.order == objectql_query_ast::SortOrder::Desc {
                BinaryOperator::Lt
            } else {
                BinaryOperator::Gt
            };
            let e = binop(key_ord(c, col), op, b.bind_typed(v, col.st)?);
            Some(if nulls_first {
                e
            } else {
                or_any(vec![e, is_null(col.expr.clone())])
            })
        };
        if let Some(after) = after {
            parts.push(after);
            branches.push(and_all(parts));
        }
    }
    Ok(or_any(branches))
}

fn position<'c>(cursor: &'c Cursor, field: &str) -> Result<&'c Value> {
    cursor
        .after
        .get(field)
        .ok_or_else(|| Error::plan(format!("cursor lacks a value for sort key `{field}`")))
}

fn paging(c: &SqlCompiler<'_>, q: &Query, b: &mut Binder<'_>) -> (Option<Expr>, Option<Expr>) {
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let limit = match (q.limit, q.offset) {
        (Some(l), _) => Some(b.bind(int(l))),
        (None, Some(_)) => c.dialect.unbounded_limit(),
        (None, None) => None,
    };
    let offset = q.offset.map(|o| b.bind(int(o)));
    (limit, offset)
}

/// Projects `names` from `scope`.
pub(super) fn projection(
    c: &SqlCompiler<'_>,
    scope: &Scope,
    names: &[String],
) -> Result<(Vec<SelectItem>, Vec<OutputColumn>)> {
    let mut items = Vec::with_capacity(names.len());
    let mut columns = Vec::with_capacity(names.len());
    for n in names {
        let col = scope.get(n)?;
        let alias = c.ident(n);
        let same = matches!(&col.expr, Expr::Identifier(i) if *i == alias);
        items.push(select_item(col.expr.clone(), (!same).then_some(alias)));
        columns.push(OutputColumn {
            name: n.clone(),
            storage: col.st,
        });
    }
    Ok((items, columns))
}

/// The output scope of a derived table: its columns by name.
fn derived_scope(c: &SqlCompiler<'_>, outputs: &[(String, StorageType)]) -> Scope {
    let mut scope = Scope::default();
    for (n, st) in outputs {
        scope.cols.insert(
            n.clone(),
            Col {
                expr: Expr::Identifier(c.ident(n)),
                st: *st,
            },
        );
    }
    scope
}

pub(super) fn select(c: &SqlCompiler<'_>, q: &Query) -> Result<Statement> {
    if q.search.is_some() {
        return Err(c.unsupported("full-text search in SQL"));
    }
    if let Some(n) = &q.nearest {
        return super::nearest::select(c, q, n);
    }
    let mut src = source(c, q)?;
    let mut b = Binder::new(c.dialect);
    if q.is_aggregate() {
        return aggregate(c, q, src, b);
    }
    let all: Vec<String> = src.scope.cols.keys().cloned().collect();
    let names = q.fields.clone().unwrap_or(all);
    if q.distinct {
        // Inner: the distinct projected rows (text by its binary key).
        let mut items = Vec::with_capacity(names.len());
        let mut outputs = Vec::with_capacity(names.len());
        for n in &names {
            let col = src.scope.get(n)?;
            items.push(select_item(key_eq(c, col), Some(c.ident(n))));
            outputs.push((n.clone(), col.st));
        }
        bind_joins(c, &mut src, &mut b)?;
        let selection = where_clause(c, &src.scope, q.filter.as_ref(), &mut b)?;
        let inner = query(
            SetExpr::Select(Box::new(select_node(
                items,
                vec![src.from],
                selection,
                Vec::new(),
                true,
            ))),
            Vec::new(),
            None,
            None,
        );
        return outer(c, q, inner, &outputs, &names, None, b);
    }
    let (items, columns) = projection(c, &src.scope, &names)?;
    bind_joins(c, &mut src, &mut b)?;
    let mut conds = Vec::new();
    if let Some(w) = where_clause(c, &src.scope, q.filter.as_ref(), &mut b)? {
        conds.push(w);
    }
    if let Some(cursor) = &q.cursor {
        conds.push(cursor_clause(c, &src.scope, &q.order_by, cursor, &mut b)?);
    }
    let order = order_by(c, &src.scope, &q.order_by)?;
    let (limit, offset) = paging(c, q, &mut b);
    let body = select_node(items, vec![src.from], conjunction(conds), Vec::new(), false);
    let sql = query(SetExpr::Select(Box::new(body)), order, limit, offset).to_string();
    b.finish(sql, columns)
}

/// The outer level over a derived table: filter (`having` or cursor), sort,
/// page, project.
fn outer(
    c: &SqlCompiler<'_>,
    q: &Query,
    inner: sqlparser::ast::Query,
    outputs: &[(String, StorageType)],
    names: &[String],
    having: Option<&Filter>,
    mut b: Binder<'_>,
) -> Result<Statement> {
    let scope = derived_scope(c, outputs);
    let (items, columns) = projection(c, &scope, names)?;
    let mut conds = Vec::new();
    if let Some(h) = having {
        conds.push(
            FilterCx {
                d: c.dialect,
                scope: &scope,
                b: &mut b,
            }
            .filter(h, false)?,
        );
    }
    if let Some(cursor) = &q.cursor {
        conds.push(cursor_clause(c, &scope, &q.order_by, cursor, &mut b)?);
    }
    let order = order_by(c, &scope, &q.order_by)?;
    let (limit, offset) = paging(c, q, &mut b);
    let from = TableWithJoins {
        relation: derived(inner, c.ident(DERIVED)),
        joins: Vec::new(),
    };
    let body = select_node(items, vec![from], conjunction(conds), Vec::new(), false);
    let sql = query(SetExpr::Select(Box::new(body)), order, limit, offset).to_string();
    b.finish(sql, columns)
}

fn aggregate(
    c: &SqlCompiler<'_>,
    q: &Query,
    mut src: Source,
    mut b: Binder<'_>,
) -> Result<Statement> {
    let mut items = Vec::new();
    let mut outputs: Vec<(String, StorageType)> = Vec::new();
    let mut group_by = Vec::new();
    for (i, g) in q.group_by.iter().enumerate() {
        let col = src.scope.get(&g.field)?.clone();
        let (e, st) = if let Some(gran) = g.granularity {
            let tz = if col.st == StorageType::DateTime {
                g.timezone
            } else {
                None
            };
            (
                c.dialect
                    .date_bucket(col.expr.clone(), col.st, gran, tz, &mut b)?,
                StorageType::Text,
            )
        } else {
            // JSON keys group structurally in eval.
            if !col.st.is_ordered() {
                return Err(c.unsupported(format!("grouping by {} values", col.st.name())));
            }
            (key_eq(c, &col), col.st)
        };
        items.push(select_item(e, Some(c.ident(g.output_name()))));
        outputs.push((g.output_name().to_owned(), st));
        group_by.push(num(i + 1));
    }
    for a in &q.aggregations {
        let (e, st) = aggregation(c, &src.scope, a, &mut b)?;
        items.push(select_item(e, Some(c.ident(&a.alias))));
        outputs.push((a.alias.clone(), st));
    }
    bind_joins(c, &mut src, &mut b)?;
    let selection = where_clause(c, &src.scope, q.filter.as_ref(), &mut b)?;
    let inner = query(
        SetExpr::Select(Box::new(select_node(
            items,
            vec![src.from],
            selection,
            group_by,
            false,
        ))),
        Vec::new(),
        None,
        None,
    );
    let names: Vec<String> = q
        .fields
        .clone()
        .unwrap_or_else(|| outputs.iter().map(|(n, _)| n.clone()).collect());
    outer(c, q, inner, &outputs, &names, q.having.as_ref(), b)
}

/// One aggregation → its expression and output storage type.
#[allow(clippy::many_single_char_names)] // c (compiler), a, b, d, f: the conventions of this module.
fn aggregation(
    c: &SqlCompiler<'_>,
    scope: &Scope,
    a: &Aggregation,
    b: &mut Binder<'_>,
) -> Result<(Expr, StorageType)> {
    let d = c.dialect;
    let col = a
        .field
        .as_deref()
        .map(|f| scope.get(f))
        .transpose()?
        .cloned();
    let distinct = a.distinct || a.function == AggFunction::CountDistinct;
    // Builds `fname(arg)` with DISTINCT and the filter (native FILTER or CASE),
    // compiling the filter afresh each time so every placeholder has its value.
    let call = |fname: &'static str, arg: Option<Expr>, b: &mut Binder<'_>| -> Result<Expr> {
        let filter = a
            .filter
            .as_ref()
            .map(|f| FilterCx { d, scope, b }.filter(f, false))
            .transpose()?;
        Ok(match (arg, filter) {
            (None, None) => count_star(None),
            (None, Some(f)) if d.aggregate_filter() => count_star(Some(f)),
            (None, Some(f)) => Expr::Function(function(
                fname,
                vec![case_when(f, num(1), None)],
                false,
                None,
            )),
            (Some(x), Some(f)) if !d.aggregate_filter() => {
                Expr::Function(function(fname, vec![case_when(f, x, None)], distinct, None))
            }
            (Some(x), f) => Expr::Function(function(fname, vec![x], distinct, f)),
        })
    };
    let need = |col: &Option<Col>| -> Result<Col> {
        col.clone()
            .ok_or_else(|| Error::plan(format!("`{}` needs a field", a.function.name())))
    };
    Ok(match a.function {
        AggFunction::Count | AggFunction::CountDistinct => {
            let arg = col.as_ref().map(|c2| {
                if distinct {
                    key_eq(c, c2)
                } else {
                    c2.expr.clone()
                }
            });
            (call("count", arg, b)?, StorageType::Integer)
        }
        AggFunction::Sum => {
            let col = need(&col)?;
            if !col.st.is_numeric() {
                return Err(c.unsupported(format!("sum of {} values", col.st.name())));
            }
            if col.st == StorageType::Integer && d.split_integer_sums() {
                // With l = sum(x & (2^32 - 1)) and h = sum(floor(x / 2^32)),
                // each exact for 2^31 rows in any order, the total is
                // (h + floor(l / 2^32)) * 2^32 + (l & (2^32 - 1)). The
                // product is the total rounded down to a multiple of 2^32,
                // so it leaves 64 bits (and SQLite turns it into a float)
                // exactly when the total does. floor(v / 2^32) is written
                // (v - (v & (2^32 - 1))) / 2^32: an exact division that
                // cannot overflow (sqlparser's SQLite dialect has no `>>`).
                let mask = || num(0xFFFF_FFFF_u64);
                let floor_div = |v: &dyn Fn() -> Expr| {
                    binop(
                        paren(binop(
                            v(),
                            BinaryOperator::Minus,
                            binop(v(), BinaryOperator::BitwiseAnd, mask()),
                        )),
                        BinaryOperator::Divide,
                        num(1_u64 << 32),
                    )
                };
                let x = || paren(col.expr.clone());
                let high = call("sum", Some(floor_div(&x)), b)?;
                // Each use of l is compiled afresh, so the placeholders of
                // its filter are bound once per occurrence.
                let low = |b: &mut Binder<'_>| {
                    call(
                        "sum",
                        Some(binop(x(), BinaryOperator::BitwiseAnd, mask())),
                        b,
                    )
                };
                let (l1, l2, l3) = (low(b)?, low(b)?, low(b)?);
                let carry = binop(
                    paren(binop(
                        l1,
                        BinaryOperator::Minus,
                        binop(l2, BinaryOperator::BitwiseAnd, mask()),
                    )),
                    BinaryOperator::Divide,
                    num(1_u64 << 32),
                );
                let rest = binop(l3, BinaryOperator::BitwiseAnd, mask());
                let e = binop(
                    binop(
                        paren(binop(high, BinaryOperator::Plus, carry)),
                        BinaryOperator::Multiply,
                        num(1_u64 << 32),
                    ),
                    BinaryOperator::Plus,
                    paren(rest),
                );
                (paren(e), col.st)
            } else {
                let f = d.aggregate_name(AggFunction::Sum, col.st);
                let sum = |b: &mut Binder<'_>| call(f, Some(col.expr.clone()), b);
                let count = |b: &mut Binder<'_>| call("count", Some(col.expr.clone()), b);
                (float_checked(d, col.st, &sum, &count, b)?, col.st)
            }
        }
        AggFunction::Avg => {
            let col = need(&col)?;
            if !col.st.is_numeric() {
                return Err(c.unsupported(format!("avg of {} values", col.st.name())));
            }
            let x = || Some(col.expr.clone());
            let st = col.st;
            let count = |b: &mut Binder<'_>| call("count", x(), b);
            let e = match d.avg_form() {
                AvgForm::Native => float_checked(d, st, &|b| call("avg", x(), b), &count, b)?,
                AvgForm::CastAvg(t) => float_checked(
                    d,
                    st,
                    &|b| Ok(cast(call("avg", x(), b)?, t.clone())),
                    &count,
                    b,
                )?,
                AvgForm::SumOverCount(t) => {
                    let sum = cast(
                        float_checked(d, st, &|b| call("sum", x(), b), &count, b)?,
                        t,
                    );
                    binop(sum, BinaryOperator::Divide, call("count", x(), b)?)
                }
            };
            let e = match col.st {
                StorageType::Decimal { scale, .. } if d.scaled_decimals() && scale > 0 => {
                    let p = pow10(scale).ok_or_else(|| c.unsupported("decimal scale beyond 18"))?;
                    binop(e, BinaryOperator::Divide, num(format!("{p}.0")))
                }
                _ => e,
            };
            (e, StorageType::Float)
        }
        AggFunction::Min | AggFunction::Max => {
            let col = need(&col)?;
            if !col.st.is_ordered() {
                return Err(c.unsupported(format!("min/max of {} values", col.st.name())));
            }
            let f = d.aggregate_name(a.function, col.st);
            (call(f, Some(key_ord(c, &col)), b)?, col.st)
        }
        _ => {
            return Err(c.unsupported(format!(
                "`{}` (its element order is not defined in SQL)",
                a.function.name()
            )));
        }
    })
}

pub(super) fn count(
    c: &SqlCompiler<'_>,
    object: &str,
    filter: Option<&Filter>,
) -> Result<Statement> {
    let schema = c.schema(object)?;
    let mut q = Query::new(object);
    q.filter = filter.cloned();
    let src = source(c, &q)?;
    let mut b = Binder::new(c.dialect);
    let selection = where_clause(c, &src.scope, filter, &mut b)?;
    let _ = schema;
    let body = select_node(
        vec![select_item(count_star(None), Some(c.ident("count")))],
        vec![src.from],
        selection,
        Vec::new(),
        false,
    );
    let sql = query(SetExpr::Select(Box::new(body)), Vec::new(), None, None).to_string();
    b.finish(
        sql,
        vec![OutputColumn {
            name: "count".into(),
            storage: StorageType::Integer,
        }],
    )
}

pub(super) fn distinct(
    c: &SqlCompiler<'_>,
    object: &str,
    field: &str,
    filter: Option<&Filter>,
) -> Result<Statement> {
    let schema = c.schema(object)?;
    let st = schema
        .get(field)
        .ok_or_else(|| Error::validation(field, format!("unknown field `{field}`")))?
        .storage_type()?;
    if !st.is_ordered() {
        return Err(c.unsupported(format!("distinct {} values", st.name())));
    }
    let mut q = Query::new(object);
    let not_null = Filter::cond(field, Op::Null(false));
    q.filter = Some(match filter {
        Some(f) => Filter::And(vec![f.clone(), not_null]),
        None => not_null,
    });
    q.fields = Some(vec![field.to_owned()]);
    q.distinct = true;
    q.order_by = vec![SortItem::asc(field)];
    select(c, &q)
}

/// A float `sum`/`avg` (built by `make`, once per use so each use binds its
/// own placeholders) whose overflow is an error on this backend, as
/// [`FloatOverflow`] says; any other type is `make`'s expression as is.
/// `count` builds the matching `count(x)` (same filter).
fn float_checked(
    d: &dyn SqlDialect,
    st: StorageType,
    make: &dyn Fn(&mut Binder<'_>) -> Result<Expr>,
    count: &dyn Fn(&mut Binder<'_>) -> Result<Expr>,
    b: &mut Binder<'_>,
) -> Result<Expr> {
    if st != StorageType::Float {
        return make(b);
    }
    Ok(match d.float_overflow() {
        FloatOverflow::AddZero => paren(binop(make(b)?, BinaryOperator::Plus, num("0e0"))),
        FloatOverflow::CaseRaise => {
            let abs = |x: Expr| Expr::Function(function("abs", vec![x], false, None));
            // An infinite total, or (SQLite 3.43+, whose compensated sum
            // turns inf - inf into NaN, and NaN into NULL) a NULL total
            // over at least one value.
            let infinite = binop(
                abs(make(b)?),
                BinaryOperator::Gt,
                num("1.7976931348623157e308"),
            );
            let lost = binop(
                Expr::IsNull(Box::new(make(b)?)),
                BinaryOperator::And,
                binop(count(b)?, BinaryOperator::Gt, num(0)),
            );
            let raise = abs(paren(binop(
                num("-9223372036854775807"),
                BinaryOperator::Minus,
                num(1),
            )));
            case_when(
                binop(infinite, BinaryOperator::Or, lost),
                raise,
                Some(make(b)?),
            )
        }
        _ => make(b)?,
    })
}
