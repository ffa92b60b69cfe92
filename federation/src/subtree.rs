//! Whole subtrees on one datasource, pushed down as one driver query.
//!
//! [`PushSubtrees`] is a DataFusion optimizer rule. It looks for the largest
//! subtrees of a logical plan whose tables are all [`ObjectTable`]s of one
//! datasource and whose every node has a QueryAST form with the same
//! meaning, and replaces each by a scan that runs that one query on the
//! datasource's driver, compiled by objectql's own compilers (never
//! unparsed from DataFusion's SQL). What it pushes:
//!
//! - joins (inner, left, right, full) on equalities and conditions the
//!   filter translation keeps ([`crate::to_filter`]), left-deep, each
//!   joining one more object;
//! - filters above them, as `where`;
//! - grouping by columns and by `date_trunc` of dates and datetimes (day,
//!   week, month, quarter, year: QueryAST's date buckets, whose labels the
//!   scan turns back into DataFusion's instants), with `count` (also
//!   `DISTINCT`), `sum`, `min` and `max` of numbers (decimals included),
//!   `avg` of integers and floats, `min`/`max` of text and instants, each
//!   with its `FILTER (WHERE …)`, and the `CASE WHEN c THEN x END` and
//!   grouped `sum(CASE WHEN c THEN 1 ELSE 0 END)` forms as filtered
//!   aggregates (see `aggregation_of`); `HAVING` on the group keys and on
//!   integer aggregates compared with integers (a `SELECT DISTINCT`
//!   reaches the rule as a grouping without aggregates);
//! - sorting by columns (with DataFusion's NULL placement made explicit),
//!   then `LIMIT` / `OFFSET`;
//! - projections of columns.
//!
//! A node is pushed only in QueryAST's own order of operations (joins,
//! `where`, grouping, sort, paging): a filter above a limit, or a join
//! above a filtered right side of an outer join, stays in DataFusion. So
//! does a subtree the driver refuses at plan time (`Driver::accepts`), or
//! whose classification is not `Exact`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchemaRef, NullEquality, ScalarValue, TableReference};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    Expr, FetchType, JoinType as DfJoinType, LogicalPlan, LogicalPlanBuilder, SkipType,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use objectql_driver::{Capabilities, Pushdown, joined_schema};
use objectql_query_ast::{
    AggFunction, Aggregation, DateGranularity, Filter, GroupBy, Join, JoinType, NullsOrder, Op,
    Operand, Query, ResolveContext, SortItem, SortOrder, StorageType, Value, validate_query,
};

use crate::source::QueryTable;
use crate::table::ObjectTable;
use crate::translate::to_filter_with;

/// The optimizer rule that pushes whole single-datasource subtrees down as
/// one driver query (see the module docs). [`crate::Federation`] adds it to
/// its contexts; add it to your own with
/// `SessionContext::add_optimizer_rule(Arc::new(PushSubtrees))`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PushSubtrees;

impl OptimizerRule for PushSubtrees {
    fn name(&self) -> &'static str {
        "objectql_push_subtrees"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        rewrite(plan, false)
    }
}

/// Top-down: the first node whose whole subtree lowers is replaced; else
/// its children are tried. `below_join`: a join is above `plan` (its
/// pushed scan's row estimate then matters).
fn rewrite(plan: LogicalPlan, below_join: bool) -> DfResult<Transformed<LogicalPlan>> {
    if let Some(sub) = lower(&plan)
        && sub.absorbed > 0
        && let Some(replaced) = replace(&plan, sub, below_join)?
    {
        return Ok(Transformed::yes(replaced));
    }
    let below_join = below_join || matches!(plan, LogicalPlan::Join(_));
    plan.map_children(|child| rewrite(child, below_join))
}

/// Where a query is in QueryAST's order of operations; a node is pushed
/// only on top of what comes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Scan,
    Where,
    Grouped,
    Sorted,
    Paged,
}

