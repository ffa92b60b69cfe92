//! Database per tenant: routing through the URL template, isolation,
//! schemas reaching every tenant, LRU and idle eviction, bad tenant ids.

use std::sync::Arc;
use std::time::Duration;

use objectql::{Engine, Error, Query, ResolveContext, TenantSource, Value, record};
use objectql_driver_turso::{TenantOptions, TenantRouter};
use serde_json::json;

use crate::common::{dir, fresh};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A directory of its own and a `file:` template into it.
fn template() -> (std::path::PathBuf, String) {
    let root = dir().join(fresh("tenants"));
    std::fs::create_dir_all(&root).unwrap();
    let template = format!("file:{}/{{tenant}}.db", root.display());
    (root, template)
}

async fn engine_with(router: Arc<TenantRouter>) -> Engine {
    let engine = Engine::new();
    engine.add_tenant_source("default", router).unwrap();
    engine
        .register_json(
            &json!({"name": "invoice", "fields": {"no": {"type": "text", "required": true}}}),
        )
        .await
        .unwrap();
    engine
}

async fn numbers(engine: &Engine, tenant: &str) -> Vec<String> {
    engine
        .tenant_session(ResolveContext::now(), tenant)
        .await
        .unwrap()
        .find(&Query::new("invoice").asc("no"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r.get("no") {
            Some(Value::String(s)) => s.clone(),
            other => panic!("no is {other:?}"),
        })
        .collect()
}

#[test]
fn each_tenant_has_its_own_database() {
    rt().block_on(async {
        let (root, template) = template();
        let router = Arc::new(TenantRouter::new(TenantOptions::new(template)).unwrap());
        let engine = engine_with(router.clone()).await;
        for (tenant, no) in [("acme", "A-1"), ("globex", "G-1"), ("acme", "A-2")] {
            let db = engine
                .tenant_session(ResolveContext::now(), tenant)
                .await
                .unwrap();
            assert_eq!(db.tenant(), Some(tenant));
            db.insert("invoice", record! {"no" => no}).await.unwrap();
        }
        assert_eq!(numbers(&engine, "acme").await, ["A-1", "A-2"]);
        assert_eq!(numbers(&engine, "globex").await, ["G-1"]);
        assert!(root.join("acme.db").exists() && root.join("globex.db").exists());

        // A schema registered later reaches open tenants now and others on open.
        engine
            .register_json(&json!({"name": "customer", "fields": {"name": {"type": "text"}}}))
            .await
            .unwrap();
        for tenant in ["acme", "initech"] {
            let db = engine
                .tenant_session(ResolveContext::now(), tenant)
                .await
                .unwrap();
            db.insert("customer", record! {"name" => tenant})
                .await
                .unwrap();
            assert_eq!(db.count("customer", None).await.unwrap(), 1);
        }
        assert_eq!(numbers(&engine, "initech").await, Vec::<String>::new());

        // Transactions run in the tenant's database.
        let db = engine
            .tenant_session(ResolveContext::now(), "globex")
            .await
            .unwrap();
        let tx = db
            .begin("default", objectql::IsolationLevel::Serializable)
            .await
            .unwrap();
        tx.insert("invoice", record! {"no" => "G-2"}).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(numbers(&engine, "globex").await, ["G-1", "G-2"]);
        assert_eq!(numbers(&engine, "acme").await, ["A-1", "A-2"]);
    });
}

#[test]
fn the_least_recently_used_tenant_is_closed_beyond_the_capacity() {
    rt().block_on(async {
        let (_root, template) = template();
        let router = Arc::new(TenantRouter::new(TenantOptions::new(template).capacity(2)).unwrap());
        let engine = engine_with(router.clone()).await;
        let held = engine
            .tenant_session(ResolveContext::now(), "a")
            .await
            .unwrap();
        held.insert("invoice", record! {"no" => "a-1"})
            .await
            .unwrap();
        // Uses are ordered by a counter, not the clock: no sleeps needed.
        numbers(&engine, "b").await;
        numbers(&engine, "c").await;
        assert_eq!(
            router.open_tenants(),
            ["c", "b"],
            "`a` was the least recently used"
        );

        // A session made before the eviction keeps its database open.
        held.insert("invoice", record! {"no" => "a-2"})
            .await
            .unwrap();
        // Reopened on demand, with its data.
        assert_eq!(numbers(&engine, "a").await, ["a-1", "a-2"]);
        assert_eq!(router.open_tenants(), ["a", "c"]);
    });
}

#[test]
fn idle_tenants_are_closed_after_the_ttl() {
    // tokio's clock, paused and advanced by hand: the TTL passes exactly
    // when the test says, however slow the machine.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_root, template) = template();
        let router = Arc::new(
            TenantRouter::new(TenantOptions::new(template).idle_ttl(Duration::from_mins(1)))
                .unwrap(),
        );
        let engine = engine_with(router.clone()).await;
        numbers(&engine, "x").await;
        numbers(&engine, "y").await;
        assert_eq!(router.open_tenants().len(), 2);
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(59)).await;
        router.evict_idle().unwrap();
        assert_eq!(router.open_tenants().len(), 2, "closed before the TTL");
        tokio::time::advance(Duration::from_secs(2)).await;
        router.evict_idle().unwrap();
        tokio::time::resume();
        assert!(
            router.open_tenants().is_empty(),
            "{:?}",
            router.open_tenants()
        );
        // The next use opens it again (and evicts nothing it needs).
        numbers(&engine, "x").await;
        assert_eq!(router.open_tenants(), ["x"]);
    });
}

#[test]
fn bad_tenant_ids_and_direct_use_are_configuration_errors() {
    rt().block_on(async {
        let (root, template) = template();
        let router = Arc::new(TenantRouter::new(TenantOptions::new(template)).unwrap());
        let engine = engine_with(router.clone()).await;
        for bad in ["", "../escape", "a/b", "a.b", "x?y=1", "-lead"] {
            let e = engine
                .tenant_session(ResolveContext::now(), bad)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{bad:?}: {e:?}");
        }
        assert!(!root.join("..").join("escape.db").exists());
        let e = engine
            .default_session()
            .find(&Query::new("invoice"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("tenant_session"), "{e}");
        assert!(router.driver_for("ok").await.is_ok());
    });
}

#[test]
fn a_tenant_database_that_cannot_open_leaves_nothing_behind() {
    rt().block_on(async {
        let missing = dir().join(fresh("missing")).join("deeper");
        let router = TenantRouter::new(TenantOptions::new(format!(
            "file:{}/{{tenant}}.db",
            missing.display()
        )))
        .unwrap();
        let e = router.driver("acme").await.unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(router.open_tenants().is_empty());
        std::fs::create_dir_all(&missing).unwrap();
        router.driver("acme").await.unwrap();
        assert_eq!(router.open_tenants(), ["acme"]);
    });
}

/// Tenant databases are SQLite databases, so the router declares SQLite's
/// naming rules: `Invoice` would share `invoice`'s table and is refused.
#[test]
fn tenant_schemas_follow_sqlite_naming_rules() {
    rt().block_on(async {
        let (_root, template) = template();
        let router = Arc::new(TenantRouter::new(TenantOptions::new(template)).unwrap());
        let engine = engine_with(router).await;
        let err = engine
            .register_json(&json!({"name": "Invoice", "fields": {"no": {"type": "text"}}}))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "validation", "{err}");
        assert!(err.to_string().contains("`invoice`"), "{err}");
    });
}
