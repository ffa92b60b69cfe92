//! The SQLite driver: compiled statements in, decoded rows out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use objectql_driver::{
    Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel, NameFold, NameRules,
    PoolStats, Pushdown, RowStream, TxId,
};
use objectql_planner::sql::{OutputColumn, SqlCompiler, SqliteDialect, Statement, quote_ident};
use objectql_query_ast::{
    Condition, DriverErrorKind, Error, Filter, ObjectSchema, Query, Record, Result, Value,
};

use crate::connection::{Conn, LibsqlSetup, Pool, SqliteOptions, Transactions};
use crate::error::from_libsql;
use crate::types::{from_raw, to_raw};

/// Where the schema of every synced object is kept, so later syncs can
/// migrate without guessing and `introspect` returns exact types.
const SCHEMA_TABLE: &str = "_objectql_schema";

/// The SQLite driver (`sqlite://path.db`, `sqlite::memory:`).
///
/// Runs on the SQLite engine embedded by the `libsql` crate — the one SQLite
/// of the process. Files are opened in WAL mode; write transactions begin
/// with `BEGIN IMMEDIATE`, so a busy database fails fast with a retryable
/// `Busy` error instead of deadlocking on a lock upgrade.
pub struct SqliteDriver {
    pool: Arc<Pool>,
    dialect: SqliteDialect,
    caps: Capabilities,
    txs: Transactions,
    next_tx: AtomicU64,
}

impl std::fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDriver")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// A streaming `find` between two rows: what the next row needs.
struct Decoding {
    /// Held until the stream ends (the pool's connection or the transaction's lock).
    _conn: Handle,
    rows: libsql::Rows,
    columns: Vec<OutputColumn>,
    /// Empty: [`SqlCompiler::decode_row`] reads only the dialect.
    catalog: objectql_query_ast::Catalog,
}

/// A multi-statement write in progress inside transaction `tx`: dropped
/// before the write finished (cancelled, or failed to roll back its
/// savepoint), it closes the transaction, whose connection then rolls back
/// when its last holder lets go. Finished, `tx` is `None`.
struct Midway<'a> {
    txs: &'a Transactions,
    tx: Option<TxId>,
}

impl Drop for Midway<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take()
            && let Ok(mut open) = self.txs.open.lock()
        {
            open.remove(&tx.0);
        }
    }
}

/// A connection for one call: the transaction's, or one from the pool.
enum Handle {
    Pooled(Conn),
    Tx(tokio::sync::OwnedMutexGuard<Conn>),
}

impl std::ops::Deref for Handle {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        match self {
            Self::Pooled(c) => c,
            Self::Tx(g) => g,
        }
    }
}

impl SqliteDriver {
    /// Opens (or creates) the database described by `options`.
    pub async fn open(options: SqliteOptions) -> Result<Self> {
        let (db, setup) = options.open_local().await?;
        Self::from_database(db, setup).await
    }

    /// Serves an already-built libSQL database — local, remote or an
    /// embedded replica — with the SQLite dialect and this driver's code.
    /// This is how the Turso driver shares one implementation (and one SQL
    /// compiler) across every connection mode.
    pub async fn from_database(db: libsql::Database, setup: LibsqlSetup) -> Result<Self> {
        let vectors = setup.vectors;
        let pool = Pool::new(db, setup).await?;
        let conn = pool.acquire().await?;
        let version = sqlite_version(&conn).await?;
        drop(conn);
        let dialect = SqliteDialect { version, vectors };
        let mut caps = Capabilities::everything()
            .with(Feature::Transactions)
            .with(Feature::UniqueConstraints)
            .with(Feature::JsonFields)
            .with(Feature::BinaryFields);
        if vectors {
            caps = caps.with(Feature::Vectors);
        }
        caps.isolation_levels = vec![IsolationLevel::Serializable];
        caps.max_bind_params = Some(32_766);
        caps.names = Self::name_rules();
        let driver = Self {
            pool,
            dialect,
            caps,
            txs: Transactions::default(),
            next_tx: AtomicU64::new(1),
        };
        {
            let conn = driver.pool.acquire().await?;
            wait_for_lock(
                &conn,
                &format!("CREATE TABLE IF NOT EXISTS {} (\"name\" TEXT PRIMARY KEY, \"schema\" TEXT NOT NULL)", quote_ident('"', SCHEMA_TABLE)),
                driver.pool.setup().busy_timeout,
            )
            .await?;
        }
        Ok(driver)
    }

