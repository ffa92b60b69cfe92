//! The Turso driver: one implementation over every connection mode.

use std::path::Path;

use async_trait::async_trait;
use objectql_driver::{
    BatchStream, Capabilities, Conflict, Cx, Driver, ExplainStep, IsolationLevel, PoolStats,
    Pushdown, RowStream, TxId,
};
use objectql_driver_sqlite::{LibsqlSetup, SqliteDriver, SqliteOptions, libsql_error};
use objectql_query_ast::{Condition, Error, Filter, ObjectSchema, Query, Record, Result, Value};

use crate::options::{Mode, TursoOptions};

/// What one `sync()` of an embedded replica pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// The replication index the replica is now at (`None`: the primary has
    /// no frames yet).
    pub frame_no: Option<u64>,
    /// Frames applied by this sync.
    pub frames_synced: u64,
}

/// The Turso / libSQL driver (`libsql://`, `https://`, `http://`, `file:`,
/// `:memory:`, and embedded replicas).
///
/// Every mode runs the SQLite driver's code over a `libsql::Database` built
/// for that mode — one SQL compiler (the SQLite dialect with libSQL's
/// vectors switched on), one pool, one error mapping — so local and remote
/// answers cannot drift apart. What differs is only how the database is
/// reached:
///
/// - **file** / **memory**: the embedded engine; files in WAL mode.
/// - **remote**: each statement is a Hrana-over-HTTP request to the server;
///   transactions hold a server-side stream.
/// - **replica**: a local file synced from the primary on connect, every
///   `sync_interval`, and on [`TursoDriver::sync`]. Reads are local; writes
///   (and whole transactions) are forwarded to the primary; with
///   `read_your_writes` (the default) a write returns once the local file
///   has it, so the writer reads its own writes.
///
/// Vectors (`vector` fields as `F32_BLOB(n)`, `libsql_vector_idx` indexes,
/// nearest-neighbour queries) are declared when the engine answers
/// `vector32()`: always locally, and on servers that have them.
pub struct TursoDriver {
    inner: SqliteDriver,
    mode: &'static str,
}

impl std::fmt::Debug for TursoDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TursoDriver")
            .field("mode", &self.mode)
            .field("dialect", &self.inner.dialect())
            .finish_non_exhaustive()
    }
}

/// Opens a local database with the SQLite driver's opener, keeping this
/// driver's name and its pool settings.
async fn open_local(mut local: SqliteOptions, setup: &mut LibsqlSetup) -> Result<libsql::Database> {
    local.max_connections = setup.max_connections;
    local.acquire_timeout = setup.acquire_timeout;
    local.busy_timeout = setup.busy_timeout.unwrap_or(local.busy_timeout);
    let (db, local_setup) = local.open_local().await?;
    setup.max_connections = local_setup.max_connections;
    setup.wal = local_setup.wal;
    Ok(db)
}

