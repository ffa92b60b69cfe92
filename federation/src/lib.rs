//! # objectql-federation
//!
//! Query federation on Apache DataFusion: every object of every datasource
//! is a DataFusion table ([`ObjectTable`]), each datasource a schema of one
//! catalog ([`ObjectCatalog`]), so one SQL statement can join an object in
//! SQLite with one in PostgreSQL, MongoDB or memory.
//!
//! Each table pushes what its driver can do *with the protocol's meaning*:
//! filters (translated from DataFusion's three-valued SQL into QueryAST,
//! see [`to_filter`], and classified by the driver), the projection, and
//! the limit when every filter is exact. A federation's contexts also
//! push whole single-datasource subtrees (joins, filters, grouping, sort,
//! paging) down as one driver query ([`PushSubtrees`]), after regrouping
//! inner joins so that the tables of one datasource join each other first
//! ([`ClusterJoins`]), and send a hash join's build-side keys to the scan
//! of the other side when it starts ([`Federation::with_join_key_limit`];
//! a key list past the driver's bind limit goes in chunks, one driver
//! query each). Every decision asks the driver
//! at plan time (`Driver::accepts`, `Driver::classify`). DataFusion runs
//! the rest (joins across datasources, what a driver cannot evaluate
//! exactly) and streams the driver's Arrow batches through; no table is
//! collected into memory by a scan.
//!
//! With the `ballista` feature the same SQL runs on Apache Ballista (see
//! the `distributed` module): plans are serialized with an object codec,
//! and each node opens its own drivers from the datasource URLs.
//!
//! ```
//! use std::sync::Arc;
//! use objectql_federation::Federation;
//! use objectql_query_ast::{Catalog, Field, ObjectSchema, Record, Value};
//! use objectql_driver::{Cx, Driver};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut catalog = Catalog::new();
//! catalog.insert(ObjectSchema::new("city").field(Field::new("name", "text")).datasource("a"))?;
//! catalog.insert(
//!     ObjectSchema::new("person")
//!         .field(Field::new("name", "text"))
//!         .field(Field::new("city", "lookup").reference("city"))
//!         .datasource("b"),
//! )?;
//! let a: Arc<dyn Driver> = Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://")?);
//! let b: Arc<dyn Driver> = Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://")?);
//! for s in catalog.iter() {
//!     if s.datasource_name() == "a" { a.sync_schema(s).await? } else { b.sync_schema(s).await? }
//! }
//! let rec = |pairs: &[(&str, &str)]| -> Record {
//!     pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect()
//! };
//! a.insert(Cx::new(&catalog), "city", vec![rec(&[("id", "c1"), ("name", "Lyon")])]).await?;
//! b.insert(Cx::new(&catalog), "person", vec![rec(&[("id", "p1"), ("name", "Ada"), ("city", "c1")])]).await?;
//!
//! let fed = Federation::new(Arc::new(catalog)).datasource("a", a).datasource("b", b);
//! let rows = fed
//!     .sql_rows("SELECT p.name, c.name AS city FROM b.person p JOIN a.city c ON p.city = c.id")
//!     .await?;
//! assert_eq!(rows[0]["city"], Value::from("Lyon"));
//! # Ok::<(), objectql_query_ast::Error>(())
//! # }).unwrap();
//! ```

mod catalog;
mod cluster;
mod conform;
#[cfg(feature = "ballista")]
pub mod distributed;
mod error;
mod exec;
mod explain;
mod grouped;
pub mod joined;
pub mod lower;
mod source;
mod subtree;
mod table;
mod translate;
mod value;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};
use objectql_driver::{BatchStream, Driver};
use objectql_query_ast::{Catalog, Error, Record, Result, Value};

pub use crate::catalog::{DatasourceSchema, ObjectCatalog};
pub use crate::cluster::ClusterJoins;
#[cfg(feature = "ballista")]
pub use crate::distributed::{Distributed, ObjectCodec, OpenDriver};
pub use crate::error::from_datafusion;
pub use crate::exec::{GuardJoinKeys, ObjectScanExec};
pub use crate::joined::{JoinedQuery, Source};
pub use crate::subtree::PushSubtrees;
pub use crate::table::{ObjectTable, ScanOptions};
pub use crate::translate::{scalar_to_value, to_filter};
pub use crate::value::batches_to_records;
pub use crate::write::WriteExec;
/// The DataFusion this crate is built on (55), for users who build their
/// own `SessionContext` around [`ObjectTable`]s.
pub use datafusion;

