//! `objectql-conformance`: runs the conformance suite against the drivers
//! built into this binary and prints the pass matrix as Markdown.
//!
//! ```sh
//! cargo run -p objectql-conformance --features memory,sqlite -- matrix
//! cargo run -p objectql-conformance --features memory -- list
//! ```
//!
//! With the `postgres` feature the PostgreSQL driver joins the matrix; its
//! server is `OBJECTQL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), one schema per case.
//! With `mysql`, the MySQL/MariaDB driver: `OBJECTQL_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`), one database per case,
//! named `{OBJECTQL_TEST_RUN_ID}_{case}`.
//! With `turso`, the Turso/libSQL driver on local files (its remote and
//! replica modes run the same suite in the driver's own tests).
//! With `mongo`, the MongoDB driver: `OBJECTQL_MONGO_URL` (required), one
//! database per case.

use std::process::ExitCode;
use std::sync::Arc;

use objectql_conformance::{
    Harness, Outcome, Spread, all_cases, async_trait, matrix_markdown, run_all,
};

/// The driver pairs the multi-object cases also run spread over.
const SPREAD_PAIRS: [(&str, &str); 4] = [
    ("memory", "sqlite"),
    ("sqlite", "postgres"),
    ("postgres", "mysql"),
    ("mysql", "mongodb"),
];

struct Memory;

#[async_trait]
impl Harness for Memory {
    fn name(&self) -> String {
        "memory".into()
    }
    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(objectql::MemoryDriver::new()))
    }
}

#[cfg(feature = "sqlite")]
struct Sqlite(std::path::PathBuf);

#[cfg(feature = "sqlite")]
#[async_trait]
impl Harness for Sqlite {
    fn name(&self) -> String {
        "sqlite".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = self.0.join(format!("{namespace}.db"));
        Ok(Arc::new(
            objectql::SqliteDriver::open(objectql::SqliteOptions::file(path)).await?,
        ))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.0.join(format!("{namespace}.db{suffix}")));
        }
        Ok(())
    }
}

#[cfg(feature = "turso")]
struct Turso(std::path::PathBuf);

#[cfg(feature = "turso")]
#[async_trait]
impl Harness for Turso {
    fn name(&self) -> String {
        "turso".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = self.0.join(format!("{namespace}.turso.db"));
        Ok(Arc::new(
            objectql::TursoDriver::open(objectql::TursoOptions::file(path)).await?,
        ))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.0.join(format!("{namespace}.turso.db{suffix}")));
        }
        Ok(())
    }
}

#[cfg(feature = "mongo")]
struct Mongo(String);

#[cfg(feature = "mongo")]
impl Mongo {
    fn from_env() -> Option<Self> {
        std::env::var("OBJECTQL_MONGO_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Self)
    }

    /// The server's URL with its database path replaced by `db`.
    fn url_for(&self, namespace: &str) -> String {
        let mut db = format!("oq_{namespace}");
        db.truncate(60);
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("mongodb", &self.0));
        let (hosts, query) = match rest.find(['/', '?']) {
            Some(i) => {
                let tail = &rest[i..];
                (&rest[..i], tail.find('?').map_or("", |q| &tail[q..]))
            }
            None => (rest, ""),
        };
        format!("{scheme}://{hosts}/{db}{query}")
    }
}

#[cfg(feature = "mongo")]
#[async_trait]
impl Harness for Mongo {
    fn name(&self) -> String {
        "mongodb".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(
            objectql::MongoDriver::connect(&self.url_for(namespace)).await?,
        ))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        let driver = objectql::MongoDriver::connect(&self.url_for(namespace)).await?;
        let dropped = driver.database().drop().await;
        objectql::Driver::close(&driver).await?;
        dropped.map_err(|e| objectql::Error::config(format!("dropping a test database: {e}")))
    }
}

/// `"name"`, with `"` doubled inside.
#[cfg(feature = "postgres")]
fn quoted(name: &str) -> String {
    objectql::quote_ident('"', name)
}

#[cfg(feature = "postgres")]
struct Postgres(String);

