//! QueryAST queries whose joins span datasources, on DataFusion operators.
//!
//! The caller (objectql's `Session`) cuts such a query into [`Source`]s:
//! each is one validated query that one driver runs whole (the base object
//! with the joins on its datasource that its driver accepts, or one joined
//! object with the conditions only it references). [`Federation::joined`]
//! turns the cut query into one DataFusion plan:
//!
//! - each source is a scan that runs its query on its driver (in the
//!   caller's transaction when it is on that datasource) and streams its
//!   Arrow batches;
//! - the joins are DataFusion joins on the lowered `on` conditions (hash
//!   joins on their equalities); a hash join's build-side keys narrow the
//!   next source's query as an `$in` (see [`crate::ObjectScanExec`]);
//! - the rest (`where` conjuncts no source took, sort, offset, limit,
//!   projection, `distinct`, a keyset cursor) is lowered onto DataFusion operators with the protocol's
//!   meaning ([`crate::lower`]).
//!
//! - an aggregation (group by, date buckets, aggregate functions with
//!   their `filter`s, `having`) runs on DataFusion's aggregation, finished
//!   as the reference evaluator finishes it (see `grouped`), then its
//!   groups are sorted and paged.
//!
//! [`JoinedQuery::refusal`] says, before anything runs, what of a query is
//! not lowered (`array_agg`, `string_agg`, `nearest`, JSON, UUID and
//! vector columns); such a query stays in the reference evaluator.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{Column, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, JoinType as DfJoinType, LogicalPlanBuilder};
use objectql_driver::{TxId, arrow_data_type, joined_schema};
use objectql_query_ast::{Catalog, Error, Filter, JoinType, Query, Result, StorageType};

use crate::Federation;
use crate::error::from_datafusion;
use crate::grouped;
use crate::lower::{self, Scope};
use crate::source::QueryTable;

/// One datasource's part of a QueryAST query across datasources.
#[derive(Debug, Clone)]
pub struct Source {
    /// The datasource whose driver runs `query`.
    pub datasource: String,
    /// A validated query: one driver query, no `expand`.
    pub query: Query,
    /// The output columns: each one's key in `query`'s rows, and its name
    /// in the joined rows (a base field, or `alias.field`). Names are
    /// unique across all sources.
    pub columns: Vec<(String, String)>,
    /// Conditions on `query`'s rows (by their keys) that its driver does
    /// not run: DataFusion applies them to this source's rows before they
    /// are joined.
    pub filter: Option<Filter>,
    /// The transaction `query` runs in, if any (on its datasource).
    pub tx: Option<TxId>,
}

/// A QueryAST query across datasources, cut into [`Source`]s.
#[derive(Debug, Clone)]
pub struct JoinedQuery {
    /// The base source first, then one per join.
    pub sources: Vec<Source>,
    /// `joins[i]` joins `sources[i + 1]` to the rows so far: its type and
    /// its condition over the joined rows' column names.
    pub joins: Vec<(JoinType, Filter)>,
    /// What runs over the joined rows: the rest of `where`, the sort,
    /// offset, limit and projection of the validated query (no joins,
    /// no `expand`).
    pub rest: Query,
}

impl JoinedQuery {
    /// What of this query DataFusion does not run yet with the protocol's
    /// meaning (`None`: all of it). A refused query runs in objectql's
    /// reference evaluator instead.
    pub fn refusal(&self, catalog: &Catalog) -> Result<Option<String>> {
        let rest = &self.rest;
        if rest.nearest.is_some() {
            return Ok(Some("`nearest` over joined rows".into()));
        }
        if let Some(why) = grouped::refusal(rest) {
            return Ok(Some(why));
        }
        for s in &self.sources {
            let schema = joined_schema(catalog, &s.query)?;
            for (key, name) in &s.columns {
                let st = storage(&schema, key)?;
                if !lower::native(st) {
                    return Ok(Some(format!("column `{name}` of type {}", st.name())));
                }
            }
        }
        Ok(None)
    }
}

fn storage(schema: &objectql_query_ast::ObjectSchema, key: &str) -> Result<StorageType> {
    schema
        .get(key)
        .ok_or_else(|| Error::internal(format!("a source's column `{key}` is not a field")))?
        .storage_type()
}

/// The joined rows' columns: name → DataFusion column and storage type.
struct Columns(HashMap<String, (Column, StorageType)>);