/// The name of the catalog [`Federation::context`] registers.
pub const CATALOG: &str = "objectql";

/// Every registered object of a set of datasources, queryable with SQL.
///
/// A federation is cheap to make (it holds `Arc`s) and immutable: it sees
/// the objects of the catalog it was made from.
#[derive(Debug, Clone)]
pub struct Federation {
    catalog: Arc<Catalog>,
    sources: BTreeMap<String, Arc<dyn Driver>>,
    /// The URL each datasource was opened from, where known.
    urls: BTreeMap<String, String>,
    options: ScanOptions,
    join_key_limit: usize,
}

/// The most distinct join keys a hash join's build side sends to a scan
/// of another datasource as a key list, by default (see
/// [`Federation::with_join_key_limit`]).
pub const DEFAULT_JOIN_KEY_LIMIT: usize = 100_000;

impl Federation {
    /// A federation over the objects of `catalog`; add their datasources
    /// with [`Federation::datasource`].
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            sources: BTreeMap::new(),
            urls: BTreeMap::new(),
            options: ScanOptions::default(),
            join_key_limit: DEFAULT_JOIN_KEY_LIMIT,
        }
    }

    /// The same federation sending at most `limit` distinct join keys from
    /// a hash join's build side to the scan on its other side, as an `$in`
    /// its driver runs (semi-join reduction; default
    /// [`DEFAULT_JOIN_KEY_LIMIT`]). With more keys only their bounds are
    /// sent; 0 sends none. Off with pushdown off. A list longer than one
    /// statement of the driver can bind (SQLite: 16,383 values; MySQL:
    /// 32,767; PostgreSQL binds text and integer keys as one array) is cut
    /// into chunks of a quarter of its bind limit, one driver query each.
    pub fn with_join_key_limit(mut self, limit: usize) -> Self {
        self.join_key_limit = limit;
        self
    }

    /// Adds datasource `name`, served by `driver`. Its objects become the
    /// tables of schema `name`.
    pub fn datasource(mut self, name: impl Into<String>, driver: Arc<dyn Driver>) -> Self {
        self.sources.insert(name.into(), driver);
        self
    }

    /// Records the URL datasource `name`'s driver was opened from. A plan
    /// run beyond this process (feature `ballista`) carries it, so that
    /// each node opens its own driver; nothing else reads it. The URL
    /// travels inside the plan: credentials in it reach every node.
    pub fn with_url(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.urls.insert(name.into(), url.into());
        self
    }

    /// The same federation with every table scanning under `options`.
    pub fn with_options(mut self, options: ScanOptions) -> Self {
        self.options = options;
        self
    }

    /// The same federation with pushdown on or off (see [`ScanOptions::pushdown`]).
    pub fn with_pushdown(mut self, pushdown: bool) -> Self {
        self.options.pushdown = pushdown;
        self
    }

    /// The same federation with a time limit on every driver call.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// The catalog of every object whose datasource this federation has.
    pub fn catalog_provider(&self) -> Result<ObjectCatalog> {
        let mut tables = Vec::new();
        for schema in self.catalog.iter() {
            let ds = schema.datasource_name();
            if let Some(driver) = self.sources.get(ds) {
                tables.push(
                    ObjectTable::new(
                        ds,
                        Arc::clone(driver),
                        Arc::clone(&self.catalog),
                        &schema.name,
                    )?
                    .with_options(self.options.clone()),
                );
            }
        }
        Ok(ObjectCatalog::new(tables))
    }

    /// A DataFusion context whose default catalog is [`CATALOG`], with one
    /// schema per datasource (`default` is the default schema when there
    /// is one) and `information_schema` on.
    pub fn context(&self) -> Result<SessionContext> {
        let ctx = self.bare_context();
        ctx.register_catalog(CATALOG, Arc::new(self.catalog_provider()?));
        Ok(ctx)
    }

    /// A context configured as [`Federation::context`]'s, without the
    /// catalog of tables (a QueryAST plan brings its own scans).
    fn bare_context(&self) -> SessionContext {
        SessionContext::new_with_state(self.state(self.configured(SessionConfig::new())))
    }

    /// `config` with this federation's settings: the default catalog and
    /// schema, `information_schema`, and join key pushdown.
    fn configured(&self, config: SessionConfig) -> SessionConfig {
        let default_schema = if self.sources.contains_key("default") || self.sources.is_empty() {
            "default".to_owned()
        } else {
            self.sources.keys().next().cloned().unwrap_or_default()
        };
        let mut config = config
            .with_default_catalog_and_schema(CATALOG, default_schema)
            .with_information_schema(true);
        let optimizer = &mut config.options_mut().optimizer;
        // DataFusion's hash joins hand their build side's keys to the
        // probe side's scan, which sends them to its driver.
        optimizer.enable_join_dynamic_filter_pushdown =
            self.options.pushdown && self.join_key_limit > 0;
        optimizer.hash_join_inlist_pushdown_max_distinct_values = self.join_key_limit;
        optimizer.hash_join_inlist_pushdown_max_size = optimizer
            .hash_join_inlist_pushdown_max_size
            .max(self.join_key_limit.saturating_mul(256));
        // One build side per join (a scan is one partition anyway): its
        // dynamic filter is then plain bounds and keys, which translate;
        // a partitioned join's is a `CASE` over hash partitions.
        optimizer.repartition_joins = !self.options.pushdown;
        config
    }

    /// A session state on `config` with this federation's optimizer rules.
    fn state(&self, config: SessionConfig) -> SessionState {
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(GuardJoinKeys));
        if self.options.pushdown {
            builder = builder
                .with_optimizer_rule(Arc::new(ClusterJoins))
                .with_optimizer_rule(Arc::new(PushSubtrees));
        }
        builder.build()
    }

    /// Plans `sql` (a query: no DDL, DML or `SET` statements).
    ///
    /// The row estimates of the tables it reads are fetched here, before
    /// DataFusion optimizes the plan: [`ClusterJoins`] orders inner joins
    /// by them.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        planned(&self.context()?, sql, self.options.pushdown).await
    }

    /// Runs one `INSERT`, `UPDATE` or `DELETE` statement and returns how
    /// many rows it wrote.
    ///
    /// - `INSERT INTO ds.object (cols) VALUES … | SELECT …` validates every
    ///   row like an insert through the engine (ids generated, defaults
    ///   applied; a NULL counts as an omitted column) and inserts them in
    ///   one driver call, all or none. The `SELECT` may read any datasource.
    /// - `UPDATE ds.object SET col = <constant>, … [WHERE …]` and
    ///   `DELETE FROM ds.object [WHERE …]` run as the driver's
    ///   `update_many` / `delete_many`. Their `WHERE` must translate into
    ///   QueryAST with SQL's meaning and be evaluated exactly by the driver,
    ///   and may name only the table's own columns (no subqueries or
    ///   joins): otherwise the statement is refused with `Unsupported`.
    ///
    /// The writes run outside any transaction. DDL, `COPY`, `SET`,
    /// `INSERT OVERWRITE`, `TRUNCATE` and `MERGE` are refused.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(true)
            .with_allow_statements(false);
        let df = self
            .context()?
            .sql_with_options(sql, options)
            .await
            .map_err(from_datafusion)?;
        check_write(df.logical_plan())?;
        let batches = df.collect().await.map_err(from_datafusion)?;
        let counts = batches_to_records(&batches)?;
        match counts.first().and_then(|r| r.get("count")) {
            Some(Value::Int(n)) => {
                u64::try_from(*n).map_err(|_| Error::internal("a write reported a negative count"))
            }
            _ => Err(Error::internal("a write reported no count")),
        }
    }

    /// Runs `sql` and returns its Arrow batches.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.plan(sql)
            .await?
            .collect()
            .await
            .map_err(from_datafusion)
    }

    /// Runs `sql` and streams its Arrow batches; an error in the middle of
    /// the stream (a driver failing) is an item of the stream.
    pub async fn sql_stream(&self, sql: &str) -> Result<BatchStream> {
        let stream = self
            .plan(sql)
            .await?
            .execute_stream()
            .await
            .map_err(from_datafusion)?;
        Ok(Box::pin(stream.map(|b| b.map_err(from_datafusion))))
    }

    /// Runs `sql` and returns its rows.
    pub async fn sql_rows(&self, sql: &str) -> Result<Vec<Record>> {
        let batches: Vec<RecordBatch> = self.sql_stream(sql).await?.try_collect().await?;
        batches_to_records(&batches)
    }

    /// One tree describing how `sql` runs: every node is a DataFusion
    /// operator or `driver:<name>`, a driver node shows the query pushed to
    /// it and what its driver makes of it (the SQL text and its parameter
    /// count, or the pipeline). With `analyze`, the statement runs and each
    /// node shows its metrics, a driver node the exact number of rows its
    /// datasource shipped (`rows shipped: N`; DataFusion rounds
    /// `output_rows` from 1,000 on) and the join keys it was sent.
    pub async fn explain(&self, sql: &str, analyze: bool) -> Result<String> {
        Self::explain_frame(self.plan(sql).await?, analyze).await
    }

    /// [`Federation::explain`] of a planned query (a [`Federation::plan`]
    /// or a [`Federation::joined`]).
    pub async fn explain_frame(df: DataFrame, analyze: bool) -> Result<String> {
        if analyze {
            return Ok(Self::explain_frame_counted(df).await?.0);
        }
        let plan = df.create_physical_plan().await.map_err(from_datafusion)?;
        explain::tree(&plan, false).await
    }

    /// [`Self::explain_frame`] with `analyze`: the tree after running the
    /// plan, and the number of rows it returned.
    pub async fn explain_frame_counted(df: DataFrame) -> Result<(String, usize)> {
        let task = Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await.map_err(from_datafusion)?;
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task)
            .await
            .map_err(from_datafusion)?;
        let returned = batches.iter().map(RecordBatch::num_rows).sum();
        Ok((explain::tree(&plan, true).await?, returned))
    }
}

