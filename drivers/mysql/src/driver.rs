//! The MySQL / MariaDB driver: compiled statements in, decoded rows out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use objectql_driver::{
    Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel, NameFold, NameLimit,
    PoolStats, Pushdown, RowStream, TxId,
};
use objectql_planner::sql::{MySqlDialect, OutputColumn, SqlCompiler, Statement};
use objectql_query_ast::{
    Catalog, Condition, DriverErrorKind, Error, Filter, ObjectSchema, Op, Operand, Query, Record,
    Result, StorageType, Value,
};
use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlQueryResult, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Column, Connection, MySql, Row};

use crate::error::from_sqlx;
use crate::options::MySqlOptions;
use crate::types::{Reader, arguments, read_row};

/// Where the schema of every synced object is kept, so later syncs migrate
/// exactly and `introspect` returns exact types.
const SCHEMA_TABLE: &str = "_objectql_schema";

/// The session's SQL mode: strict (a value a column cannot hold is an
/// error, never a silent truncation or a zero date), and string literals
/// without backslash escapes, so SQL text means what sqlparser printed.
/// `PIPES_AS_CONCAT` (which sqlx adds by default) stays off: `||` is `OR`.
/// `NO_AUTO_VALUE_ON_ZERO`: an integer key 0 given by the writer is stored
/// as 0; without it, `AUTO_INCREMENT` takes 0 for "generate one", and the
/// row lands under another key (or collides with key 1).
const SQL_MODE: &str = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,\
                        ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES,\
                        NO_AUTO_VALUE_ON_ZERO";

/// Keys per `IN` list when re-reading written rows.
const KEYS_PER_SELECT: usize = 1_000;

/// An open transaction: the connection it runs on, begun with raw
/// statements. Not sqlx's `Transaction`, whose queued rollback after a
/// statement cancelled mid-flight never reached the server: the connection
/// went back to the pool idle inside the transaction, its locks held.
struct Tx {
    conn: PoolConnection<MySql>,
    /// The server's id of the connection (`CONNECTION_ID()`), to end the
    /// session from another connection.
    connection_id: u64,
    /// Where to open that other connection.
    pool: MySqlPool,
    /// A call on it was cut off mid-request (see [`Handle::settle`]): the
    /// connection may hold half a packet, so the transaction is closed
    /// when next touched instead of waiting on it forever.
    in_flight: bool,
    /// Set once `COMMIT` or `ROLLBACK` succeeded; dropped before that, the
    /// connection is closed, so the server rolls back whatever it holds,
    /// even a statement cut off mid-flight.
    ended: bool,
}

impl Tx {
    /// Ends the transaction with `COMMIT` or `ROLLBACK`.
    async fn finish(mut self, commit: bool) -> Result<()> {
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        simple(&mut self.conn, sql).await?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        self.conn.close_on_drop();
        // Cut off mid-request, closing the socket is not enough: the server
        // finishes the statement in flight before it looks at the socket
        // again, and a fault test once found such a session idle inside its
        // transaction (50,010 rows modified) 30 s after the close. Killed,
        // the server stops the statement and rolls back now.
        if self.in_flight
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (pool, id) = (self.pool.clone(), self.connection_id);
            runtime.spawn(async move { kill(&pool, "CONNECTION", id).await });
        }
    }
}

type TxSlot = Arc<tokio::sync::Mutex<Option<Tx>>>;

/// `sync_schema`'s connection while it holds the database's sync lock
/// (`GET_LOCK`, named after the database). Released, the connection goes
/// back to the pool; dropped before that (the sync cancelled), the
/// connection is closed, and the server releases the lock with the session.
struct SyncLock {
    conn: PoolConnection<MySql>,
    released: bool,
}

impl SyncLock {
    /// The longest a sync waits for another process's sync.
    const WAIT_SECS: i64 = 60;

    async fn take(mut conn: PoolConnection<MySql>) -> Result<Self> {
        let got: Option<i64> = sqlx::query_scalar(
            "SELECT GET_LOCK(CONCAT('objectql_sync_', MD5(COALESCE(DATABASE(), ''))), ?)",
        )
        .bind(Self::WAIT_SECS)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| from_sqlx(e, "taking the schema sync lock"))?;
        if got != Some(1) {
            return Err(Error::driver(
                DriverErrorKind::Busy,
                format!(
                    "another process kept the schema sync lock for more than {} s",
                    Self::WAIT_SECS
                ),
            ));
        }
        Ok(Self {
            conn,
            released: false,
        })
    }

    async fn release(mut self) -> Result<()> {
        sqlx::query("DO RELEASE_LOCK(CONCAT('objectql_sync_', MD5(COALESCE(DATABASE(), ''))))")
            .execute(&mut *self.conn)
            .await
            .map_err(|e| from_sqlx(e, "releasing the schema sync lock"))?;
        self.released = true;
        Ok(())
    }
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

/// The MySQL and MariaDB driver (`mysql://user@host:3306/db`,
/// `mariadb://…`).
///
/// A sqlx pool whose connections run in UTC with utf8mb4, binary
/// collation and a strict SQL mode; every value a bound parameter; rows
/// stream as the server sends them. The flavour and version (MariaDB's
/// `RETURNING`, MySQL's JSON type) are read from the server when it
/// connects. Writes return the stored rows: with `INSERT … RETURNING` on
/// MariaDB ≥ 10.5, else by reading them back by key in the same
/// transaction.
pub struct MySqlDriver {
    pool: MySqlPool,
    dialect: MySqlDialect,
    server_version: String,
    caps: Capabilities,
    /// `@@innodb_autoinc_lock_mode` is 0 or 1: the keys one multi-row
    /// INSERT generates are consecutive (by `id_step`).
    consecutive_ids: bool,
    /// `@@auto_increment_increment`.
    id_step: u64,
    txs: Mutex<HashMap<u64, TxSlot>>,
    next_tx: AtomicU64,
    waiting: Arc<AtomicU32>,
}

impl std::fmt::Debug for MySqlDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlDriver")
            .field("server_version", &self.server_version)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// The dialect for a server that answers `SELECT VERSION()` with `version`
/// (`8.0.36`, `10.11.19-MariaDB-0+deb12u1`, `5.5.5-10.6.4-MariaDB`).
///
/// ```
/// use objectql_driver_mysql::dialect_for_version;
///
/// let d = dialect_for_version("10.11.19-MariaDB-0+deb12u1");
/// assert!(d.mariadb);
/// assert_eq!(d.version, (10, 11, 19));
/// assert!(!dialect_for_version("8.4.2").mariadb);
/// ```
pub fn dialect_for_version(version: &str) -> MySqlDialect {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    // Old MariaDB servers prefix their version for MySQL clients.
    let v = if mariadb {
        version.strip_prefix("5.5.5-").unwrap_or(version)
    } else {
        version
    };
    let numbers: Vec<u32> = v
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let part = |i: usize| numbers.get(i).copied().unwrap_or(0);
    MySqlDialect {
        mariadb,
        version: (part(0), part(1), part(2)),
    }
}

