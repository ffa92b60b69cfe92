//! The PostgreSQL driver: compiled statements in, decoded rows out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use objectql_driver::{
    Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel, NameLimit, PoolStats,
    Pushdown, RowStream, TxId,
};
use objectql_planner::sql::{OutputColumn, PostgresDialect, SqlCompiler, SqlDialect, Statement};
use objectql_query_ast::{
    Catalog, Condition, DriverErrorKind, Error, Filter, ObjectSchema, Query, Record, Result, Value,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row};

use crate::error::from_sqlx;
use crate::options::PostgresOptions;
use crate::types::{Reader, already_decoded, arguments};

/// Where the schema of every synced object is kept, so later syncs migrate
/// exactly and `introspect` returns exact types.
const SCHEMA_TABLE: &str = "_objectql_schema";

type Tx = sqlx::Transaction<'static, Postgres>;
type TxSlot = Arc<tokio::sync::Mutex<Option<Tx>>>;

/// The PostgreSQL driver (`postgres://user@host:5432/db`).
///
/// A sqlx pool; every value a bound parameter typed by its column; rows
/// stream as the server sends them. Text columns are created `COLLATE "C"`
/// so comparison and ordering are by code point, as PROTOCOL.md demands.
pub struct PostgresDriver {
    pool: PgPool,
    dialect: PostgresDialect,
    caps: Capabilities,
    txs: Mutex<HashMap<u64, TxSlot>>,
    next_tx: AtomicU64,
    waiting: Arc<AtomicU32>,
}

impl std::fmt::Debug for PostgresDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDriver")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// A connection for one call: the transaction's, or one from the pool.
enum Handle {
    Pooled(PoolConnection<Postgres>),
    Tx(tokio::sync::OwnedMutexGuard<Option<Tx>>),
}

impl Handle {
    /// After a timeout or a cancelled write: a pooled connection is closed
    /// rather than reused, so the cancel that follows can never reach
    /// someone else's query and no half-done transaction is pooled; a
    /// transaction is closed (its rollback queued), since the server has
    /// aborted it or the call stopped between two of its statements. Later
    /// calls on it, `commit` included, fail with `TransactionClosed`.
    fn discard(&mut self) {
        match self {
            Self::Pooled(c) => c.close_on_drop(),
            Self::Tx(g) => drop(g.take()),
        }
    }

    fn conn(&mut self) -> Result<&mut PgConnection> {
        match self {
            Self::Pooled(c) => Ok(c),
            Self::Tx(g) => match g.as_mut() {
                Some(tx) => Ok(tx),
                None => Err(tx_closed()),
            },
        }
    }
}

fn tx_closed() -> Error {
    Error::driver(
        DriverErrorKind::TransactionClosed,
        "the transaction is no longer open (it was rolled back after a call in it timed out or was cancelled, or it has ended)",
    )
}

/// A call's time limit: when it passes, the backend's query is cancelled.
#[derive(Clone)]
struct Deadline {
    at: tokio::time::Instant,
    pid: i32,
    pool: PgPool,
}

impl Deadline {
    /// The deadline of a call limited to `timeout` on `handle`'s backend.
    async fn start(
        at: Option<tokio::time::Instant>,
        handle: &mut Handle,
        pool: &PgPool,
    ) -> Result<Option<Self>> {
        let Some(at) = at else {
            return Ok(None);
        };
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(handle.conn()?)
            .await
            .map_err(|e| from_sqlx(e, "reading the backend id"))?;
        Ok(Some(Self {
            at,
            pid,
            pool: pool.clone(),
        }))
    }

    /// Runs `work` until the deadline; past it, cancels the backend's query.
    async fn run<T>(
        deadline: Option<&Self>,
        handle: &mut Handle,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let conn = handle.conn()?;
        let Some(d) = deadline else {
            return work(conn).await;
        };
        let outcome = tokio::time::timeout_at(d.at, work(conn)).await;
        if let Ok(r) = outcome {
            return r;
        }
        handle.discard();
        d.cancel().await;
        Err(timed_out())
    }

    /// Asks the server to cancel the backend's running query, over a
    /// connection of its own (the pool may be exhausted).
    async fn cancel(&self) {
        use sqlx::Connection;
        let options = self.pool.connect_options();
        match PgConnection::connect_with(&options).await {
            Ok(mut c) => {
                if let Err(e) = sqlx::query("SELECT pg_cancel_backend($1)")
                    .bind(self.pid)
                    .execute(&mut c)
                    .await
                {
                    tracing::warn!(error = %e, pid = self.pid, "cancelling a timed-out query failed");
                }
                let _ = c.close().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, pid = self.pid, "cannot connect to cancel a timed-out query");
            }
        }
    }
}