fn check_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.exists() => Err(Error::config(format!(
            "directory `{}` does not exist",
            parent.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether the engine behind `db` has libSQL's vector functions.
async fn has_vectors(db: &libsql::Database) -> Result<bool> {
    let conn = db.connect().map_err(|e| libsql_error(e, "connecting"))?;
    match conn.query("SELECT vector32('[1]')", ()).await {
        Ok(_) => Ok(true),
        Err(e) if e.to_string().contains("no such function") => Ok(false),
        // Anything else (a bad token, no server) is the connection's problem:
        // report it now, typed, rather than as a missing feature.
        Err(e) => Err(libsql_error(e, "connecting")),
    }
}

impl TursoDriver {
    /// Opens the database `options` describe. A remote or replica primary
    /// is asked one statement first, so a bad token fails here with
    /// [`AuthFailed`](objectql_query_ast::DriverErrorKind::AuthFailed) and an unreachable server with
    /// [`ConnectionLost`](objectql_query_ast::DriverErrorKind::ConnectionLost).
    pub async fn open(options: TursoOptions) -> Result<Self> {
        let mut setup = LibsqlSetup::new("turso");
        setup.max_connections = options.max_connections;
        setup.acquire_timeout = options.acquire_timeout;
        setup.busy_timeout = Some(options.busy_timeout);
        let mode = options.mode.name();
        let db = match options.mode {
            // Local modes open exactly as the SQLite driver does (parent
            // directory check, WAL for files, one connection for :memory:).
            Mode::File(path) => open_local(SqliteOptions::file(path), &mut setup).await?,
            Mode::Memory => open_local(SqliteOptions::in_memory(), &mut setup).await?,
            Mode::Remote { url, auth_token } => {
                setup.busy_timeout = None;
                libsql::Builder::new_remote(url, auth_token)
                    .build()
                    .await
                    .map_err(|e| libsql_error(e, "connecting to the server"))?
            }
            Mode::Replica {
                path,
                url,
                auth_token,
                sync_interval,
                read_your_writes,
            } => {
                check_parent(&path)?;
                // The replication handshake answers a bad token with a
                // timeout; a plain request first says what is wrong.
                let probe = libsql::Builder::new_remote(url.clone(), auth_token.clone())
                    .build()
                    .await
                    .map_err(|e| libsql_error(e, "connecting to the primary"))?;
                has_vectors(&probe).await?;
                let mut builder = libsql::Builder::new_remote_replica(&path, url, auth_token)
                    .read_your_writes(read_your_writes);
                if let Some(interval) = sync_interval {
                    builder = builder.sync_interval(interval);
                }
                let db = builder
                    .build()
                    .await
                    .map_err(|e| libsql_error(e, "opening the replica"))?;
                db.sync()
                    .await
                    .map_err(|e| libsql_error(e, "syncing the replica"))?;
                db
            }
        };
        setup.vectors = has_vectors(&db).await?;
        let inner = SqliteDriver::from_database(db, setup).await?;
        Ok(Self { inner, mode })
    }

    /// Connects from a URL (see [`TursoOptions::from_url`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(TursoOptions::from_url(url)?).await
    }

    /// The connection mode: `file`, `memory`, `remote` or `replica`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// The SQLite version of the engine that runs the statements (the
    /// server's, in remote mode).
    pub fn version(&self) -> (u32, u32, u32) {
        self.inner.version()
    }

    /// The SQL dialect every mode compiles to (SQLite, with libSQL's vectors
    /// when the engine has them).
    pub fn dialect(&self) -> objectql_planner::sql::SqliteDialect {
        self.inner.dialect()
    }

    /// The libSQL database, for raw access next to objectql.
    pub fn database(&self) -> &libsql::Database {
        self.inner.database()
    }

    /// Pulls the primary's latest changes into an embedded replica now.
    /// Other modes have nothing to sync: `Unsupported`.
    pub async fn sync(&self) -> Result<SyncReport> {
        if self.mode != Mode::REPLICA {
            return Err(Error::unsupported(
                format!(
                    "sync() on a {} database (only embedded replicas sync)",
                    self.mode
                ),
                "turso",
            ));
        }
        let replicated = self
            .inner
            .database()
            .sync()
            .await
            .map_err(|e| libsql_error(e, "syncing the replica"))?;
        Ok(SyncReport {
            frame_no: replicated.frame_no(),
            frames_synced: u64::try_from(replicated.frames_synced()).unwrap_or(u64::MAX),
        })
    }
}

#[async_trait]
impl Driver for TursoDriver {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn accepts(&self, catalog: &objectql_query_ast::Catalog, query: &Query) -> Result<()> {
        self.inner.accepts(catalog, query)
    }

    fn classify(&self, schema: &ObjectSchema, condition: &Condition) -> Pushdown {
        self.inner.classify(schema, condition)
    }

    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }

    fn pool_stats(&self) -> PoolStats {
        self.inner.pool_stats()
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        self.inner.sync_schema(schema).await
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        self.inner.drop_object(object).await
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        self.inner.introspect(object).await
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        self.inner.find(cx, query).await
    }

    async fn find_arrow(&self, cx: Cx<'_>, query: &Query) -> Result<BatchStream> {
        self.inner.find_arrow(cx, query).await
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        self.inner.count(cx, object, filter).await
    }

    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        self.inner.estimated_rows(cx, object).await
    }

    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        self.inner.distinct(cx, object, field, filter).await
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        self.inner.explain(cx, query).await
    }

    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        self.inner.insert(cx, object, records).await
    }

    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        self.inner.update(cx, object, id, patch).await
    }

    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        self.inner.update_many(cx, object, filter, patch).await
    }

    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        self.inner.upsert(cx, object, records, conflict).await
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        self.inner.delete(cx, object, id).await
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        self.inner.delete_many(cx, object, filter).await
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        self.inner.begin(isolation).await
    }

    async fn commit(&self, tx: TxId) -> Result<()> {
        self.inner.commit(tx).await
    }

    async fn rollback(&self, tx: TxId) -> Result<()> {
        self.inner.rollback(tx).await
    }

    fn abandon(&self, tx: TxId) {
        self.inner.abandon(tx);
    }
}