#[cfg(feature = "postgres")]
impl Postgres {
    fn from_env() -> Self {
        Self(
            std::env::var("OBJECTQL_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        )
    }

    async fn admin(&self, sql: String) -> objectql::Result<()> {
        use objectql_driver_postgres::sqlx;
        let driver = objectql::PostgresDriver::connect(&self.0).await?;
        let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(driver.pool())
            .await
            .map(drop)
            .map_err(|e| objectql::Error::config(format!("preparing a test schema: {e}")));
        objectql::Driver::close(&driver).await?;
        outcome
    }
}

#[cfg(feature = "postgres")]
#[async_trait]
impl Harness for Postgres {
    fn name(&self) -> String {
        "postgres".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        self.admin(format!("CREATE SCHEMA IF NOT EXISTS {}", quoted(namespace)))
            .await?;
        let mut options = objectql::PostgresOptions::from_url(&self.0)?;
        options.schema = Some(namespace.to_owned());
        options.max_connections = 2;
        Ok(Arc::new(objectql::PostgresDriver::open(options).await?))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        self.admin(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quoted(namespace)
        ))
        .await
    }
}

#[cfg(feature = "mysql")]
struct MySql {
    url: String,
    run: String,
}

#[cfg(feature = "mysql")]
impl MySql {
    fn from_env() -> Self {
        let run = std::env::var("OBJECTQL_TEST_RUN_ID").unwrap_or_else(|_| {
            let epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            format!("objectql_t_{}_{epoch}", std::process::id())
        });
        Self {
            url: std::env::var("OBJECTQL_TEST_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned()),
            run,
        }
    }

    /// The database of `namespace` (namespaces are ≤ 40 characters of
    /// `[a-z0-9_]`; the run id keeps the name within MySQL's 64).
    fn database(&self, namespace: &str) -> String {
        let mut name = format!("{}_{namespace}", self.run);
        name.truncate(64);
        name
    }

    async fn admin(&self, sql: String) -> objectql::Result<()> {
        use objectql_driver_mysql::sqlx;
        let driver = objectql::MySqlDriver::connect(&self.url).await?;
        let outcome = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(driver.pool())
            .await
            .map(drop)
            .map_err(|e| objectql::Error::config(format!("preparing a test database: {e}")));
        objectql::Driver::close(&driver).await?;
        outcome
    }
}

#[cfg(feature = "mysql")]
#[async_trait]
impl Harness for MySql {
    fn name(&self) -> String {
        "mysql".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let db = self.database(namespace);
        self.admin(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            objectql::quote_ident('`', &db)
        ))
        .await?;
        let mut options = objectql::MySqlOptions::from_url(&self.url)?;
        options.connect = options.connect.database(&db);
        options.max_connections = 2;
        Ok(Arc::new(objectql::MySqlDriver::open(options).await?))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        let db = self.database(namespace);
        self.admin(format!(
            "DROP DATABASE IF EXISTS {}",
            objectql::quote_ident('`', &db)
        ))
        .await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "matrix".into());
    match command.as_str() {
        "list" => {
            for c in all_cases() {
                println!("{}::{}", c.file, c.name);
            }
            ExitCode::SUCCESS
        }
        "matrix" => {
            #[cfg(any(feature = "sqlite", feature = "turso"))]
            let scratch = match tempdir() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("cannot create a scratch directory: {e}");
                    return ExitCode::FAILURE;
                }
            };
            #[cfg(feature = "mongo")]
            let Some(mongo) = Mongo::from_env() else {
                eprintln!(
                    "OBJECTQL_MONGO_URL is not set: the mongo feature needs a MongoDB server (scripts/test starts one)"
                );
                return ExitCode::FAILURE;
            };
            let harnesses: Vec<Arc<dyn Harness>> = vec![
                Arc::new(Memory),
                #[cfg(feature = "sqlite")]
                Arc::new(Sqlite(scratch.clone())),
                #[cfg(feature = "postgres")]
                Arc::new(Postgres::from_env()),
                #[cfg(feature = "mysql")]
                Arc::new(MySql::from_env()),
                #[cfg(feature = "turso")]
                Arc::new(Turso(scratch.clone())),
                #[cfg(feature = "mongo")]
                Arc::new(mongo),
            ];
            // The multi-object cases again, their objects spread over two
            // drivers (both ways round), for each pair whose drivers are built in.
            let by_name = |n: &str| harnesses.iter().find(|h| h.name() == n).cloned();
            let mut spreads: Vec<Arc<dyn Harness>> = Vec::new();
            for (a, b) in SPREAD_PAIRS {
                if let (Some(a), Some(b)) = (by_name(a), by_name(b)) {
                    for (first, second) in [(a.clone(), b.clone()), (b, a)] {
                        spreads.push(Arc::new(Spread { first, second }));
                    }
                }
            }
            let mut results = Vec::new();
            let mut spread_results = Vec::new();
            let mut failed = false;
            for h in harnesses.iter().chain(&spreads) {
                let outcomes = run_all(h.as_ref(), 8).await;
                for (id, o) in &outcomes {
                    if let Outcome::Failed(why) = o {
                        failed = true;
                        eprintln!("FAILED {}::{} on {}: {why}", id.file, id.name, h.name());
                    }
                }
                if h.spreads() {
                    spread_results.push((h.name(), outcomes));
                } else {
                    results.push((h.name(), outcomes));
                }
            }
            #[cfg(any(feature = "sqlite", feature = "turso"))]
            let _ = std::fs::remove_dir_all(&scratch);
            print!("{}", matrix_markdown(&results));
            if !spread_results.is_empty() {
                println!("\nObjects spread over two datasources (first+second):\n");
                print!("{}", matrix_markdown(&spread_results));
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        other => {
            eprintln!("unknown command `{other}`; use `matrix` or `list`");
            ExitCode::from(2)
        }
    }
}

/// A fresh directory under the system temporary directory.
#[cfg(any(feature = "sqlite", feature = "turso"))]
fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("objectql-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
