//! One object on its datasource's driver, as a DataFusion `TableProvider`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use objectql_driver::{Driver, Pushdown, arrow_schema};
use objectql_query_ast::{
    Catalog, Error, Filter, ObjectSchema, Path, Query, Record, ResolveContext, Result, StorageType,
    WriteMode, validate_query, validate_record,
};

use crate::error::to_datafusion;
use crate::exec::{ObjectScanExec, estimate_rows, planned_rows};
use crate::translate::to_filter;
use crate::write::{Write, WriteExec, assigned_value};

/// How an [`ObjectTable`] scans.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Push filters, projections and limits to the driver (default `true`).
    /// Off, every scan reads the whole object and DataFusion does the rest:
    /// the reference a pushed plan must agree with.
    pub pushdown: bool,
    /// A time limit on each driver call (see `objectql_driver::Cx::timeout`).
    pub timeout: Option<Duration>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            pushdown: true,
            timeout: None,
        }
    }
}

impl ScanOptions {
    /// The same options with pushdown on or off.
    pub fn with_pushdown(mut self, pushdown: bool) -> Self {
        self.pushdown = pushdown;
        self
    }

    /// The same options with a time limit on each driver call.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One object of a datasource as a DataFusion table.
///
/// Its columns are the object's stored fields, typed from the object schema
/// as the driver's Arrow output is. Filters DataFusion offers are translated
/// into QueryAST conditions with SQL's meaning kept (see
/// [`crate::to_filter`]) and classified by the driver: `Exact` filters, the
/// projection and (when every filter is exact) the limit go into one
/// validated query that the driver runs; its batches stream through.
///
/// Register it in any `SessionContext`. When that context pushes hash join
/// keys down (DataFusion's `enable_join_dynamic_filter_pushdown`), add
/// [`crate::GuardJoinKeys`] as its last physical optimizer rule: DataFusion
/// 55 can hand a scan the keys of the wrong column below a node with two
/// columns of one name, and the rule keeps such scans unnarrowed.
/// [`crate::Federation::context`] has it.
///
/// ```
/// # use std::sync::Arc;
/// # use objectql_federation::ObjectTable;
/// # use objectql_query_ast::{Catalog, ObjectSchema, Field};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut catalog = Catalog::new();
/// catalog.insert(ObjectSchema::new("t").field(Field::new("n", "integer")))?;
/// let driver = Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://")?);
/// let table = ObjectTable::new("default", driver, Arc::new(catalog), "t")?;
/// let ctx = datafusion::prelude::SessionContext::new();
/// ctx.register_table("t", Arc::new(table)).unwrap();
/// # Ok::<(), objectql_query_ast::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ObjectTable {
    datasource: String,
    driver: Arc<dyn Driver>,
    catalog: Arc<Catalog>,
    object: String,
    columns: Vec<String>,
    arrow: SchemaRef,
    options: ScanOptions,
    /// The driver's row estimate, once asked, and when (shared by clones:
    /// the planner's rules read what [`Self::estimate`] fetched).
    estimate: Arc<Mutex<Option<Fetched>>>,
}

/// A row estimate as fetched: when, and what the driver said.
#[derive(Debug, Clone, Copy)]
struct Fetched {
    at: Instant,
    rows: Option<u64>,
    /// Whether the driver was asked (else a plan without joins marked the
    /// estimate unknown, so that its scans ask for none; a later plan
    /// with joins on the same table, in a long-lived context, still asks).
    asked: bool,
}