/// A subtree lowered to one QueryAST query.
#[derive(Debug, Clone)]
struct Sub {
    /// The base object's table: its driver, catalog, datasource, options.
    table: ObjectTable,
    query: Query,
    /// Per output column of the subtree (in its DataFusion schema's
    /// order): the QueryAST key and storage type.
    out: Vec<(String, StorageType)>,
    stage: Stage,
    /// Nodes absorbed beyond table scans, projections and aliases.
    absorbed: usize,
    /// Output keys that are date-bucket labels (`YYYY-MM`, …) standing for
    /// DataFusion's `date_trunc` instants: the scan turns them back into
    /// instants; no filter or sort above may run on them as text.
    labels: Vec<String>,
}

impl Sub {
    /// The translation scope over `schema` (the schema whose fields are
    /// this subtree's output).
    fn resolve<'a>(
        &'a self,
        schema: &'a DFSchemaRef,
    ) -> impl Fn(&Column) -> Option<(String, StorageType)> + 'a {
        move |c| {
            let i = schema.index_of_column(c).ok()?;
            self.out.get(i).cloned()
        }
    }

    /// Whether the driver runs `filter` on this subtree's rows exactly.
    fn exact(&self, filter: &Filter) -> bool {
        let Ok(schema) = joined_schema(&self.table.catalog_ref(), &self.query) else {
            return false;
        };
        let driver = self.table.driver();
        objectql_planner::classify_filter(filter, &|c| driver.classify(&schema, c))
            == Pushdown::Exact
    }

    fn same_datasource(&self, other: &Sub) -> bool {
        self.table.datasource() == other.table.datasource()
            && Arc::ptr_eq(self.table.driver(), other.table.driver())
    }
}

fn and(a: Option<Filter>, b: Filter) -> Filter {
    match a {
        None => b,
        Some(a) => a.and(b),
    }
}

/// What [`crate::ClusterJoins`] knows of a table it may join with others of
/// its datasource.
pub(crate) struct Joinable {
    /// Its datasource's name and its driver's address (two datasources of
    /// one name on different drivers differ).
    pub(crate) datasource: (String, usize),
    /// The object's row estimate, when fetched ([`ObjectTable::fresh_estimate`]).
    pub(crate) rows: Option<u64>,
    /// The conditions of its filter (its top-level conjuncts).
    pub(crate) conditions: usize,
    /// Its output columns (indices into the plan's schema) whose values
    /// are unique in the object: the primary key, a one-field unique
    /// index.
    pub(crate) unique: Vec<usize>,
}

/// [`Joinable`] for `plan` when it is one object's scan that
/// [`PushSubtrees`] can join with others of that datasource (a table with
/// its filters, no join, grouping, sort or paging yet).
pub(crate) fn joinable(plan: &LogicalPlan) -> Option<Joinable> {
    let sub = lower(plan)?;
    if sub.stage > Stage::Where || !sub.query.joins.is_empty() {
        return None;
    }
    let driver = Arc::as_ptr(sub.table.driver()).cast::<()>() as usize;
    let schema = sub.table.object_schema().ok()?;
    let unique = sub
        .out
        .iter()
        .enumerate()
        .filter(|(_, (key, _))| {
            *key == schema.primary_key
                || schema
                    .indexes
                    .iter()
                    .any(|ix| ix.unique && matches!(ix.fields.as_slice(), [f] if f == key))
        })
        .map(|(i, _)| i)
        .collect();
    Some(Joinable {
        unique,
        datasource: (sub.table.datasource().to_owned(), driver),
        rows: sub.table.fresh_estimate(),
        conditions: crate::exec::conditions(sub.query.filter.as_ref()),
    })
}

/// Whether `plan`'s whole subtree has a QueryAST form (whether
/// [`PushSubtrees`] would push it, the driver's plan-time verdict aside).
pub(crate) fn lowers(plan: &LogicalPlan) -> bool {
    lower(plan).is_some()
}

