//! The execution plan node that runs one pushed query on a driver.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, Statistics};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column as PhysicalColumn, DynamicFilterPhysicalExpr, InListExpr, Literal,
};
use datafusion::physical_expr::{EquivalenceProperties, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use objectql_driver::{BatchStream, Cx, Driver, Pushdown, TxId, joined_schema};
use objectql_query_ast::{
    Catalog, Error, Filter, ObjectSchema, Op, Operand, Query, ResolveContext, StorageType, Value,
    validate_query,
};

use crate::conform::conform;
use crate::error::to_datafusion;
use crate::translate::scalar_to_value;

/// Runs one pushed [`Query`] on a datasource's driver and streams its Arrow
/// batches, never holding more than the driver's current batch.
///
/// `EXPLAIN` shows it as `ObjectScan: driver:<name> <datasource>.<object>`
/// with the pushed query; `EXPLAIN ANALYZE` adds the rows it shipped.
#[derive(Debug)]
pub struct ObjectScanExec {
    pub(crate) datasource: String,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) query: Query,
    /// Column names to keep from the driver's batches, when the driver
    /// cannot project (`None`: its batches are already the output).
    pub(crate) keep: Option<Vec<String>>,
    pub(crate) timeout: Option<Duration>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
    /// Whether DataFusion's dynamic join filters may narrow the query
    /// (pushdown on).
    pub(crate) reduce: bool,
    /// The dynamic filters handed down by joins above (see
    /// [`ObjectScanExec::handle_child_pushdown_result`]).
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
    /// The join-key conditions the last run added to the query, and the
    /// number of driver queries it took (more than one: a key list past
    /// the driver's bind limit, sent in chunks).
    narrowed: Arc<Mutex<Option<(Filter, usize)>>>,
    /// The transaction the query runs in (its batches are then read in
    /// full when the node starts, so no other node of the plan waits on
    /// the transaction's connection while this one holds it).
    pub(crate) tx: Option<TxId>,
    /// About how many rows the query's objects hold (the largest driver
    /// estimate), for [`ExecutionPlan::partition_statistics`].
    pub(crate) estimated_rows: Option<u64>,
    /// About how many rows the query itself returns, when the driver's
    /// planner said (`Driver::estimated_query_rows`); preferred to
    /// `estimated_rows` scaled by a guess per condition.
    pub(crate) planned_rows: Option<u64>,
}

/// The share of rows DataFusion assumes a filter keeps when it knows
/// nothing about the filter's columns (`default_filter_selectivity`, 20%),
/// applied per condition of a pushed query, for at most
/// [`MAX_SELECTIVE_CONDITIONS`] conditions.
const FILTER_SELECTIVITY: f64 = 0.2;
const MAX_SELECTIVE_CONDITIONS: i32 = 3;

/// How many conditions `filter` has (the conjuncts of a top-level `and`),
/// as [`scaled_estimate`] counts them.
pub(crate) fn conditions(filter: Option<&Filter>) -> usize {
    match filter {
        None => 0,
        Some(Filter::And(all)) => all.len(),
        Some(_) => 1,
    }
}

/// `rows` times [`FILTER_SELECTIVITY`] per condition, for up to
/// [`MAX_SELECTIVE_CONDITIONS`].
// An estimate: row counts far below 2^52.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn scaled_estimate(rows: u64, conditions: usize) -> f64 {
    let conditions = i32::try_from(conditions)
        .unwrap_or(i32::MAX)
        .min(MAX_SELECTIVE_CONDITIONS);
    rows as f64 * FILTER_SELECTIVITY.powi(conditions)
}

