//! Sessions and transactions: every read and write goes through here.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use objectql_driver::{
    BatchStream, Conflict, Cx, Driver, ExplainStep, IsolationLevel, Pushdown, RowStream, TxId,
    rows_to_stream,
};
use objectql_planner::eval::{Columns, execute};
use objectql_planner::{Plan, plan};
use objectql_query_ast::{
    Catalog, Error, Filter, ObjectSchema, Op, Path, Query, Record, ResolveContext, Result, Value,
    WriteMode, coerce, validate_query, validate_record,
};
use tracing::Instrument;

use crate::engine::Engine;
use crate::{across, expand};

#[derive(Debug, Clone)]
struct TxBinding {
    datasource: String,
    id: TxId,
}

/// A handle for reads and writes, resolving tokens against one
/// [`ResolveContext`] (clock, timezone, current user and organisation).
#[derive(Debug, Clone)]
pub struct Session {
    engine: Engine,
    ctx: ResolveContext,
    tx: Option<TxBinding>,
    timeout: Option<Duration>,
    tenant: Option<Arc<TenantDrivers>>,
}

/// A tenant session's drivers for the per-tenant datasources.
#[derive(Debug)]
struct TenantDrivers {
    tenant: String,
    drivers: std::collections::HashMap<String, Arc<dyn Driver>>,
}

/// What a write needs: the catalog, the object's schema, its driver and the
/// transaction the write joins (if any).
type WriteTarget = (Arc<Catalog>, ObjectSchema, Arc<dyn Driver>, Option<TxId>);

/// Where a validated query runs.
enum Route {
    /// As one driver query, planned.
    One(Box<Prepared>),
    /// Cut into one query per datasource (or per object the driver does not
    /// join), joined locally.
    Across(Box<Query>),
}

/// The outcome of planning one query.
pub(crate) struct Prepared {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) query: Query,
    pub(crate) plan: Plan,
}

impl Prepared {
    /// The schema of the prepared query's object.
    fn schema(&self) -> Result<&ObjectSchema> {
        self.catalog
            .get(self.query.object.as_deref().unwrap_or_default())
            .ok_or_else(|| Error::internal("prepared query names an unknown object"))
    }
}

impl Session {
    pub(crate) fn new(engine: Engine, ctx: ResolveContext) -> Self {
        Self {
            engine,
            ctx,
            tx: None,
            timeout: None,
            tenant: None,
        }
    }

    pub(crate) fn with_tenant(
        mut self,
        tenant: &str,
        drivers: std::collections::HashMap<String, Arc<dyn Driver>>,
    ) -> Self {
        self.tenant = Some(Arc::new(TenantDrivers {
            tenant: tenant.to_owned(),
            drivers,
        }));
        self
    }