/// The QueryAST form of `plan`'s whole subtree, if it has one.
fn lower(plan: &LogicalPlan) -> Option<Sub> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.downcast_ref::<ObjectTable>()?.clone();
            if !table.options().pushdown {
                return None;
            }
            let schema = table.object_schema().ok()?;
            let columns = table.columns();
            let out = match &scan.projection {
                Some(p) => p
                    .iter()
                    .map(|&i| columns.get(i).cloned())
                    .collect::<Option<Vec<_>>>()?,
                None => columns.to_vec(),
            }
            .into_iter()
            .map(|c| {
                let st = schema.get(&c)?.storage_type().ok()?;
                Some((c, st))
            })
            .collect::<Option<Vec<_>>>()?;
            let mut query = Query::new(table.object());
            let mut exact = true;
            for f in &scan.filters {
                let (filter, class) = table.pushdown_of(f)?;
                exact &= class == Pushdown::Exact;
                query.filter = Some(and(query.filter.take(), filter));
            }
            let mut stage = if query.filter.is_some() {
                Stage::Where
            } else {
                Stage::Scan
            };
            if let Some(fetch) = scan.fetch
                && exact
            {
                query.limit = Some(u64::try_from(fetch).ok()?);
                stage = Stage::Paged;
            }
            Some(Sub {
                table,
                query,
                out,
                stage,
                absorbed: 0,
                labels: Vec::new(),
            })
        }
        LogicalPlan::SubqueryAlias(a) => lower(&a.input),
        LogicalPlan::Projection(p) => {
            let sub = lower(&p.input)?;
            let out = {
                let resolve = sub.resolve(p.input.schema());
                p.expr
                    .iter()
                    .map(|e| match e.clone().unalias_nested().data {
                        Expr::Column(c) => resolve(&c),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?
            };
            Some(Sub { out, ..sub })
        }
        LogicalPlan::Filter(f) => {
            let mut sub = lower(&f.input)?;
            if sub.stage == Stage::Grouped {
                // Over the groups: `having`.
                let having = to_filter_with(&f.predicate, &sub.resolve(f.input.schema()))?;
                if !having_exact(&sub, &having) {
                    return None;
                }
                sub.query.having = Some(and(sub.query.having.take(), having));
                sub.absorbed += 1;
                return Some(sub);
            }
            if sub.stage > Stage::Where {
                return None;
            }
            let filter = to_filter_with(&f.predicate, &sub.resolve(f.input.schema()))?;
            if !sub.exact(&filter) {
                return None;
            }
            sub.query.filter = Some(and(sub.query.filter.take(), filter));
            sub.stage = Stage::Where;
            sub.absorbed += 1;
            Some(sub)
        }
        LogicalPlan::Join(j) => lower_join(j),
        LogicalPlan::Aggregate(a) => {
            let mut sub = lower(&a.input)?;
            if sub.stage > Stage::Where {
                return None;
            }
            let grouped = !a.group_expr.is_empty();
            let mut out = Vec::new();
            let mut group_by = Vec::new();
            let mut labels = Vec::new();
            let mut aggregations = Vec::new();
            {
                let resolve = sub.resolve(a.input.schema());
                for (i, g) in a.group_expr.iter().enumerate() {
                    if let Expr::Column(c) = g {
                        let (key, st) = resolve(c)?;
                        if matches!(st, StorageType::Json | StorageType::Binary) {
                            return None;
                        }
                        group_by.push(GroupBy {
                            field: key.clone(),
                            granularity: None,
                            alias: None,
                            timezone: None,
                        });
                        out.push((key, st));
                    } else {
                        // `date_trunc(unit, instant)`: a date bucket, labelled
                        // by the driver, an instant again in the scan.
                        let (field, granularity) = date_bucket(g, &resolve)?;
                        let alias = format!("g{i}");
                        group_by.push(GroupBy {
                            field,
                            granularity: Some(granularity),
                            alias: Some(alias.clone()),
                            timezone: None,
                        });
                        labels.push(alias.clone());
                        out.push((alias, StorageType::Text));
                    }
                }
                for (i, e) in a.aggr_expr.iter().enumerate() {
                    let Expr::AggregateFunction(f) = e.clone().unalias_nested().data else {
                        return None;
                    };
                    let (aggregation, st) = aggregation_of(&f, &resolve, grouped, format!("a{i}"))?;
                    if let Some(filter) = &aggregation.filter
                        && !sub.exact(filter)
                    {
                        return None;
                    }
                    out.push((aggregation.alias.clone(), st));
                    aggregations.push(aggregation);
                }
            }
            // An alias of ours that is also a grouped field's name.
            let mut names: Vec<&String> = out.iter().map(|(k, _)| k).collect();
            names.sort();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return None;
            }
            sub.query.group_by = group_by;
            sub.query.aggregations = aggregations;
            sub.out = out;
            sub.labels = labels;
            sub.stage = Stage::Grouped;
            sub.absorbed += 1;
            Some(sub)
        }
        LogicalPlan::Sort(s) => {
            let mut sub = lower(&s.input)?;
            if sub.stage > Stage::Grouped {
                return None;
            }
            let order_by = {
                let resolve = sub.resolve(s.input.schema());
                let mut order_by = Vec::new();
                for e in &s.expr {
                    let Expr::Column(c) = &e.expr else {
                        return None;
                    };
                    let (key, st) = resolve(c)?;
                    // Labels sort as text, instants as instants: not always alike.
                    if matches!(st, StorageType::Json | StorageType::Binary)
                        || sub.labels.contains(&key)
                    {
                        return None;
                    }
                    order_by.push(SortItem {
                        field: key,
                        order: if e.asc {
                            SortOrder::Asc
                        } else {
                            SortOrder::Desc
                        },
                        nulls: Some(if e.nulls_first {
                            NullsOrder::First
                        } else {
                            NullsOrder::Last
                        }),
                    });
                }
                order_by
            };
            sub.query.order_by = order_by;
            sub.stage = Stage::Sorted;
            if let Some(fetch) = s.fetch {
                sub.query.limit = Some(u64::try_from(fetch).ok()?);
                sub.stage = Stage::Paged;
            }
            sub.absorbed += 1;
            Some(sub)
        }
        LogicalPlan::Limit(l) => {
            let mut sub = lower(&l.input)?;
            let SkipType::Literal(skip) = l.get_skip_type().ok()? else {
                return None;
            };
            let FetchType::Literal(fetch) = l.get_fetch_type().ok()? else {
                return None;
            };
            let skip = u64::try_from(skip).ok()?;
            let fetch = fetch.map(u64::try_from).transpose().ok()?;
            // Paging on top of paging: the window inside the window.
            let offset = sub.query.offset.unwrap_or(0).checked_add(skip)?;
            let limit = match (sub.query.limit.map(|l| l.saturating_sub(skip)), fetch) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            sub.query.offset = (offset > 0).then_some(offset);
            sub.query.limit = limit;
            sub.stage = Stage::Paged;
            sub.absorbed += 1;
            Some(sub)
        }
        _ => None,
    }
}