/// About how many rows `query` returns, as the driver's planner estimates
/// it (`Driver::estimated_query_rows`), asked only for a query with a
/// filter or joins (else the table's estimate says it), outside any
/// transaction; `None` when the driver cannot say, fails or times out.
pub(crate) async fn planned_rows(
    driver: &dyn Driver,
    catalog: &Catalog,
    query: &Query,
    timeout: Option<Duration>,
    tx: Option<TxId>,
) -> Option<u64> {
    if tx.is_some() || (query.filter.is_none() && query.joins.is_empty()) {
        return None;
    }
    ask_estimate(
        catalog,
        timeout,
        query.object.as_deref().unwrap_or(""),
        |cx| driver.estimated_query_rows(cx, query),
    )
    .await
}

/// What `ask` says about `object` (it gets a `Cx` with the scan's time
/// limit), given up after that limit or [`ESTIMATE_TIME_LIMIT`]; `None`
/// when the driver cannot say, fails, or is late (logged at debug: an
/// estimate only ever steers the plan).
async fn ask_estimate<'c, F, Fut>(
    catalog: &'c Catalog,
    timeout: Option<Duration>,
    object: &str,
    ask: F,
) -> Option<u64>
where
    F: FnOnce(Cx<'c>) -> Fut,
    Fut: Future<Output = objectql_query_ast::Result<Option<u64>>>,
{
    let mut cx = Cx::new(catalog);
    if let Some(t) = timeout {
        cx = cx.with_timeout(t);
    }
    let limit = timeout.unwrap_or(ESTIMATE_TIME_LIMIT);
    match tokio::time::timeout(limit, ask(cx)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, object, "no row estimate");
            None
        }
        Err(_) => {
            tracing::debug!(object, ?limit, "no row estimate in time");
            None
        }
    }
}

/// How long planning waits for a row estimate when the scan has no time
/// limit of its own: an estimate later than that is planned without.
const ESTIMATE_TIME_LIMIT: Duration = Duration::from_secs(5);

/// About how many rows at most `objects` hold (the largest of their
/// drivers' estimates; the rows of a join along a reference are at most
/// those of its larger side). `None` when a driver cannot say, fails, or
/// times out: the planner then keeps the joins' written order. Also `None`
/// for a scan inside transaction `tx`: a server driver reads its
/// statistics on a pooled connection, which a small pool may only free
/// when the transaction ends.
pub(crate) async fn estimate_rows<'a>(
    driver: &dyn Driver,
    catalog: &Catalog,
    objects: impl IntoIterator<Item = &'a str>,
    timeout: Option<Duration>,
    tx: Option<TxId>,
) -> Option<u64> {
    if tx.is_some() {
        return None;
    }
    let mut largest: Option<u64> = None;
    for object in objects {
        let n = ask_estimate(catalog, timeout, object, |cx| {
            driver.estimated_rows(cx, object)
        })
        .await?;
        largest = Some(largest.map_or(n, |l| l.max(n)));
    }
    largest
}