    /// The tenant this session serves, if it was made by
    /// [`Engine::tenant_session`].
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref().map(|t| t.tenant.as_str())
    }

    /// The driver of datasource `name` for this session (its tenant's
    /// database for a per-tenant datasource).
    pub(crate) fn datasource(&self, name: &str) -> Result<Arc<dyn Driver>> {
        if let Some(d) = self.tenant.as_deref().and_then(|t| t.drivers.get(name)) {
            return Ok(Arc::clone(d));
        }
        self.engine.datasource(name)
    }

    /// Every datasource this session reaches, by name: the shared ones,
    /// and its tenant's databases for the per-tenant ones.
    #[cfg_attr(not(feature = "federation"), expect(dead_code))]
    pub(crate) fn datasources(&self) -> Result<Vec<(String, Arc<dyn Driver>)>> {
        let mut all = self.engine.datasources()?;
        if let Some(t) = self.tenant.as_deref() {
            all.extend(t.drivers.iter().map(|(n, d)| (n.clone(), Arc::clone(d))));
        }
        Ok(all)
    }

    /// This session with a time limit on every call it makes: when a call
    /// takes longer, the driver stops the work on its server and the call
    /// fails with a `Timeout` driver error (see [`Cx::timeout`]).
    ///
    /// ```
    /// # let engine = objectql::Engine::new();
    /// let db = engine.default_session().with_timeout(std::time::Duration::from_secs(2));
    /// # let _ = db;
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The time limit of this session's calls, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The context tokens resolve against.
    pub fn context(&self) -> &ResolveContext {
        &self.ctx
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn driver_for(&self, schema: &ObjectSchema) -> Result<(Arc<dyn Driver>, Option<TxId>)> {
        let ds = schema.datasource_name();
        let driver = self.datasource(ds)?;
        let tx = match &self.tx {
            Some(b) if b.datasource == ds => Some(b.id),
            Some(b) => {
                return Err(Error::config(format!(
                    "object `{}` lives in datasource `{ds}`, but this transaction is on `{}`",
                    schema.name, b.datasource
                )));
            }
            None => None,
        };
        Ok((driver, tx))
    }

    /// This session, outside its transaction unless the transaction is on `datasource`.
    pub(crate) fn for_datasource(&self, datasource: &str) -> Session {
        match &self.tx {
            Some(b) if b.datasource != datasource => Session {
                engine: self.engine.clone(),
                ctx: self.ctx.clone(),
                tx: None,
                timeout: self.timeout,
                tenant: self.tenant.clone(),
            },
            _ => self.clone(),
        }
    }

    /// The transaction this session runs in, if any.
    #[cfg_attr(not(feature = "federation"), expect(dead_code))]
    pub(crate) fn tx_id(&self) -> Option<TxId> {
        self.tx.as_ref().map(|b| b.id)
    }

    /// Whether this session runs inside a transaction.
    #[cfg_attr(not(feature = "federation"), expect(dead_code))]
    pub(crate) fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Validates `query` and decides, before anything runs, where it
    /// runs: as one driver query (planned), or cut into one query per
    /// datasource and joined locally ([`across`]) when its joins span
    /// datasources or its driver does not run its joins
    /// ([`Driver::accepts`]).
    fn route(&self, query: &Query) -> Result<Route> {
        let catalog = self.engine.catalog()?;
        let typed = validate_query(query, &catalog, &self.ctx)?;
        expand::check(&typed)?;
        if !typed.joins.is_empty()
            && (across::spans_datasources(&catalog, &typed)
                || !self.joins_accepted(&catalog, &typed, typed.joins.len())?)
        {
            return Ok(Route::Across(Box::new(typed)));
        }
        self.prepare_typed(&catalog, typed)
            .map(|p| Route::One(Box::new(p)))
    }

    /// Whether the driver of a validated query's base object runs the
    /// query's first `n` joins (all on its datasource) in one query.
    pub(crate) fn joins_accepted(
        &self,
        catalog: &Catalog,
        typed: &Query,
        n: usize,
    ) -> Result<bool> {
        if n == 0 {
            return Ok(true);
        }
        let schema = catalog
            .get(typed.object.as_deref().unwrap_or_default())
            .ok_or_else(|| Error::internal("validated query names an unknown object"))?;
        // The datasource's driver, whatever transaction this session holds:
        // the decision is pure, and a cut query runs each group outside a
        // transaction on another datasource.
        let driver = self.datasource(schema.datasource_name())?;
        if !driver.capabilities().joins {
            return Ok(false);
        }
        let mut shape = Query::new(schema.name.clone());
        shape.joins = typed.joins[..n].to_vec();
        match driver.accepts(catalog, &shape) {
            Ok(()) => Ok(true),
            Err(Error::Unsupported { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Validates and plans a query that runs on one datasource.
    pub(crate) fn prepare(&self, query: &Query) -> Result<Prepared> {
        let catalog = self.engine.catalog()?;
        let typed = validate_query(query, &catalog, &self.ctx)?;
        expand::check(&typed)?;
        self.prepare_typed(&catalog, typed)
    }

    /// Plans a validated query that runs on one datasource.
    fn prepare_typed(&self, catalog: &Arc<Catalog>, typed: Query) -> Result<Prepared> {
        let schema = catalog
            .get(typed.object.as_deref().unwrap_or_default())
            .ok_or_else(|| Error::internal("validated query names an unknown object"))?;
        if across::spans_datasources(catalog, &typed) {
            return Err(Error::internal(
                "a join across datasources reached the single-datasource planner",
            ));
        }
        let (driver, _) = self.driver_for(schema)?;
        let mut pushed_query = typed.clone();
        // Expanded lookups need their ids in the rows.
        if let Some(fields) = &mut pushed_query.fields {
            for k in typed.expand.keys() {
                if !fields.contains(k) {
                    fields.push(k.clone());
                }
            }
        }
        pushed_query.expand.clear();
        let classify = |c: &objectql_query_ast::Condition| driver.classify(schema, c);
        let plan = plan(
            &pushed_query,
            schema,
            driver.name(),
            driver.capabilities(),
            &classify,
        )?;
        let plan = accepted_plan(&*driver, catalog, schema, &pushed_query, plan)?;
        Ok(Prepared {
            catalog: Arc::clone(catalog),
            driver,
            query: typed,
            plan,
        })
    }

    /// Runs a prepared query without expand; returns its rows.
    pub(crate) async fn run(&self, p: &Prepared) -> Result<Vec<Record>> {
        self.run_plan(p, p.schema()?, &p.plan).await
    }

    /// The driver context of a prepared query: its catalog, and the
    /// transaction it joins (if any).
    fn cx<'p>(&self, p: &'p Prepared) -> Result<Cx<'p>> {
        let (_, tx) = self.driver_for(p.schema()?)?;
        Ok(Cx {
            catalog: &p.catalog,
            tx,
            timeout: self.timeout,
        })
    }

    async fn run_plan(
        &self,
        p: &Prepared,
        schema: &ObjectSchema,
        plan: &Plan,
    ) -> Result<Vec<Record>> {
        Ok(self.run_plan_counted(p, schema, plan).await?.0)
    }

    /// [`Self::run_plan`], with the number of rows the driver shipped.
    async fn run_plan_counted(
        &self,
        p: &Prepared,
        schema: &ObjectSchema,
        plan: &Plan,
    ) -> Result<(Vec<Record>, usize)> {
        let cx = self.cx(p)?;
        let rows: Vec<Record> = p.driver.find(cx, &plan.pushed).await?.try_collect().await?;
        let shipped = rows.len();
        match &plan.residual {
            None => Ok((rows, shipped)),
            Some(residual) => {
                let columns = pushed_columns(&p.catalog, schema, &plan.pushed)?;
                Ok((run_local(&columns, &rows, residual)?, shipped))
            }
        }
    }

    /// Finds the rows of `query` (with `expand` resolved).
    pub async fn find(&self, query: &Query) -> Result<Vec<Record>> {
        let span = tracing::debug_span!(
            "objectql.find",
            object = query.object.as_deref().unwrap_or_default()
        );
        async { self.find_routed(self.route(query)?).await }
            .instrument(span)
            .await
    }

    /// The rows of a routed query (with `expand` resolved).
    async fn find_routed(&self, route: Route) -> Result<Vec<Record>> {
        let (typed, mut rows) = match route {
            Route::Across(typed) => {
                let rows = Box::pin(across::find(self, &typed)).await?;
                (*typed, rows)
            }
            Route::One(p) => {
                let rows = self.run(&p).await?;
                (p.query, rows)
            }
        };
        if !typed.expand.is_empty() {
            expand::expand(self, &typed, &mut rows).await?;
            if let Some(fields) = &typed.fields {
                // A nearest query's distance stays, whatever the projection.
                let distance = typed.nearest.as_ref().map(|n| n.distance_as.as_str());
                for r in &mut rows {
                    r.retain(|k, _| fields.contains(k) || Some(k.as_str()) == distance);
                }
            }
        }
        Ok(rows)
    }

    /// Streams the rows of `query`. Queries that need local work (a residual
    /// plan or `expand`) are collected first; fully pushed queries stream
    /// straight from the driver.
    pub async fn find_stream(&self, query: &Query) -> Result<RowStream> {
        let route = self.route(query)?;
        if let Route::One(p) = &route
            && p.plan.residual.is_none()
            && p.query.expand.is_empty()
        {
            return p.driver.find(self.cx(p)?, &p.plan.pushed).await;
        }
        // Boxed: the local path does not grow every streaming caller's future.
        Ok(rows_to_stream(Box::pin(self.find_routed(route)).await?))
    }

    /// Streams the rows of `query` as Arrow record batches typed from the
    /// object schema (`expand` is not available in this form).
    pub async fn find_arrow(&self, query: &Query) -> Result<BatchStream> {
        if !query.expand.is_empty() {
            return Err(Error::validation(
                "expand",
                "`expand` is not available for Arrow output",
            ));
        }
        let p = match self.route(query)? {
            Route::One(p) => p,
            Route::Across(typed) => return Box::pin(across::find_arrow(self, &typed)).await,
        };
        if p.plan.residual.is_none() {
            return p.driver.find_arrow(self.cx(&p)?, &p.plan.pushed).await;
        }
        let rows = self.run(&p).await?;
        let schema = objectql_driver::joined_schema(&p.catalog, &p.query)?;
        let batch = objectql_driver::records_to_batch(&schema, &p.query, &rows)?;
        Ok(Box::pin(futures::stream::iter([Ok(batch)])))
    }

    /// The first row of `query`, if any (for a nearest query: the nearest row).
    pub async fn find_one(&self, query: &Query) -> Result<Option<Record>> {
        let mut q = query.clone();
        match &mut q.nearest {
            // `k` is a nearest query's limit.
            Some(n) => n.k = n.k.min(1),
            None => q.limit = Some(1),
        }
        Ok(self.find(&q).await?.into_iter().next())
    }

    /// Runs an aggregate query (same as [`Session::find`]).
    pub async fn aggregate(&self, query: &Query) -> Result<Vec<Record>> {
        if !query.is_aggregate() {
            return Err(Error::validation(
                "aggregations",
                "an aggregate query needs `aggregations` or `groupBy`",
            ));
        }
        self.find(query).await
    }

    /// Counts the rows of `object` matching `filter`.
    pub async fn count(&self, object: &str, filter: Option<Filter>) -> Result<u64> {
        let mut q = Query::new(object);
        q.filter = filter;
        let p = self.prepare(&q)?;
        match &p.plan.residual {
            None => {
                p.driver
                    .count(self.cx(&p)?, object, p.plan.pushed.filter.as_ref())
                    .await
            }
            Some(_) => Ok(self.run(&p).await?.len() as u64),
        }
    }

    /// Distinct non-null values of `field` among rows matching `filter`, ascending.
    pub async fn distinct(
        &self,
        object: &str,
        field: &str,
        filter: Option<Filter>,
    ) -> Result<Vec<Value>> {
        let mut q = Query::new(object).select([field]);
        q.filter = filter;
        let p = self.prepare(&q)?;
        if p.plan.residual.is_none() {
            p.driver
                .distinct(self.cx(&p)?, object, field, p.plan.pushed.filter.as_ref())
                .await
        } else {
            let rows = self.run(&p).await?;
            let columns = pushed_columns(&p.catalog, p.schema()?, &p.plan.pushed)?;
            let dense = dense_rows(&columns, &rows);
            objectql_planner::eval::distinct_values(
                &columns,
                dense.iter().map(Vec::as_slice),
                field,
                None,
            )
        }
    }

    /// Describes where each part of `query` runs.
    pub async fn explain(&self, query: &Query) -> Result<Vec<ExplainStep>> {
        let p = match self.route(query)? {
            Route::One(p) => p,
            Route::Across(typed) => return Box::pin(across::explain(self, &typed)).await,
        };
        let mut steps = p.driver.explain(self.cx(&p)?, &p.plan.pushed).await?;
        steps.extend(p.plan.local_steps());
        for (field, sub) in &p.query.expand {
            steps.push(ExplainStep {
                location: "engine".into(),
                operation: "expand".into(),
                detail: format!(
                    "`{field}` → `{}`: one batched `$in` query",
                    sub.object.as_deref().unwrap_or_default()
                ),
            });
        }
        Ok(steps)
    }

    /// [`Self::explain`], after running the query (`expand` aside): each
    /// datasource query's step is followed by the rows its driver shipped,
    /// and a join across datasources on DataFusion shows its tree with the
    /// rows each operator produced and the join keys each scan was sent.
    /// The last step says how many rows the query returned.
    pub async fn explain_analyze(&self, query: &Query) -> Result<Vec<ExplainStep>> {
        let (mut steps, returned) = match self.route(query)? {
            Route::Across(typed) => Box::pin(across::explain_analyze(self, &typed)).await?,
            Route::One(p) => {
                let mut steps = p.driver.explain(self.cx(&p)?, &p.plan.pushed).await?;
                let (rows, shipped) = self.run_plan_counted(&p, p.schema()?, &p.plan).await?;
                steps.push(ExplainStep {
                    location: format!("driver:{}", p.driver.name()),
                    operation: "rows shipped".into(),
                    detail: shipped.to_string(),
                });
                steps.extend(p.plan.local_steps());
                (steps, rows.len())
            }
        };
        steps.push(ExplainStep {
            location: "engine".into(),
            operation: "rows returned".into(),
            detail: returned.to_string(),
        });
        Ok(steps)
    }

    fn write_target(&self, object: &str) -> Result<WriteTarget> {
        let catalog = self.engine.catalog()?;
        let schema = catalog
            .get(object)
            .cloned()
            .ok_or_else(|| Error::validation("object", format!("unknown object `{object}`")))?;
        let (driver, tx) = self.driver_for(&schema)?;
        Ok((catalog, schema, driver, tx))
    }

    /// Inserts one record; returns it as stored (generated id, defaults).
    pub async fn insert(&self, object: &str, record: Record) -> Result<Record> {
        self.insert_many(object, vec![record])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("insert returned no row"))
    }

    /// Inserts records, all or none.
    pub async fn insert_many(&self, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        let (catalog, schema, driver, tx) = self.write_target(object)?;
        let typed = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                validate_record(r, &schema, WriteMode::Insert, &Path::root("rows").index(i))
            })
            .collect::<Result<Vec<_>>>()?;
        driver
            .insert(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                typed,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))
    }

    fn typed_id(schema: &ObjectSchema, id: &Value) -> Result<Value> {
        let st = schema
            .primary_key_field()
            .ok_or_else(|| Error::internal("schema without primary key field"))?
            .storage_type()?;
        coerce(id.clone(), st, &Path::root("id"))
    }

    /// Updates one record by id; `NotFound` if it does not exist.
    pub async fn update(
        &self,
        object: &str,
        id: impl Into<Value>,
        patch: Record,
    ) -> Result<Record> {
        let id = id.into();
        let (catalog, schema, driver, tx) = self.write_target(object)?;
        let id = Self::typed_id(&schema, &id)?;
        let patch = validate_record(patch, &schema, WriteMode::Update, &Path::root("data"))?;
        driver
            .update(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                &id,
                patch,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))?
            .ok_or_else(|| Error::NotFound {
                object: object.to_owned(),
                id: id.to_string(),
            })
    }

    /// The filter a driver can run for a write: the pushed part when the whole
    /// filter pushes, otherwise the primary keys of the matching rows.
    async fn write_filter(&self, object: &str, filter: Filter) -> Result<Filter> {
        let q = Query::new(object).filter(filter);
        let mut p = self.prepare(&q)?;
        if p.plan.residual.is_none() {
            return Ok(p.plan.pushed.filter.take().unwrap_or_else(Filter::always));
        }
        let pk = p.schema()?.primary_key.clone();
        let ids: Vec<Value> = self
            .run(&p)
            .await?
            .into_iter()
            .filter_map(|mut r| r.shift_remove(&pk))
            .collect();
        Ok(Filter::cond(pk, Op::In(ids)))
    }

    /// Updates every record matching `filter`; returns how many.
    pub async fn update_many(&self, object: &str, filter: Filter, patch: Record) -> Result<u64> {
        let (catalog, schema, driver, tx) = self.write_target(object)?;
        let patch = validate_record(patch, &schema, WriteMode::Update, &Path::root("data"))?;
        let filter = self.write_filter(object, filter).await?;
        driver
            .update_many(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                &filter,
                patch,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))
    }

    /// Inserts each record, or updates the existing record with the same
    /// values of `conflict_fields` (default: the primary key).
    ///
    /// The conflict fields must be the primary key, a unique field, or the
    /// fields of a unique index (in any order); anything else is a
    /// validation error at `conflict`, as is a record whose conflict value
    /// is NULL or missing (at `rows[i].<field>`).
    pub async fn upsert(
        &self,
        object: &str,
        records: Vec<Record>,
        conflict_fields: &[&str],
    ) -> Result<Vec<Record>> {
        let (catalog, schema, driver, tx) = self.write_target(object)?;
        let fields: Vec<String> = if conflict_fields.is_empty() {
            vec![schema.primary_key.clone()]
        } else {
            conflict_fields.iter().map(|f| (*f).to_owned()).collect()
        };
        for (i, f) in fields.iter().enumerate() {
            if schema.get(f).is_none() {
                return Err(Error::validation(
                    format!("conflict[{i}]"),
                    format!("unknown field `{f}`"),
                ));
            }
        }
        // The conflict target must be something the backend keeps unique:
        // MariaDB's ON DUPLICATE KEY UPDATE inserted a duplicate when it was
        // not, PostgreSQL refused the statement and memory matched a row.
        let is_key = |fs: &[String]| {
            let mut fs: Vec<&str> = fs.iter().map(String::as_str).collect();
            fs.sort_unstable();
            fs.dedup();
            match fs.as_slice() {
                [one]
                    if *one == schema.primary_key || schema.get(one).is_some_and(|f| f.unique) =>
                {
                    true
                }
                _ => schema.indexes.iter().any(|ix| {
                    let mut cols: Vec<&str> = ix.fields.iter().map(String::as_str).collect();
                    cols.sort_unstable();
                    ix.unique && cols == fs
                }),
            }
        };
        if !is_key(&fields) {
            return Err(Error::validation(
                "conflict",
                format!(
                    "upsert's conflict fields [{}] must be the primary key, a unique field or the fields of a unique index of `{object}`",
                    fields.join(", ")
                ),
            ));
        }
        let mut update_fields: Vec<String> = Vec::new();
        for r in &records {
            for k in r.keys() {
                if *k != schema.primary_key && !fields.contains(k) && !update_fields.contains(k) {
                    update_fields.push(k.clone());
                }
            }
        }
        let typed = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                validate_record(r, &schema, WriteMode::Insert, &Path::root("rows").index(i))
            })
            .collect::<Result<Vec<_>>>()?;
        // A NULL (or missing) conflict key matches nothing in SQL's unique
        // indexes, so backends disagreed: SQL inserted a duplicate, MongoDB
        // updated another record. One rule everywhere: refused.
        for (i, r) in typed.iter().enumerate() {
            for f in &fields {
                if r.get(f).is_none_or(Value::is_null) {
                    return Err(Path::root("rows").index(i).key(f).err(format!(
                        "upsert needs a non-null value for conflict field `{f}` (a NULL key matches no record)"
                    )));
                }
            }
        }
        let conflict = Conflict {
            fields,
            update_fields,
        };
        driver
            .upsert(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                typed,
                &conflict,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))
    }

    /// Deletes one record by id; `false` if it did not exist.
    pub async fn delete(&self, object: &str, id: impl Into<Value>) -> Result<bool> {
        let id = id.into();
        let (catalog, schema, driver, tx) = self.write_target(object)?;
        let id = Self::typed_id(&schema, &id)?;
        driver
            .delete(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                &id,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))
    }

    /// Deletes every record matching `filter`; returns how many.
    pub async fn delete_many(&self, object: &str, filter: Filter) -> Result<u64> {
        let (catalog, _, driver, tx) = self.write_target(object)?;
        let filter = self.write_filter(object, filter).await?;
        driver
            .delete_many(
                Cx {
                    catalog: &catalog,
                    tx,
                    timeout: self.timeout,
                },
                object,
                &filter,
            )
            .await
            .map_err(|e| write_outcome(e, tx.is_some()))
    }

    /// Begins a transaction on `datasource`. Reads and writes through the
    /// returned handle run inside it; dropping it without `commit` rolls back.
    pub async fn begin(&self, datasource: &str, isolation: IsolationLevel) -> Result<Transaction> {
        if self.tx.is_some() {
            return Err(Error::plan(
                "nested transactions are not supported; commit or roll back first",
            ));
        }
        let driver = self.datasource(datasource)?;
        let id = driver.begin(isolation).await?;
        let mut session = self.clone();
        session.tx = Some(TxBinding {
            datasource: datasource.to_owned(),
            id,
        });
        Ok(Transaction {
            session,
            driver,
            id,
            open: true,
        })
    }
}

