//! Opening the database, the connection pool, and URL options.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use objectql_driver::PoolStats;
use objectql_query_ast::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{from_libsql, pool_timeout};

/// Options of a [`crate::SqliteDriver`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The database file; `None` for an in-memory database.
    pub path: Option<PathBuf>,
    /// Connections in the pool (an in-memory database always uses one:
    /// every connection to `:memory:` would be a different database).
    pub max_connections: u32,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long SQLite retries a locked database before answering `Busy`.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            path: None,
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// Options for a database file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Options for a private in-memory database.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Parses `sqlite://path/to/file.db`, `sqlite:///abs/path.db`,
    /// `sqlite::memory:` or `sqlite://:memory:`, with optional query options
    /// `max_connections`, `busy_timeout_ms`, `acquire_timeout_ms`.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| Error::config(format!("`{url}` is not a sqlite: URL")))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut options = match location {
            "" => {
                return Err(Error::config(format!(
                    "`{url}` names no database (use sqlite://path.db or sqlite::memory:)"
                )));
            }
            ":memory:" => Self::in_memory(),
            path => Self::file(path),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::config(format!("bad option `{pair}` in `{url}`")))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| Error::config(format!("option `{key}` in `{url}` takes a number")))
            };
            match key {
                "max_connections" => {
                    options.max_connections = u32::try_from(number()?)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            Error::config("max_connections must be between 1 and 2^32-1")
                        })?;
                }
                "busy_timeout_ms" => options.busy_timeout = Duration::from_millis(number()?),
                "acquire_timeout_ms" => options.acquire_timeout = Duration::from_millis(number()?),
                other => {
                    return Err(Error::config(format!(
                        "unknown sqlite URL option `{other}` in `{url}`"
                    )));
                }
            }
        }
        Ok(options)
    }
}

/// How a libSQL database is served: what [`crate::SqliteDriver::from_database`]
/// needs besides the database itself. The SQLite driver fills it from
/// [`SqliteOptions`]; the Turso driver from its own options, so every mode
/// (local file, `:memory:`, remote, embedded replica) runs the same code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LibsqlSetup {
    /// The driver's name in errors, explain output and capabilities.
    pub name: &'static str,
    /// Connections in the pool (use 1 for `:memory:`: every connection to it
    /// would be a different database).
    pub max_connections: u32,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long a statement that takes the write lock waits for a locked
    /// database before answering `Busy` (asynchronously: the runtime's
    /// worker is not blocked); `None` where the engine is not local (a
    /// remote server decides).
    pub busy_timeout: Option<Duration>,
    /// Switch the file to WAL on open (local files only).
    pub wal: bool,
    /// The engine has libSQL's native vectors and the driver declares them.
    pub vectors: bool,
}

impl LibsqlSetup {
    /// A setup named `name` with the SQLite driver's defaults: 4
    /// connections, 30 s acquire timeout, 5 s busy timeout, no WAL, no vectors.
    pub fn new(name: &'static str) -> Self {
        let defaults = SqliteOptions::default();
        Self {
            name,
            max_connections: defaults.max_connections,
            acquire_timeout: defaults.acquire_timeout,
            busy_timeout: Some(defaults.busy_timeout),
            wal: false,
            vectors: false,
        }
    }
}

/// A small pool of libsql connections over one database.
pub(crate) struct Pool {
    db: libsql::Database,
    idle: Mutex<Vec<libsql::Connection>>,
    permits: Arc<Semaphore>,
    size: u32,
    opened: AtomicU32,
    waiting: AtomicU32,
    setup: LibsqlSetup,
}

/// A connection checked out of the pool; returned to it on drop.
pub(crate) struct Conn {
    inner: libsql::Connection,
    pool: Arc<Pool>,
    /// Held until the connection is back in the pool (or closed).
    permit: Option<OwnedSemaphorePermit>,
    /// A request is on its way (see [`Conn::track`]).
    in_flight: AtomicBool,
}

impl Conn {
    /// Runs one request on this connection, remembering that it is on its
    /// way until it finishes. Cut off midway (the caller's future dropped),
    /// the mark stays: a network connection (remote, embedded replica)
    /// whose request was cut no longer knows where its server-side stream
    /// is (its next request was refused: "invalid baton"), so it is closed
    /// on drop instead of pooled. Local requests finish within one poll.
    pub(crate) async fn track<T>(&self, request: impl std::future::Future<Output = T>) -> T {
        self.in_flight.store(true, Ordering::Relaxed);
        let out = request.await;
        self.in_flight.store(false, Ordering::Relaxed);
        out
    }
}

impl std::ops::Deref for Conn {
    type Target = libsql::Connection;