impl ObjectScanExec {
    pub(crate) fn new(
        datasource: String,
        driver: Arc<dyn Driver>,
        catalog: Arc<Catalog>,
        query: Query,
        keep: Option<Vec<String>>,
        timeout: Option<Duration>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            datasource,
            driver,
            catalog,
            query,
            keep,
            timeout,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
            reduce: false,
            dynamic: Vec::new(),
            narrowed: Arc::new(Mutex::new(None)),
            tx: None,
            estimated_rows: None,
            planned_rows: None,
        }
    }

    /// A node like this one (same query, driver, options), before it runs,
    /// keeping `keep` of the driver's columns as `schema`; with the same
    /// join keys.
    fn rebuilt(&self, keep: Option<Vec<String>>, schema: SchemaRef) -> Self {
        let mut node = ObjectScanExec::new(
            self.datasource.clone(),
            Arc::clone(&self.driver),
            Arc::clone(&self.catalog),
            self.query.clone(),
            keep,
            self.timeout,
            schema,
        )
        .with_key_reduction(self.reduce)
        .in_transaction(self.tx)
        .with_estimated_rows(self.estimated_rows)
        .with_planned_rows(self.planned_rows);
        node.dynamic.clone_from(&self.dynamic);
        node
    }

    /// The same node, knowing that its query returns about `rows` rows
    /// ([`Driver::estimated_query_rows`]).
    pub(crate) fn with_planned_rows(mut self, rows: Option<u64>) -> Self {
        self.planned_rows = rows;
        self
    }

    /// The same node, knowing that its objects hold about `rows` rows
    /// ([`Driver::estimated_rows`]).
    pub(crate) fn with_estimated_rows(mut self, rows: Option<u64>) -> Self {
        self.estimated_rows = rows;
        self
    }

    /// About how many rows the node ships: what the driver's planner
    /// estimated for its query, else its objects' estimated rows times 20%
    /// (DataFusion's default filter selectivity) per condition of its
    /// filter (for up to three); at most its limit. `None` without an
    /// estimate.
    // An estimate: row counts far below 2^52, and the result rounded up and
    // clamped to a count.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    pub fn estimated_output_rows(&self) -> Option<usize> {
        let conditions = conditions(self.query.filter.as_ref());
        let mut out = match self.planned_rows {
            Some(rows) => rows as f64,
            None => scaled_estimate(self.estimated_rows?, conditions),
        };
        if let Some(limit) = self.query.limit {
            out = out.min(limit as f64);
        }
        // A float estimate to a count: rounded up, clamped.
        Some(out.ceil().clamp(0.0, usize::MAX as f64) as usize)
    }

    /// The same node, running its query in transaction `tx` (or outside
    /// any).
    pub(crate) fn in_transaction(mut self, tx: Option<TxId>) -> Self {
        self.tx = tx;
        self
    }

    /// The same node, narrowed at run time by the join keys DataFusion's
    /// dynamic join filters hand down (`reduce`), or not.
    pub(crate) fn with_key_reduction(mut self, reduce: bool) -> Self {
        self.reduce = reduce;
        self
    }

    /// The join-key conditions the last run of this node added to its
    /// query (semi-join reduction from a hash join's build side), if any.
    pub fn join_keys(&self) -> Option<Filter> {
        self.narrowed
            .lock()
            .ok()
            .and_then(|n| n.as_ref().map(|(f, _)| f.clone()))
    }

    /// How many driver queries the last run of this node took: one per
    /// chunk of a join-key list too long for one statement, else one.
    pub fn driver_queries(&self) -> usize {
        self.narrowed
            .lock()
            .ok()
            .and_then(|n| n.as_ref().map(|(_, k)| *k))
            .unwrap_or(1)
    }

    /// The exact number of rows this node's driver shipped in its last run
    /// (`None` before it ran).
    pub fn rows_shipped(&self) -> Option<usize> {
        self.metrics.clone_inner().output_rows()
    }

    /// Whether a hash join above hands this node its build side's keys
    /// (a dynamic filter), which narrow the query when the node runs.
    pub fn awaits_join_keys(&self) -> bool {
        self.reduce && !self.dynamic.is_empty()
    }

    /// The query this node sends to its driver.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The driver that runs it.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The datasource's name.
    pub fn datasource(&self) -> &str {
        &self.datasource
    }

    /// The catalog the query was validated against.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The time limit of the driver call, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

impl DisplayAs for ObjectScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let object = self.query.object.as_deref().unwrap_or_default();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "ObjectScan: driver:{} {}.{object} query={}",
                self.driver.name(),
                self.datasource,
                self.query.to_json()
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "driver=driver:{}", self.driver.name())?;
                write!(f, "object={}.{object}", self.datasource)
            }
        }
    }
}

/// Drops the join keys DataFusion handed to a scan whenever they may name
/// the wrong column.
///
/// DataFusion 55 moves a filter from a node to its child by column *name*
/// (`FilterRemapper`, and a projection's reverse alias map), so below a
/// hash join, a node whose output has two columns of one name (`o.id` and
/// `c.id` both print as `id`) can hand a join's key filter on one of them
/// to a scan as a filter on the other: narrowed by keys of the wrong
/// column, the scan dropped rows that matched. A scan under such a node
/// (or with such columns itself) runs without join keys: it ships more
/// rows, never a wrong answer. Runs after every DataFusion rule.
#[derive(Debug, Default)]
pub struct GuardJoinKeys;