    /// The libSQL database this driver serves (for `sync()` on an embedded
    /// replica, or raw access next to objectql).
    pub fn database(&self) -> &libsql::Database {
        self.pool.database()
    }

    /// The SQL dialect the driver compiles to.
    pub fn dialect(&self) -> SqliteDialect {
        self.dialect
    }

    /// Connects from a URL (see [`SqliteOptions::from_url`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(SqliteOptions::from_url(url)?).await
    }

    /// The SQLite version of the embedded engine.
    pub fn version(&self) -> (u32, u32, u32) {
        self.dialect.version
    }

    async fn handle(&self, tx: Option<TxId>) -> Result<Handle> {
        match tx {
            None => Ok(Handle::Pooled(self.pool.acquire().await?)),
            Some(id) => {
                let conn = self
                    .txs
                    .open
                    .lock()
                    .map_err(|_| Error::internal("transaction table poisoned"))?
                    .get(&id.0)
                    .cloned()
                    .ok_or_else(|| {
                        Error::driver(
                            DriverErrorKind::TransactionClosed,
                            format!("transaction {} is not open", id.0),
                        )
                    })?;
                // One call at a time: a call made while another one, or a
                // stream of the transaction, holds it used to wait forever
                // (a `find_stream` kept alive across `commit`).
                Ok(Handle::Tx(conn.try_lock_owned().map_err(|_| tx_busy())?))
            }
        }
    }

    /// Runs several statements atomically (inside the caller's transaction
    /// as a savepoint, or as a transaction of their own) and collects the
    /// rows they return.
    async fn run_atomic(
        &self,
        compiler: &SqlCompiler<'_>,
        tx: Option<TxId>,
        statements: Vec<Statement>,
    ) -> Result<(Vec<Record>, u64)> {
        let conn = self.handle(tx).await?;
        let single = statements.len() == 1;
        // Outside a transaction every write, one statement too, runs inside
        // `BEGIN IMMEDIATE`: the lock is waited for without blocking the
        // runtime (`wait_for_lock`), and the statement then never meets a
        // locked database.
        let wrap = tx.is_none() || !single;
        let (begin, commit, rollback) = if tx.is_some() {
            (
                "SAVEPOINT objectql_write",
                "RELEASE objectql_write",
                "ROLLBACK TO objectql_write; RELEASE objectql_write",
            )
        } else {
            ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        };
        // A write cut off between its statements (its future dropped at a
        // yield below, or at a remote mode's network wait) must not leave
        // its first statements to be committed: outside a transaction the
        // pooled connection rolls back when dropped mid-transaction; inside
        // one, `Midway` closes the caller's transaction, so its commit fails
        // with `TransactionClosed` and the connection is rolled back.
        let mut midway = Midway {
            txs: &self.txs,
            tx: tx.filter(|_| !single),
        };
        if tx.is_none() {
            wait_for_lock(&conn, begin, self.pool.setup().busy_timeout).await?;
        } else if wrap {
            execute(&conn, begin, Vec::new()).await?;
        }
        let mut rows = Vec::new();
        let mut affected = 0;
        let mut result = Ok(());
        for (i, st) in statements.into_iter().enumerate() {
            if i > 0 {
                // The local engine runs each statement to completion on this
                // thread; between chunks, let the runtime's other tasks run
                // (a 50,000-row insert once held a worker for its whole
                // duration).
                tokio::task::yield_now().await;
            }
            let outcome = if st.columns.is_empty() {
                execute(&conn, &st.sql, st.params)
                    .await
                    .map(|n| affected += n)
            } else {
                query(compiler, &conn, st).await.map(|r| {
                    affected += r.len() as u64;
                    rows.extend(r);
                })
            };
            if let Err(e) = outcome {
                result = Err(e);
                break;
            }
        }
        if wrap {
            match &result {
                Ok(()) => execute(&conn, commit, Vec::new()).await.map(drop)?,
                Err(_) => {
                    conn.track(conn.execute_batch(rollback))
                        .await
                        .map_err(|e| from_libsql(e, "rolling back"))?;
                }
            }
        }
        midway.tx = None;
        result.map(|()| (rows, affected))
    }

    async fn stored_schema(&self, object: &str) -> Result<Option<ObjectSchema>> {
        Ok(self.stored_schemas(Some(object)).await?.pop())
    }

    /// The schemas in the schema table (only `object`'s, when given): the
    /// objects synced by this process and by every other one.
    /// `sync_schema`'s work inside its write transaction on `conn`: the
    /// collision check against every stored schema (this process's and
    /// every other one's), then the DDL and the stored schema.
    async fn sync_locked(&self, conn: &Conn, schema: &ObjectSchema) -> Result<()> {
        let stored = stored_schemas_on(conn, None).await?;
        self.caps.names.check_schema(schema, &stored)?;
        let mut catalog = objectql_query_ast::Catalog::new();
        catalog.insert(schema.clone())?;
        let compiler = SqlCompiler::new(&self.dialect, &catalog);
        let mut statements = match stored.into_iter().find(|s| s.name == schema.name) {
            Some(old) if old == *schema => return Ok(()),
            Some(old) => compiler.migrate(&old, schema)?,
            None => compiler.create_table(schema)?,
        };
        let json = serde_json::to_string(schema)
            .map_err(|e| Error::internal(format!("schema to JSON: {e}")))?;
        statements.push(Statement::new(
            format!(
                "INSERT OR REPLACE INTO {} (\"name\", \"schema\") VALUES (?, ?)",
                quote_ident('"', SCHEMA_TABLE)
            ),
            vec![Value::String(schema.name.clone()), Value::String(json)],
        ));
        for st in statements {
            if st.columns.is_empty() {
                execute(conn, &st.sql, st.params).await?;
            } else {
                query(&compiler, conn, st).await?;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    async fn stored_schemas(&self, only: Option<&str>) -> Result<Vec<ObjectSchema>> {
        let conn = self.pool.acquire().await?;
        stored_schemas_on(&conn, only).await
    }

    /// The column lists of `table`'s unique indexes (the primary key's
    /// included, also when it is the rowid), as SQLite's catalog reports
    /// them. Partial and expression indexes are left out: they do not make
    /// a column unique.
    async fn unique_indexes(&self, table: &str) -> Result<Vec<Vec<String>>> {
        let conn = self.pool.acquire().await?;
        let what = "reading the table's unique indexes";
        let mut rows = conn
            .track(conn.query(
                "SELECT il.\"name\", ii.\"name\" FROM pragma_index_list(?1) AS il \
                 JOIN pragma_index_info(il.\"name\") AS ii \
                 WHERE il.\"unique\" = 1 AND il.\"partial\" = 0 \
                 UNION ALL \
                 SELECT NULL, \"name\" FROM pragma_table_info(?1) WHERE \"pk\" > 0 \
                 ORDER BY 1",
                vec![libsql::Value::Text(table.to_owned())],
            ))
            .await
            .map_err(|e| from_libsql(e, what))?;
        let mut out: Vec<(Option<String>, Vec<String>)> = Vec::new();
        while let Some(row) = rows.next().await.map_err(|e| from_libsql(e, what))? {
            let index = match row.get_value(0).map_err(|e| from_libsql(e, what))? {
                libsql::Value::Text(t) => Some(t),
                _ => None,
            };
            // An expression column has no name: the index is not over columns.
            let column = match row.get_value(1).map_err(|e| from_libsql(e, what))? {
                libsql::Value::Text(t) => t,
                _ => String::new(),
            };
            match out.last_mut() {
                Some((last, cols)) if *last == index => cols.push(column),
                _ => out.push((index, vec![column])),
            }
        }
        Ok(out
            .into_iter()
            .map(|(_, cols)| cols)
            .filter(|cols| cols.iter().all(|c| !c.is_empty()))
            .collect())
    }
}

async fn sqlite_version(conn: &libsql::Connection) -> Result<(u32, u32, u32)> {
    let mut rows = conn
        .query("SELECT sqlite_version()", ())
        .await
        .map_err(|e| from_libsql(e, "reading the SQLite version"))?;
    let row = rows
        .next()
        .await
        .map_err(|e| from_libsql(e, "reading the SQLite version"))?
        .ok_or_else(|| {
            Error::driver(DriverErrorKind::Decode, "sqlite_version() returned no row")
        })?;
    let libsql::Value::Text(text) = row
        .get_value(0)
        .map_err(|e| from_libsql(e, "reading the SQLite version"))?
    else {
        return Err(Error::driver(
            DriverErrorKind::Decode,
            "sqlite_version() is not text",
        ));
    };
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    ))
}

