//! The objectql driver contract.
//!
//! A driver connects objectql to one kind of storage. It is one object-safe
//! async trait, [`Driver`], used as `Arc<dyn Driver>`; what it can do is
//! *data* ([`Capabilities`]), resolved when it connects, plus a
//! per-condition [`Pushdown`] classification the planner asks before pushing
//! a predicate down.
//!
//! # For callers
//! Services do not call drivers directly: the `objectql` crate's `Engine`
//! validates every query against the object schemas, plans it against the
//! driver's capabilities, runs the pushed part on the driver and the residual
//! locally. Every method therefore receives *validated* queries and records.
//!
//! # For implementers
//! Implement [`Driver`]; declare [`Capabilities`] honestly — the conformance
//! suite (`objectql-conformance`) checks claims both ways: a feature you
//! declare must work, a feature you do not declare must fail with
//! [`Error::Unsupported`]. Return [`Error::Driver`] with a classified
//! [`DriverErrorKind`] for backend failures, keeping the client's error as the
//! `source`. Never panic on a backend's answer.
//!
//! ```
//! use objectql_driver::{Capabilities, Feature};
//!
//! let caps = Capabilities::default().with(Feature::Transactions);
//! assert!(caps.has(Feature::Transactions));
//! assert!(!caps.has(Feature::Vectors));
//! ```

mod arrow;
mod capabilities;
mod names;
mod stream;
mod unique;

use async_trait::async_trait;
pub use objectql_query_ast::{
    BoxError, Catalog, DriverErrorKind, Error, Filter, ObjectSchema, Query, Record, Result, Value,
};

pub use crate::arrow::{arrow_data_type, arrow_schema, joined_schema, records_to_batch};
pub use crate::capabilities::{Capabilities, Feature, IsolationLevel, Pushdown};
pub use crate::names::{NameFold, NameLimit, NameRules, RESERVED_PREFIX};
pub use crate::stream::{BatchStream, RowStream, rows_to_stream};
pub use crate::unique::{UniqueKey, check_unique_keys, declared_unique_keys, parse_stored_schema};

/// An open transaction, as the driver identifies it.
///
/// Ids are handed out by [`Driver::begin`] and are only meaningful to the
/// driver that issued them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxId(pub u64);

/// What every call receives besides its own arguments.
#[derive(Debug, Clone, Copy)]
pub struct Cx<'a> {
    /// Every registered object schema (a join or an expand may involve several).
    pub catalog: &'a Catalog,
    /// The transaction the call runs in, if any.
    pub tx: Option<TxId>,
    /// How long the call may take. When it passes, a driver stops the work
    /// on its server (PostgreSQL cancels the backend's query, MySQL kills
    /// it) and the call fails with [`DriverErrorKind::Timeout`]; for a
    /// streaming `find` the limit covers the whole stream. `None`: no limit
    /// beyond the datasource's own. In-process drivers (memory, SQLite)
    /// ignore it.
    pub timeout: Option<std::time::Duration>,
}

impl<'a> Cx<'a> {
    /// A context outside any transaction, without a time limit.
    pub fn new(catalog: &'a Catalog) -> Self {
        Self {
            catalog,
            tx: None,
            timeout: None,
        }
    }

    /// The same context with a time limit.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The schema of `object`, or a configuration error.
    pub fn schema(&self, object: &str) -> Result<&'a ObjectSchema> {
        self.catalog
            .get(object)
            .ok_or_else(|| Error::config(format!("object `{object}` is not registered")))
    }
}

/// Connection pool statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Connections open.
    pub total: u32,
    /// Open and idle.
    pub idle: u32,
    /// Open and in use.
    pub active: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
}

/// How an upsert decides between insert and update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The fields whose values identify an existing record (a unique key).
    pub fields: Vec<String>,
    /// The fields an existing record takes from the upserted one (the fields
    /// the caller gave, less the primary key and the conflict fields).
    pub update_fields: Vec<String>,
}

/// One step of an `EXPLAIN`: where a part of the plan runs, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExplainStep {
    /// `driver:<name>` or `local`.
    pub location: String,
    /// The operation (`scan`, `filter`, `sort`, `aggregate`, `sql`, …).
    pub operation: String,
    /// Details: the pushed filter, the SQL text, the number of bound parameters.
    pub detail: String,
}

impl std::fmt::Debug for dyn Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Driver({})", self.name())
    }
}