impl PhysicalOptimizerRule for GuardJoinKeys {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        guard_keys(plan, false, false)
    }

    fn name(&self) -> &'static str {
        "objectql_guard_join_keys"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn has_duplicate_names(schema: &SchemaRef) -> bool {
    let mut seen = std::collections::HashSet::new();
    schema.fields().iter().any(|f| !seen.insert(f.name()))
}

/// [`GuardJoinKeys`] on `plan`: `below_join`, a hash join is above it;
/// `ambiguous`, a node between that join and `plan` has two columns of one
/// name.
fn guard_keys(
    plan: Arc<dyn ExecutionPlan>,
    below_join: bool,
    ambiguous: bool,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let ambiguous = ambiguous || (below_join && has_duplicate_names(&plan.schema()));
    if let Some(scan) = plan.downcast_ref::<ObjectScanExec>() {
        if ambiguous && !scan.dynamic.is_empty() {
            let mut bare = scan.rebuilt(scan.keep.clone(), Arc::clone(&scan.schema));
            bare.dynamic = Vec::new();
            return Ok(Arc::new(bare));
        }
        return Ok(plan);
    }
    let below_join = below_join || plan.downcast_ref::<HashJoinExec>().is_some();
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let guarded = children
        .into_iter()
        .map(|child| guard_keys(child, below_join, ambiguous))
        .collect::<DfResult<Vec<_>>>()?;
    // Unchanged children: the same plan back.
    replace_children_if_necessary(plan, guarded)
}

/// `query` narrowed by what translates of the current state of the
/// `dynamic` join filters: the queries to run in turn (one, or one per
/// chunk of a key list too long for one statement), and the conditions
/// added; `None` when nothing translates, or a narrowed query does not
/// validate or is refused by the driver. `columns` are the QueryAST keys
/// of the node's output columns, in order (the filters' column indices
/// point into them).
fn narrow(
    catalog: &Catalog,
    driver: &dyn Driver,
    query: &Query,
    columns: &[String],
    dynamic: &[Arc<dyn PhysicalExpr>],
) -> Option<(Vec<Query>, Filter)> {
    // A `where` runs before grouping, sorting and paging: a key condition
    // added there would change which rows those keep (the ten newest rows
    // among the matching ones are not the ten newest rows), and an
    // aggregate's output columns are not fields to filter on.
    if query.limit.is_some()
        || query.offset.is_some()
        || query.cursor.is_some()
        || query.nearest.is_some()
        || query.distinct
        || query.is_aggregate()
    {
        return None;
    }
    let schema = joined_schema(catalog, query).ok()?;
    let mut keys = Vec::new();
    for d in dynamic {
        let Some(current) = d
            .downcast_ref::<DynamicFilterPhysicalExpr>()
            .and_then(|d| d.current().ok())
        else {
            continue;
        };
        let mut stack = vec![current];
        while let Some(e) = stack.pop() {
            if let Some(b) = e.downcast_ref::<BinaryExpr>()
                && *b.op() == Operator::And
            {
                stack.push(Arc::clone(b.left()));
                stack.push(Arc::clone(b.right()));
            } else if let Some(f) = key_condition(&e, columns, &schema) {
                // A list per column of a several-key join: each its own
                // conjunct (one of them may need chunks).
                match &f {
                    Filter::And(each) => keys.extend(each.iter().cloned()),
                    _ => keys.push(f),
                }
            }
        }
    }
    // Only conditions the driver runs exactly or as a superset: either way
    // no row that can match is dropped. One key list too long for the
    // driver's bind limit is cut into chunks, each run as its own query
    // (the chunks are disjoint, so no row comes twice).
    let runs = |f: &Filter| {
        objectql_planner::classify_filter(f, &|c| driver.classify(&schema, c))
            != Pushdown::Unsupported
    };
    let mut chunked: Option<(usize, Vec<Filter>)> = None;
    let mut kept = Vec::with_capacity(keys.len());
    for f in keys {
        if runs(&f) {
            kept.push(f);
        } else if chunked.is_none()
            && let Some(chunks) = key_chunks(&f, driver.capabilities().max_bind_params)
            && chunks.first().is_some_and(&runs)
        {
            chunked = Some((kept.len(), chunks));
            kept.push(f);
        }
    }
    if kept.is_empty() {
        return None;
    }
    narrowed_queries(catalog, driver, query, kept.clone(), chunked).or_else(|| {
        // Several key lists together past what the driver takes: the
        // bounds alone still narrow.
        let bounds: Vec<Filter> = kept
            .into_iter()
            .filter(|f| !matches!(f, Filter::Condition(c) if matches!(c.op, Op::In(_))))
            .collect();
        if bounds.is_empty() {
            return None;
        }
        narrowed_queries(catalog, driver, query, bounds, None)
    })
}

