//! The engine: object schemas, datasources, and routing between them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use objectql_driver::{Driver, TenantSource};
use objectql_query_ast::{Catalog, Error, ObjectSchema, ResolveContext, Result};

use crate::session::Session;

/// Connects drivers for one or more URL schemes.
#[async_trait]
pub trait DriverFactory: Send + Sync + 'static {
    /// The URL schemes this factory serves (`postgres`, `postgresql`…).
    fn schemes(&self) -> &[&'static str];

    /// Connects a driver from `url`.
    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>>;
}

#[cfg(feature = "memory")]
struct MemoryFactory;

#[cfg(feature = "memory")]
#[async_trait]
impl DriverFactory for MemoryFactory {
    fn schemes(&self) -> &[&'static str] {
        &["memory"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(objectql_driver_memory::MemoryDriver::connect(
            url,
        )?))
    }
}

#[cfg(feature = "sqlite")]
struct SqliteFactory;

#[cfg(feature = "sqlite")]
#[async_trait]
impl DriverFactory for SqliteFactory {
    fn schemes(&self) -> &[&'static str] {
        &["sqlite"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(
            objectql_driver_sqlite::SqliteDriver::connect(url).await?,
        ))
    }
}

#[cfg(feature = "postgres")]
struct PostgresFactory;

#[cfg(feature = "postgres")]
#[async_trait]
impl DriverFactory for PostgresFactory {
    fn schemes(&self) -> &[&'static str] {
        &["postgres", "postgresql"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(
            objectql_driver_postgres::PostgresDriver::connect(url).await?,
        ))
    }
}

#[cfg(feature = "mysql")]
struct MySqlFactory;

#[cfg(feature = "mysql")]
#[async_trait]
impl DriverFactory for MySqlFactory {
    fn schemes(&self) -> &[&'static str] {
        &["mysql", "mariadb"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(
            objectql_driver_mysql::MySqlDriver::connect(url).await?,
        ))
    }
}

#[cfg(feature = "turso")]
struct TursoFactory;