/// [`SqliteDriver::stored_schemas`] on a given connection: inside a write
/// transaction, what it reads cannot change before the transaction ends.
async fn stored_schemas_on(conn: &Conn, only: Option<&str>) -> Result<Vec<ObjectSchema>> {
    let table = quote_ident('"', SCHEMA_TABLE);
    let mut rows = match only {
        Some(object) => {
            conn.track(conn.query(
                &format!("SELECT \"name\", \"schema\" FROM {table} WHERE \"name\" = ?"),
                vec![libsql::Value::Text(object.to_owned())],
            ))
            .await
        }
        None => {
            conn.track(conn.query(&format!("SELECT \"name\", \"schema\" FROM {table}"), ()))
                .await
        }
    }
    .map_err(|e| from_libsql(e, "reading the schema table"))?;
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| from_libsql(e, "reading the schema table"))?
    {
        let text = |i| match row.get_value(i) {
            Ok(libsql::Value::Text(t)) => Ok(t),
            Ok(_) => Err(Error::driver(
                DriverErrorKind::Decode,
                "the schema table holds a value that is not text",
            )),
            Err(e) => Err(from_libsql(e, "reading the schema table")),
        };
        let (name, json) = (text(0)?, text(1)?);
        out.push(objectql_driver::parse_stored_schema(&name, &json)?);
    }
    Ok(out)
}

