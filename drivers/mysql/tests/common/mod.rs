//! Helpers shared by the MySQL/MariaDB test targets: the server of this
//! run, an admin connection, and drivers over fresh databases.

#![allow(dead_code)] // each test target uses a different subset.

use std::sync::OnceLock;

use objectql_driver_mysql::{MySqlDriver, MySqlOptions};
use sqlx::Connection;

/// The server (and database) of this run.
pub fn url() -> String {
    std::env::var("OBJECTQL_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// The prefix of every database this test binary creates.
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        std::env::var("OBJECTQL_TEST_RUN_ID").unwrap_or_else(|_| {
            // The shape scripts/servers.sh recognises (and cleans up when stale).
            let epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            format!("objectql_t_{}_{epoch}", std::process::id())
        })
    })
}

/// FNV-1a: a hash that is the same in every build and on every machine.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The database of `namespace`: `{run}_{namespace}`, shortened
/// deterministically to MySQL's 64 characters (a prefix and a hash of the
/// whole name).
pub fn database_name(namespace: &str) -> String {
    let full = format!("{}_{namespace}", run_id());
    if full.len() <= 64 {
        return full;
    }
    let hash = format!("_{:016x}", fnv1a(&full));
    let mut cut = 64 - hash.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{hash}", &full[..cut])
}

/// `` `name` ``, quoted.
pub fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A single admin connection (each test has its own runtime, so no pool
/// outlives one).
pub async fn admin() -> sqlx::MySqlConnection {
    let options =
        MySqlOptions::from_url(&url()).expect("OBJECTQL_TEST_MYSQL_URL is a mysql:// URL");
    match sqlx::MySqlConnection::connect_with(&options.connect).await {
        Ok(mut c) => {
            // A database still locked by a transaction someone forgot
            // must fail the test, not hang it for a year.
            sqlx::raw_sql("SET SESSION lock_wait_timeout = 60")
                .execute(&mut c)
                .await
                .expect("set lock_wait_timeout");
            c
        }
        Err(e) => panic!(
            "cannot reach MySQL/MariaDB at {} ({e}); run the suite with scripts/test (which \
             provisions a server), or start one and set OBJECTQL_TEST_MYSQL_URL to a URL whose \
             user may create and drop databases",
            url()
        ),
    }
}

/// Creates the database of `namespace` (utf8mb4, binary collation).
pub async fn create_database(namespace: &str) -> String {
    let name = database_name(namespace);
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        quoted(&name)
    )))
    .execute(&mut admin)
    .await
    .expect("create the database");
    name
}

/// Options for a driver over the database of `namespace` (created here).
pub async fn options_in(namespace: &str, max_connections: u32) -> MySqlOptions {
    let name = create_database(namespace).await;
    let mut options = MySqlOptions::from_url(&url()).expect("a mysql:// URL");
    options.connect = options.connect.database(&name);
    options.max_connections = max_connections;
    options
}

/// A driver over a fresh database for `namespace` (created here).
pub async fn driver_in(namespace: &str, max_connections: u32) -> objectql::Result<MySqlDriver> {
    MySqlDriver::open(options_in(namespace, max_connections).await).await
}

/// Drops the database of `namespace` and everything in it.
pub async fn drop_database(namespace: &str) {
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {}",
        quoted(&database_name(namespace))
    )))
    .execute(&mut admin)
    .await
    .expect("drop the database");
}
