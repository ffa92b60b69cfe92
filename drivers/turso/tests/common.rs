//! The server of this run, temporary files, and taking turns on the server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use objectql_driver_turso::TursoOptions;

/// One temporary directory for the whole run.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

/// The libSQL server of this run.
pub fn server_url() -> String {
    match std::env::var("OBJECTQL_TURSO_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "OBJECTQL_TURSO_URL is not set: the remote and replica tests need a libSQL server. \
             Run them with scripts/test (it starts `sqld` with a JWT key and sets \
             OBJECTQL_TURSO_URL and OBJECTQL_TURSO_AUTH_TOKEN), or point both at a server \
             whose database these tests may empty"
        ),
    }
}

/// The token for [`server_url`].
pub fn token() -> String {
    std::env::var("OBJECTQL_TURSO_AUTH_TOKEN").unwrap_or_default()
}

/// Remote options for the server of this run.
pub fn remote_options() -> TursoOptions {
    TursoOptions::remote(server_url(), token()).max_connections(2)
}

/// Options for an embedded replica of the server's database in `path`.
pub fn replica_options(path: &Path) -> TursoOptions {
    TursoOptions::replica(path, server_url(), token()).max_connections(2)
}

/// A replica file no running test uses (an earlier case's, or a new one).
pub fn take_replica_file() -> PathBuf {
    let reused = free_replicas().lock().unwrap().pop();
    reused.unwrap_or_else(|| dir().join(format!("{}.replica.db", fresh("replica"))))
}

/// Returns a replica file for later cases.
pub fn give_back_replica_file(path: PathBuf) {
    free_replicas().lock().unwrap().push(path);
}

fn free_replicas() -> &'static std::sync::Mutex<Vec<PathBuf>> {
    static FREE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    &FREE
}

/// A turn on the server's one database: tests holding it run one at a
/// time. Released when dropped, also when the test panics.
pub struct ServerLock(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

impl ServerLock {
    /// Waits for the turn. Call it outside any runtime (it blocks).
    pub fn take() -> Self {
        static LOCK: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
        let lock = Arc::clone(LOCK.get_or_init(|| Arc::new(tokio::sync::Mutex::new(()))));
        Self(lock.blocking_lock_owned())
    }
}

/// Drops every table of the server's database (after a case, and by tests
/// that need it empty). Identifiers are quoted.
pub async fn wipe() -> objectql::Result<()> {
    let db = libsql::Builder::new_remote(server_url(), token())
        .build()
        .await
        .map_err(|e| objectql_driver_sqlite::libsql_error(e, "connecting"))?;
    let conn = db
        .connect()
        .map_err(|e| objectql_driver_sqlite::libsql_error(e, "connecting"))?;
    let mut names = Vec::new();
    let mut rows = conn
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'libsql\\_%' ESCAPE '\\' \
             AND name NOT LIKE '%\\_shadow' ESCAPE '\\'",
            (),
        )
        .await
        .map_err(|e| objectql_driver_sqlite::libsql_error(e, "listing tables"))?;
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| objectql_driver_sqlite::libsql_error(e, "listing tables"))?
    {
        if let Ok(libsql::Value::Text(name)) = row.get_value(0) {
            names.push(name);
        }
    }
    for name in names {
        conn.execute(
            &format!("DROP TABLE IF EXISTS \"{}\"", name.replace('"', "\"\"")),
            (),
        )
        .await
        .map_err(|e| objectql_driver_sqlite::libsql_error(e, "dropping a table"))?;
    }
    Ok(())
}

/// A name unique to this process and call.
pub fn fresh(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
