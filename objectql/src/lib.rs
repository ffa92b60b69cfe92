//! # objectql
//!
//! Pluggable storage drivers and query federation. A service describes the
//! data it wants once, as a backend-neutral [`Query`]; the engine validates
//! it against the object schemas, plans it against the capabilities of the
//! datasource's driver, pushes down everything the backend can do *with the
//! same meaning*, and runs the rest locally.
//!
//! ```
//! use objectql::{Engine, Query, field, record};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let engine = Engine::new();
//! engine.add_datasource("default", "memory://").await?;
//! engine
//!     .register_json(&serde_json::json!({
//!         "name": "task",
//!         "fields": {"title": {"type": "text", "required": true}, "priority": {"type": "integer"}}
//!     }))
//!     .await?;
//!
//! let db = engine.default_session();
//! db.insert("task", record! {"title" => "write docs", "priority" => 2}).await?;
//! db.insert("task", record! {"title" => "ship", "priority" => 5}).await?;
//!
//! let urgent = db.find(&Query::new("task").filter(field("priority").gte(3))).await?;
//! assert_eq!(urgent.len(), 1);
//!
//! // The same query as JSON (the ObjectStack wire format).
//! let q = Query::parse(r#"{"object": "task", "where": ["priority", "<", 3], "fields": ["title"]}"#)?;
//! assert_eq!(db.find(&q).await?[0]["title"], "write docs".into());
//! # Ok::<(), objectql::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//! - `memory` (default): the in-memory reference driver, `memory://`.
//! - `sqlite` (default): the SQLite driver, `sqlite://path.db`, `sqlite::memory:`.
//! - `postgres`: the PostgreSQL driver, `postgres://user@host:5432/db`.
//! - `mysql`: the MySQL/MariaDB driver, `mysql://user@host:3306/db` (or `mariadb://`).
//! - `turso`: the Turso/libSQL driver — `libsql://db-org.turso.io?auth_token=…`,
//!   `http(s)://host` (remote), `libsql:file:app.db`, `libsql::memory:`, and
//!   embedded replicas `libsql:file:replica.db?sync_url=…`; plus
//!   `TenantRouter` for a database per tenant ([`Engine::tenant_session`]).
//! - `mongo`: the MongoDB driver — `mongodb://host:27017/db` (or
//!   `mongodb+srv://`), queries compiled to aggregation pipelines.
//! - `federation`: SQL over every datasource on Apache DataFusion
//!   ([`Session::sql`], [`Engine::sql`]): each object is a DataFusion
//!   table that pushes filters, projections and limits to its driver with
//!   the protocol's meaning; DataFusion joins across datasources.
//! - `ballista`: the same SQL on Apache Ballista, in-process (standalone)
//!   or across machines (`federation::distributed`).
//!
//! QueryAST `joins` across datasources need no feature: see
//! [`Engine::join_key_limit`] for how their driver queries are narrowed.

mod across;
mod engine;
mod expand;
#[cfg(feature = "federation")]
mod joined;
mod session;
#[cfg(feature = "federation")]
mod sql;

pub use engine::{DEFAULT_JOIN_KEY_LIMIT, DriverFactory, Engine};
pub use objectql_driver::{
    BatchStream, Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel,
    PoolStats, Pushdown, RowStream, TenantSource, TxId,
};
#[cfg(feature = "memory")]
pub use objectql_driver_memory::{MemoryDriver, MemoryOptions};
#[cfg(feature = "mongo")]
pub use objectql_driver_mongo::MongoDriver;
#[cfg(feature = "mysql")]
pub use objectql_driver_mysql::{MySqlDriver, MySqlOptions};
#[cfg(feature = "postgres")]
pub use objectql_driver_postgres::{PostgresDriver, PostgresOptions};
#[cfg(feature = "sqlite")]
pub use objectql_driver_sqlite::{SqliteDriver, SqliteOptions};
#[cfg(feature = "turso")]
pub use objectql_driver_turso::{
    Mode as TursoMode, SyncReport, TenantOptions, TenantRouter, TursoDriver, TursoOptions,
};
/// Query federation on DataFusion (the `federation` feature): SQL across
/// datasources, every object a `TableProvider`.
#[cfg(feature = "federation")]
pub use objectql_federation as federation;
pub use objectql_query_ast::{
    AggFunction, Aggregation, Catalog, Cursor, DateGranularity, DriverErrorKind, Error, Field,
    Filter, GroupBy, JoinType, Nearest, ObjectSchema, Op, Operand, Query, Record, ResolveContext,
    Result, SortItem, SortOrder, StorageType, Value, VectorMetric, field,
};
pub use session::{Session, Transaction};

/// Quotes an identifier for SQL (every quote character doubled): the one
/// function through which objectql writes every name into SQL text.
pub use objectql_planner::sql::quote_ident;

/// Re-exports of the building blocks, for driver authors.
pub mod ast {
    pub use objectql_query_ast::*;
}

/// Builds a [`Record`] from `key => value` pairs.
///
/// ```
/// let r = objectql::record! {"title" => "x", "n" => 3};
/// assert_eq!(r.len(), 2);
/// ```
#[macro_export]
macro_rules! record {
    ($($k:expr => $v:expr),* $(,)?) => {{
        let mut r = $crate::Record::new();
        $(r.insert(::std::string::String::from($k), $crate::Value::from($v));)*
        r
    }};
}