async fn execute(conn: &Conn, sql: &str, params: Vec<Value>) -> Result<u64> {
    let raw = params.into_iter().map(to_raw).collect::<Result<Vec<_>>>()?;
    tracing::trace!(sql, "sqlite execute");
    conn.track(conn.execute(sql, raw))
        .await
        .map_err(|e| from_libsql(e, "executing a statement"))
}

/// Runs `sql` (no parameters), which takes the database's write lock
/// (`BEGIN IMMEDIATE`, DDL outside a transaction), waiting for a locked database for up to `wait`
/// without blocking the runtime: connections answer `SQLITE_BUSY` at once
/// (see `Pool::connect`), and the statement is tried again after a pause
/// (1 ms, doubling up to 20 ms). A statement that answered busy changed
/// nothing, so trying it again is safe. `wait` is `None` on a remote
/// server, which waits (or not) by itself.
async fn wait_for_lock(conn: &Conn, sql: &str, wait: Option<Duration>) -> Result<()> {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.track(conn.execute(sql, ())).await {
            Ok(_) => return Ok(()),
            Err(e) if is_busy(&e) => {
                let now = tokio::time::Instant::now();
                match deadline {
                    Some(d) if now + pause <= d => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                    _ => return Err(from_libsql(e, "waiting for the database's write lock")),
                }
            }
            Err(e) => return Err(from_libsql(e, "taking the database's write lock")),
        }
    }
}

/// `SQLITE_BUSY` (any extended code): the lock was not taken.
fn is_busy(e: &libsql::Error) -> bool {
    matches!(e, libsql::Error::SqliteFailure(code, _) if code & 0xff == 5)
}

async fn query(compiler: &SqlCompiler<'_>, conn: &Conn, st: Statement) -> Result<Vec<Record>> {
    // The statement is consumed: its parameters move into libsql without a copy.
    let raw = st
        .params
        .into_iter()
        .map(to_raw)
        .collect::<Result<Vec<_>>>()?;
    tracing::trace!(sql = st.sql, "sqlite query");
    let mut rows = conn
        .track(conn.query(&st.sql, raw))
        .await
        .map_err(|e| from_libsql(e, "running a query"))?;
    let mut out = Vec::new();
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| from_libsql(e, "reading rows"))?
    {
        out.push(decode(compiler, &st.columns, &row)?);
    }
    Ok(out)
}

fn decode(
    compiler: &SqlCompiler<'_>,
    columns: &[OutputColumn],
    row: &libsql::Row,
) -> Result<Record> {
    let mut raw = Vec::with_capacity(columns.len());
    for i in 0..columns.len() {
        let idx = i32::try_from(i).map_err(|_| Error::internal("too many columns"))?;
        raw.push(from_raw(
            row.get_value(idx)
                .map_err(|e| from_libsql(e, "reading a column"))?,
        ));
    }
    compiler.decode_row(columns, raw)
}