/// A call on a transaction that another call, or one of its streams, is
/// using.
fn tx_busy() -> Error {
    Error::driver(
        DriverErrorKind::Busy,
        "the transaction is in use: one of its streams is still open or another call on it is running; drop the stream (or await the call) first",
    )
}

fn waited_out() -> Error {
    Error::driver(
        DriverErrorKind::Timeout,
        "no connection became free within the call's time limit",
    )
}

/// When a call limited to `timeout` must end.
fn deadline_at(timeout: Option<std::time::Duration>) -> Option<tokio::time::Instant> {
    timeout.map(|t| tokio::time::Instant::now() + t)
}

fn timed_out() -> Error {
    Error::driver(
        DriverErrorKind::Timeout,
        "the call took longer than its time limit; its query was cancelled on the server",
    )
}

/// Counts a caller waiting for a connection while it waits (also when the
/// wait is cancelled).
struct Waiting(Arc<AtomicU32>);

impl Waiting {
    fn new(n: &Arc<AtomicU32>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(n))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PostgresDriver {
    /// Connects with `options`, reads the server version and creates the
    /// schema table if it is missing.
    pub async fn open(options: PostgresOptions) -> Result<Self> {
        let mut server_options: Vec<(&str, String)> = Vec::new();
        if let Some(t) = options.statement_timeout {
            server_options.push(("statement_timeout", format!("{}ms", t.as_millis())));
        }
        if let Some(schema) = &options.schema {
            server_options.push(("search_path", quote_ident(schema)));
        }
        let mut connect = options.connect.clone().options(server_options);
        if connect.get_application_name().is_none() {
            connect = connect.application_name("objectql");
        }
        // One direct connection first: an unreachable server or a refused
        // login fails at once with the server's reason, not after the
        // pool's acquire timeout.
        let mut conn = {
            use sqlx::Connection;
            PgConnection::connect_with(&connect)
                .await
                .map_err(|e| from_sqlx(e, "connecting"))?
        };
        let num: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| from_sqlx(e, "reading the server version"))?;
        let num = u32::try_from(num).unwrap_or(0);
        let dialect = PostgresDialect {
            version: (num / 10_000, num % 10_000),
        };
        // Concurrent first connections may race on CREATE TABLE IF NOT
        // EXISTS (a unique violation in the catalog); the loser retries once.
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} (\"name\" text COLLATE \"C\" PRIMARY KEY, \"schema\" text NOT NULL)",
            quote_ident(SCHEMA_TABLE)
        );
        for attempt in 0..2 {
            match sqlx::query(AssertSqlSafe(create.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if attempt == 0 && is_catalog_race(&e) => {}
                Err(e) => return Err(from_sqlx(e, "creating the schema table")),
            }
        }
        {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        let mut caps = Capabilities::everything()
            .with(Feature::Transactions)
            .with(Feature::UniqueConstraints)
            .with(Feature::ForeignKeys)
            .with(Feature::JsonFields)
            .with(Feature::BinaryFields);
        caps.isolation_levels = vec![
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ];
        caps.max_bind_params = Some(65_535);
        // Quoted names compare exactly; longer than NAMEDATALEN - 1 = 63
        // bytes they are truncated, so two long names could become one.
        caps.names.max_len = Some(NameLimit::Bytes(63));
        Ok(Self {
            pool,
            dialect,
            caps,
            txs: Mutex::new(HashMap::new()),
            next_tx: AtomicU64::new(1),
            waiting: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Connects from a URL (see [`PostgresOptions::from_url`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(PostgresOptions::from_url(url)?).await
    }

    /// The server version, `(major, minor)`.
    pub fn version(&self) -> (u32, u32) {
        self.dialect.version
    }

    /// The underlying sqlx pool (for statements objectql does not model).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn acquire(&self) -> Result<PoolConnection<Postgres>> {
        let _waiting = Waiting::new(&self.waiting);
        self.pool
            .acquire()
            .await
            .map_err(|e| from_sqlx(e, "acquiring a connection"))
    }

    fn tx_slot(&self, id: TxId) -> Result<TxSlot> {
        self.txs
            .lock()
            .map_err(|_| Error::internal("transaction table poisoned"))?
            .get(&id.0)
            .cloned()
            .ok_or_else(|| {
                Error::driver(
                    DriverErrorKind::TransactionClosed,
                    format!("transaction {} is not open", id.0),
                )
            })
    }

    /// The call's connection. With a time limit, waiting for it counts
    /// against the limit: an exhausted pool answered a 200 ms call after the
    /// pool's 30 s acquire timeout.
    async fn handle(&self, tx: Option<TxId>, at: Option<tokio::time::Instant>) -> Result<Handle> {
        let get = async {
            match tx {
                None => Ok(Handle::Pooled(self.acquire().await?)),
                // One call at a time: a call made while another one, or a
                // stream of the transaction, holds it used to wait forever
                // (a `find_stream` kept alive across `commit`).
                Some(id) => Ok(Handle::Tx(
                    self.tx_slot(id)?.try_lock_owned().map_err(|_| tx_busy())?,
                )),
            }
        };
        match at {
            None => get.await,
            Some(at) => tokio::time::timeout_at(at, get)
                .await
                .unwrap_or_else(|_| Err(waited_out())),
        }
    }

    /// Runs statements atomically: inside the caller's transaction as a
    /// savepoint (so a failed write leaves the transaction usable, as on
    /// every other driver), else as a transaction of their own when there
    /// are several. Returns the rows they return and the rows they touched.
    async fn run_atomic(
        &self,
        tx: Option<TxId>,
        timeout: Option<std::time::Duration>,
        statements: Vec<Statement>,
    ) -> Result<(Vec<Record>, u64)> {
        let at = deadline_at(timeout);
        let mut write = Midway {
            handle: self.handle(tx, at).await?,
            done: false,
        };
        let deadline = Deadline::start(at, &mut write.handle, &self.pool).await?;
        let dialect = self.dialect;
        let result = Deadline::run(deadline.as_ref(), &mut write.handle, async move |conn| {
            atomic(&dialect, conn, tx.is_some(), statements).await
        })
        .await;
        write.done = true;
        result
    }

    /// Runs a query statement under the call's time limit and collects its rows.
    async fn fetch_limited(&self, cx: Cx<'_>, st: Statement) -> Result<Vec<Record>> {
        let at = deadline_at(cx.timeout);
        let mut handle = self.handle(cx.tx, at).await?;
        let deadline = Deadline::start(at, &mut handle, &self.pool).await?;
        let dialect = self.dialect;
        Deadline::run(deadline.as_ref(), &mut handle, async move |conn| {
            fetch_all(&dialect, conn, st).await
        })
        .await
    }

    async fn stored_schema(&self, object: &str) -> Result<Option<ObjectSchema>> {
        Ok(self.stored_schemas(Some(object)).await?.pop())
    }

    /// The schemas in the schema table (only `object`'s, when given): the
    /// objects synced by this process and by every other one.
    async fn stored_schemas(&self, only: Option<&str>) -> Result<Vec<ObjectSchema>> {
        let mut conn = self.acquire().await?;
        stored_schemas_on(&mut conn, only).await
    }

    /// `sync_schema`'s work inside its transaction on `conn`: waits for the
    /// database's sync lock, checks for collisions against every stored
    /// schema (this process's and every other one's), then runs the DDL
    /// and stores the schema.
    async fn sync_locked(&self, conn: &mut PgConnection, schema: &ObjectSchema) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(SYNC_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(|e| from_sqlx(e, "taking the schema sync lock"))?;
        let stored = stored_schemas_on(conn, None).await?;
        self.caps.names.check_schema(schema, &stored)?;
        let mut catalog = Catalog::new();
        // Foreign keys name the referenced tables' keys: those objects
        // were synced before, and their schemas are in the schema table.
        for f in schema.fields.values() {
            if let (Some(target), Some(_)) = (&f.reference, f.delete_behavior)
                && *target != schema.name
                && catalog.get(target).is_none()
                && let Some(referenced) = stored.iter().find(|s| s.name == *target)
            {
                catalog.insert(referenced.clone())?;
            }
        }
        catalog.insert(schema.clone())?;
        let compiler = SqlCompiler::new(&self.dialect, &catalog);
        // A table objectql did not create (an external database) is
        // introspected and migrated like one it did: nothing is recreated,
        // and a schema that matches it runs no DDL at all.
        let existing = match stored.iter().find(|s| s.name == schema.name) {
            Some(old) if old == schema => return Ok(()),
            Some(old) => Some(old.clone()),
            None => crate::introspect::table(conn, schema.table()).await?,
        };
        let mut statements = match existing {
            Some(old) => compiler.migrate(&old, schema)?,
            None => compiler.create_table(schema)?,
        };
        let json = serde_json::to_string(schema)
            .map_err(|e| Error::internal(format!("schema to JSON: {e}")))?;
        statements.push(Statement::new(
            format!(
                "INSERT INTO {} (\"name\", \"schema\") VALUES ($1, $2) ON CONFLICT (\"name\") DO UPDATE SET \"schema\" = excluded.\"schema\"",
                quote_ident(SCHEMA_TABLE)
            ),
            vec![Value::String(schema.name.clone()), Value::String(json)],
        ));
        run_all(&self.dialect, conn, statements).await.map(drop)
    }

    /// Refuses `schema` unless its table enforces every key it declares
    /// unique (issue 12 §5).
    async fn check_unique_keys(&self, schema: &ObjectSchema) -> Result<()> {
        let present = self.unique_indexes(schema.table()).await?;
        objectql_driver::check_unique_keys(schema, &present, self.caps.names.column_fold, None)
    }

    /// The column lists of `table`'s valid unique indexes over plain
    /// columns (primary key included), from `pg_index`. Partial and
    /// expression indexes are left out: they do not make a column unique.
    async fn unique_indexes(&self, table: &str) -> Result<Vec<Vec<String>>> {
        let mut conn = self.acquire().await?;
        sqlx::query_scalar(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE c.relname = $1 AND n.nspname = current_schema() \
               AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| from_sqlx(e, "reading the table's unique indexes"))
    }

    async fn finish(&self, tx: TxId, commit: bool) -> Result<()> {
        let mut guard = {
            let mut open = self
                .txs
                .lock()
                .map_err(|_| Error::internal("transaction table poisoned"))?;
            let slot = open.get(&tx.0).cloned().ok_or_else(|| {
                Error::driver(
                    DriverErrorKind::TransactionClosed,
                    format!("transaction {} is not open", tx.0),
                )
            })?;
            // Busy (a stream of it is alive): the transaction stays open.
            let guard = slot.try_lock_owned().map_err(|_| tx_busy())?;
            open.remove(&tx.0);
            guard
        };
        let mut t = guard.take().ok_or_else(tx_closed)?;
        if !commit {
            return t.rollback().await.map_err(|e| from_sqlx(e, "rolling back"));
        }
        // PostgreSQL answers COMMIT of a transaction it has already aborted
        // (an error in it, a query cancelled after a caller's timeout) with
        // ROLLBACK and no error, which sqlx reports as success: the writes
        // would be gone with `commit()` returning Ok. A statement in an
        // aborted transaction fails with 25P02, so one round trip tells.
        if let Err(e) = sqlx::raw_sql("SELECT 1").execute(&mut *t).await {
            let e = from_sqlx(e, "checking the transaction before committing");
            if let Err(re) = t.rollback().await {
                tracing::debug!(error = %re, "rolling back an aborted transaction failed");
            }
            return Err(match e.driver_kind() {
                Some(DriverErrorKind::TransactionClosed) => Error::Driver {
                    kind: DriverErrorKind::TransactionClosed,
                    message: "the server had aborted the transaction (an earlier statement failed or was cancelled); nothing was committed".into(),
                    source: Some(Box::new(e)),
                },
                _ => e,
            });
        }
        t.commit().await.map_err(|e| from_sqlx(e, "committing"))
    }
}

/// Runs statements atomically on `conn` (see `PostgresDriver::run_atomic`).
///
/// Raw `BEGIN`/`SAVEPOINT` statements, not sqlx's guard: a cancelled sqlx
/// savepoint `begin` queues a rollback of the *whole* transaction, leaving
/// `commit` to succeed with nothing in it. A write dropped midway is
/// handled by [`Midway`] instead.
async fn atomic(
    dialect: &PostgresDialect,
    conn: &mut PgConnection,
    in_tx: bool,
    statements: Vec<Statement>,
) -> Result<(Vec<Record>, u64)> {
    let (begin, commit, rollback) = match (in_tx, statements.len() > 1) {
        (true, _) => (
            Some("SAVEPOINT objectql_write"),
            "RELEASE SAVEPOINT objectql_write",
            "ROLLBACK TO SAVEPOINT objectql_write",
        ),
        (false, true) => (Some("BEGIN"), "COMMIT", "ROLLBACK"),
        (false, false) => (None, "", ""),
    };
    if let Some(begin) = begin {
        simple(conn, begin).await?;
    }
    let result = run_all(dialect, conn, statements).await;
    if begin.is_some() {
        if result.is_ok() {
            simple(conn, commit).await?;
        } else {
            // The statement's error is what the caller needs; a failed
            // rollback also shows up as a broken connection.
            if let Err(e) = simple(conn, rollback).await {
                tracing::warn!(error = %e, "rollback after a failed write failed");
            }
            if in_tx {
                let _ = simple(conn, commit).await;
            }
        }
    }
    result
}

/// A statement without parameters, over the simple query protocol.
async fn simple(conn: &mut PgConnection, sql: &'static str) -> Result<()> {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| from_sqlx(e, "controlling a transaction"))
}

/// The handle of a write in progress. Dropped before the write finished
/// (its future cancelled: a `select!`, an aborted task, a disconnected
/// client), it discards the handle: a pooled connection is closed, so the
/// server rolls back the write's open `BEGIN` instead of the pool handing
/// that transaction to the next caller (whose acknowledged writes were then
/// lost); a transaction is rolled back and closed, so `commit` fails with
/// `TransactionClosed` instead of keeping half of a cancelled batch.
struct Midway {
    handle: Handle,
    done: bool,
}

impl Drop for Midway {
    fn drop(&mut self) {
        if !self.done {
            self.handle.discard();
        }
    }
}

/// The first key of the advisory lock that serializes `sync_schema` across
/// every process using a schema ("objq" in ASCII); the second key is the
/// hash of the schema's name, so syncs in other schemas do not wait.
const SYNC_LOCK: i32 = 0x6f62_6a71;

/// [`PostgresDriver::stored_schemas`] on a given connection (inside
/// `sync_schema`'s transaction, after its lock).
async fn stored_schemas_on(
    conn: &mut PgConnection,
    only: Option<&str>,
) -> Result<Vec<ObjectSchema>> {
    let sql = format!(
        "SELECT \"name\", \"schema\" FROM {} WHERE $1::text IS NULL OR \"name\" = $1",
        quote_ident(SCHEMA_TABLE)
    );
    let rows: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(only)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| from_sqlx(e, "reading the schema table"))?;
    rows.iter()
        .map(|(name, json)| objectql_driver::parse_stored_schema(name, json))
        .collect()
}

fn is_catalog_race(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("23505" | "42P07")))
}

/// A quoted identifier: the planner's one quoting function.
pub(crate) fn quote_ident(s: &str) -> String {
    objectql_planner::sql::quote_ident('"', s)
}

async fn run_all(
    dialect: &PostgresDialect,
    conn: &mut PgConnection,
    statements: Vec<Statement>,
) -> Result<(Vec<Record>, u64)> {
    let mut rows = Vec::new();
    let mut affected = 0;
    for st in statements {
        if st.columns.is_empty() {
            affected += execute(conn, st).await?;
        } else {
            let r = fetch_all(dialect, conn, st).await?;
            affected += r.len() as u64;
            if rows.is_empty() {
                rows = r;
            } else {
                rows.extend(r);
            }
        }
    }
    Ok((rows, affected))
}

/// The `rows=N` of an `EXPLAIN` line.
fn planned_rows(line: &str) -> Option<u64> {
    let at = line.rfind(" rows=")? + " rows=".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn execute(conn: &mut PgConnection, st: Statement) -> Result<u64> {
    let args = arguments(st.params, &st.param_types)?;
    tracing::trace!(sql = st.sql, "postgres execute");
    sqlx::query_with(AssertSqlSafe(st.sql), args)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| from_sqlx(e, "executing a statement"))
}

async fn fetch_all(
    dialect: &PostgresDialect,
    conn: &mut PgConnection,
    st: Statement,
) -> Result<Vec<Record>> {
    let args = arguments(st.params, &st.param_types)?;
    tracing::trace!(sql = st.sql, "postgres query");
    let rows = sqlx::query_with(AssertSqlSafe(st.sql), args)
        .fetch_all(conn)
        .await
        .map_err(|e| from_sqlx(e, "running a query"))?;
    let mut readers = None;
    rows.iter()
        .map(|row| decode(*dialect, &st.columns, &mut readers, row))
        .collect()
}

/// One row as a record, read straight from the row (no intermediate
/// `Vec<Value>`). The readers are chosen from the first row's column types.
/// What `SqlCompiler::decode_row` does, without its per-cell clone: values
/// already of their column's type (every text, integer, timestamp … cell)
/// are moved into the record, the others go through the dialect's `decode`.
fn decode(
    dialect: PostgresDialect,
    columns: &[OutputColumn],
    readers: &mut Option<Vec<Reader>>,
    row: &PgRow,
) -> Result<Record> {
    let readers = match readers {
        Some(r) => r,
        None => readers.insert(Reader::for_row(row)?),
    };
    if readers.len() != columns.len() {
        return Err(Error::driver(
            DriverErrorKind::Decode,
            format!(
                "row has {} values for {} columns",
                readers.len(),
                columns.len()
            ),
        ));
    }
    let mut out = Record::with_capacity(columns.len());
    for (i, (c, r)) in columns.iter().zip(readers.iter()).enumerate() {
        let v = r.read(row, i)?;
        let v = if already_decoded(&v, c.storage) {
            v
        } else {
            dialect.decode(v, c.storage)?
        };
        out.insert(c.name.clone(), v);
    }
    Ok(out)
}

fn isolation_sql(level: IsolationLevel) -> &'static str {
    match level {
        IsolationLevel::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        IsolationLevel::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        // Serializable, and any stricter level a later version may name.
        _ => "BEGIN ISOLATION LEVEL SERIALIZABLE",
    }
}