/// Fetches the row estimate of every [`ObjectTable`] `plan` reads (its
/// subqueries' included), all at once, so that optimizer rules find them
/// ([`ObjectTable::fresh_estimate`]) and the scans do not ask again. A plan
/// without joins needs none: they are recorded as unknown, and its scans
/// ask for none. A plan whose tables are all on one datasource fetches
/// none up front; its scans ask when a join above them needs it.
pub(crate) async fn fetch_estimates(plan: &LogicalPlan) {
    let mut tables = Vec::new();
    let mut joins = false;
    let _ = plan.apply_with_subqueries(|node| {
        joins |= matches!(node, LogicalPlan::Join(_) | LogicalPlan::Subquery(_));
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<ObjectTable>()
        {
            tables.push(table.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let mut datasources: Vec<(&str, *const ())> = tables
        .iter()
        .map(|t| (t.datasource(), Arc::as_ptr(t.driver()).cast::<()>()))
        .collect();
    datasources.sort_unstable();
    datasources.dedup();
    if !joins {
        // No join to order or build: no round trip for an estimate.
        for t in &tables {
            t.mark_unknown();
        }
        return;
    }
    if datasources.len() < 2 {
        // All on one datasource: nothing to order across datasources, and
        // its driver joins what is pushed. A scan still asks when a join
        // above it needs its estimate.
        return;
    }
    futures::future::join_all(tables.iter().map(ObjectTable::estimate)).await;
}

/// How long a fetched row estimate is reused (a table kept in a
/// long-lived context asks again after this).
const ESTIMATE_REUSED_FOR: Duration = Duration::from_secs(30);

/// The stored (not virtual) fields of `schema`, in schema order.
fn stored_fields(schema: &ObjectSchema) -> Vec<String> {
    schema
        .fields
        .iter()
        .filter(|(_, f)| f.storage_type().is_ok_and(|st| st != StorageType::Virtual))
        .map(|(n, _)| n.clone())
        .collect()
}

impl ObjectTable {
    /// The table of `object` (registered in `catalog`) on `driver`, the
    /// driver of datasource `datasource`.
    pub fn new(
        datasource: impl Into<String>,
        driver: Arc<dyn Driver>,
        catalog: Arc<Catalog>,
        object: &str,
    ) -> Result<Self> {
        let schema = catalog
            .get(object)
            .ok_or_else(|| Error::config(format!("object `{object}` is not registered")))?;
        let columns = stored_fields(schema);
        let arrow = arrow_schema(schema, &Query::new(object).select(columns.clone()))?;
        Ok(Self {
            datasource: datasource.into(),
            driver,
            catalog,
            object: object.to_owned(),
            columns,
            arrow,
            options: ScanOptions::default(),
            estimate: Arc::default(),
        })
    }

    /// The same table with other scan options.
    pub fn with_options(mut self, options: ScanOptions) -> Self {
        self.options = options;
        self
    }

    /// The object's name.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The datasource's name.
    pub fn datasource(&self) -> &str {
        &self.datasource
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// About how many rows the object holds (`Driver::estimated_rows`),
    /// asked once and reused for a while; `None` when the driver cannot
    /// say.
    pub(crate) async fn estimate(&self) -> Option<u64> {
        if let Some(known) = self.fresh().filter(|f| f.asked) {
            return known.rows;
        }
        let rows = estimate_rows(
            &*self.driver,
            &self.catalog,
            [self.object.as_str()],
            self.options.timeout,
            None,
        )
        .await;
        self.set_estimate(rows);
        rows
    }

    /// Records `rows`, as the driver said, as the table's fresh estimate.
    fn set_estimate(&self, rows: Option<u64>) {
        if let Ok(mut cell) = self.estimate.lock() {
            *cell = Some(Fetched {
                at: Instant::now(),
                rows,
                asked: true,
            });
        }
    }

    /// Records the estimate as unknown, unasked (a plan without joins),
    /// unless a fresh one is there.
    fn mark_unknown(&self) {
        if let Ok(mut cell) = self.estimate.lock()
            && cell.is_none_or(|f| f.at.elapsed() >= ESTIMATE_REUSED_FOR)
        {
            *cell = Some(Fetched {
                at: Instant::now(),
                rows: None,
                asked: false,
            });
        }
    }

    /// Whether the planner wants row estimates for scans of this table:
    /// not when [`Federation::plan`](crate::Federation::plan) found no
    /// join (it then records the estimate as unknown).
    pub(crate) fn estimates_wanted(&self) -> bool {
        self.fresh().is_none_or(|f| f.rows.is_some())
    }

    /// The estimate [`Self::estimate`] fetched, when it is still fresh;
    /// `None` when not asked, stale, or the driver could not say.
    pub(crate) fn fresh_estimate(&self) -> Option<u64> {
        self.fresh()?.rows
    }

    fn fresh(&self) -> Option<Fetched> {
        let fetched = (*self.estimate.lock().ok()?)?;
        (fetched.at.elapsed() < ESTIMATE_REUSED_FOR).then_some(fetched)
    }

    /// The scan options.
    pub(crate) fn options(&self) -> &ScanOptions {
        &self.options
    }

    /// The table's columns (the object's stored fields), in order.
    pub(crate) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The catalog the table's queries validate against.
    pub(crate) fn catalog_ref(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog)
    }

    /// The object's schema.
    pub(crate) fn object_schema(&self) -> Result<&ObjectSchema> {
        self.schema_of_object()
    }

    fn schema_of_object(&self) -> Result<&ObjectSchema> {
        self.catalog
            .get(&self.object)
            .ok_or_else(|| Error::internal("an object table's object left the catalog"))
    }

    /// The validated QueryAST filter `expr` becomes on this table, and how
    /// the driver runs it; `None` when it stays in DataFusion.
    pub fn pushdown_of(&self, expr: &Expr) -> Option<(Filter, Pushdown)> {
        if !self.options.pushdown || !self.driver.capabilities().filters {
            return None;
        }
        let schema = self.schema_of_object().ok()?;
        let filter = to_filter(expr, schema)?;
        // Validation types the values and refuses what the protocol
        // refuses (a NUL in a pattern, an empty `$contains`): those stay
        // in DataFusion.
        let mut typed = validate_query(
            &Query::new(&self.object).filter(filter),
            &self.catalog,
            &ResolveContext::now(),
        )
        .ok()?;
        let typed = typed.filter.take()?;
        let class = objectql_planner::classify_filter(&typed, &|c| self.driver.classify(schema, c));
        if class == Pushdown::Unsupported {
            return None;
        }
        // The plan-time decision the engine's planner uses too: a filter
        // the driver would refuse to run (past its bind limit, say) stays
        // in DataFusion.
        let alone = Query::new(&self.object).filter(typed.clone());
        self.driver.accepts(&self.catalog, &alone).ok()?;
        Some((typed, class))
    }

    /// A scan whose filters the driver takes one by one but refuses
    /// together (their parameters pass its bind limit, say): the driver
    /// reads the columns the output and the filters need, DataFusion runs
    /// the filters over them, then keeps the output's columns.
    fn scan_filtering_locally(
        &self,
        state: &dyn Session,
        names: &[String],
        filters: &[Expr],
        estimate: Option<u64>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut needed = names.to_vec();
        let mut unqualified = Vec::with_capacity(filters.len());
        for f in filters {
            let bare = f
                .clone()
                .transform(|e| {
                    Ok(match e {
                        Expr::Column(c) => Transformed::yes(Expr::Column(
                            datafusion::common::Column::new_unqualified(c.name),
                        )),
                        other => Transformed::no(other),
                    })
                })?
                .data;
            for c in bare.column_refs() {
                if !needed.contains(&c.name) {
                    needed.push(c.name.clone());
                }
            }
            unqualified.push(bare);
        }
        let indices = needed
            .iter()
            .map(|n| {
                self.columns.iter().position(|c| c == n).ok_or_else(|| {
                    to_datafusion(Error::internal(format!(
                        "a filter on `{}` names an unknown column `{n}`",
                        self.object
                    )))
                })
            })
            .collect::<DfResult<Vec<_>>>()?;
        let read: SchemaRef = Arc::new(self.arrow.project(&indices)?);
        let mut query = Query::new(&self.object);
        if self.options.pushdown && self.driver.capabilities().projection {
            query.fields = Some(needed.clone());
        }
        let query =
            validate_query(&query, &self.catalog, &ResolveContext::now()).map_err(to_datafusion)?;
        let scan = Arc::new(
            ObjectScanExec::new(
                self.datasource.clone(),
                Arc::clone(&self.driver),
                Arc::clone(&self.catalog),
                query,
                Some(needed),
                self.options.timeout,
                Arc::clone(&read),
            )
            .with_key_reduction(self.options.pushdown)
            .with_estimated_rows(estimate),
        );
        let predicate = conjunction(unqualified)
            .ok_or_else(|| to_datafusion(Error::internal("no filter to run locally")))?;
        let predicate = state.create_physical_expr(predicate, &DFSchema::try_from(read)?)?;
        let filtered = Arc::new(FilterExec::try_new(predicate, scan)?);
        let output = names
            .iter()
            .enumerate()
            .map(|(i, n)| ProjectionExpr::new(Arc::new(PhysicalColumn::new(n, i)) as _, n.clone()));
        Ok(Arc::new(ProjectionExec::try_new(output, filtered)?))
    }
}

impl ObjectTable {
    /// The filter a write's `WHERE` conjuncts become: each must translate
    /// with SQL's meaning and be evaluated exactly by the driver, or the
    /// write is refused (a write never touches a superset of its rows).
    fn write_filter(&self, verb: &str, filters: &[Expr]) -> Result<Option<Filter>> {
        let schema = self.schema_of_object()?;
        let mut parts = Vec::with_capacity(filters.len());
        for f in filters {
            let translated = to_filter(f, schema);
            let Some(filter) = translated else {
                return Err(Error::Unsupported {
                    feature: format!(
                        "{verb} … WHERE {f}: this condition has no exact QueryAST form, and a write runs only where the driver evaluates its whole condition"
                    ),
                    driver: self.driver.name().to_owned(),
                });
            };
            let mut typed = validate_query(
                &Query::new(&self.object).filter(filter),
                &self.catalog,
                &ResolveContext::now(),
            )?;
            let typed = typed.filter.take().unwrap_or_else(Filter::always);
            let class =
                objectql_planner::classify_filter(&typed, &|c| self.driver.classify(schema, c));
            if class != Pushdown::Exact {
                return Err(Error::Unsupported {
                    feature: format!(
                        "{verb} … WHERE {f}: the driver does not evaluate this condition exactly"
                    ),
                    driver: self.driver.name().to_owned(),
                });
            }
            parts.push(typed);
        }
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Filter::And(parts)),
        })
    }

    fn write_exec(&self, write: Write) -> Arc<dyn ExecutionPlan> {
        Arc::new(WriteExec::new(
            self.datasource.clone(),
            Arc::clone(&self.driver),
            Arc::clone(&self.catalog),
            self.object.clone(),
            write,
            self.options.timeout,
        ))
    }
}

#[async_trait]
impl TableProvider for ObjectTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.arrow)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.pushdown_of(f) {
                Some((_, Pushdown::Exact)) => TableProviderFilterPushDown::Exact,
                Some((_, Pushdown::Inexact)) => TableProviderFilterPushDown::Inexact,
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    /// `INSERT INTO` (appending; `INSERT OVERWRITE` and `REPLACE INTO`
    /// are refused): the rows are validated like any insert through the
    /// engine and go to the driver in one call, all or none.
    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(to_datafusion(Error::Unsupported {
                feature: format!("{insert_op} into `{}`", self.object),
                driver: self.driver.name().to_owned(),
            }));
        }
        Ok(self.write_exec(Write::Insert(input)))
    }

    /// `DELETE FROM … [WHERE …]`, run by the driver's `delete_many`.
    async fn delete_from(
        &self,
        _state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = self
            .write_filter("DELETE", &filters)
            .map_err(to_datafusion)?;
        Ok(self.write_exec(Write::Delete { filter }))
    }

    /// `UPDATE … SET col = <constant>, … [WHERE …]`, run by the driver's
    /// `update_many` with the values validated like any update.
    async fn update(
        &self,
        _state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.schema_of_object().map_err(to_datafusion)?;
        let mut patch = Record::new();
        for (field, expr) in &assignments {
            patch.insert(
                field.clone(),
                assigned_value(expr, field).map_err(to_datafusion)?,
            );
        }
        let patch = validate_record(
            patch,
            schema,
            WriteMode::Update,
            &Path::root("sql").key("set"),
        )
        .map_err(to_datafusion)?;
        let filter = self
            .write_filter("UPDATE", &filters)
            .map_err(to_datafusion)?;
        Ok(self.write_exec(Write::Update { filter, patch }))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.schema_of_object().map_err(to_datafusion)?;
        let caps = self.driver.capabilities();
        let names: Vec<String> = match projection {
            Some(p) => p
                .iter()
                .map(|&i| {
                    self.columns.get(i).cloned().ok_or_else(|| {
                        to_datafusion(Error::internal(format!(
                            "projection index {i} is past the table's columns"
                        )))
                    })
                })
                .collect::<DfResult<_>>()?,
            None => self.columns.clone(),
        };
        let out_schema: SchemaRef = match projection {
            Some(p) => Arc::new(self.arrow.project(p)?),
            None => Arc::clone(&self.arrow),
        };
        let mut pushed = Vec::new();
        let mut exact = true;
        for f in filters {
            match self.pushdown_of(f) {
                Some((filter, class)) => {
                    exact &= class == Pushdown::Exact;
                    pushed.push(filter);
                }
                // DataFusion only hands over the filters this table
                // accepted, and acceptance is deterministic.
                None => {
                    return Err(to_datafusion(Error::internal(format!(
                        "a filter offered to `{}` no longer translates: {f}",
                        self.object
                    ))));
                }
            }
        }
        let mut query = Query::new(&self.object);
        query.filter = match pushed.len() {
            0 => None,
            1 => pushed.pop(),
            _ => Some(Filter::And(pushed)),
        };
        if self.options.pushdown && caps.projection {
            let mut fields: Vec<String> = Vec::with_capacity(names.len());
            for n in &names {
                if !fields.contains(n) {
                    fields.push(n.clone());
                }
            }
            if fields.is_empty() {
                // `COUNT(*)`: the rows, with as little as possible in them.
                fields.push(schema.primary_key.clone());
            }
            query.fields = Some(fields);
        }
        if self.options.pushdown && exact && caps.paging && caps.sorting {
            query.limit = limit.map(|l| u64::try_from(l).unwrap_or(u64::MAX));
        }
        let query =
            validate_query(&query, &self.catalog, &ResolveContext::now()).map_err(to_datafusion)?;
        let estimate = self.estimate().await;
        match self.driver.accepts(&self.catalog, &query) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) if query.filter.is_some() => {
                return self.scan_filtering_locally(state, &names, filters, estimate);
            }
            Err(e) => return Err(to_datafusion(e)),
        }
        // The driver's planner on the pushed filter, when an estimate is
        // wanted at all (a plan without joins marks it unknown up front).
        let planned = match estimate {
            Some(_) => {
                planned_rows(
                    &*self.driver,
                    &self.catalog,
                    &query,
                    self.options.timeout,
                    None,
                )
                .await
            }
            None => None,
        };
        Ok(Arc::new(
            ObjectScanExec::new(
                self.datasource.clone(),
                Arc::clone(&self.driver),
                Arc::clone(&self.catalog),
                query,
                Some(names),
                self.options.timeout,
                out_schema,
            )
            .with_key_reduction(self.options.pushdown)
            .with_estimated_rows(estimate)
            .with_planned_rows(planned),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectql_query_ast::{Field, Value};

    /// A plan without joins marks the estimate unknown without asking; a
    /// later plan with joins on the same (long-lived) table still asks, and
    /// a fresh answer is not overwritten by such a mark.
    #[tokio::test]
    async fn an_unasked_mark_does_not_stand_for_an_estimate() {
        let mut catalog = Catalog::new();
        catalog
            .insert(ObjectSchema::new("t").field(Field::new("n", "integer")))
            .unwrap();
        let catalog = Arc::new(catalog);
        let driver: Arc<dyn Driver> =
            Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://").unwrap());
        driver.sync_schema(catalog.get("t").unwrap()).await.unwrap();
        let rows: Vec<Record> = (0..3)
            .map(|i| Record::from_iter([("n".to_owned(), Value::from(i))]))
            .collect();
        let rows = rows
            .into_iter()
            .map(|r| {
                validate_record(
                    r,
                    catalog.get("t").unwrap(),
                    WriteMode::Insert,
                    &Path::root("rows"),
                )
                .unwrap()
            })
            .collect();
        driver
            .insert(objectql_driver::Cx::new(&catalog), "t", rows)
            .await
            .unwrap();
        let table = ObjectTable::new("default", driver, catalog, "t").unwrap();
        table.mark_unknown();
        assert!(!table.estimates_wanted());
        assert_eq!(table.estimate().await, Some(3));
        assert_eq!(table.fresh_estimate(), Some(3));
        table.mark_unknown();
        assert_eq!(table.fresh_estimate(), Some(3), "the fresh answer stands");
        assert!(table.estimates_wanted());
    }
}