#[async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        self.pool.setup().name
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Accepted when the SQL compiler compiles it (pure: nothing is sent).
    fn accepts(&self, catalog: &objectql_query_ast::Catalog, query: &Query) -> Result<()> {
        SqlCompiler::new(&self.dialect, catalog)
            .select(query)
            .map(drop)
    }

    fn classify(&self, schema: &ObjectSchema, condition: &Condition) -> Pushdown {
        let catalog = objectql_query_ast::Catalog::new();
        SqlCompiler::new(&self.dialect, &catalog).classify(schema, condition)
    }

    async fn health_check(&self) -> Result<()> {
        let conn = self.pool.acquire().await?;
        sqlite_version(&conn).await.map(drop)
    }

    fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    async fn close(&self) -> Result<()> {
        self.pool.close();
        Ok(())
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        schema.check()?;
        self.caps.check_schema(schema, self.name())?;
        // The collision check, the DDL and the stored schema run in one
        // write transaction: another process registering `caseobj` while
        // this one registers `CaseObj` waits for the write lock, then reads
        // this one's schema and is refused; neither can see a catalog the
        // other is about to change. Dropped midway (cancelled), the
        // connection rolls back.
        let conn = self.pool.acquire().await?;
        wait_for_lock(&conn, "BEGIN IMMEDIATE", self.pool.setup().busy_timeout).await?;
        let outcome = self.sync_locked(&conn, schema).await;
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = execute(&conn, end, Vec::new()).await;
        outcome?;
        ended?;
        drop(conn);
        let present = self.unique_indexes(schema.table()).await?;
        objectql_driver::check_unique_keys(schema, &present, self.caps.names.column_fold, None)
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        // The object's table is the one its stored schema names (its
        // `tableName`), not a table named after the object, which may be
        // another object's.
        let stored = self.stored_schemas(None).await?;
        let mut catalog = objectql_query_ast::Catalog::new();
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
                "DELETE FROM {} WHERE \"name\" = ?",
                quote_ident('"', SCHEMA_TABLE)
            ),
            vec![Value::String(object.to_owned())],
        ));
        self.run_atomic(&compiler, None, statements).await.map(drop)
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        self.stored_schema(object).await
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let conn = self.handle(cx.tx).await?;
        let Statement {
            sql,
            params,
            columns,
            ..
        } = st;
        let raw = params.into_iter().map(to_raw).collect::<Result<Vec<_>>>()?;
        tracing::trace!(sql, "sqlite find");
        let rows = conn
            .track(conn.query(&sql, raw))
            .await
            .map_err(|e| from_libsql(e, "running a query"))?;
        // The stream owns the connection (or the transaction's lock) until
        // it is drained or dropped; rows are decoded as they arrive. The
        // output columns move from row to row with the state (never cloned),
        // and decoding needs only the dialect, so the catalog is an empty one
        // (no allocation) rather than a copy of the caller's.
        let dialect = self.dialect;
        let state = Decoding {
            _conn: conn,
            rows,
            columns,
            catalog: objectql_query_ast::Catalog::new(),
        };
        let stream = futures::stream::unfold(Some(state), move |state| async move {
            let mut state = state?;
            match state.rows.next().await {
                Ok(Some(row)) => {
                    let compiler = SqlCompiler::new(&dialect, &state.catalog);
                    let record = decode(&compiler, &state.columns, &row);
                    Some((record, Some(state)))
                }
                Ok(None) => None,
                Err(e) => Some((Err(from_libsql(e, "reading rows")), None)),
            }
        });
        Ok(stream.boxed())
    }

    /// The table's largest rowid: found in its b-tree without a scan, and
    /// equal to the row count until rows are deleted from the middle.
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let sql = format!(
            "SELECT max(rowid) FROM {}",
            quote_ident('"', cx.schema(object)?.table())
        );
        let what = "estimating the table's rows";
        let conn = self.handle(cx.tx).await?;
        let mut rows = conn
            .track(conn.query(&sql, ()))
            .await
            .map_err(|e| from_libsql(e, what))?;
        let Some(row) = rows.next().await.map_err(|e| from_libsql(e, what))? else {
            return Ok(None);
        };
        Ok(match row.get_value(0).map_err(|e| from_libsql(e, what))? {
            libsql::Value::Integer(n) => u64::try_from(n).ok(),
            // An empty table.
            libsql::Value::Null => Some(0),
            _ => None,
        })
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.count(object, filter)?;
        let conn = self.handle(cx.tx).await?;
        let rows = query(&compiler, &conn, st).await?;
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
        let conn = self.handle(cx.tx).await?;
        let rows = query(&compiler, &conn, st).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.shift_remove(field))
            .collect())
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.select(query)?;
        let mut steps = vec![ExplainStep {
            location: format!("driver:{}", self.name()),
            operation: "sql".into(),
            detail: format!("{} -- {} bound parameters", st.sql, st.params.len()),
        }];
        let conn = self.handle(cx.tx).await?;
        let raw = st
            .params
            .iter()
            .cloned()
            .map(to_raw)
            .collect::<Result<Vec<_>>>()?;
        let mut rows = conn
            .track(conn.query(&format!("EXPLAIN QUERY PLAN {}", st.sql), raw))
            .await
            .map_err(|e| from_libsql(e, "explaining a query"))?;
        while let Some(row) = rows
            .next()
            .await
            .map_err(|e| from_libsql(e, "explaining a query"))?
        {
            if let Ok(libsql::Value::Text(detail)) = row.get_value(3) {
                steps.push(ExplainStep {
                    location: format!("driver:{}", self.name()),
                    operation: "plan".into(),
                    detail,
                });
            }
        }
        Ok(steps)
    }

    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let statements = compiler.insert(object, &records)?;
        Ok(self.run_atomic(&compiler, cx.tx, statements).await?.0)
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
            .run_atomic(&compiler, cx.tx, vec![st])
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
        Ok(self.run_atomic(&compiler, cx.tx, vec![st]).await?.1)
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
        Ok(self.run_atomic(&compiler, cx.tx, statements).await?.0)
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_by_id(object, id)?;
        Ok(self.run_atomic(&compiler, cx.tx, vec![st]).await?.1 > 0)
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        let compiler = SqlCompiler::new(&self.dialect, cx.catalog);
        let st = compiler.delete_where(object, filter)?;
        Ok(self.run_atomic(&compiler, cx.tx, vec![st]).await?.1)
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        // SQLite transactions are serializable; every level is served so.
        let _ = isolation;
        let conn = self.pool.acquire().await?;
        wait_for_lock(&conn, "BEGIN IMMEDIATE", self.pool.setup().busy_timeout).await?;
        let id = self.next_tx.fetch_add(1, Ordering::Relaxed);
        self.txs
            .open
            .lock()
            .map_err(|_| Error::internal("transaction table poisoned"))?
            .insert(id, Arc::new(tokio::sync::Mutex::new(conn)));
        Ok(TxId(id))
    }

    async fn commit(&self, tx: TxId) -> Result<()> {
        self.finish(tx, "COMMIT").await
    }

    async fn rollback(&self, tx: TxId) -> Result<()> {
        self.finish(tx, "ROLLBACK").await
    }

    fn abandon(&self, tx: TxId) {
        // Dropping the connection outside autocommit closes it, and SQLite
        // rolls the transaction back.
        if let Ok(mut open) = self.txs.open.lock() {
            open.remove(&tx.0);
        }
    }
}

