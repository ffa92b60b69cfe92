//! Harnesses for the built-in drivers, each behind its driver's feature:
//! the conformance command's matrix uses them, and so can any test that
//! needs an isolated namespace of a driver.

use std::sync::Arc;

use crate::{Harness, async_trait};

#[cfg(feature = "memory")]
/// The memory driver, a fresh store per namespace.
pub struct Memory;

#[cfg(feature = "memory")]
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
/// The SQLite driver, one file per namespace in the given directory.
pub struct Sqlite(pub std::path::PathBuf);

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
/// The Turso/libSQL driver on local files, one per namespace in the given directory.
pub struct Turso(pub std::path::PathBuf);

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
/// The MongoDB driver on the server in `OBJECTQL_MONGO_URL`, one database per namespace.
pub struct Mongo(String);

#[cfg(feature = "mongo")]
impl Mongo {
    /// The server in `OBJECTQL_MONGO_URL` (`None` when it is unset).
    pub fn from_env() -> Option<Self> {
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
/// The PostgreSQL driver on `OBJECTQL_TEST_POSTGRES_URL`, one schema per namespace.
pub struct Postgres(String);

#[cfg(feature = "postgres")]
impl Postgres {
    /// The server in `OBJECTQL_TEST_POSTGRES_URL` (default: the local one).
    pub fn from_env() -> Self {
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
/// The MySQL/MariaDB driver on `OBJECTQL_TEST_MYSQL_URL`, one database per namespace.
pub struct MySql {
    url: String,
    run: String,
}

#[cfg(feature = "mysql")]
impl MySql {
    /// The server in `OBJECTQL_TEST_MYSQL_URL` (default: the local one);
    /// databases are prefixed with `OBJECTQL_TEST_RUN_ID`.
    pub fn from_env() -> Self {
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