/// `query` with the key conditions `kept` (the one at `chunked`'s index cut
/// into its chunks, one query per chunk): the queries, and the conditions
/// added; `None` when one does not validate or the driver refuses it.
fn narrowed_queries(
    catalog: &Catalog,
    driver: &dyn Driver,
    query: &Query,
    kept: Vec<Filter>,
    chunked: Option<(usize, Vec<Filter>)>,
) -> Option<(Vec<Query>, Filter)> {
    let all_keys = Filter::And(kept.clone());
    let per_run: Vec<Filter> = match chunked {
        None => vec![all_keys.clone()],
        Some((at, chunks)) => {
            // Every kept condition but the long list, with one chunk of it.
            let others: Vec<Filter> = kept
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, f)| f)
                .collect();
            chunks
                .into_iter()
                .map(|c| Filter::And(others.iter().cloned().chain([c]).collect()))
                .collect()
        }
    };
    let mut queries = Vec::with_capacity(per_run.len());
    for keys in per_run {
        let mut q = query.clone();
        q.filter = Some(match q.filter.take() {
            Some(f) => f.and(keys),
            None => keys,
        });
        let typed = validate_query(&q, catalog, &ResolveContext::now()).ok()?;
        driver.accepts(catalog, &typed).ok()?;
        queries.push(typed);
    }
    Some((queries, all_keys))
}

/// A key list (`key $in [...]`) cut into lists a statement of a driver
/// with bind limit `max_bind_params` holds (a quarter of the limit each:
/// the query's other conditions bind values too); `None` when `f` is not
/// a key list longer than that, or the driver has no bind limit.
fn key_chunks(f: &Filter, max_bind_params: Option<usize>) -> Option<Vec<Filter>> {
    let size = (max_bind_params? / 4).max(1);
    let Filter::Condition(c) = f else {
        return None;
    };
    let Op::In(values) = &c.op else {
        return None;
    };
    if values.len() <= size {
        return None;
    }
    Some(
        values
            .chunks(size)
            .map(|chunk| Filter::cond(c.field.clone(), Op::In(chunk.to_vec())))
            .collect(),
    )
}