/// An open transaction on one datasource.
///
/// It dereferences to a [`Session`], so every read and write is available;
/// they all run inside the transaction. Dropping it without
/// [`Transaction::commit`] rolls it back.
#[derive(Debug)]
pub struct Transaction {
    session: Session,
    driver: Arc<dyn Driver>,
    id: TxId,
    open: bool,
}

impl Transaction {
    /// Commits. On a `SerializationFailure` (see `Error::is_retryable`) run the
    /// whole transaction again.
    ///
    /// A commit cut off by a timeout or a lost connection may have been
    /// applied: it fails with `OutcomeUnknown`, which is not retryable.
    ///
    /// Calls on a transaction run one at a time: `commit` while one of its
    /// streams is still alive fails at once with `Busy` (and the
    /// transaction is rolled back once the stream is dropped).
    pub async fn commit(mut self) -> Result<()> {
        self.open = false;
        let result = self.driver.commit(self.id).await;
        if result.is_err() {
            // Whatever is left of it (a transaction still in use) is
            // rolled back, never left open.
            self.driver.abandon(self.id);
        }
        result.map_err(Error::into_write_outcome)
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> Result<()> {
        self.open = false;
        let result = self.driver.rollback(self.id).await;
        if result.is_err() {
            self.driver.abandon(self.id);
        }
        result
    }
}

impl std::ops::Deref for Transaction {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.open {
            self.driver.abandon(self.id);
        }
    }
}