    fn deref(&self) -> &libsql::Connection {
        &self.inner
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.in_flight.load(Ordering::Relaxed) {
            // Cut off mid-request: closed. Dropping the last handle asks the
            // server to close the stream (libSQL sends its baton), which
            // rolls back what it held; a stream the server had moved on
            // from expires on the server instead.
            self.pool.opened.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if self.inner.is_autocommit() {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(self.inner.clone());
                return;
            }
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // Left inside a transaction (an abandoned transaction, a write
            // cut off midway): rolled back in the background, then pooled
            // again, its permit held until then. Closing it instead would
            // also roll back, but an in-memory database lives only as long
            // as its connection: a dropped transaction emptied it.
            let inner = self.inner.clone();
            let pool = Arc::clone(&self.pool);
            let permit = self.permit.take();
            runtime.spawn(async move {
                let _permit = permit;
                if inner.execute("ROLLBACK", ()).await.is_ok()
                    && inner.is_autocommit()
                    && let Ok(mut idle) = pool.idle.lock()
                {
                    idle.push(inner);
                    return;
                }
                pool.opened.fetch_sub(1, Ordering::Relaxed);
            });
            return;
        }
        self.pool.opened.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SqliteOptions {
    /// Opens the local database these options name, with the setup the
    /// SQLite driver serves it with (for drivers built on this one).
    pub async fn open_local(&self) -> Result<(libsql::Database, LibsqlSetup)> {
        let target = match &self.path {
            Some(p) => p.clone(),
            None => PathBuf::from(":memory:"),
        };
        if let Some(parent) = self
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            return Err(Error::config(format!(
                "directory `{}` does not exist",
                parent.display()
            )));
        }
        let db = libsql::Builder::new_local(&target)
            .build()
            .await
            .map_err(|e| from_libsql(e, "opening the database"))?;
        let mut setup = LibsqlSetup::new("sqlite");
        setup.max_connections = if self.path.is_some() {
            self.max_connections
        } else {
            1
        };
        setup.acquire_timeout = self.acquire_timeout;
        setup.busy_timeout = Some(self.busy_timeout);
        setup.wal = self.path.is_some();
        Ok((db, setup))
    }
}

impl Pool {
    pub(crate) async fn new(db: libsql::Database, setup: LibsqlSetup) -> Result<Arc<Self>> {
        let size = setup.max_connections.max(1);
        let pool = Arc::new(Self {
            db,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            opened: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            setup,
        });
        let conn = pool.acquire().await?;
        if pool.setup.wal {
            // WAL: readers never block the writer. The answer is a row.
            let mut rows = conn
                .query("PRAGMA journal_mode=WAL", ())
                .await
                .map_err(|e| from_libsql(e, "enabling WAL"))?;
            while rows
                .next()
                .await
                .map_err(|e| from_libsql(e, "enabling WAL"))?
                .is_some()
            {}
        }
        drop(conn);
        Ok(pool)
    }

    /// The database the pool connects to.
    pub(crate) fn database(&self) -> &libsql::Database {
        &self.db
    }

    /// How the database is served.
    pub(crate) fn setup(&self) -> &LibsqlSetup {
        &self.setup
    }

    fn connect(&self) -> Result<libsql::Connection> {
        let c = self
            .db
            .connect()
            .map_err(|e| from_libsql(e, "connecting"))?;
        // SQLite's own busy handler would sleep on the runtime worker that
        // runs the statement, stalling every task queued there (a task
        // holding the lock included: two engines on one file then waited
        // out the whole timeout). A locked database answers at once, and
        // the driver waits for the lock asynchronously, up to
        // `busy_timeout` (`wait_for_lock`).
        if self.setup.busy_timeout.is_some() {
            c.busy_timeout(Duration::ZERO)
                .map_err(|e| from_libsql(e, "setting busy_timeout"))?;
        }
        Ok(c)
    }

    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Conn> {
        // Counted while waiting, also when the wait is cut off (the caller's
        // future dropped): the count once grew by one per cancelled call.
        struct Waiting<'a>(&'a AtomicU32);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        let permit = tokio::time::timeout(
            self.setup.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await;
        drop(waiting);
        let permit = match permit {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(Error::driver(
                    objectql_query_ast::DriverErrorKind::ConnectionLost,
                    format!("the {} pool is closed", self.setup.name),
                ));
            }
            Err(_) => return Err(pool_timeout(self.setup.acquire_timeout)),
        };
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = if let Some(c) = reused {
            c
        } else {
            let c = self.connect()?;
            self.opened.fetch_add(1, Ordering::Relaxed);
            c
        };
        Ok(Conn {
            inner: conn,
            pool: Arc::clone(self),
            permit: Some(permit),
            in_flight: AtomicBool::new(false),
        })
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let idle = self
            .idle
            .lock()
            .map_or(0, |i| u32::try_from(i.len()).unwrap_or(u32::MAX));
        let available = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        PoolStats {
            total: self.opened.load(Ordering::Relaxed),
            idle,
            active: self.size.saturating_sub(available),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// Open transactions: their connections, by id.
#[derive(Default)]
pub(crate) struct Transactions {
    pub(crate) open: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<Conn>>>>,
}