#[async_trait]
impl Driver for PostgresDriver {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Accepted when the SQL compiler compiles it (pure: nothing is sent).
    fn accepts(&self, catalog: &Catalog, query: &Query) -> Result<()> {
        SqlCompiler::new(&self.dialect, catalog)
            .select(query)
            .map(drop)
    }

    fn classify(&self, schema: &ObjectSchema, condition: &Condition) -> Pushdown {
        let catalog = Catalog::new();
        SqlCompiler::new(&self.dialect, &catalog).classify(schema, condition)
    }

    async fn health_check(&self) -> Result<()> {
        let mut conn = self.acquire().await?;
        sqlx::raw_sql("SELECT 1")
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(|e| from_sqlx(e, "checking health"))
    }

    fn pool_stats(&self) -> PoolStats {
        let total = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(total);
        PoolStats {
            total,
            idle,
            active: total.saturating_sub(idle),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    async fn close(&self) -> Result<()> {
        self.pool.close().await;
        Ok(())
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        schema.check()?;
        self.caps.check_schema(schema, self.name())?;
        // The collision check, the DDL and the stored schema run in one
        // transaction holding the database's sync lock: two processes
        // registering objects that share a table (or the same object) at
        // the same moment take turns, and the second sees the first's
        // schema. Cut off midway (cancelled), `Midway` closes the
        // connection and the server rolls back and releases the lock.
        let mut write = Midway {
            handle: self.handle(None, None).await?,
            done: false,
        };
        let conn = write.handle.conn()?;
        simple(conn, "BEGIN").await?;
        let outcome = self.sync_locked(conn, schema).await;
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = simple(conn, end).await;
        write.done = true;
        drop(write);
        outcome?;
        ended?;
        self.check_unique_keys(schema).await
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        // The object's table is the one its stored schema names (its
        // `tableName`), not a table named after the object, which may be
        // another object's.
        let stored = self.stored_schemas(None).await?;
        let mut catalog = Catalog::new();
        let table = self.caps.names.table_to_drop(object, &stored);
        if let Some(table) = &table {
            let mut own = ObjectSchema::new(object);
            own.table_name = Some(table.clone());
            catalog.insert(own)?;
        }
        let compiler = SqlCompiler::new(&self.dialect, &catalog);
        let mut statements = Vec::new();
        if table.is_some() {
            statements.push(compiler.drop_table(object)?);
        }
        statements.push(Statement::new(
            format!(
                "DELETE FROM {} WHERE \"name\" = $1",
                quote_ident(SCHEMA_TABLE)
            ),
            vec![Value::String(object.to_owned())],
        ));
        self.run_atomic(None, None, statements).await.map(drop)
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        if let Some(s) = self.stored_schema(object).await? {
            return Ok(Some(s));
        }
        let mut conn = self.acquire().await?;
        crate::introspect::table(&mut conn, object).await
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let at = deadline_at(cx.timeout);
        let mut handle = self.handle(cx.tx, at).await?;
        let deadline = Deadline::start(at, &mut handle, &self.pool).await?;
        let Statement {
            sql,
            params,
            param_types,
            columns,
        } = st;
        let args = arguments(params, &param_types)?;
        let dialect = self.dialect;
        tracing::trace!(sql, "postgres find");
        // The stream owns the connection (or the transaction's lock) until
        // it is drained or dropped; rows are decoded as the server sends
        // them, so memory stays flat however many rows there are.
        let stream = async_stream::try_stream! {
            let mut handle = handle;
            let mut readers = None;
            let mut expired = false;
            {
                let conn = handle.conn()?;
                let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(conn);
                loop {
                    let next = match &deadline {
                        None => rows.next().await,
                        Some(d) => {
                            if let Ok(next) = tokio::time::timeout_at(d.at, rows.next()).await {
                                next
                            } else {
                                expired = true;
                                break;
                            }
                        }
                    };
                    let Some(row) = next else { break };
                    let row = row.map_err(|e| from_sqlx(e, "reading rows"))?;
                    yield decode(dialect, &columns, &mut readers, &row)?;
                }
            }
            if expired {
                handle.discard();
                if let Some(d) = &deadline {
                    d.cancel().await;
                }
                Err(timed_out())?;
            }
        };
        Ok(stream.boxed())
    }

    /// From `pg_class` as PostgreSQL's own planner reads it: the rows per
    /// page the last `ANALYZE` (or vacuum) counted, times the table's pages
    /// now. `None` for a table never analyzed.
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let table = cx.schema(object)?.table().to_owned();
        let mut conn = self.acquire().await?;
        let row: Option<(f64, i64, i64)> = sqlx::query_as(
            "SELECT c.reltuples::float8, c.relpages::int8, \
               (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8 \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = $1 AND n.nspname = current_schema() AND c.relkind = 'r'",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| from_sqlx(e, "estimating the table's rows"))?;
        Ok(row.and_then(|(tuples, pages, now)| pages_estimate(tuples, pages, now)))
    }

    async fn estimated_query_rows(&self, cx: Cx<'_>, query: &Query) -> Result<Option<u64>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let args = arguments(st.params, &st.param_types)?;
        let at = deadline_at(cx.timeout);
        let mut handle = self.handle(cx.tx, at).await?;
        let deadline = Deadline::start(at, &mut handle, &self.pool).await?;
        // The first line of the plan is its top node:
        // `… (cost=0.00..1.05 rows=5 width=36)`.
        let top: Option<(String,)> =
            Deadline::run(deadline.as_ref(), &mut handle, async move |conn| {
                sqlx::query_as_with(AssertSqlSafe(format!("EXPLAIN {}", st.sql)), args)
                    .fetch_optional(conn)
                    .await
                    .map_err(|e| from_sqlx(e, "estimating a query's rows"))
            })
            .await?;
        Ok(top.and_then(|(line,)| planned_rows(&line)))
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.count(object, filter)?;
        let rows = self.fetch_limited(cx, st).await?;
        match rows.first().and_then(|r| r.get("count")) {
            Some(Value::Int(n)) => u64::try_from(*n)
                .map_err(|_| Error::driver(DriverErrorKind::Decode, "negative count")),
            _ => Err(Error::driver(
                DriverErrorKind::Decode,
                "count returned no integer",
            )),
        }
    }

    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.distinct(object, field, filter)?;
        let rows = self.fetch_limited(cx, st).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.shift_remove(field))
            .collect())
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let mut steps = vec![ExplainStep {
            location: "driver:postgres".into(),
            operation: "sql".into(),
            detail: format!("{} -- {} bound parameters", st.sql, st.params.len()),
        }];
        let mut handle = self.handle(cx.tx, deadline_at(cx.timeout)).await?;
        let args = arguments(st.params, &st.param_types)?;
        let rows = sqlx::query_with(AssertSqlSafe(format!("EXPLAIN {}", st.sql)), args)
            .fetch_all(handle.conn()?)
            .await
            .map_err(|e| from_sqlx(e, "explaining a query"))?;
        for row in rows {
            let detail: String = row
                .try_get(0)
                .map_err(|e| from_sqlx(e, "explaining a query"))?;
            steps.push(ExplainStep {
                location: "driver:postgres".into(),
                operation: "plan".into(),
                detail,
            });
        }
        Ok(steps)
    }

    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let statements = compiler.insert(object, &records)?;
        Ok(self.run_atomic(cx.tx, cx.timeout, statements).await?.0)
    }

    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.update_by_id(object, id, &patch)?;
        Ok(self
            .run_atomic(cx.tx, cx.timeout, vec![st])
            .await?
            .0
            .into_iter()
            .next())
    }

    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.update_where(object, filter, &patch)?;
        Ok(self.run_atomic(cx.tx, cx.timeout, vec![st]).await?.1)
    }

    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let statements = compiler.upsert(object, &records, conflict)?;
        Ok(self.run_atomic(cx.tx, cx.timeout, statements).await?.0)
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_by_id(object, id)?;
        Ok(self.run_atomic(cx.tx, cx.timeout, vec![st]).await?.1 > 0)
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_where(object, filter)?;
        Ok(self.run_atomic(cx.tx, cx.timeout, vec![st]).await?.1)
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        // Run to completion in a task of its own: if the caller's future is
        // dropped while `BEGIN` is in flight, sqlx's own guard rolls back
        // nothing (its depth is still 0) and the pool would hand out a
        // connection inside a transaction nobody owns. Detached, the begin
        // finishes and its unclaimed transaction is dropped, which rolls it
        // back before the connection is pooled again.
        let pool = self.pool.clone();
        let waiting = Waiting::new(&self.waiting);
        let tx = tokio::spawn(async move {
            let _waiting = waiting;
            pool.begin_with(isolation_sql(isolation)).await
        })
        .await
        .map_err(|e| Error::internal(format!("beginning a transaction: {e}")))?
        .map_err(|e| from_sqlx(e, "beginning a transaction"))?;
        let id = self.next_tx.fetch_add(1, Ordering::Relaxed);
        self.txs
            .lock()
            .map_err(|_| Error::internal("transaction table poisoned"))?
            .insert(id, Arc::new(tokio::sync::Mutex::new(Some(tx))));
        Ok(TxId(id))
    }

    async fn commit(&self, tx: TxId) -> Result<()> {
        self.finish(tx, true).await
    }

    async fn rollback(&self, tx: TxId) -> Result<()> {
        self.finish(tx, false).await
    }

    fn abandon(&self, tx: TxId) {
        // Dropping a sqlx transaction queues its rollback on the connection,
        // which runs before the connection serves anyone else.
        if let Ok(mut open) = self.txs.lock() {
            open.remove(&tx.0);
        }
    }
}