/// Dense rows of `records` in `columns` order (absent keys are NULL).
pub(crate) fn dense_rows(columns: &Columns, records: &[Record]) -> Vec<Vec<Value>> {
    records
        .iter()
        .map(|r| {
            columns
                .names()
                .iter()
                .map(|n| r.get(n).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect()
}

/// The columns of a pushed query that projects nothing: every stored field of
/// the object, then `alias.field` for every field of every join.
/// The plan the driver accepts ([`Driver::accepts`]), decided before
/// anything runs: `plan` itself; else the query's filter pushed and the
/// rest run locally (the driver refused the pushed query's shape, such as
/// date buckets in a timezone its backend lacks); else a plain scan with
/// everything local (it refused the filter too: a statement past the
/// backend's bind limit). `Unsupported` when it refuses even the scan.
fn accepted_plan(
    driver: &dyn Driver,
    catalog: &Catalog,
    schema: &ObjectSchema,
    query: &Query,
    plan: Plan,
) -> Result<Plan> {
    let refused = match driver.accepts(catalog, &plan.pushed) {
        Ok(()) => return Ok(plan),
        Err(e @ Error::Unsupported { .. }) => e,
        Err(e) => return Err(e),
    };
    let classify = |c: &objectql_query_ast::Condition| driver.classify(schema, c);
    let nothing = |_: &objectql_query_ast::Condition| Pushdown::Unsupported;
    let caps = driver.capabilities();
    let mut tried = vec![plan.pushed];
    for next in [
        objectql_planner::plan_without_shape(query, caps, &classify),
        objectql_planner::plan_without_shape(query, caps, &nothing),
    ] {
        if tried.contains(&next.pushed) {
            continue;
        }
        match driver.accepts(catalog, &next.pushed) {
            Ok(()) => {
                tracing::debug!(
                    refused = %refused,
                    "the driver refused the pushed query; the rest runs locally"
                );
                return Ok(next);
            }
            Err(Error::Unsupported { .. }) => tried.push(next.pushed),
            Err(e) => return Err(e),
        }
    }
    Err(refused)
}

fn pushed_columns(catalog: &Catalog, schema: &ObjectSchema, pushed: &Query) -> Result<Columns> {
    let stored = |s: &ObjectSchema| -> Vec<String> {
        s.fields
            .iter()
            .filter(|(_, f)| {
                f.storage_type()
                    .is_ok_and(|st| st != objectql_query_ast::StorageType::Virtual)
            })
            .map(|(n, _)| n.clone())
            .collect()
    };
    let mut names = stored(schema);
    for j in &pushed.joins {
        let other = catalog
            .get(&j.object)
            .ok_or_else(|| Error::internal("validated join names an unknown object"))?;
        names.extend(
            stored(other)
                .into_iter()
                .map(|n| format!("{}.{n}", j.alias)),
        );
    }
    Ok(Columns::new(names))
}

/// Runs the residual part of a plan over the pushed part's rows.
fn run_local(columns: &Columns, rows: &[Record], residual: &Query) -> Result<Vec<Record>> {
    let dense = dense_rows(columns, rows);
    let rel = execute(columns, dense.iter().map(Vec::as_slice), residual)?;
    let out_names = rel.columns.names().to_vec();
    Ok(rel
        .rows
        .into_iter()
        .map(|row| out_names.iter().cloned().zip(row).collect())
        .collect())
}

/// A write's error as its caller must see it: outside a transaction, a
/// `Timeout` or `ConnectionLost` may hide an applied write, so it is
/// `OutcomeUnknown` (never retryable). Inside one, the transaction is
/// closed and cannot commit, so retrying the whole transaction is safe and
/// the error keeps its kind.
fn write_outcome(e: Error, in_tx: bool) -> Error {
    if in_tx { e } else { e.into_write_outcome() }
}
