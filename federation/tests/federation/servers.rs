//! The translation rules and the spread joins on the server drivers:
//! PostgreSQL, MySQL/MariaDB and MongoDB, the servers `scripts/test`
//! provisions (`OBJECTQL_TEST_POSTGRES_URL`, `OBJECTQL_TEST_MYSQL_URL`,
//! `OBJECTQL_MONGO_URL`). A server that cannot be reached fails the test.

use std::sync::Arc;

use objectql_conformance::Harness;
use objectql_conformance::harnesses::{Mongo, MySql, Postgres};
use objectql_driver::Driver;
use objectql_query_ast::{Record, Value};

use super::common;
use super::joins::check_spread;
use super::pushdown::{catalog_with, check_rules};

/// A namespace of this run, unique per process.
fn namespace(name: &str) -> String {
    format!("fed_{}_{name}", std::process::id())
}

async fn connect(harness: &dyn Harness, name: &str) -> Arc<dyn Driver> {
    harness
        .connect(&namespace(name))
        .await
        .unwrap_or_else(|e| panic!("{}: cannot connect: {e}", harness.name()))
}

async fn cleanup(harness: &dyn Harness, names: &[&str]) {
    for name in names {
        harness
            .cleanup(&namespace(name))
            .await
            .unwrap_or_else(|e| panic!("{}: cleanup of `{name}`: {e}", harness.name()));
    }
}

pub(crate) fn mongo() -> Mongo {
    Mongo::from_env().unwrap_or_else(|| {
        panic!("OBJECTQL_MONGO_URL is not set: these tests need a MongoDB server (scripts/test starts one)")
    })
}

async fn rules_on(harness: &dyn Harness) {
    let driver = connect(harness, "rules").await;
    let catalog = catalog_with("d");
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    check_rules(Arc::clone(&driver), catalog, false).await;
    driver.close().await.expect("close");
    cleanup(harness, &["rules"]).await;
}

#[tokio::test]
async fn postgres_rules_pushed_and_not_pushed_agree() {
    rules_on(&Postgres::from_env()).await;
}

#[tokio::test]
async fn mysql_rules_pushed_and_not_pushed_agree() {
    rules_on(&MySql::from_env()).await;
}

#[tokio::test]
async fn mongo_rules_pushed_and_not_pushed_agree() {
    rules_on(&mongo()).await;
}

#[tokio::test]
async fn sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = Postgres::from_env();
    check_spread(
        common::sqlite(dir.path(), "crm").await,
        connect(&pg, "shop_a").await,
    )
    .await;
    check_spread(
        connect(&pg, "crm_b").await,
        common::sqlite(dir.path(), "shop").await,
    )
    .await;
    cleanup(&pg, &["shop_a", "crm_b"]).await;
}

#[tokio::test]
async fn postgres_and_mysql() {
    let (pg, my) = (Postgres::from_env(), MySql::from_env());
    check_spread(connect(&pg, "crm_c").await, connect(&my, "shop_c").await).await;
    check_spread(connect(&my, "crm_d").await, connect(&pg, "shop_d").await).await;
    cleanup(&pg, &["crm_c", "shop_d"]).await;
    cleanup(&my, &["shop_c", "crm_d"]).await;
}

#[tokio::test]
async fn mysql_and_mongo() {
    let (my, mg) = (MySql::from_env(), mongo());
    check_spread(connect(&my, "crm_e").await, connect(&mg, "shop_e").await).await;
    check_spread(connect(&mg, "crm_f").await, connect(&my, "shop_f").await).await;
    cleanup(&my, &["crm_e", "shop_f"]).await;
    cleanup(&mg, &["shop_e", "crm_f"]).await;
}

/// `Driver::estimated_rows` on each server: an answer from the server's
/// statistics, not an error, and of the table's size. MongoDB's comes from
/// the collection's metadata (exact); MariaDB's `TABLE_ROWS` is InnoDB's
/// sampled estimate; PostgreSQL's is `None` until the table is analyzed
/// (its arithmetic has a unit test in the driver).
#[tokio::test]
async fn row_estimates_come_from_each_servers_statistics() {
    let pg = Postgres::from_env();
    let my = MySql::from_env();
    let mongo = mongo();
    let harnesses: [&dyn Harness; 3] = [&pg, &my, &mongo];
    let rows = common::rules_rows();
    let n = rows.len() as u64;
    for harness in harnesses {
        let driver = connect(harness, "estimates").await;
        let catalog = catalog_with("d");
        common::load(&driver, &catalog, "t", rows.clone()).await;
        let estimate = driver
            .estimated_rows(objectql_driver::Cx::new(&catalog), "t")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", harness.name()));
        match harness.name().as_str() {
            "mongodb" => assert_eq!(estimate, Some(n), "mongodb"),
            "mysql" => assert!(
                estimate.is_some_and(|e| e <= 10 * n),
                "mysql: {estimate:?} for {n} rows"
            ),
            _ => assert!(
                estimate.is_none_or(|e| e <= 10 * n),
                "{}: {estimate:?} for {n} rows",
                harness.name()
            ),
        }
        driver.close().await.expect("close");
        cleanup(harness, &["estimates"]).await;
    }
}

/// PostgreSQL estimates a filtered query's rows with its own planner
/// (`EXPLAIN`): a selective filter is estimated below the whole table.
#[tokio::test]
async fn postgres_estimates_a_filtered_query_with_its_planner() {
    let pg = Postgres::from_env();
    let driver = connect(&pg, "planned").await;
    let catalog = catalog_with("d");
    let rows: Vec<Record> = (0..2_000)
        .map(|i: i64| {
            [
                ("id".to_owned(), Value::from(format!("r{i:05}"))),
                ("n".to_owned(), Value::from(i % 100)),
            ]
            .into_iter()
            .collect()
        })
        .collect();
    common::load(&driver, &catalog, "t", rows).await;
    let cx = || objectql_driver::Cx::new(&catalog);
    let whole = objectql_query_ast::validate_query(
        &objectql_query_ast::Query::new("t"),
        &catalog,
        &objectql_query_ast::ResolveContext::now(),
    )
    .expect("query");
    let one = objectql_query_ast::validate_query(
        &objectql_query_ast::Query::new("t").filter(objectql_query_ast::Filter::cond(
            "n",
            objectql_query_ast::Op::Eq(objectql_query_ast::Operand::Value(Value::Int(7))),
        )),
        &catalog,
        &objectql_query_ast::ResolveContext::now(),
    )
    .expect("query");
    let all = driver
        .estimated_query_rows(cx(), &whole)
        .await
        .expect("estimate")
        .expect("postgres estimates every query");
    let some = driver
        .estimated_query_rows(cx(), &one)
        .await
        .expect("estimate")
        .expect("postgres estimates every query");
    assert!(
        some < all,
        "`n = 7` is estimated at {some} rows, the table at {all}"
    );
    driver.close().await.expect("close");
    cleanup(&pg, &["planned"]).await;
}