/// One conjunct of a dynamic join filter as a QueryAST condition: a bound
/// (`key >= min`, `key <= max`), a key list (`key IN (…)`), or for a join
/// on several keys one list per key (`a IN (…) AND b IN (…)`).
fn key_condition(
    e: &Arc<dyn PhysicalExpr>,
    columns: &[String],
    schema: &ObjectSchema,
) -> Option<Filter> {
    let column = |e: &Arc<dyn PhysicalExpr>| -> Option<(&String, StorageType)> {
        let c = e.downcast_ref::<PhysicalColumn>()?;
        let key = columns.get(c.index())?;
        let st = schema.get(key)?.storage_type().ok()?;
        Some((key, st))
    };
    let literal = |e: &Arc<dyn PhysicalExpr>, st: StorageType| -> Option<Value> {
        let v = scalar_to_value(e.downcast_ref::<Literal>()?.value(), st)?;
        (!v.is_null()).then_some(v)
    };
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        let (key, st) = column(b.left())?;
        let v = Operand::Value(literal(b.right(), st)?);
        let op = match b.op() {
            Operator::GtEq => Op::Gte(v),
            Operator::Gt => Op::Gt(v),
            Operator::LtEq => Op::Lte(v),
            Operator::Lt => Op::Lt(v),
            Operator::Eq => Op::Eq(v),
            _ => return None,
        };
        return Some(Filter::cond(key.clone(), op));
    }
    let list = e.downcast_ref::<InListExpr>()?;
    if list.negated() {
        return None;
    }
    // A join on several keys sends `struct(a, b) IN (…)`: each column
    // in the values it takes there (a superset of the pairs: no row that
    // can match is dropped).
    if let Some(f) = list.expr().downcast_ref::<ScalarFunctionExpr>()
        && f.name() == "struct"
    {
        let mut each = Vec::with_capacity(f.args().len());
        for (i, arg) in f.args().iter().enumerate() {
            let (key, st) = column(arg)?;
            let mut seen = std::collections::HashSet::new();
            let mut values = Vec::new();
            for v in list.list() {
                let ScalarValue::Struct(row) = v.downcast_ref::<Literal>()?.value() else {
                    return None;
                };
                let field = ScalarValue::try_from_array(row.columns().get(i)?.as_ref(), 0).ok()?;
                if field.is_null() || !seen.insert(field.clone()) {
                    continue;
                }
                values.push(scalar_to_value(&field, st)?);
            }
            each.push(Filter::cond(key.clone(), Op::In(values)));
        }
        return match each.len() {
            0 => None,
            1 => each.pop(),
            _ => Some(Filter::And(each)),
        };
    }
    let (key, st) = column(list.expr())?;
    let values = list
        .list()
        .iter()
        .filter(|v| {
            v.downcast_ref::<Literal>()
                .is_some_and(|l| !l.value().is_null())
        })
        .map(|v| literal(v, st))
        .collect::<Option<Vec<_>>>()?;
    Some(Filter::cond(key.clone(), Op::In(values)))
}

