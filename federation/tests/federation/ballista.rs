//! Federated SQL on Ballista standalone (a scheduler and an executor in
//! this process, over gRPC): customers in a SQLite file, orders in a
//! PostgreSQL schema. Every spread query must return the rows the
//! in-process federation returns, and the plans must really have crossed
//! the wire: the executor's codec decoded the scans and ran them on
//! drivers it opened itself from the URLs.

use std::sync::Arc;

use objectql_conformance::Harness;
use objectql_conformance::harnesses::Postgres;
use objectql_driver::Driver;
use objectql_federation::{Federation, OpenDriver};
use objectql_query_ast::{Catalog, Error, Result};

use super::joins::{QUERIES, customers, load_both, orders, sql};

/// Opens the drivers of the two URL schemes the tests use.
async fn open(url: String) -> Result<Arc<dyn Driver>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            objectql_driver_sqlite::SqliteDriver::connect(&url).await?,
        ))
    } else if url.starts_with("postgres:") {
        Ok(Arc::new(objectql::PostgresDriver::connect(&url).await?))
    } else {
        Err(Error::config(format!("no driver for `{url}`")))
    }
}

fn postgres_url(schema: &str) -> String {
    let base = std::env::var("OBJECTQL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_queries_on_ballista_standalone_return_the_in_process_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lite_url = format!("sqlite://{}", dir.path().join("crm.db").display());
    let namespace = format!("fed_{}_ballista", std::process::id());
    let pg = Postgres::from_env();
    // Creates the schema (and fails the test when the server is away).
    let setup = pg
        .connect(&namespace)
        .await
        .unwrap_or_else(|e| panic!("postgres: cannot connect: {e}"));
    setup.close().await.expect("close");
    let pg_url = postgres_url(&namespace);

    let lite = open(lite_url.clone()).await.expect("sqlite");
    let shop = open(pg_url.clone()).await.expect("postgres");
    let mut catalog = Catalog::new();
    catalog.insert(customers("a")).expect("catalog");
    catalog.insert(orders("b")).expect("catalog");
    load_both(&catalog, &lite, &shop).await;
    let fed = Federation::new(Arc::new(catalog))
        .datasource("a", Arc::clone(&lite))
        .datasource("b", Arc::clone(&shop))
        .with_url("a", &lite_url)
        .with_url("b", &pg_url);

    let opener = |url: String| open(url);
    let cluster = fed
        .ballista_standalone(&opener as &dyn OpenDriver)
        .await
        .expect("ballista standalone");
    // The cluster's drivers are its own, opened from the URLs.
    let node_pg = cluster
        .codec()
        .driver(&pg_url)
        .expect("a driver for the URL");
    assert!(!Arc::ptr_eq(node_pg, &shop));

    for q in QUERIES {
        let q = sql(q, "a.customers", "b.orders");
        let want = fed
            .sql_rows(&q)
            .await
            .unwrap_or_else(|e| panic!("in process: {q}: {e}"));
        let before = cluster.codec().scans_decoded();
        let got = cluster
            .sql_rows(&q)
            .await
            .unwrap_or_else(|e| panic!("ballista: {q}: {e}"));
        assert_eq!(got, want, "ballista: {q}");
        assert!(
            cluster.codec().scans_decoded() > before,
            "no objectql scan crossed the wire for {q}"
        );
    }
    assert!(cluster.codec().tables_decoded() > 0);
    // The groupings on `orders` alone went to PostgreSQL whole, as pushed
    // subtrees the scheduler decoded.
    assert!(cluster.codec().subtrees_decoded() > 0);

    cluster.close().await.expect("close");
    lite.close().await.expect("close");
    shop.close().await.expect("close");
    pg.cleanup(&namespace).await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datasource_without_a_url_cannot_go_to_ballista() {
    let mut catalog = Catalog::new();
    catalog.insert(customers("a")).expect("catalog");
    let fed = Federation::new(Arc::new(catalog)).datasource("a", super::common::memory());
    let opener = |url: String| open(url);
    let error = fed
        .ballista_standalone(&opener as &dyn OpenDriver)
        .await
        .expect_err("no URL for `a`");
    assert!(
        matches!(&error, Error::Config { message } if message.contains("`a`") && message.contains("with_url")),
        "{error}"
    );
}
