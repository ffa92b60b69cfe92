//! Helpers shared by the PostgreSQL test targets: the server of this run,
//! an admin connection, and drivers over fresh schemas.

#![allow(dead_code)] // each test target uses a different subset.

use objectql_driver_postgres::{PostgresDriver, PostgresOptions};
use sqlx::Connection;

/// The server and database of this run.
pub fn url() -> String {
    std::env::var("OBJECTQL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A single admin connection (each test has its own runtime, so no pool
/// outlives one).
pub async fn admin() -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(&url()).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {} ({e}); run the suite with scripts/test, \
             or set OBJECTQL_TEST_POSTGRES_URL to a server you can create schemas on",
            url()
        ),
    }
}

/// `"name"`, quoted.
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A driver over a fresh schema `namespace` (created here).
pub async fn driver_in(namespace: &str, max_connections: u32) -> objectql::Result<PostgresDriver> {
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quoted(namespace)
    )))
    .execute(&mut admin)
    .await
    .expect("create the schema");
    let mut options = PostgresOptions::from_url(&url())?;
    options.schema = Some(namespace.to_owned());
    options.max_connections = max_connections;
    PostgresDriver::open(options).await
}

/// Drops schema `namespace` and everything in it.
pub async fn drop_schema(namespace: &str) {
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quoted(namespace)
    )))
    .execute(&mut admin)
    .await
    .expect("drop the schema");
}

/// A schema name unique to this process and call.
pub fn fresh_namespace(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "oqlt_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An engine whose default datasource is a driver over a fresh schema.
pub async fn engine_in(
    namespace: &str,
    options: impl FnOnce(&mut PostgresOptions),
) -> objectql::Engine {
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quoted(namespace)
    )))
    .execute(&mut admin)
    .await
    .expect("create the schema");
    let mut o = PostgresOptions::from_url(&url()).unwrap();
    o.schema = Some(namespace.to_owned());
    // Backends of this engine are found by their application name.
    o.connect = o.connect.application_name(namespace);
    options(&mut o);
    let engine = objectql::Engine::new();
    engine
        .add_driver(
            "default",
            std::sync::Arc::new(PostgresDriver::open(o).await.unwrap()),
        )
        .unwrap();
    engine
}

/// The pids of the backends of [`engine_in`]`(namespace)` in `state`
/// (`active`, `idle in transaction`, …).
pub async fn backends(admin: &mut sqlx::PgConnection, namespace: &str, state: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database() \
           AND pid <> pg_backend_pid() AND state = $2",
    )
    .bind(namespace)
    .bind(state)
    .fetch_all(admin)
    .await
    .unwrap()
}