impl SqliteDriver {
    async fn finish(&self, tx: TxId, sql: &str) -> Result<()> {
        let guard = {
            let mut open = self
                .txs
                .open
                .lock()
                .map_err(|_| Error::internal("transaction table poisoned"))?;
            let conn = open.get(&tx.0).cloned().ok_or_else(|| {
                Error::driver(
                    DriverErrorKind::TransactionClosed,
                    format!("transaction {} is not open", tx.0),
                )
            })?;
            // Busy (a stream of it is alive): the transaction stays open.
            let guard = conn.try_lock_owned().map_err(|_| tx_busy())?;
            open.remove(&tx.0);
            guard
        };
        execute(&guard, sql, Vec::new()).await.map(drop)
    }
}

impl SqliteDriver {
    /// SQLite's naming rules: table and column names compare with ASCII
    /// case folding (`CaseObj` and `caseobj` are one table), and `sqlite_`
    /// is reserved. Every database on SQLite's engine (Turso's tenants
    /// included) has them.
    pub fn name_rules() -> NameRules {
        let mut r = NameRules::default();
        r.table_fold = NameFold::AsciiCase;
        r.column_fold = NameFold::AsciiCase;
        r.reserved_table_prefixes = vec!["sqlite_"];
        r
    }
}

/// A call on a transaction that another call, or one of its streams, is
/// using.
pub(crate) fn tx_busy() -> Error {
    Error::driver(
        DriverErrorKind::Busy,
        "the transaction is in use: one of its streams is still open or another call on it is running; drop the stream (or await the call) first",
    )
}