/// A table's rows from `pg_class`: `tuples` counted over `pages` at the
/// last analyze, scaled to the `now` pages it has. Never analyzed
/// (`reltuples` is -1), or analyzed empty and grown since: unknown.
// An estimate: page counts far below 2^52, and the result rounded and
// clamped to a count.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn pages_estimate(tuples: f64, pages: i64, now: i64) -> Option<u64> {
    if !tuples.is_finite() || tuples < 0.0 {
        return None;
    }
    let estimate = match (pages, now) {
        (_, 0) => 0.0,
        (0, _) if tuples == 0.0 => return None,
        (0, _) => tuples,
        (p, n) => tuples / p as f64 * n as f64,
    };
    // Rounded and clamped: a float to an integer count.
    Some(estimate.round().clamp(0.0, u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::{pages_estimate, planned_rows};

    #[test]
    fn a_plans_row_estimate_is_read_off_its_top_line() {
        assert_eq!(
            planned_rows("Seq Scan on lineitem  (cost=0.00..19000.00 rows=7630 width=4)"),
            Some(7630)
        );
        assert_eq!(
            planned_rows("Hash Join  (cost=1.1..2.2 rows=0 width=8)"),
            Some(0)
        );
        assert_eq!(planned_rows("Result  (cost=0.00..0.01 width=4)"), None);
        assert_eq!(planned_rows("Seq Scan on \"a rows=\" (rows=x)"), None);
    }

    #[test]
    fn row_estimates_scale_the_analyzed_density_to_the_pages_now() {
        // Never analyzed.
        assert_eq!(pages_estimate(-1.0, 0, 10), None);
        assert_eq!(pages_estimate(f64::NAN, 3, 3), None);
        // Analyzed at 100 rows on 2 pages; 4 pages now.
        assert_eq!(pages_estimate(100.0, 2, 4), Some(200));
        // Emptied since: no pages.
        assert_eq!(pages_estimate(100.0, 2, 0), Some(0));
        // Analyzed empty, grown since: unknown; still empty: 0.
        assert_eq!(pages_estimate(0.0, 0, 5), None);
        assert_eq!(pages_estimate(0.0, 0, 0), Some(0));
        // A few rows analyzed on no full page yet.
        assert_eq!(pages_estimate(7.0, 0, 1), Some(7));
    }
}
