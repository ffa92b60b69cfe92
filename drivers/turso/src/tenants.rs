//! Database per tenant: a URL template and an LRU of open databases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use objectql_driver::{Driver, NameRules, TenantSource};
use objectql_query_ast::{Error, ObjectSchema, Result};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::{TursoDriver, TursoOptions};

/// The placeholder a tenant URL template must contain.
const PLACEHOLDER: &str = "{tenant}";

/// Options of a [`TenantRouter`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TenantOptions {
    /// A URL (any form [`TursoOptions::from_url`] takes) with `{tenant}`
    /// where the tenant id goes: `libsql://{tenant}-org.turso.io?auth_token=…`,
    /// `file:tenants/{tenant}.db`.
    pub template: String,
    /// At most this many tenant databases stay open; opening one more
    /// closes the least recently used.
    pub capacity: usize,
    /// A tenant database unused for this long is closed.
    pub idle_ttl: Duration,
}

impl TenantOptions {
    /// Options for `template`, keeping 64 databases open for 10 minutes of
    /// idleness.
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
            capacity: 64,
            idle_ttl: Duration::from_mins(10),
        }
    }

    /// Sets how many tenant databases stay open.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets how long an unused tenant database stays open.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }
}

struct Slot {
    driver: Arc<OnceCell<Arc<TursoDriver>>>,
    /// When it was last used, for the idle TTL (tokio's clock, so tests
    /// can pause and advance it).
    last_used: Instant,
    /// The order of last use (a counter, never a tie), for the LRU: two
    /// uses within one tick of the clock are still ordered.
    recency: u64,
}

/// Maps tenant ids to their own databases through a URL template.
///
/// Each tenant's database is opened on first use, migrated to every schema
/// registered so far, and kept in an LRU bounded by
/// [`TenantOptions::capacity`] and [`TenantOptions::idle_ttl`]. Eviction only
/// drops the router's handle: a session still using a tenant's database
/// keeps it open until the session ends.
///
/// Register it with `Engine::add_tenant_source` and read or write through
/// `Engine::tenant_session(ctx, "acme")`.
///
/// Tenant ids are 1–63 ASCII letters, digits, `-` and `_`, starting with a
/// letter or digit: they become part of a host name or a file name, so
/// anything else (`..`, `/`, `.`, `?`) is refused.
pub struct TenantRouter {
    options: TenantOptions,
    slots: Mutex<HashMap<String, Slot>>,
    schemas: Mutex<Vec<ObjectSchema>>,
    /// The last [`Slot::recency`] handed out.
    uses: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TenantRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRouter")
            .field("capacity", &self.options.capacity)
            .field("idle_ttl", &self.options.idle_ttl)
            .field("open", &self.open_tenants())
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::internal("tenant router lock poisoned")
}

/// Checks a tenant id (see [`TenantRouter`]).
fn check_tenant(tenant: &str) -> Result<()> {
    let ok = (1..=63).contains(&tenant.len())
        && tenant.starts_with(|c: char| c.is_ascii_alphanumeric())
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "tenant id `{tenant}` is not 1-63 ASCII letters, digits, `-` or `_` starting with a letter or digit"
        )))
    }
}