/// Refuses a DML plan [`Federation::execute`] must not run: anything but
/// `INSERT` (appending), `UPDATE` and `DELETE`, and an `UPDATE` or
/// `DELETE` whose rows depend on anything but the target table's own
/// columns (a subquery, a join, `UPDATE … FROM`): DataFusion hands the
/// table only the conditions on its own columns, so running such a
/// statement would write to more rows than it names.
fn check_write(plan: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, WriteOp};
    let LogicalPlan::Dml(dml) = plan else {
        return Err(Error::validation(
            "sql",
            "`execute` runs one INSERT, UPDATE or DELETE statement; use `sql` for queries",
        ));
    };
    match dml.op {
        WriteOp::Insert(_) => return Ok(()),
        WriteOp::Update | WriteOp::Delete => {}
        ref other => {
            return Err(Error::validation(
                "sql",
                format!("`{other}` statements are not available through SQL"),
            ));
        }
    }
    let mut bad: Option<String> = None;
    dml.input
        .apply(|node| {
            match node {
                LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::SubqueryAlias(_) => {}
                other => {
                    bad = Some(format!("a `{}` step", other.display()));
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
            node.apply_expressions(|e| {
                if e.exists(|x| {
                    Ok(matches!(
                        x,
                        Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_)
                    ))
                })? {
                    bad = Some(format!("the subquery in `{e}`"));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
        .map_err(from_datafusion)?;
    match bad {
        Some(what) => Err(Error::Unsupported {
            feature: format!(
                "{} on `{}` with {what}: an UPDATE or DELETE through SQL may only name the target table's own columns",
                dml.op, dml.table_name
            ),
            driver: "federation".into(),
        }),
        None => Ok(()),
    }
}

/// `sql` (a query) planned in `ctx`; with `pushdown`, the row estimates
/// of the tables it reads fetched for [`ClusterJoins`] first.
async fn planned(ctx: &SessionContext, sql: &str, pushdown: bool) -> Result<DataFrame> {
    let frame = ctx
        .sql_with_options(sql, read_only())
        .await
        .map_err(from_datafusion)?;
    if pushdown {
        table::fetch_estimates(frame.logical_plan()).await;
    }
    Ok(frame)
}

/// What [`Federation::sql`] accepts: queries only. DDL (`CREATE EXTERNAL
/// TABLE` would read local files), DML (`COPY … TO` would write them) and
/// `SET` are refused.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}