impl Scope for Columns {
    fn column(&self, name: &str) -> Option<(Column, StorageType)> {
        self.0.get(name).cloned()
    }
}

fn join_type(t: JoinType) -> Result<DfJoinType> {
    Ok(match t {
        JoinType::Inner => DfJoinType::Inner,
        JoinType::Left => DfJoinType::Left,
        JoinType::Right => DfJoinType::Right,
        JoinType::Full => DfJoinType::Full,
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::internal(format!(
                "join type `{}` is not lowered",
                other.name()
            )));
        }
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Federation {
    /// The DataFusion plan of a QueryAST query across datasources (see
    /// the [module docs](crate::joined)). Its output columns are the
    /// query's, named as in its rows. Fails with `Unsupported` when
    /// [`JoinedQuery::refusal`] names something.
    pub async fn joined(&self, q: &JoinedQuery) -> Result<DataFrame> {
        if let Some(why) = q.refusal(&self.catalog)? {
            return Err(Error::Unsupported {
                feature: format!("{why} on DataFusion"),
                driver: "federation".into(),
            });
        }
        if q.sources.len() != q.joins.len() + 1 {
            return Err(Error::internal(
                "a joined query needs one source more than it has joins",
            ));
        }
        let mut columns = Columns(HashMap::new());
        let mut order: Vec<String> = Vec::new();
        let mut plan: Option<LogicalPlanBuilder> = None;
        for (i, s) in q.sources.iter().enumerate() {
            let driver = self
                .sources
                .get(&s.datasource)
                .ok_or_else(|| Error::config(format!("unknown datasource `{}`", s.datasource)))?;
            let schema = joined_schema(&self.catalog, &s.query)?;
            let qualifier = format!("s{i}");
            let mut own = Columns(HashMap::new());
            let mut fields = Vec::with_capacity(s.columns.len());
            for (key, name) in &s.columns {
                let st = storage(&schema, key)?;
                fields.push(Field::new(name, arrow_data_type(st), true));
                let column = Column::new(Some(TableReference::bare(qualifier.as_str())), name);
                own.0.insert(key.clone(), (column.clone(), st));
                if columns.0.insert(name.clone(), (column, st)).is_some() {
                    return Err(Error::internal(format!(
                        "two sources of a joined query name column `{name}`"
                    )));
                }
                order.push(name.clone());
            }
            let table = QueryTable {
                datasource: s.datasource.clone(),
                driver: Arc::clone(driver),
                catalog: Arc::clone(&self.catalog),
                query: s.query.clone(),
                keys: s.columns.iter().map(|(k, _)| k.clone()).collect(),
                schema: Arc::new(Schema::new(fields)),
                timeout: self.options.timeout,
                tx: s.tx,
                estimates: true,
            };
            let scan = LogicalPlanBuilder::scan(
                qualifier.as_str(),
                provider_as_source(Arc::new(table)),
                None,
            )
            .map_err(from_datafusion)?;
            let scan = match &s.filter {
                Some(f) => scan
                    .filter(lower::filter(f, &own)?)
                    .map_err(from_datafusion)?,
                None => scan,
            };
            plan = Some(match (plan, i.checked_sub(1)) {
                (Some(left), Some(j)) => {
                    let (kind, on) = &q.joins[j];
                    let on = lower::filter(on, &columns)?;
                    left.join_on(
                        scan.build().map_err(from_datafusion)?,
                        join_type(*kind)?,
                        [on],
                    )
                    .map_err(from_datafusion)?
                }
                _ => scan,
            });
        }
        let mut plan = plan.ok_or_else(|| Error::internal("a joined query without sources"))?;
        let rest = &q.rest;
        if let Some(f) = &rest.filter {
            plan = plan
                .filter(lower::filter(f, &columns)?)
                .map_err(from_datafusion)?;
        }
        if rest.is_aggregate() {
            let plan = aggregated(plan, rest, &columns)?;
            return self
                .bare_context()
                .execute_logical_plan(plan)
                .await
                .map_err(from_datafusion);
        }
        // A keyset cursor keeps the rows after its position; that commutes
        // with sorting, so it is a filter (over the projection with
        // `distinct`, below).
        let after = rest
            .cursor
            .as_ref()
            .map(|c| lower::after_cursor(&rest.order_by, c))
            .transpose()?;
        if let (Some(after), false) = (&after, rest.distinct) {
            plan = plan
                .filter(lower::filter(after, &columns)?)
                .map_err(from_datafusion)?;
        }
        let names = rest.fields.clone().unwrap_or(order);
        let projection = names
            .iter()
            .map(|n| {
                let (column, _) = columns.column(n).ok_or_else(|| {
                    Error::internal(format!("the projection names unknown column `{n}`"))
                })?;
                Ok(Expr::Column(column).alias(n))
            })
            .collect::<Result<Vec<_>>>()?;
        // Without `distinct`: sort, page, then project (a sort key need
        // not be projected). With it: project, keep distinct rows, then
        // sort (validation checked every sort key is projected) and page.
        let distinct = rest.distinct;
        if distinct {
            plan = plan
                .project(projection.clone())
                .map_err(from_datafusion)?
                .distinct()
                .map_err(from_datafusion)?;
        }
        let projected = Columns(
            names
                .iter()
                .filter_map(|n| {
                    let (_, st) = columns.column(n)?;
                    Some((n.clone(), (Column::new_unqualified(n), st)))
                })
                .collect(),
        );
        let scope: &dyn Scope = if distinct { &projected } else { &columns };
        if let (Some(after), true) = (&after, distinct) {
            plan = plan
                .filter(lower::filter(after, scope)?)
                .map_err(from_datafusion)?;
        }
        plan = sorted_and_paged(plan, rest, scope)?;
        if !distinct {
            plan = plan.project(projection).map_err(from_datafusion)?;
        }
        let plan = plan.build().map_err(from_datafusion)?;
        self.bare_context()
            .execute_logical_plan(plan)
            .await
            .map_err(from_datafusion)
    }
}

/// The rest of an aggregate query over the joined rows (`where` applied):
/// grouping and aggregations, `having`, the sort and the page over the
/// groups, and the projection of `fields` (every output without it).
fn aggregated(
    plan: LogicalPlanBuilder,
    rest: &Query,
    columns: &Columns,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    let (plan, outputs) = grouped::aggregate(plan, rest, columns)?;
    // Every group is finished before `having` drops any (see
    // `lower::barrier`). `limit: 0` keeps no group, but the evaluator
    // still finishes all of them (an overflowing sum fails), while
    // DataFusion would plan no aggregation under a `LIMIT 0`: it is the
    // barrier keeping nothing (an empty `$or`) instead.
    let nothing = Filter::Or(Vec::new());
    let (keep, rest) = if rest.limit == Some(0) {
        let mut unpaged = rest.clone();
        unpaged.limit = None;
        unpaged.offset = None;
        (Some(&nothing), std::borrow::Cow::Owned(unpaged))
    } else {
        (rest.having.as_ref(), std::borrow::Cow::Borrowed(rest))
    };
    let names = outputs.0.iter().map(|(n, _)| n.clone()).collect();
    let mut plan = plan
        .filter(lower::barrier(keep, &outputs, names)?)
        .map_err(from_datafusion)?;
    plan = sorted_and_paged(plan, &rest, &outputs)?;
    if let Some(fields) = &rest.fields {
        let projection = fields
            .iter()
            .map(|n| {
                let (column, _) = outputs.column(n).ok_or_else(|| {
                    Error::internal(format!("the projection names unknown output `{n}`"))
                })?;
                Ok(Expr::Column(column))
            })
            .collect::<Result<Vec<_>>>()?;
        plan = plan.project(projection).map_err(from_datafusion)?;
    }
    plan.build().map_err(from_datafusion)
}

/// `plan` sorted by `rest`'s `orderBy` (over `scope`'s columns), then
/// offset and limited.
fn sorted_and_paged(
    mut plan: LogicalPlanBuilder,
    rest: &Query,
    scope: &dyn Scope,
) -> Result<LogicalPlanBuilder> {
    if !rest.order_by.is_empty() {
        let keys = rest
            .order_by
            .iter()
            .map(|s| lower::sort(s, scope))
            .collect::<Result<Vec<_>>>()?;
        plan = plan.sort(keys).map_err(from_datafusion)?;
    }
    if rest.offset.is_some() || rest.limit.is_some() {
        plan = plan
            .limit(rest.offset.map_or(0, to_usize), rest.limit.map(to_usize))
            .map_err(from_datafusion)?;
    }
    Ok(plan)
}