impl ExecutionPlan for ObjectScanExec {
    fn name(&self) -> &'static str {
        "ObjectScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    /// Folds a projection that only picks, orders and renames its columns
    /// (what sits on a pushed subtree, naming its columns back) into the
    /// node, which then outputs the projection's schema.
    ///
    /// Besides saving a step, this keeps join keys on the right column:
    /// DataFusion 55 pushes a filter through a `ProjectionExec` by column
    /// *name*, so when two output columns share a name (`o.id` and `c.id`
    /// both print as `id`) a hash join's key filter on the first reached
    /// the scan on the second, and the join lost its matches (found by the
    /// differential test once join order followed the row estimates).
    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(current) = &self.keep else {
            return Ok(None);
        };
        if !self.dynamic.is_empty() {
            return Ok(None);
        }
        let mut keep = Vec::with_capacity(projection.expr().len());
        for e in projection.expr() {
            let Some(key) = e
                .expr
                .downcast_ref::<PhysicalColumn>()
                .and_then(|c| current.get(c.index()))
            else {
                return Ok(None);
            };
            keep.push(key.clone());
        }
        Ok(Some(Arc::new(
            self.rebuilt(Some(keep), projection.schema()),
        )))
    }

    /// The rows it is expected to ship ([`Self::estimated_output_rows`],
    /// inexact), so that DataFusion builds a hash join on its smaller side
    /// and sends that side's keys to the larger one.
    fn partition_statistics(&self, _partition: Option<usize>) -> DfResult<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&self.schema);
        if let Some(n) = self.estimated_output_rows() {
            stats.num_rows = Precision::Inexact(n);
        }
        Ok(Arc::new(stats))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        // A hash join computes its dynamic filter only when it finds it
        // held by a node of its probe side.
        for d in &self.dynamic {
            if f(d)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    /// Keeps the dynamic filters a hash join hands down (its build side's
    /// key bounds and, for up to
    /// `hash_join_inlist_pushdown_max_distinct_values` keys, the keys).
    /// They are read when the scan starts, after the build side is done,
    /// and what translates goes to the driver as extra conditions. Every
    /// filter is reported as not applied, so DataFusion's own join still
    /// decides which rows match: the conditions only keep rows that
    /// cannot match from being shipped.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let parents = child_pushdown_result.parent_filters;
        let result = FilterPushdownPropagation::with_parent_pushdown_result(vec![
            PushedDown::No;
            parents.len()
        ]);
        // Two output columns of one name: DataFusion may have put a key
        // filter on the wrong one (see [`GuardJoinKeys`]).
        if phase != FilterPushdownPhase::Post || !self.reduce || has_duplicate_names(&self.schema) {
            return Ok(result);
        }
        let dynamic: Vec<Arc<dyn PhysicalExpr>> = parents
            .into_iter()
            .map(|p| p.filter)
            .filter(|f| f.downcast_ref::<DynamicFilterPhysicalExpr>().is_some())
            .collect();
        if dynamic.is_empty() {
            return Ok(result);
        }
        let mut node = self.rebuilt(self.keep.clone(), Arc::clone(&self.schema));
        node.reduce = true;
        node.dynamic.extend(dynamic);
        Ok(result.with_updated_node(Arc::new(node)))
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "ObjectScanExec has no children".into(),
            ))
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ObjectScanExec has one partition, not {}",
                partition + 1
            )));
        }
        let driver = Arc::clone(&self.driver);
        let catalog = Arc::clone(&self.catalog);
        let mut query = self.query.clone();
        let timeout = self.timeout;
        let dynamic = self.dynamic.clone();
        let columns = self.keep.clone().or_else(|| self.query.fields.clone());
        let narrowed = Arc::clone(&self.narrowed);
        let tx = self.tx;
        let batches = futures::stream::once(async move {
            // First polled once the joins above have built their hash
            // tables: their dynamic filters hold the keys by now.
            let mut queries = Vec::new();
            if let Some(columns) = &columns
                && let Some((qs, keys)) =
                    narrow(&catalog, driver.as_ref(), &query, columns, &dynamic)
            {
                if let Ok(mut n) = narrowed.lock() {
                    *n = Some((keys, qs.len()));
                }
                queries = qs;
            }
            let stream: BatchStream = match queries.len() {
                0 | 1 => {
                    if let Some(q) = queries.pop() {
                        query = q;
                    }
                    let cx = Cx {
                        catalog: &catalog,
                        tx,
                        timeout,
                    };
                    driver.find_arrow(cx, &query).await?
                }
                // One query per chunk of keys, in turn.
                _ => Box::pin(
                    futures::stream::iter(queries)
                        .then(move |q| {
                            let (driver, catalog) = (Arc::clone(&driver), Arc::clone(&catalog));
                            async move {
                                let cx = Cx {
                                    catalog: &catalog,
                                    tx,
                                    timeout,
                                };
                                driver.find_arrow(cx, &q).await
                            }
                        })
                        .try_flatten(),
                ),
            };
            if tx.is_none() {
                return Ok::<BatchStream, Error>(stream);
            }
            let all: Vec<RecordBatch> = stream.try_collect().await?;
            Ok(Box::pin(futures::stream::iter(all.into_iter().map(Ok))) as BatchStream)
        })
        .try_flatten();
        let schema = Arc::clone(&self.schema);
        let keep = self.keep.clone();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let stream = batches.map(move |batch| {
            let batch = batch.map_err(to_datafusion)?;
            let out = conform(&batch, &schema, keep.as_deref())?;
            metrics.record_output(out.num_rows());
            Ok(out)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