/// What a driver over a server with `dialect` can do.
fn capabilities(dialect: &MySqlDialect) -> Capabilities {
    let mut caps = Capabilities::everything()
        .with(Feature::Transactions)
        .with(Feature::UniqueConstraints)
        .with(Feature::JsonFields)
        .with(Feature::BinaryFields);
    // References are declared inline (`col … REFERENCES t (pk)`), which
    // MariaDB enforces from 10.5 and MySQL from 9.0 (older servers parse
    // and ignore it).
    let inline_references = if dialect.mariadb {
        dialect.version >= (10, 5, 0)
    } else {
        dialect.version >= (9, 0, 0)
    };
    if inline_references {
        caps = caps.with(Feature::ForeignKeys);
    }
    // RepeatableRead is served by Serializable: see `isolation_sql`.
    caps.isolation_levels = vec![IsolationLevel::ReadCommitted, IsolationLevel::Serializable];
    caps.max_bind_params = Some(65_535);
    // Column names compare case-insensitively on every platform, with
    // Unicode case folding (`É` = `é`, not `e`). Table names are
    // case-sensitive unless `lower_case_table_names` is set; they are folded
    // too, so a schema that works here works on every MySQL server. Names
    // are at most 64 characters, of the BMP, and do not end with a space.
    caps.names.table_fold = NameFold::UnicodeCase;
    caps.names.column_fold = NameFold::UnicodeCase;
    caps.names.max_len = Some(NameLimit::Chars(64));
    caps.names.no_trailing_space = true;
    caps.names.bmp_only = true;
    caps
}

/// A connection for one call: the transaction's, or one from the pool.
enum Handle {
    Pooled(Pooled),
    Tx(tokio::sync::OwnedMutexGuard<Option<Tx>>),
}

/// A pooled connection lent to one call. Handed out by [`Handle::conn`]
/// and dropped before [`Handle::settle`] (the call cut off mid-request:
/// an aborted task, a dropped future) it is closed, never pooled: sqlx
/// pings a returned connection, and one cut off in the middle of writing
/// a packet never answers, so the pool counted it as in use forever and
/// every later call failed with `PoolTimeout` (issue 13 §8).
struct Pooled {
    conn: PoolConnection<MySql>,
    in_flight: bool,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if self.in_flight {
            self.conn.close_on_drop();
        }
    }
}

impl Handle {
    /// The connection, for a request: until [`Self::settle`], the request
    /// counts as on its way.
    fn conn(&mut self) -> Result<&mut MySqlConnection> {
        match self {
            Self::Pooled(p) => {
                p.in_flight = true;
                Ok(&mut p.conn)
            }
            Self::Tx(g) => match g.as_mut() {
                Some(tx) => {
                    tx.in_flight = true;
                    Ok(&mut tx.conn)
                }
                None => Err(tx_closed()),
            },
        }
    }

    /// [`Self::conn`], with the request's mark, to clear once the server
    /// answers while the connection is still borrowed (a row stream).
    fn conn_and_flag(&mut self) -> Result<(&mut MySqlConnection, &mut bool)> {
        match self {
            Self::Pooled(p) => {
                p.in_flight = true;
                Ok((&mut p.conn, &mut p.in_flight))
            }
            Self::Tx(g) => match g.as_mut() {
                Some(tx) => {
                    tx.in_flight = true;
                    Ok((&mut tx.conn, &mut tx.in_flight))
                }
                None => Err(tx_closed()),
            },
        }
    }

    /// The call's requests were sent whole and answered (with rows or an
    /// error): the connection is in a known state again.
    fn settle(&mut self) {
        match self {
            Self::Pooled(p) => p.in_flight = false,
            Self::Tx(g) => {
                if let Some(tx) = g.as_mut() {
                    tx.in_flight = false;
                }
            }
        }
    }

    fn in_tx(&self) -> bool {
        matches!(self, Self::Tx(_))
    }

    /// After a timeout (once the server has been told to kill the query):
    /// a pooled connection is closed rather than reused; a transaction is
    /// closed (its rollback queued), since the call may have been stopped
    /// between two of its statements.
    fn discard(&mut self) {
        match self {
            Self::Pooled(p) => p.conn.close_on_drop(),
            Self::Tx(g) => {
                // Dropped unended: its connection is closed.
                drop(g.take());
            }
        }
    }

    /// After a failed call: when the server has ended the transaction (a
    /// deadlock rolls it back; a lost connection loses it) the handle's
    /// transaction is closed, so later calls fail with `TransactionClosed`
    /// instead of running, unprotected, in autocommit mode.
    fn failed(&mut self, e: Error) -> Error {
        if ends_transaction(&e) {
            match self {
                // Dropping it queues a (harmless) ROLLBACK on the connection.
                Self::Tx(g) => {
                    // Dropped unended: its connection is closed.
                    drop(g.take());
                }
                // Never hand a broken connection (or one whose rollback
                // failed mid-write) to the next caller.
                Self::Pooled(p) => p.conn.close_on_drop(),
            }
        }
        e
    }
}

fn ends_transaction(e: &Error) -> bool {
    matches!(
        e.driver_kind(),
        Some(DriverErrorKind::Deadlock | DriverErrorKind::ConnectionLost)
    )
}

fn tx_closed() -> Error {
    Error::driver(
        DriverErrorKind::TransactionClosed,
        "the transaction is no longer open (the server rolled it back, or it has ended)",
    )
}

/// A call's time limit: when it passes, the server kills the connection's
/// running statement (`KILL QUERY`).
#[derive(Clone)]
struct Deadline {
    at: tokio::time::Instant,
    connection_id: u64,
    pool: MySqlPool,
}

impl Deadline {
    /// The deadline of a call limited to `timeout` on `handle`'s connection.
    async fn start(
        at: Option<tokio::time::Instant>,
        handle: &mut Handle,
        pool: &MySqlPool,
    ) -> Result<Option<Self>> {
        let Some(at) = at else {
            return Ok(None);
        };
        let rows = fetch_values(
            handle.conn()?,
            Statement::new("SELECT CONNECTION_ID()", Vec::new()),
        )
        .await?;
        let connection_id = match rows.first().map(Vec::as_slice) {
            Some([Value::Int(id)]) => u64::try_from(*id).ok(),
            _ => None,
        }
        .ok_or_else(|| Error::driver(DriverErrorKind::Decode, "CONNECTION_ID() is not a number"))?;
        Ok(Some(Self {
            at,
            connection_id,
            pool: pool.clone(),
        }))
    }