/// A storage backend.
///
/// All reads and writes take a [`Cx`] (the catalog and the transaction, if
/// any). Queries and records are already validated by the engine.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// A short name (`memory`, `sqlite`, `postgres`…), used in errors and reports.
    fn name(&self) -> &str;

    /// What this driver can do, resolved at connect time.
    fn capabilities(&self) -> &Capabilities;

    /// Whether this driver can evaluate `condition` on `schema` with exactly
    /// the protocol's semantics. The default trusts [`Capabilities::filters`].
    fn classify(
        &self,
        schema: &ObjectSchema,
        condition: &objectql_query_ast::Condition,
    ) -> Pushdown {
        let _ = (schema, condition);
        if self.capabilities().filters {
            Pushdown::Exact
        } else {
            Pushdown::Unsupported
        }
    }

    /// Whether this driver's reads run `query` as it is: `Ok(())`, or
    /// [`Error::Unsupported`] naming what its backend cannot compute (a
    /// shape its compiler refuses, such as date buckets in a timezone the
    /// backend lacks, or a statement past its bind limit).
    ///
    /// The planner asks this at plan time, before anything runs. A query
    /// refused here is planned again with only its filter pushed and the
    /// rest run locally, then as a plain scan; a refused join shape is cut
    /// into one query per object, joined locally. So it must be pure (no
    /// I/O, cheap) and agree with the reads: a query accepted here must
    /// not fail with `Unsupported` in [`find`](Driver::find),
    /// [`find_arrow`](Driver::find_arrow), [`count`](Driver::count) or
    /// [`explain`](Driver::explain). The conformance suite runs every case
    /// through this decision, so a driver that accepts too much fails
    /// there.
    ///
    /// The default accepts every query its [`Capabilities`] allow.
    fn accepts(&self, catalog: &Catalog, query: &Query) -> Result<()> {
        let _ = (catalog, query);
        Ok(())
    }

    /// Checks that the backend answers.
    async fn health_check(&self) -> Result<()>;

    /// Pool statistics.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }

    /// Closes connections; later calls fail with `ConnectionLost`.
    async fn close(&self) -> Result<()>;

    /// Creates or alters storage for `schema`. Idempotent.
    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()>;

    /// Drops the storage of `object` (no error if it does not exist).
    async fn drop_object(&self, object: &str) -> Result<()>;

    /// Describes an existing table/collection, for external datasources.
    /// `Ok(None)` when it does not exist.
    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>>;

    /// Runs a query (the pushed part of a plan) and streams its rows.
    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream>;

    /// Runs a query and streams Arrow record batches typed from the object
    /// schema. The default converts the row stream in batches of 8192.
    async fn find_arrow(&self, cx: Cx<'_>, query: &Query) -> Result<BatchStream> {
        let schema = crate::arrow::joined_schema(cx.catalog, query)?;
        let rows = self.find(cx, query).await?;
        crate::arrow::batches_from_rows(&schema, query, rows)
    }

    /// Counts the rows matching `filter`.
    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64>;

    /// About how many rows `object` holds, from what the datasource already
    /// knows (its statistics, its metadata): cheap, never a scan of the
    /// table, and possibly stale. `None` when the datasource cannot say
    /// (the default: a driver need not implement it).
    ///
    /// The federation planner uses it to choose a hash join's build side:
    /// the smaller side is built, and its keys narrow the scan of the
    /// other side (see `objectql-federation`). It asks outside any
    /// transaction (`cx.tx` is `None`), so a driver may read its
    /// statistics on any connection.
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let _ = (cx, object);
        Ok(None)
    }

    /// About how many rows `query` (validated) returns, as the
    /// datasource's own planner estimates it without running it
    /// (PostgreSQL: `EXPLAIN`). `None` when the datasource cannot say (the
    /// default, always safe).
    ///
    /// The federation planner asks it while planning, once per scan that
    /// has a filter or joins and sits below a join, and only when
    /// [`Driver::estimated_rows`] gave an estimate for the scan's objects
    /// (a driver that implements only this method is never asked). So:
    /// - it must be cheap and must not run the query; honour `cx.timeout`
    ///   (the planner also gives up after it, or after 5 s without one);
    /// - `cx.tx` is always `None`: use any connection;
    /// - `query` may have joins, grouping, sorting and paging: estimate the
    ///   rows it returns after all of them;
    /// - it may be asked about a query [`Driver::accepts`] refuses;
    /// - an error only means "no estimate": it is logged (debug) and the
    ///   planner carries on without.
    async fn estimated_query_rows(&self, cx: Cx<'_>, query: &Query) -> Result<Option<u64>> {
        let _ = (cx, query);
        Ok(None)
    }

    /// Distinct non-null values of `field` among rows matching `filter`, ascending.
    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>>;

    /// Describes how the driver runs `query`.
    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>>;

    /// Inserts records (all or none); returns them as stored (generated keys included).
    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>>;

    /// Updates one record by primary key; returns it, or `None` if it does not exist.
    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>>;

    /// Updates every record matching `filter`; returns how many.
    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64>;

    /// Inserts each record, or updates the existing one with the same values of
    /// `conflict.fields`. Returns the stored records.
    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>>;

    /// Deletes one record by primary key; `false` if it did not exist.
    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool>;

    /// Deletes every record matching `filter`; returns how many.
    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64>;

    /// Begins a transaction. Drivers without [`Feature::Transactions`] return
    /// [`Error::Unsupported`].
    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        let _ = isolation;
        Err(Error::unsupported("transactions", self.name()))
    }

    /// Commits a transaction.
    async fn commit(&self, tx: TxId) -> Result<()> {
        let _ = tx;
        Err(Error::unsupported("transactions", self.name()))
    }

    /// Rolls a transaction back.
    async fn rollback(&self, tx: TxId) -> Result<()> {
        let _ = tx;
        Err(Error::unsupported("transactions", self.name()))
    }

    /// Called (synchronously, from `Drop`) when a transaction handle is dropped
    /// without commit or rollback: the driver must roll it back, now or soon.
    fn abandon(&self, tx: TxId) {
        let _ = tx;
    }
}

/// A datasource with one database per tenant (database-per-tenant
/// multi-tenancy): the engine asks it for the tenant's driver when a tenant
/// session is made, and hands it every schema registered on the datasource.
#[async_trait]
pub trait TenantSource: Send + Sync + 'static {
    /// A short name, used in errors.
    fn name(&self) -> &str;

    /// The driver of `tenant`'s database (opened and migrated on first use).
    /// A malformed tenant id is a configuration error.
    async fn driver_for(&self, tenant: &str) -> Result<std::sync::Arc<dyn Driver>>;

    /// Records `schema` for every tenant: databases open now are migrated
    /// at once, the others when they are opened.
    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()>;

    /// The naming rules of the tenants' databases (see [`NameRules`]).
    fn name_rules(&self) -> NameRules {
        NameRules::default()
    }

    /// Closes every open tenant database.
    async fn close(&self) -> Result<()>;
}