#[cfg(feature = "turso")]
#[async_trait]
impl DriverFactory for TursoFactory {
    fn schemes(&self) -> &[&'static str] {
        // `file:` and `:memory:` URLs reach the Turso driver through
        // `libsql:` (`libsql:file:app.db`, `libsql::memory:`), so that
        // `file:` stays free for other drivers.
        &["libsql", "http", "https"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        let url = match url.strip_prefix("libsql:") {
            Some(rest) if !rest.starts_with("//") => rest,
            _ => url,
        };
        Ok(Arc::new(
            objectql_driver_turso::TursoDriver::connect(url).await?,
        ))
    }
}

#[cfg(feature = "mongo")]
struct MongoFactory;

#[cfg(feature = "mongo")]
#[async_trait]
impl DriverFactory for MongoFactory {
    fn schemes(&self) -> &[&'static str] {
        &["mongodb", "mongodb+srv"]
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn Driver>> {
        Ok(Arc::new(
            objectql_driver_mongo::MongoDriver::connect(url).await?,
        ))
    }
}

pub(crate) struct Inner {
    catalog: RwLock<Arc<Catalog>>,
    datasources: RwLock<HashMap<String, Arc<dyn Driver>>>,
    /// The URL of each datasource [`Engine::add_datasource`] connected.
    urls: RwLock<HashMap<String, String>>,
    tenant_sources: RwLock<HashMap<String, Arc<dyn TenantSource>>>,
    factories: RwLock<Vec<Arc<dyn DriverFactory>>>,
    join_key_limit: std::sync::atomic::AtomicUsize,
    /// Whether queries across datasources run on DataFusion (the
    /// `federation` feature) rather than in the reference evaluator.
    #[cfg_attr(not(feature = "federation"), expect(dead_code))]
    joins_on_datafusion: std::sync::atomic::AtomicBool,
}

/// The default of [`Engine::join_key_limit`].
pub const DEFAULT_JOIN_KEY_LIMIT: usize = 100_000;

/// The entry point: register datasources and object schemas, then read and
/// write through one API whatever the storage.
///
/// `Engine` is cheap to clone (an `Arc`); clones share everything.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ds: Vec<String> = self
            .inner
            .datasources
            .read()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Engine")
            .field("datasources", &ds)
            .finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

fn poisoned() -> Error {
    Error::internal("engine state poisoned by an earlier panic")
}

/// Refuses a reference with a `deleteBehavior` between `schema` and a
/// registered object of another datasource, either way round: no backend
/// enforces a foreign key into another datasource.
fn check_references_stay_home(catalog: &Catalog, schema: &ObjectSchema) -> Result<()> {
    let refuse = |from: &ObjectSchema, field: &str, to: &ObjectSchema| Error::Unsupported {
        feature: format!(
            "`{}.{field}` has a deleteBehavior on its reference to `{}`, but `{}` lives in datasource `{}` and `{}` in `{}`: no backend enforces a foreign key into another datasource (drop deleteBehavior, or keep both objects in one datasource)",
            from.name,
            to.name,
            from.name,
            from.datasource_name(),
            to.name,
            to.datasource_name()
        ),
        driver: "engine".into(),
    };
    let enforced = |s: &'_ ObjectSchema| -> Vec<(String, String)> {
        s.fields
            .iter()
            .filter(|(_, f)| f.delete_behavior.is_some())
            .filter_map(|(n, f)| f.reference.clone().map(|t| (n.clone(), t)))
            .collect()
    };
    for (field, target) in enforced(schema) {
        if let Some(other) = catalog.get(&target)
            && other.name != schema.name
            && other.datasource_name() != schema.datasource_name()
        {
            return Err(refuse(schema, &field, other));
        }
    }
    for other in catalog
        .iter()
        .filter(|o| o.name != schema.name && o.datasource_name() != schema.datasource_name())
    {
        if let Some((field, _)) = enforced(other).into_iter().find(|(_, t)| *t == schema.name) {
            return Err(refuse(other, &field, schema));
        }
    }
    Ok(())
}

impl Engine {
    /// An engine with the built-in driver factories of the enabled features.
    pub fn new() -> Self {
        let factories: Vec<Arc<dyn DriverFactory>> = vec![
            #[cfg(feature = "memory")]
            Arc::new(MemoryFactory),
            #[cfg(feature = "sqlite")]
            Arc::new(SqliteFactory),
            #[cfg(feature = "postgres")]
            Arc::new(PostgresFactory),
            #[cfg(feature = "mysql")]
            Arc::new(MySqlFactory),
            #[cfg(feature = "turso")]
            Arc::new(TursoFactory),
            #[cfg(feature = "mongo")]
            Arc::new(MongoFactory),
        ];
        Self {
            inner: Arc::new(Inner {
                catalog: RwLock::new(Arc::new(Catalog::new())),
                datasources: RwLock::new(HashMap::new()),
                urls: RwLock::new(HashMap::new()),
                tenant_sources: RwLock::new(HashMap::new()),
                factories: RwLock::new(factories),
                join_key_limit: std::sync::atomic::AtomicUsize::new(DEFAULT_JOIN_KEY_LIMIT),
                joins_on_datafusion: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    /// The most distinct keys a join across datasources sends to its right
    /// side as an `$in` (default [`DEFAULT_JOIN_KEY_LIMIT`]). With more keys
    /// than this, the right side is read with its own filters only.
    pub fn join_key_limit(&self) -> usize {
        self.inner
            .join_key_limit
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`Engine::join_key_limit`] (0: never send keys).
    pub fn set_join_key_limit(&self, keys: usize) {
        self.inner
            .join_key_limit
            .store(keys, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a query whose joins span datasources runs its joins and the
    /// rest of its work on DataFusion operators (the default), or in
    /// objectql's reference evaluator (the memory driver's). Both answer
    /// exactly the same; this switch exists to compare them. A query with
    /// parts DataFusion does not run yet with the protocol's meaning
    /// (`array_agg`, `string_agg`, `nearest`, JSON, UUID or vector
    /// columns) runs in the evaluator either way; `explain` says which ran.
    #[cfg(feature = "federation")]
    pub fn joins_on_datafusion(&self) -> bool {
        self.inner
            .joins_on_datafusion
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`Engine::joins_on_datafusion`].
    #[cfg(feature = "federation")]
    pub fn set_joins_on_datafusion(&self, on: bool) {
        self.inner
            .joins_on_datafusion
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds a driver factory (for a community driver's URL scheme).
    pub fn register_factory(&self, factory: Arc<dyn DriverFactory>) -> Result<()> {
        self.inner
            .factories
            .write()
            .map_err(|_| poisoned())?
            .push(factory);
        Ok(())
    }

    /// Connects a datasource from a URL (`memory://`, …) and names it.
    pub async fn add_datasource(&self, name: &str, url: &str) -> Result<()> {
        let driver = self.connect_url(url).await?;
        self.add_driver(name, driver)?;
        self.inner
            .urls
            .write()
            .map_err(|_| poisoned())?
            .insert(name.to_owned(), url.to_owned());
        Ok(())
    }

    /// Connects a new driver to `url` with the factory of its scheme,
    /// without adding it as a datasource.
    pub async fn connect_url(&self, url: &str) -> Result<Arc<dyn Driver>> {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::config(format!("`{url}` is not a URL (expected scheme://…)")))?;
        let factory = self
            .inner
            .factories
            .read()
            .map_err(|_| poisoned())?
            .iter()
            .find(|f| f.schemes().contains(&scheme))
            .cloned()
            .ok_or_else(|| {
                Error::config(format!(
                    "no driver for URL scheme `{scheme}` (is the crate feature for it enabled?)"
                ))
            })?;
        factory.connect(url).await
    }

    /// The URL datasource `name` was connected from by
    /// [`Engine::add_datasource`] (`None` for a driver added as it is).
    pub fn datasource_url(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .inner
            .urls
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned())
    }

    /// Adds an already-connected driver as a datasource.
    pub fn add_driver(&self, name: &str, driver: Arc<dyn Driver>) -> Result<()> {
        let mut ds = self.inner.datasources.write().map_err(|_| poisoned())?;
        if ds.contains_key(name) || self.is_tenant_source(name)? {
            return Err(Error::config(format!(
                "datasource `{name}` is already registered"
            )));
        }
        ds.insert(name.to_owned(), driver);
        Ok(())
    }

    /// Adds a datasource with one database per tenant (for example the
    /// Turso driver's `TenantRouter`). Its objects are reached through
    /// [`Engine::tenant_session`].
    pub fn add_tenant_source(&self, name: &str, source: Arc<dyn TenantSource>) -> Result<()> {
        let ds = self.inner.datasources.read().map_err(|_| poisoned())?;
        let mut tenants = self.inner.tenant_sources.write().map_err(|_| poisoned())?;
        if ds.contains_key(name) || tenants.contains_key(name) {
            return Err(Error::config(format!(
                "datasource `{name}` is already registered"
            )));
        }
        tenants.insert(name.to_owned(), source);
        Ok(())
    }

    fn is_tenant_source(&self, name: &str) -> Result<bool> {
        Ok(self
            .inner
            .tenant_sources
            .read()
            .map_err(|_| poisoned())?
            .contains_key(name))
    }

    fn tenant_source(&self, name: &str) -> Result<Option<Arc<dyn TenantSource>>> {
        Ok(self
            .inner
            .tenant_sources
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned())
    }

    /// The driver of datasource `name`.
    pub fn datasource(&self, name: &str) -> Result<Arc<dyn Driver>> {
        if let Some(d) = self
            .inner
            .datasources
            .read()
            .map_err(|_| poisoned())?
            .get(name)
        {
            return Ok(Arc::clone(d));
        }
        if self.is_tenant_source(name)? {
            return Err(Error::config(format!(
                "datasource `{name}` has one database per tenant: use Engine::tenant_session"
            )));
        }
        Err(Error::config(format!(
            "datasource `{name}` is not registered"
        )))
    }

    /// Every shared datasource (not the per-tenant ones), by name.
    pub(crate) fn datasources(&self) -> Result<Vec<(String, Arc<dyn Driver>)>> {
        Ok(self
            .inner
            .datasources
            .read()
            .map_err(|_| poisoned())?
            .iter()
            .map(|(n, d)| (n.clone(), Arc::clone(d)))
            .collect())
    }

    /// A session for `tenant`: every per-tenant datasource resolves to that
    /// tenant's database (opened and migrated on first use); the other
    /// datasources are shared as usual.
    pub async fn tenant_session(&self, ctx: ResolveContext, tenant: &str) -> Result<Session> {
        let sources: Vec<(String, Arc<dyn TenantSource>)> = self
            .inner
            .tenant_sources
            .read()
            .map_err(|_| poisoned())?
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s)))
            .collect();
        let mut drivers = HashMap::new();
        for (name, source) in sources {
            drivers.insert(name, source.driver_for(tenant).await?);
        }
        Ok(Session::new(self.clone(), ctx).with_tenant(tenant, drivers))
    }

    /// Registers an object schema and creates (or migrates) its storage in
    /// its datasource.
    ///
    /// Refused before anything reaches storage: a schema that fails
    /// [`ObjectSchema::check`], and one whose table or column names collide
    /// under the datasource's naming rules (case folding, truncation,
    /// reserved names; see [`objectql_driver::NameRules`]) with another
    /// registered object of the same datasource or with each other.
    pub async fn register(&self, schema: ObjectSchema) -> Result<()> {
        schema.check()?;
        let catalog = self.catalog()?;
        check_references_stay_home(&catalog, &schema)?;
        let same_source = catalog
            .iter()
            .filter(|o| o.datasource_name() == schema.datasource_name());
        if let Some(source) = self.tenant_source(schema.datasource_name())? {
            source.name_rules().check_schema(&schema, same_source)?;
            source.sync_schema(&schema).await?;
        } else {
            let driver = self.datasource(schema.datasource_name())?;
            driver
                .capabilities()
                .names
                .check_schema(&schema, same_source)?;
            driver.sync_schema(&schema).await?;
        }
        let mut guard = self.inner.catalog.write().map_err(|_| poisoned())?;
        let mut catalog = Catalog::clone(&guard);
        catalog.insert(schema)?;
        *guard = Arc::new(catalog);
        Ok(())
    }

    /// Registers an object schema given as JSON (ObjectStack form).
    pub async fn register_json(&self, json: &serde_json::Value) -> Result<()> {
        self.register(ObjectSchema::from_json(json)?).await
    }

    /// A snapshot of the registered schemas.
    pub fn catalog(&self) -> Result<Arc<Catalog>> {
        Ok(Arc::clone(
            &*self.inner.catalog.read().map_err(|_| poisoned())?,
        ))
    }

    /// The schema of `object`.
    pub fn schema(&self, object: &str) -> Result<ObjectSchema> {
        self.catalog()?
            .get(object)
            .cloned()
            .ok_or_else(|| Error::config(format!("object `{object}` is not registered")))
    }

    /// A session resolving tokens against `ctx` (clock, timezone, caller).
    pub fn session(&self, ctx: ResolveContext) -> Session {
        Session::new(self.clone(), ctx)
    }

    /// A session at the system clock, in UTC, with no caller.
    pub fn default_session(&self) -> Session {
        self.session(ResolveContext::now())
    }

    /// Closes every datasource.
    pub async fn close(&self) -> Result<()> {
        let drivers: Vec<Arc<dyn Driver>> = self
            .inner
            .datasources
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect();
        for d in drivers {
            d.close().await?;
        }
        let sources: Vec<Arc<dyn TenantSource>> = self
            .inner
            .tenant_sources
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect();
        for s in sources {
            s.close().await?;
        }
        Ok(())
    }
}