/// Whether every condition of `having` (over `sub`'s groups) runs on its
/// driver with the meaning DataFusion gives it: a condition on a group key
/// as the driver classifies it on the field, a comparison of an integer
/// aggregate (`count`, or `sum`/`min`/`max` of integers) with integers.
/// Float aggregates stay in DataFusion: an average compared at a boundary
/// depends on how the backend rounds it.
fn having_exact(sub: &Sub, having: &Filter) -> bool {
    match having {
        Filter::And(items) | Filter::Or(items) => items.iter().all(|f| having_exact(sub, f)),
        Filter::Not(inner) => having_exact(sub, inner),
        Filter::Condition(c) => {
            if sub.query.group_by.iter().any(|g| g.field == c.field) {
                return sub.exact(having);
            }
            let integer = sub
                .out
                .iter()
                .any(|(k, st)| *k == c.field && *st == StorageType::Integer)
                && sub.query.aggregations.iter().any(|a| a.alias == c.field);
            let int = |o: &Operand| matches!(o, Operand::Value(Value::Int(_)));
            integer
                && match &c.op {
                    Op::Eq(o) | Op::Ne(o) | Op::Gt(o) | Op::Gte(o) | Op::Lt(o) | Op::Lte(o) => {
                        int(o)
                    }
                    Op::In(vs) | Op::Nin(vs) => vs.iter().all(|v| matches!(v, Value::Int(_))),
                    Op::Between(a, b) => matches!((a, b), (Value::Int(_), Value::Int(_))),
                    Op::Null(_) => true,
                    _ => false,
                }
        }
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// The column a translation scope resolves.
type Resolve<'a> = dyn Fn(&Column) -> Option<(String, StorageType)> + 'a;

/// `date_trunc(unit, field)` over a date or datetime field, for a unit
/// QueryAST buckets by: the field and the granularity. DataFusion
/// truncates datetimes in UTC (their Arrow type's zone) and a date cast to
/// a timestamp at its midnight, a week to its Monday: QueryAST's UTC
/// buckets, `YYYY-Www` being the ISO week that starts on that Monday.
fn date_bucket(e: &Expr, resolve: &Resolve<'_>) -> Option<(String, DateGranularity)> {
    let Expr::ScalarFunction(f) = e else {
        return None;
    };
    if f.func.name() != "date_trunc" {
        return None;
    }
    let [Expr::Literal(unit, _), arg] = f.args.as_slice() else {
        return None;
    };
    let (ScalarValue::Utf8(Some(unit))
    | ScalarValue::LargeUtf8(Some(unit))
    | ScalarValue::Utf8View(Some(unit))) = unit
    else {
        return None;
    };
    let granularity = match unit.to_lowercase().as_str() {
        "day" => DateGranularity::Day,
        "week" => DateGranularity::Week,
        "month" => DateGranularity::Month,
        "quarter" => DateGranularity::Quarter,
        "year" => DateGranularity::Year,
        _ => return None,
    };
    let (key, st) = match arg {
        Expr::Column(c) => resolve(c)?,
        Expr::Cast(cast) if matches!(cast.field.data_type(), DataType::Timestamp(_, None)) => {
            let Expr::Column(c) = cast.expr.as_ref() else {
                return None;
            };
            let (key, st) = resolve(c)?;
            if st != StorageType::Date {
                return None;
            }
            (key, st)
        }
        _ => return None,
    };
    matches!(st, StorageType::Date | StorageType::DateTime).then_some((key, granularity))
}

/// Whether `e` is an integer literal of value `n`.
fn int_literal(e: &Expr, n: i64) -> bool {
    let Expr::Literal(v, _) = e else {
        return false;
    };
    match v {
        ScalarValue::Int8(Some(i)) => i64::from(*i) == n,
        ScalarValue::Int16(Some(i)) => i64::from(*i) == n,
        ScalarValue::Int32(Some(i)) => i64::from(*i) == n,
        ScalarValue::Int64(Some(i)) => *i == n,
        _ => false,
    }
}

fn null_literal(e: &Expr) -> bool {
    matches!(e, Expr::Literal(v, _) if v.is_null())
}

/// The QueryAST form of one DataFusion aggregate (`grouped`: under a
/// `GROUP BY`, whose every group has rows), named `alias`, and the storage
/// type of its output as the driver returns it. What has one:
///
/// - `count(*)`, `count(x)`, `count(DISTINCT x)`, `sum`, `avg` of integers
///   and floats, `sum`, `min` and `max` of integers, floats and decimals,
///   `min` and `max` of text, dates, datetimes and times (binary order, as
///   DataFusion compares them);
/// - with `FILTER (WHERE c)`: the aggregation's `filter`;
/// - `agg(CASE WHEN c THEN x END)` (no `ELSE`, or `ELSE NULL`): `agg(x)`
///   filtered by `c`, since the aggregates skip the NULLs of the rows where
///   `c` is not true;
/// - `sum(CASE WHEN c THEN 1 ELSE 0 END)` under a `GROUP BY` and without
///   `FILTER`: `count(*)` filtered by `c` (over no rows the sum is NULL and
///   the count 0, but a group always has rows).
///
/// An average of decimals stays in DataFusion (its scale is DataFusion's,
/// QueryAST's average is a float), as do `sum`/`avg` of `DISTINCT` and
/// `count(DISTINCT)` of floats (DataFusion counts `-0.0` and `0.0` apart).
fn aggregation_of(
    f: &datafusion::logical_expr::expr::AggregateFunction,
    resolve: &Resolve<'_>,
    grouped: bool,
    alias: String,
) -> Option<(Aggregation, StorageType)> {
    let p = &f.params;
    if !p.order_by.is_empty() || p.null_treatment.is_some() {
        return None;
    }
    let mut function = match f.func.name() {
        "count" => AggFunction::Count,
        "sum" => AggFunction::Sum,
        "avg" => AggFunction::Avg,
        "min" => AggFunction::Min,
        "max" => AggFunction::Max,
        _ => return None,
    };
    let mut filter = match &p.filter {
        Some(w) => Some(to_filter_with(w, resolve)?),
        None => None,
    };
    let [arg] = p.args.as_slice() else {
        return None;
    };
    // The aggregated column (`None`: count the rows).
    let value = |e: &Expr, function: AggFunction| -> Option<Option<Column>> {
        match e {
            Expr::Column(c) => Some(Some(c.clone())),
            Expr::Literal(v, _) if function == AggFunction::Count && !v.is_null() => Some(None),
            _ => None,
        }
    };
    let column = match arg {
        Expr::Case(case) => {
            let (None, [(when, then)]) = (&case.expr, case.when_then_expr.as_slice()) else {
                return None;
            };
            let cond = to_filter_with(when, resolve)?;
            let column = match case.else_expr.as_deref() {
                None => value(then, function)?,
                Some(e) if null_literal(e) => value(then, function)?,
                Some(e)
                    if function == AggFunction::Sum
                        && grouped
                        && !p.distinct
                        // With a `FILTER`, a group may sum no rows: NULL.
                        && p.filter.is_none()
                        && int_literal(then, 1)
                        && int_literal(e, 0) =>
                {
                    function = AggFunction::Count;
                    None
                }
                Some(_) => return None,
            };
            filter = Some(and(filter, cond));
            column
        }
        e => value(e, function)?,
    };
    let Some(column) = column else {
        if p.distinct {
            return None;
        }
        let mut a = Aggregation::new(AggFunction::Count, None, alias);
        a.filter = filter;
        return Some((a, StorageType::Integer));
    };
    let (key, st) = resolve(&column)?;
    if p.distinct {
        function = match function {
            AggFunction::Count => AggFunction::CountDistinct,
            // The least of the distinct values is the least value.
            AggFunction::Min | AggFunction::Max => function,
            _ => return None,
        };
    }
    let numeric = matches!(
        st,
        StorageType::Integer | StorageType::Float | StorageType::Decimal { .. }
    );
    let out = match function {
        AggFunction::Count if !matches!(st, StorageType::Json | StorageType::Binary) => {
            StorageType::Integer
        }
        // DataFusion counts `-0.0` and `0.0` as two distinct floats, the
        // backends and QueryAST as one zero.
        AggFunction::CountDistinct
            if !matches!(
                st,
                StorageType::Json
                    | StorageType::Binary
                    | StorageType::Float
                    | StorageType::Vector { .. }
            ) =>
        {
            StorageType::Integer
        }
        AggFunction::Sum if numeric => st,
        AggFunction::Avg if matches!(st, StorageType::Integer | StorageType::Float) => {
            StorageType::Float
        }
        AggFunction::Min | AggFunction::Max
            if numeric
                || matches!(
                    st,
                    StorageType::Text
                        | StorageType::Date
                        | StorageType::DateTime
                        | StorageType::Time
                ) =>
        {
            st
        }
        _ => return None,
    };
    let mut a = Aggregation::new(function, Some(&key), alias);
    a.filter = filter;
    Some((a, out))
}

/// A join whose right side is one object of the left side's datasource.
fn lower_join(j: &datafusion::logical_expr::Join) -> Option<Sub> {
    let left = lower(&j.left)?;
    let right = lower(&j.right)?;
    if !left.same_datasource(&right)
        || left.stage > Stage::Where
        || right.stage > Stage::Where
        || !right.query.joins.is_empty()
        || j.null_equality != NullEquality::NullEqualsNothing
        || j.null_aware
    {
        return None;
    }
    let join_type = match j.join_type {
        DfJoinType::Inner => JoinType::Inner,
        DfJoinType::Left => JoinType::Left,
        DfJoinType::Right => JoinType::Right,
        DfJoinType::Full => JoinType::Full,
        _ => return None,
    };
    let outer_right = matches!(join_type, JoinType::Right | JoinType::Full);
    // A filter below an outer join's padded side is not a `where` above it.
    if outer_right && (left.query.filter.is_some() || right.query.filter.is_some()) {
        return None;
    }
    if j.on.is_empty() && j.filter.is_none() {
        return None;
    }
    let alias = format!("j{}", left.query.joins.len() + 1);
    let prefixed = |k: &str| format!("{alias}.{k}");
    let mut out = left.out.clone();
    out.extend(right.out.iter().map(|(k, st)| (prefixed(k), *st)));
    let scope = Sub {
        out,
        ..left.clone()
    };
    let mut on: Option<Filter> = None;
    {
        let resolve = scope.resolve(&j.schema);
        for (l, r) in &j.on {
            let eq = to_filter_with(&l.clone().eq(r.clone()), &resolve)?;
            on = Some(and(on, eq));
        }
        if let Some(f) = &j.filter {
            on = Some(and(on, to_filter_with(f, &resolve)?));
        }
    }
    if let Some(f) = &right.query.filter {
        on = Some(and(on, f.renamed(&|k| prefixed(k))));
    }
    let on = on?;
    let mut joined = left.query.clone();
    joined.joins.push(Join {
        join_type,
        object: right.table.object().to_owned(),
        alias: alias.clone(),
        on: on.clone(),
    });
    let joined = Sub {
        query: joined,
        absorbed: left.absorbed + right.absorbed + 1,
        ..scope
    };
    joined.exact(&on).then_some(joined)
}

/// `plan` replaced by a scan of its pushed query, under a projection that
/// gives every column back its qualifier and name. `None` when the query
/// does not validate or the driver does not accept it.
fn replace(plan: &LogicalPlan, mut sub: Sub, below_join: bool) -> DfResult<Option<LogicalPlan>> {
    // A name of its own per pushed subtree, so two in one plan never clash.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = plan.schema();
    let mut fields: Vec<String> = Vec::new();
    for (k, _) in &sub.out {
        if !fields.contains(k) {
            fields.push(k.clone());
        }
    }
    if sub.table.driver().capabilities().projection {
        sub.query.fields = Some(fields);
    }
    let catalog = sub.table.catalog_ref();
    let Ok(query) = validate_query(&sub.query, &catalog, &ResolveContext::now()) else {
        return Ok(None);
    };
    // Whatever the driver refuses, or fails to decide, stays in DataFusion.
    if !fits(sub.table.driver().capabilities(), &query)
        || sub.table.driver().accepts(&catalog, &query).is_err()
    {
        return Ok(None);
    }
    let arrow: SchemaRef = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let keys = sub.out.iter().map(|(k, _)| k.clone()).collect();
    let name = format!("objectql_pushed_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut pushed = QueryTable::on(&sub.table, query, keys, Arc::clone(&arrow));
    // No join above: nothing uses its row estimate.
    pushed.estimates &= below_join;
    let scan = LogicalPlanBuilder::scan(name.as_str(), provider_as_source(Arc::new(pushed)), None)?
        .build()?;
    let back = schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(
                Some(TableReference::bare(name.as_str())),
                format!("c{i}"),
            ))
            .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect::<Vec<_>>();
    Ok(Some(LogicalPlanBuilder::from(scan).project(back)?.build()?))
}

/// Whether a driver with `caps` declares every part of `query`.
fn fits(caps: &Capabilities, query: &Query) -> bool {
    (query.filter.is_none() || caps.filters)
        && (query.joins.is_empty() || caps.joins)
        && (!query.is_aggregate() || caps.aggregations)
        && (query.order_by.is_empty() || caps.sorting)
        && (query.limit.is_none() && query.offset.is_none() || caps.paging)
}