    /// Runs `work` until the deadline; past it, kills the statement.
    async fn run<T>(
        deadline: Option<&Self>,
        handle: &mut Handle,
        work: impl AsyncFnOnce(&mut MySqlConnection) -> Result<T>,
    ) -> Result<T> {
        let conn = handle.conn()?;
        let Some(d) = deadline else {
            return work(conn).await;
        };
        if let Ok(r) = tokio::time::timeout_at(d.at, work(conn)).await {
            return r;
        }
        d.kill().await;
        handle.discard();
        Err(timed_out())
    }

    /// Asks the server to kill the connection's running statement.
    async fn kill(&self) {
        kill(&self.pool, "QUERY", self.connection_id).await;
    }
}

/// `KILL QUERY id` or `KILL CONNECTION id`, over a connection of its own
/// (the pool may be exhausted). Connection ids are not reused while the
/// server runs, so a session that already ended is a harmless miss.
async fn kill(pool: &MySqlPool, what: &'static str, id: u64) {
    let options = pool.connect_options();
    match MySqlConnection::connect_with(&options).await {
        Ok(mut c) => {
            // A number the server gave us, not user data.
            let sql = format!("KILL {what} {id}");
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await {
                tracing::debug!(error = %e, id, what, "kill failed (the session may have ended)");
            }
            let _ = c.close().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, id, what, "cannot connect to kill a session's statement");
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
fn deadline_at(timeout: Option<Duration>) -> Option<tokio::time::Instant> {
    timeout.map(|t| tokio::time::Instant::now() + t)
}

fn timed_out() -> Error {
    Error::driver(
        DriverErrorKind::Timeout,
        "the call took longer than its time limit; its statement was killed on the server",
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

/// The handle of a write in progress. Dropped before the write finished
/// (its future cancelled: a `select!`, an aborted task, a disconnected
/// client), it discards the handle: a pooled connection is closed, so the
/// server rolls back the write's open `BEGIN` instead of the pool handing
/// that transaction to the next caller (whose acknowledged writes were then
/// lost); a transaction is rolled back and closed, so `commit` fails with
/// `TransactionClosed` instead of keeping half of a cancelled batch
/// (issue 13). Raw statements, not sqlx's guard: a cancelled sqlx savepoint
/// `begin` queues a rollback of the whole transaction while the handle
/// stays open, so `commit` would succeed with nothing in it.
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

/// How a write is made atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One statement outside a transaction: atomic by itself.
    Plain,
    /// Inside the caller's transaction: a savepoint, so a failed write
    /// leaves the transaction usable (as on every other driver).
    Savepoint,
    /// Several statements outside a transaction: a transaction of their own.
    Transaction,
}

impl Scope {
    async fn open(conn: &mut MySqlConnection, in_tx: bool, several: bool) -> Result<Self> {
        let scope = match (in_tx, several) {
            (true, _) => Self::Savepoint,
            (false, true) => Self::Transaction,
            (false, false) => Self::Plain,
        };
        match scope {
            Self::Plain => {}
            Self::Savepoint => simple(conn, "SAVEPOINT objectql_write").await?,
            Self::Transaction => simple(conn, "BEGIN").await?,
        }
        Ok(scope)
    }

    /// Ends the scope: keeps the writes when `result` is `Ok`, undoes them
    /// otherwise. The statement's error is what the caller needs; a failed
    /// rollback is logged (and shows up as a broken connection).
    async fn close<T>(self, conn: &mut MySqlConnection, result: Result<T>) -> Result<T> {
        match (self, &result) {
            (Self::Plain, _) => {}
            (Self::Savepoint, Ok(_)) => simple(conn, "RELEASE SAVEPOINT objectql_write").await?,
            (Self::Transaction, Ok(_)) => simple(conn, "COMMIT").await?,
            // The server already rolled the whole transaction back.
            (Self::Savepoint, Err(e)) if ends_transaction(e) => {}
            (Self::Savepoint, Err(_)) => {
                for sql in [
                    "ROLLBACK TO SAVEPOINT objectql_write",
                    "RELEASE SAVEPOINT objectql_write",
                ] {
                    if let Err(e) = simple(conn, sql).await {
                        tracing::warn!(error = %e, "undoing a failed write failed");
                        break;
                    }
                }
            }
            (Self::Transaction, Err(_)) => {
                if let Err(e) = simple(conn, "ROLLBACK").await {
                    tracing::warn!(error = %e, "rollback after a failed write failed");
                }
            }
        }
        result
    }
}

/// Session settings every pooled connection gets: strict SQL mode, UTC
/// (`DATETIME(6)` columns hold UTC), and the statement timeout.
async fn set_up_session(
    conn: &mut MySqlConnection,
    timeout: Option<Duration>,
    mariadb: bool,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SET SESSION sql_mode = ?, SESSION time_zone = '+00:00'")
        .bind(SQL_MODE)
        .execute(&mut *conn)
        .await?;
    match timeout {
        None => {}
        Some(t) if mariadb => {
            sqlx::query("SET SESSION max_statement_time = ?")
                .bind(t.as_secs_f64())
                .execute(&mut *conn)
                .await?;
        }
        Some(t) => {
            sqlx::query("SET SESSION max_execution_time = ?")
                .bind(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// What the server is: `VERSION()`, `@@innodb_autoinc_lock_mode`,
/// `@@auto_increment_increment`, asked on a connection of its own before
/// the pool is made (the session settings depend on the answer).
async fn probe(options: &MySqlOptions) -> Result<(String, i64, i64)> {
    let mut conn = MySqlConnection::connect_with(&options.connect)
        .await
        .map_err(|e| from_sqlx(e, "connecting"))?;
    let info = fetch_values(
        &mut conn,
        Statement::new(
            "SELECT VERSION(), @@innodb_autoinc_lock_mode, @@auto_increment_increment",
            Vec::new(),
        ),
    )
    .await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the probe connection failed");
    }
    match info?.first().map(Vec::as_slice) {
        Some([v, Value::Int(mode), Value::Int(step)]) => Ok((text_of(v)?, *mode, *step)),
        _ => Err(Error::driver(
            DriverErrorKind::Decode,
            "the server's version and auto-increment settings did not decode",
        )),
    }
}

impl MySqlDriver {
    /// Connects with `options`, reads the server's flavour and version and
    /// creates the schema table if it is missing.
    pub async fn open(options: MySqlOptions) -> Result<Self> {
        let (version, lock_mode, step) = probe(&options).await?;
        let dialect = dialect_for_version(options.assume_version.as_deref().unwrap_or(&version));
        let timeout = options.statement_timeout;
        let mariadb = dialect.mariadb;
        let connect = options
            .connect
            .clone()
            .charset("utf8mb4")
            .collation(dialect.text_collation())
            .timezone(Some("+00:00".to_owned()))
            .pipes_as_concat(false)
            .no_engine_substitution(false);
        let pool = MySqlPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| Box::pin(set_up_session(conn, timeout, mariadb)))
            .connect_with(connect)
            .await
            .map_err(|e| from_sqlx(e, "connecting"))?;
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| from_sqlx(e, "connecting"))?;
        let collation = dialect.text_collation();
        simple_owned(
            &mut conn,
            format!(
                "CREATE TABLE IF NOT EXISTS {} (`name` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL PRIMARY KEY, \
                 `schema` LONGTEXT CHARACTER SET utf8mb4 NOT NULL)",
                quote_ident(SCHEMA_TABLE)
            ),
        )
        .await?;
        drop(conn);
        Ok(Self {
            pool,
            dialect,
            server_version: version,
            caps: capabilities(&dialect),
            consecutive_ids: matches!(lock_mode, 0 | 1),
            id_step: u64::try_from(step).ok().filter(|s| *s > 0).unwrap_or(1),
            txs: Mutex::new(HashMap::new()),
            next_tx: AtomicU64::new(1),
            waiting: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Connects from a URL (see [`MySqlOptions::from_url`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(MySqlOptions::from_url(url)?).await
    }

    /// The server's `VERSION()` (`8.0.36`, `10.11.19-MariaDB-0+deb12u1`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The SQL dialect in use: the flavour (MySQL or MariaDB) and version.
    pub fn dialect(&self) -> MySqlDialect {
        self.dialect
    }

    /// The underlying sqlx pool (for statements objectql does not model).
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    async fn acquire(&self) -> Result<PoolConnection<MySql>> {
        let _waiting = Waiting::new(&self.waiting);
        self.pool
            .acquire()
            .await
            .map_err(|e| from_sqlx(e, "acquiring a connection"))
    }

    /// `sync_schema`'s work on `conn`, which holds the sync lock: the
    /// collision check against every stored schema (this process's and
    /// every other one's), the DDL, the stored schema, then the check that
    /// every declared unique key is enforced.
    async fn sync_locked(&self, conn: &mut MySqlConnection, schema: &ObjectSchema) -> Result<()> {
        // Objects synced by other processes share the database: their
        // tables count for collisions as much as this engine's.
        let stored = stored_schemas(conn, None).await?;
        self.caps.names.check_schema(schema, &stored)?;
        let fold = self.caps.names.column_fold;
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
            Some(old) if old == schema => return check_unique_keys(conn, schema, fold).await,
            Some(old) => Some(old.clone()),
            None => {
                let found = crate::introspect::table(conn, &self.dialect, schema.table()).await?;
                if found.is_some() {
                    check_collations(conn, &self.dialect, schema).await?;
                }
                found
            }
        };
        let statements = match existing {
            Some(old) => compiler.migrate(&old, schema)?,
            None => compiler.create_table(schema)?,
        };
        // DDL commits implicitly in MySQL: the statements run one by one, and
        // the stored schema is written last, only when every change is made.
        for st in statements {
            execute(conn, st).await?;
        }
        let json = serde_json::to_string(schema)
            .map_err(|e| Error::internal(format!("schema to JSON: {e}")))?;
        execute(
            conn,
            Statement::new(
                format!(
                    "REPLACE INTO {} (`name`, `schema`) VALUES (?, ?)",
                    quote_ident(SCHEMA_TABLE)
                ),
                vec![Value::String(schema.name.clone()), Value::String(json)],
            ),
        )
        .await?;
        check_unique_keys(conn, schema, fold).await
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
                None => Ok(Handle::Pooled(Pooled {
                    conn: self.acquire().await?,
                    in_flight: false,
                })),
                // One call at a time: a call made while another one, or a
                // stream of the transaction, holds it used to wait forever
                // (a `find_stream` kept alive across `commit`).
                Some(id) => {
                    let mut guard = self.tx_slot(id)?.try_lock_owned().map_err(|_| tx_busy())?;
                    if guard.as_ref().is_some_and(|t| t.in_flight) {
                        // An earlier call on it was cut off mid-request:
                        // closed (its connection too; the server rolls back).
                        drop(guard.take());
                        return Err(tx_closed());
                    }
                    Ok(Handle::Tx(guard))
                }
            }
        };
        match at {
            None => get.await,
            Some(at) => tokio::time::timeout_at(at, get)
                .await
                .unwrap_or_else(|_| Err(waited_out())),
        }
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
        let open = guard.take();
        match (open, commit) {
            // A call on it was cut off mid-request: the connection is closed
            // (dropping the transaction unended), which rolls it back.
            (Some(t), true) if t.in_flight => {
                drop(t);
                Err(tx_closed())
            }
            (Some(t), false) if t.in_flight => {
                drop(t);
                Ok(())
            }
            (Some(t), commit) => t.finish(commit).await,
            // The server already rolled it back (a deadlock, a lost connection).
            (None, false) => Ok(()),
            (None, true) => Err(tx_closed()),
        }
    }

    /// Runs `work` on the call's connection inside the write's [`Scope`],
    /// under the call's time limit.
    async fn write<T>(
        &self,
        cx: &Cx<'_>,
        several: bool,
        work: impl AsyncFnOnce(&mut MySqlConnection) -> Result<T>,
    ) -> Result<T> {
        let at = deadline_at(cx.timeout);
        let mut write = Midway {
            handle: self.handle(cx.tx, at).await?,
            done: false,
        };
        let in_tx = write.handle.in_tx();
        let result = match Deadline::start(at, &mut write.handle, &self.pool).await {
            Ok(deadline) => {
                Deadline::run(deadline.as_ref(), &mut write.handle, async |conn| {
                    let scope = Scope::open(conn, in_tx, several).await?;
                    let result = work(conn).await;
                    scope.close(conn, result).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        write.done = true;
        write.handle.settle();
        result.map_err(|e| write.handle.failed(e))
    }

    /// Runs a query under the call's time limit and collects its rows.
    async fn fetch_limited(&self, cx: &Cx<'_>, st: Statement) -> Result<Vec<Record>> {
        let at = deadline_at(cx.timeout);
        let mut handle = self.handle(cx.tx, at).await?;
        let result = match Deadline::start(at, &mut handle, &self.pool).await {
            Ok(deadline) => {
                let dialect = self.dialect;
                Deadline::run(deadline.as_ref(), &mut handle, async move |conn| {
                    fetch_rows(&dialect, conn, st).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        handle.settle();
        result.map_err(|e| handle.failed(e))
    }

    /// Inserts `records` and returns them as stored, in order.
    async fn insert_rows(
        &self,
        conn: &mut MySqlConnection,
        compiler: &SqlCompiler<'_>,
        schema: &ObjectSchema,
        records: &[Record],
        statements: Vec<Statement>,
    ) -> Result<Vec<Record>> {
        if statements.iter().all(|s| !s.columns.is_empty()) {
            // INSERT … RETURNING (MariaDB ≥ 10.5): rows come back in order.
            let mut out = Vec::with_capacity(records.len());
            for st in statements {
                out.extend(fetch_rows(&self.dialect, conn, st).await?);
            }
            return Ok(out);
        }
        let pk = schema.primary_key.as_str();
        let generated_keys = primary_key_type(schema)? == StorageType::Integer;
        let lacks_key = |r: &Record| r.get(pk).is_none_or(Value::is_null);
        let mut keys = Vec::with_capacity(records.len());
        let mut start = 0;
        for st in statements {
            // The compiler puts consecutive records with the same fields in
            // one statement: its parameters say how many.
            let width = records.get(start).map_or(0, Record::len);
            let n = st.params.len().checked_div(width).unwrap_or(0);
            let chunk = records
                .get(start..start + n)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Error::internal("insert statements do not match the records"))?;
            start += n;
            let generating = generated_keys && chunk.iter().any(lacks_key);
            if generating && !(self.consecutive_ids && chunk.iter().all(lacks_key)) {
                // Generated keys of a multi-row insert are not known to be
                // consecutive: one row per statement.
                for r in chunk {
                    for one in compiler.insert(&schema.name, std::slice::from_ref(r))? {
                        let done = execute(conn, one).await?;
                        keys.push(if lacks_key(r) {
                            generated_id(done.last_insert_id(), 0, self.id_step)?
                        } else {
                            r.get(pk).cloned().unwrap_or(Value::Null)
                        });
                    }
                }
            } else {
                let done = execute(conn, st).await?;
                for (k, r) in chunk.iter().enumerate() {
                    keys.push(if generating {
                        generated_id(done.last_insert_id(), k, self.id_step)?
                    } else {
                        r.get(pk).cloned().unwrap_or(Value::Null)
                    });
                }
            }
        }
        if start != records.len() {
            return Err(Error::internal(
                "insert statements do not match the records",
            ));
        }
        select_by_key(&self.dialect, conn, compiler, schema, pk, &keys).await
    }

    /// Upserts `records` (`ON DUPLICATE KEY UPDATE`) and returns them as
    /// stored, read back by their conflict keys.
    async fn upsert_rows(
        &self,
        conn: &mut MySqlConnection,
        compiler: &SqlCompiler<'_>,
        schema: &ObjectSchema,
        records: &[Record],
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        // As on the memory driver, every record names its conflict key.
        let mut keys = Vec::with_capacity(records.len());
        for r in records {
            let mut key = Vec::with_capacity(conflict.fields.len());
            for f in &conflict.fields {
                match r.get(f) {
                    Some(v) if !v.is_null() => key.push(v.clone()),
                    _ => {
                        return Err(Error::validation(
                            format!("data.{f}"),
                            format!("upsert needs a value for conflict field `{f}`"),
                        ));
                    }
                }
            }
            keys.push(key);
        }
        let mut seen = std::collections::HashSet::new();
        let distinct_keys = keys.iter().all(|k| {
            k.iter()
                .map(key_text)
                .collect::<Option<Vec<_>>>()
                .is_some_and(|t| seen.insert(t))
        });
        if !distinct_keys {
            // The same key twice: each record sees the previous one's
            // write, and returns the row as it was then.
            let mut out = Vec::with_capacity(records.len());
            for (r, key) in records.iter().zip(&keys) {
                for st in compiler.upsert(&schema.name, std::slice::from_ref(r), conflict)? {
                    run_statement(&self.dialect, conn, st).await?;
                }
                out.push(
                    select_one(&self.dialect, conn, compiler, schema, &conflict.fields, key)
                        .await?,
                );
            }
            return Ok(out);
        }
        for st in compiler.upsert(&schema.name, records, conflict)? {
            run_statement(&self.dialect, conn, st).await?;
        }
        if let [field] = conflict.fields.as_slice() {
            let firsts: Vec<Value> = keys
                .into_iter()
                .filter_map(|k| k.into_iter().next())
                .collect();
            return select_by_key(&self.dialect, conn, compiler, schema, field, &firsts).await;
        }
        let mut out = Vec::with_capacity(records.len());
        for key in &keys {
            out.push(
                select_one(&self.dialect, conn, compiler, schema, &conflict.fields, key).await?,
            );
        }
        Ok(out)
    }
}

/// The schema of `object` as last synced, from the schema table.
async fn stored_schema(conn: &mut MySqlConnection, object: &str) -> Result<Option<ObjectSchema>> {
    Ok(stored_schemas(conn, Some(object)).await?.pop())
}

/// The schemas in the schema table (only `object`'s, when given): the
/// objects synced by this process and by every other one.
async fn stored_schemas(
    conn: &mut MySqlConnection,
    only: Option<&str>,
) -> Result<Vec<ObjectSchema>> {
    let table = quote_ident(SCHEMA_TABLE);
    let st = match only {
        Some(object) => Statement::new(
            format!("SELECT `name`, `schema` FROM {table} WHERE `name` = ?"),
            vec![Value::String(object.to_owned())],
        ),
        None => Statement::new(format!("SELECT `name`, `schema` FROM {table}"), vec![]),
    };
    let rows = fetch_values(conn, st).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let [name, json] = row.as_slice() else {
            return Err(Error::internal("schema table row of the wrong width"));
        };
        out.push(objectql_driver::parse_stored_schema(
            &text_of(name)?,
            &text_of(json)?,
        )?);
    }
    Ok(out)
}

/// Refuses `schema` unless its table enforces every key it declares unique
/// (issue 12 §5): the unique indexes are read from
/// `information_schema.STATISTICS`, leaving out prefix indexes (a unique
/// prefix is not a unique column).
async fn check_unique_keys(
    conn: &mut MySqlConnection,
    schema: &ObjectSchema,
    fold: objectql_driver::NameFold,
) -> Result<()> {
    let rows = fetch_values(
        conn,
        Statement::new(
            "SELECT INDEX_NAME, COLUMN_NAME, CAST(SUB_PART IS NULL AS SIGNED) \
             FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            vec![Value::String(schema.table().to_owned())],
        ),
    )
    .await?;
    let mut indexes: Vec<(String, Vec<String>, bool)> = Vec::new();
    for row in &rows {
        let [index, column, whole] = row.as_slice() else {
            return Err(Error::internal(
                "information_schema.STATISTICS row of the wrong width",
            ));
        };
        let (index, whole) = (text_of(index)?, crate::introspect::int_of(whole) == Some(1));
        // An expression index (MySQL 8) has no column name.
        let column = text_of(column).unwrap_or_default();
        let whole = whole && !column.is_empty();
        match indexes.last_mut() {
            Some((last, cols, ok)) if *last == index => {
                cols.push(column);
                *ok &= whole;
            }
            _ => indexes.push((index, vec![column], whole)),
        }
    }
    let present: Vec<Vec<String>> = indexes
        .into_iter()
        .filter(|(_, _, whole)| *whole)
        .map(|(_, cols, _)| cols)
        .collect();
    objectql_driver::check_unique_keys(schema, &present, fold, None)
}

/// Refuses a table whose text columns compare differently from objectql
/// (a case-insensitive or PAD SPACE collation): with a NO PAD binary
/// collation, text keys are the bare columns, so the column's collation
/// decides `=`, `ORDER BY` and `GROUP BY`.
async fn check_collations(
    conn: &mut MySqlConnection,
    dialect: &MySqlDialect,
    schema: &ObjectSchema,
) -> Result<()> {
    let Some(exact) = dialect.exact_collation() else {
        // Text keys are binary casts: any collation is compared exactly.
        return Ok(());
    };
    let rows = fetch_values(
        conn,
        Statement::new(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL",
            vec![Value::String(schema.table().to_owned())],
        ),
    )
    .await?;
    for (name, f) in &schema.fields {
        if f.storage_type()? != StorageType::Text {
            continue;
        }
        for r in &rows {
            if let [column, collation] = r.as_slice()
                && text_of(column)? == f.column()
            {
                let collation = text_of(collation)?;
                if collation != exact && collation != "binary" {
                    return Err(Error::unsupported(
                        format!(
                            "text field `{name}` stored in column `{}` of table `{}` with collation \
                             {collation} (objectql compares text by code point, trailing spaces \
                             significant: convert the column to COLLATE {exact})",
                            f.column(),
                            schema.table()
                        ),
                        "mysql",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn primary_key_type(schema: &ObjectSchema) -> Result<StorageType> {
    schema
        .primary_key_field()
        .ok_or_else(|| Error::config(format!("object `{}` has no primary key field", schema.name)))?
        .storage_type()
}

/// The `k`-th key generated by a multi-row insert whose first key is `first`.
fn generated_id(first: u64, k: usize, step: u64) -> Result<Value> {
    u64::try_from(k)
        .ok()
        .and_then(|k| k.checked_mul(step))
        .and_then(|d| first.checked_add(d))
        .and_then(|id| i64::try_from(id).ok())
        .map(Value::Int)
        .ok_or_else(|| {
            Error::driver(
                DriverErrorKind::NumericOverflow,
                "a generated key does not fit a 64-bit integer",
            )
        })
}

/// A value as a hash key, for the key types that compare exactly as Rust
/// values (integers, text).
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(format!("i{i}")),
        Value::String(s) => Some(format!("s{s}")),
        _ => None,
    }
}

fn missing_row() -> Error {
    Error::driver(
        DriverErrorKind::Other,
        "a written row could not be read back",
    )
}

/// The rows whose `field` equals each of `keys`, in the order of `keys`.
async fn select_by_key(
    dialect: &MySqlDialect,
    conn: &mut MySqlConnection,
    compiler: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    field: &str,
    keys: &[Value],
) -> Result<Vec<Record>> {
    if !keys.iter().all(|k| key_text(k).is_some()) {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let key = std::slice::from_ref(k);
            out.push(select_one(dialect, conn, compiler, schema, &[field.to_owned()], key).await?);
        }
        return Ok(out);
    }
    let mut found: HashMap<String, Record> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_SELECT) {
        let q = Query::new(schema.name.clone()).filter(Filter::cond(field, Op::In(chunk.to_vec())));
        for r in fetch_rows(dialect, conn, compiler.select(&q)?).await? {
            if let Some(k) = r.get(field).and_then(key_text) {
                found.insert(k, r);
            }
        }
    }
    keys.iter()
        .map(|k| {
            key_text(k)
                .and_then(|k| found.get(&k).cloned())
                .ok_or_else(missing_row)
        })
        .collect()
}

/// The row whose `fields` equal `values`.
async fn select_one(
    dialect: &MySqlDialect,
    conn: &mut MySqlConnection,
    compiler: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    fields: &[String],
    values: &[Value],
) -> Result<Record> {
    let filter = Filter::And(
        fields
            .iter()
            .zip(values)
            .map(|(f, v)| Filter::cond(f.clone(), Op::Eq(Operand::Value(v.clone()))))
            .collect(),
    );
    let q = Query::new(schema.name.clone()).filter(filter).limit(1);
    fetch_rows(dialect, conn, compiler.select(&q)?)
        .await?
        .into_iter()
        .next()
        .ok_or_else(missing_row)
}

/// A quoted identifier: the planner's one quoting function.
pub(crate) fn quote_ident(s: &str) -> String {
    objectql_planner::sql::quote_ident('`', s)
}

/// A text value (or UTF-8 bytes) as a string.
pub(crate) fn text_of(v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|e| Error::Driver {
            kind: DriverErrorKind::Decode,
            message: "a text value is not UTF-8".into(),
            source: Some(Box::new(e)),
        }),
        other => Err(Error::driver(
            DriverErrorKind::Decode,
            format!("expected text, got {}", other.type_name()),
        )),
    }
}

/// A statement without parameters, over the text protocol.
async fn simple(conn: &mut MySqlConnection, sql: &'static str) -> Result<()> {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| from_sqlx(e, "controlling a transaction"))
}

/// A statement without parameters built at run time (DDL), over the text protocol.
async fn simple_owned(conn: &mut MySqlConnection, sql: String) -> Result<MySqlQueryResult> {
    tracing::trace!(sql, "mysql execute");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map_err(|e| from_sqlx(e, "executing a statement"))
}

async fn execute(conn: &mut MySqlConnection, st: Statement) -> Result<MySqlQueryResult> {
    if st.params.is_empty() {
        return simple_owned(conn, st.sql).await;
    }
    let args = arguments(st.params, &st.param_types)?;
    tracing::trace!(sql = st.sql, "mysql execute");
    sqlx::query_with(AssertSqlSafe(st.sql), args)
        .execute(conn)
        .await
        .map_err(|e| from_sqlx(e, "executing a statement"))
}

/// Runs a statement: the rows it returns, or the rows it touched.
async fn run_statement(
    dialect: &MySqlDialect,
    conn: &mut MySqlConnection,
    st: Statement,
) -> Result<(Vec<Record>, u64)> {
    if st.columns.is_empty() {
        Ok((Vec::new(), execute(conn, st).await?.rows_affected()))
    } else {
        let rows = fetch_rows(dialect, conn, st).await?;
        let n = rows.len() as u64;
        Ok((rows, n))
    }
}

async fn fetch_rows(
    dialect: &MySqlDialect,
    conn: &mut MySqlConnection,
    st: Statement,
) -> Result<Vec<Record>> {
    let args = arguments(st.params, &st.param_types)?;
    tracing::trace!(sql = st.sql, "mysql query");
    let rows = sqlx::query_with(AssertSqlSafe(st.sql), args)
        .fetch_all(conn)
        .await
        .map_err(|e| from_sqlx(e, "running a query"))?;
    let catalog = Catalog::new();
    let compiler = SqlCompiler::new(dialect, &catalog);
    let mut readers = None;
    rows.iter()
        .map(|row| decode(&compiler, &st.columns, &mut readers, row))
        .collect()
}

/// Runs a query and returns its rows as raw values (for bookkeeping and
/// catalog queries, whose column types vary by server).
pub(crate) async fn fetch_values(
    conn: &mut MySqlConnection,
    st: Statement,
) -> Result<Vec<Vec<Value>>> {
    let args = arguments(st.params, &st.param_types)?;
    let rows = sqlx::query_with(AssertSqlSafe(st.sql), args)
        .fetch_all(conn)
        .await
        .map_err(|e| from_sqlx(e, "running a query"))?;
    let mut readers: Option<Vec<Reader>> = None;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if readers.is_none() {
            readers = Some(Reader::for_row(row)?);
        }
        out.push(read_row(readers.as_deref().unwrap_or_default(), row)?);
    }
    Ok(out)
}

fn decode(
    compiler: &SqlCompiler<'_>,
    columns: &[OutputColumn],
    readers: &mut Option<Vec<Reader>>,
    row: &MySqlRow,
) -> Result<Record> {
    if readers.is_none() {
        *readers = Some(Reader::for_row(row)?);
    }
    let raw = read_row(readers.as_deref().unwrap_or_default(), row)?;
    compiler.decode_row(columns, raw)
}

/// InnoDB's REPEATABLE READ is not the protocol's: its plain reads see a
/// snapshot but its writes see the latest rows, so read-modify-write
/// transactions lose updates without an error (32 tasks × 50 increments
/// kept 164–176 of 1,600). RepeatableRead is therefore not declared, and a
/// request for it runs SERIALIZABLE, the weakest declared level that holds.
fn isolation_sql(level: IsolationLevel) -> &'static str {
    match level {
        IsolationLevel::ReadCommitted => {
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SELECT CAST(CONNECTION_ID() AS UNSIGNED)"
        }
        _ => {
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SELECT CAST(CONNECTION_ID() AS UNSIGNED)"
        }
    }
}

#[async_trait]
impl Driver for MySqlDriver {
    fn name(&self) -> &'static str {
        "mysql"
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
        simple(&mut conn, "SELECT 1").await
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
        // One connection for the whole sync (a pool of one must not wait on
        // itself), holding the database's sync lock: two processes
        // registering objects that share a table (or the same object) at
        // the same moment take turns, and the second sees the first's
        // stored schema. Dropped midway (cancelled), the connection is
        // closed and the server releases the lock.
        let mut lock = SyncLock::take(self.acquire().await?).await?;
        let outcome = self.sync_locked(&mut lock.conn, schema).await;
        lock.release().await?;
        outcome
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        let mut conn = self.acquire().await?;
        // The object's table is the one its stored schema names (its
        // `tableName`), not a table named after the object, which may be
        // another object's.
        let stored = stored_schemas(&mut conn, None).await?;
        let mut catalog = Catalog::new();
        if let Some(table) = self.caps.names.table_to_drop(object, &stored) {
            let mut own = ObjectSchema::new(object);
            own.table_name = Some(table);
            catalog.insert(own)?;
            let compiler = SqlCompiler::new(&self.dialect, &catalog);
            execute(&mut conn, compiler.drop_table(object)?).await?;
        }
        execute(
            &mut conn,
            Statement::new(
                format!("DELETE FROM {} WHERE `name` = ?", quote_ident(SCHEMA_TABLE)),
                vec![Value::String(object.to_owned())],
            ),
        )
        .await
        .map(drop)
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        let mut conn = self.acquire().await?;
        if let Some(s) = stored_schema(&mut conn, object).await? {
            return Ok(Some(s));
        }
        crate::introspect::table(&mut conn, &self.dialect, object).await
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let at = deadline_at(cx.timeout);
        let mut handle = self.handle(cx.tx, at).await?;
        let deadline = match Deadline::start(at, &mut handle, &self.pool).await {
            Ok(d) => d,
            Err(e) => {
                handle.settle();
                return Err(handle.failed(e));
            }
        };
        let Statement {
            sql,
            params,
            param_types,
            columns,
        } = st;
        let args = arguments(params, &param_types)?;
        let dialect = self.dialect;
        tracing::trace!(sql, "mysql find");
        // The stream owns the connection (or the transaction's lock) until
        // it is drained or dropped; rows are decoded as the server sends
        // them, so memory stays flat however many rows there are.
        let stream = async_stream::try_stream! {
            let mut handle = handle;
            let catalog = Catalog::new();
            let compiler = SqlCompiler::new(&dialect, &catalog);
            let mut readers = None;
            let mut failed = None;
            let mut expired = false;
            {
                let (conn, in_flight) = handle.conn_and_flag()?;
                let mut rows = sqlx::query_with(AssertSqlSafe(sql), args)
                    .fetch(conn)
                    .map_err(|e| from_sqlx(e, "reading rows"));
                loop {
                    // Reading a row counts as a request on its way: a stream
                    // dropped while sqlx is inside a packet leaves the
                    // connection unreadable (its next use waited forever),
                    // so it is then closed. Dropped between rows (a loop
                    // broken off), the rest is drained by the next use.
                    *in_flight = true;
                    // The time limit covers the whole stream.
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
                    *in_flight = false;
                    match next {
                        None => break,
                        Some(Ok(row)) => yield decode(&compiler, &columns, &mut readers, &row)?,
                        Some(Err(e)) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            if expired {
                if let Some(d) = &deadline {
                    d.kill().await;
                }
                handle.discard();
                Err(timed_out())?;
            }
            if let Some(e) = failed {
                Err(handle.failed(e))?;
            }
        };
        Ok(stream.boxed())
    }

    /// `information_schema.TABLES.TABLE_ROWS`: InnoDB's persistent
    /// estimate, refreshed as the table changes by a tenth.
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let table = cx.schema(object)?.table().to_owned();
        let mut conn = self.acquire().await?;
        let rows: Option<Option<u64>> = sqlx::query_scalar(
            "SELECT CAST(TABLE_ROWS AS UNSIGNED) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| from_sqlx(e, "estimating the table's rows"))?;
        Ok(rows.flatten())
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.count(object, filter)?;
        let rows = self.fetch_limited(&cx, st).await?;
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
        let rows = self.fetch_limited(&cx, st).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.shift_remove(field))
            .collect())
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let mut steps = vec![ExplainStep {
            location: "driver:mysql".into(),
            operation: "sql".into(),
            detail: format!("{} -- {} bound parameters", st.sql, st.params.len()),
        }];
        let mut handle = self.handle(cx.tx, deadline_at(cx.timeout)).await?;
        let args = arguments(st.params, &st.param_types)?;
        let rows = match sqlx::query_with(AssertSqlSafe(format!("EXPLAIN {}", st.sql)), args)
            .fetch_all(handle.conn()?)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                handle.settle();
                return Err(handle.failed(from_sqlx(e, "explaining a query")));
            }
        };
        handle.settle();
        let mut readers = None;
        for row in rows {
            if readers.is_none() {
                readers = Some(Reader::for_row(&row)?);
            }
            let values = read_row(readers.as_deref().unwrap_or_default(), &row)?;
            let detail = row
                .columns()
                .iter()
                .zip(values)
                .filter(|(_, v)| !v.is_null())
                .map(|(c, v)| match v {
                    Value::String(s) => format!("{}={s}", c.name()),
                    Value::Bytes(b) => format!("{}={}", c.name(), String::from_utf8_lossy(&b)),
                    v => format!("{}={}", c.name(), v.to_json()),
                })
                .collect::<Vec<_>>()
                .join(" ");
            steps.push(ExplainStep {
                location: "driver:mysql".into(),
                operation: "plan".into(),
                detail,
            });
        }
        Ok(steps)
    }

    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let schema = cx.schema(object)?;
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let statements = compiler.insert(object, &records)?;
        // One INSERT … RETURNING is atomic by itself; anything else (several
        // statements, or reading the rows back) runs in a scope.
        let several = !matches!(statements.as_slice(), [one] if !one.columns.is_empty());
        self.write(&cx, several, async |conn| {
            self.insert_rows(conn, &compiler, schema, &records, statements)
                .await
        })
        .await
    }

    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        let schema = cx.schema(object)?;
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.update_by_id(object, id, &patch)?;
        let returning = !st.columns.is_empty();
        self.write(&cx, !returning, async |conn| {
            if returning {
                return Ok(fetch_rows(&self.dialect, conn, st)
                    .await?
                    .into_iter()
                    .next());
            }
            // Affected rows count matched rows (CLIENT_FOUND_ROWS).
            if execute(conn, st).await?.rows_affected() == 0 {
                return Ok(None);
            }
            let pk = std::slice::from_ref(&schema.primary_key);
            select_one(
                &self.dialect,
                conn,
                &compiler,
                schema,
                pk,
                std::slice::from_ref(id),
            )
            .await
            .map(Some)
        })
        .await
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
        self.write(&cx, false, async |conn| {
            Ok(run_statement(&self.dialect, conn, st).await?.1)
        })
        .await
    }

    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let schema = cx.schema(object)?;
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        self.write(&cx, true, async |conn| {
            self.upsert_rows(conn, &compiler, schema, &records, conflict)
                .await
        })
        .await
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_by_id(object, id)?;
        self.write(&cx, false, async |conn| {
            Ok(run_statement(&self.dialect, conn, st).await?.1 > 0)
        })
        .await
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_where(object, filter)?;
        self.write(&cx, false, async |conn| {
            Ok(run_statement(&self.dialect, conn, st).await?.1)
        })
        .await
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        // Run to completion in a task of its own: if the caller's future is
        // dropped while the `BEGIN` is in flight, sqlx's own guard rolls back
        // nothing (its depth is still 0) and the pool handed a connection
        // inside a transaction nobody owned to the next caller, whose
        // acknowledged inserts were lost (issue 13 §8). Detached, the begin
        // finishes and its unclaimed transaction is dropped, which rolls it
        // back before the connection is pooled again.
        let pool = self.pool.clone();
        let waiting = Waiting::new(&self.waiting);
        let tx = tokio::spawn(async move {
            let mut conn = {
                let _waiting = waiting;
                pool.acquire()
                    .await
                    .map_err(|e| from_sqlx(e, "acquiring a connection"))?
            };
            // Applies to the next transaction of this connection only; the
            // same round trip reads the connection's id.
            let connection_id: u64 = sqlx::raw_sql(isolation_sql(isolation))
                .fetch_one(&mut *conn)
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| from_sqlx(e, "beginning a transaction"))?;
            // Snapshot levels take their snapshot now, not at the first read.
            let start = match isolation {
                IsolationLevel::ReadCommitted => "START TRANSACTION",
                _ => "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            };
            let mut tx = Tx {
                conn,
                connection_id,
                pool,
                in_flight: false,
                ended: false,
            };
            simple(&mut tx.conn, start).await?;
            Ok::<Tx, Error>(tx)
        })
        .await
        .map_err(|e| Error::internal(format!("beginning a transaction: {e}")))??;
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
        let slot = self.txs.lock().ok().and_then(|mut open| open.remove(&tx.0));
        // Idle: rolled back in the background and its connection pooled
        // again. In use by a call or a stream (or with no runtime): dropped
        // with the slot, which closes its connection.
        if let Some(slot) = slot
            && let Ok(mut guard) = slot.try_lock()
            && let Some(t) = guard.take()
            // Cut off mid-request: its connection may never answer a
            // rollback; dropped, the connection is closed instead.
            && !t.in_flight
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = t.finish(false).await {
                    tracing::debug!(error = %e, "rolling back an abandoned transaction failed");
                }
            });
        }
    }
}