impl TenantRouter {
    /// A router for `options`. The template must contain `{tenant}` and,
    /// with a sample tenant put in, be a valid URL.
    pub fn new(options: TenantOptions) -> Result<Self> {
        if !options.template.contains(PLACEHOLDER) {
            return Err(Error::config(format!(
                "tenant URL template `{}` has no `{PLACEHOLDER}`",
                crate::options::redact(&options.template)
            )));
        }
        if options.capacity == 0 {
            return Err(Error::config("tenant router capacity must be at least 1"));
        }
        TursoOptions::from_url(&options.template.replace(PLACEHOLDER, "sample"))?;
        Ok(Self {
            options,
            slots: Mutex::new(HashMap::new()),
            schemas: Mutex::new(Vec::new()),
            uses: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The URL of `tenant`'s database.
    pub fn url_for(&self, tenant: &str) -> Result<String> {
        check_tenant(tenant)?;
        Ok(self.options.template.replace(PLACEHOLDER, tenant))
    }

    /// The driver of `tenant`'s database: open already, or opened now and
    /// migrated to every registered schema.
    pub async fn driver(&self, tenant: &str) -> Result<Arc<TursoDriver>> {
        let url = self.url_for(tenant)?;
        let cell = {
            let mut slots = self.slots.lock().map_err(|_| poisoned())?;
            let now = Instant::now();
            let recency = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let slot = slots.entry(tenant.to_owned()).or_insert_with(|| Slot {
                driver: Arc::new(OnceCell::new()),
                last_used: now,
                recency,
            });
            slot.last_used = now;
            slot.recency = recency;
            Arc::clone(&slot.driver)
        };
        let opened = cell
            .get_or_try_init(|| async {
                let driver = TursoDriver::connect(&url).await?;
                // Until no schema arrives while migrating: one registered
                // meanwhile is recorded before `sync_schema` looks at the
                // open drivers, which do not include this one yet.
                let mut synced = 0;
                loop {
                    let pending: Vec<ObjectSchema> =
                        self.schemas.lock().map_err(|_| poisoned())?[synced..].to_vec();
                    if pending.is_empty() {
                        break;
                    }
                    for schema in &pending {
                        driver.sync_schema(schema).await?;
                    }
                    synced += pending.len();
                }
                Ok::<_, Error>(Arc::new(driver))
            })
            .await;
        match opened {
            Ok(driver) => {
                let driver = Arc::clone(driver);
                self.evict(Some(tenant))?;
                Ok(driver)
            }
            Err(e) => {
                // A failed open leaves no slot behind: the next call retries.
                let mut slots = self.slots.lock().map_err(|_| poisoned())?;
                if slots
                    .get(tenant)
                    .is_some_and(|s| Arc::ptr_eq(&s.driver, &cell))
                {
                    slots.remove(tenant);
                }
                Err(e)
            }
        }
    }

    /// Closes (drops the router's handle on) idle tenants past the TTL, then
    /// the least recently used ones beyond the capacity. `keep` is never
    /// evicted.
    fn evict(&self, keep: Option<&str>) -> Result<()> {
        let mut slots = self.slots.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let ttl = self.options.idle_ttl;
        slots.retain(|tenant, slot| {
            Some(tenant.as_str()) == keep
                || slot.driver.get().is_none()
                || now.duration_since(slot.last_used) < ttl
        });
        while slots.len() > self.options.capacity {
            let oldest = slots
                .iter()
                .filter(|(t, s)| Some(t.as_str()) != keep && s.driver.get().is_some())
                .min_by_key(|(_, s)| s.recency)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => {
                    tracing::debug!(
                        tenant = t,
                        "closing the least recently used tenant database"
                    );
                    slots.remove(&t);
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Closes tenant databases idle past the TTL now (it also happens on
    /// every [`TenantRouter::driver`] call).
    pub fn evict_idle(&self) -> Result<()> {
        self.evict(None)
    }

    /// The tenants whose databases are open, most recently used first.
    pub fn open_tenants(&self) -> Vec<String> {
        let Ok(slots) = self.slots.lock() else {
            return Vec::new();
        };
        let mut open: Vec<(&String, &Slot)> = slots
            .iter()
            .filter(|(_, s)| s.driver.get().is_some())
            .collect();
        open.sort_by_key(|(_, s)| std::cmp::Reverse(s.recency));
        open.into_iter().map(|(t, _)| t.clone()).collect()
    }

    fn open_drivers(&self) -> Result<Vec<Arc<TursoDriver>>> {
        Ok(self
            .slots
            .lock()
            .map_err(|_| poisoned())?
            .values()
            .filter_map(|s| s.driver.get().cloned())
            .collect())
    }
}

#[async_trait]
impl TenantSource for TenantRouter {
    fn name(&self) -> &'static str {
        "turso-tenants"
    }

    async fn driver_for(&self, tenant: &str) -> Result<Arc<dyn Driver>> {
        let driver: Arc<dyn Driver> = self.driver(tenant).await?;
        Ok(driver)
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        schema.check()?;
        // Recorded first (appended: tenants being opened read the list by
        // position), then applied to the databases already open.
        self.schemas
            .lock()
            .map_err(|_| poisoned())?
            .push(schema.clone());
        for driver in self.open_drivers()? {
            driver.sync_schema(schema).await?;
        }
        Ok(())
    }

    fn name_rules(&self) -> NameRules {
        // Every tenant database is a libSQL (SQLite) database.
        objectql_driver_sqlite::SqliteDriver::name_rules()
    }

    async fn close(&self) -> Result<()> {
        let drivers = self.open_drivers()?;
        self.slots.lock().map_err(|_| poisoned())?.clear();
        for driver in drivers {
            driver.close().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_cannot_escape_the_template() {
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "a.b",
            "a?x=1",
            "-a",
            "ä",
            &"x".repeat(64),
        ] {
            assert!(check_tenant(bad).is_err(), "{bad:?}");
        }
        for good in ["acme", "a", "org-42", "t_1", &"x".repeat(63)] {
            assert!(check_tenant(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn templates_are_checked() {
        let e = TenantRouter::new(TenantOptions::new("file:one.db")).unwrap_err();
        assert!(e.to_string().contains("{tenant}"), "{e}");
        let e = TenantRouter::new(TenantOptions::new("ftp://{tenant}")).unwrap_err();
        assert!(e.to_string().contains("expected libsql://"), "{e}");
        let e = TenantRouter::new(TenantOptions::new("file:{tenant}.db").capacity(0)).unwrap_err();
        assert!(e.to_string().contains("capacity"), "{e}");
        let r = TenantRouter::new(TenantOptions::new(
            "libsql://{tenant}-org.example?auth_token=t",
        ))
        .unwrap();
        assert_eq!(
            r.url_for("acme").unwrap(),
            "libsql://acme-org.example?auth_token=t"
        );
    }
}
