//! Writes through SQL: `INSERT`, `UPDATE` and `DELETE` reach the owning
//! driver validated, with SQL's meaning kept, or are refused whole.

use std::sync::Arc;

use objectql_driver::{Cx, Driver};
use objectql_federation::Federation;
use objectql_query_ast::{Catalog, DriverErrorKind, Query, Record, Value};

use super::common::{self, column};

/// `t` (the rules object) on SQLite as `lite.t`, and an empty copy of its
/// schema in memory as `mem.t2`.
async fn fixture(
    dir: &std::path::Path,
) -> (Federation, Arc<dyn Driver>, Arc<dyn Driver>, Arc<Catalog>) {
    let mut catalog = Catalog::new();
    catalog
        .insert(common::rules_schema("lite"))
        .expect("catalog");
    let mut copy = common::rules_schema("mem");
    copy.name = "t2".into();
    catalog.insert(copy).expect("catalog");
    let catalog = Arc::new(catalog);
    let lite = common::sqlite(dir, "w").await;
    let mem = common::memory();
    common::load(&lite, &catalog, "t", common::rules_rows()).await;
    common::load(&mem, &catalog, "t2", Vec::new()).await;
    let fed = Federation::new(Arc::clone(&catalog))
        .datasource("lite", Arc::clone(&lite))
        .datasource("mem", Arc::clone(&mem));
    (fed, lite, mem, catalog)
}

async fn rows(driver: &Arc<dyn Driver>, catalog: &Catalog, object: &str) -> Vec<Record> {
    use futures::TryStreamExt;
    let q = objectql_query_ast::validate_query(
        &Query::new(object).order_by(objectql_query_ast::SortItem::asc("id")),
        catalog,
        &objectql_query_ast::ResolveContext::now(),
    )
    .expect("query");
    driver
        .find(Cx::new(catalog), &q)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("rows")
}

#[tokio::test]
async fn insert_values_and_insert_select_across_datasources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fed, lite, mem, catalog) = fixture(dir.path()).await;
    let n = fed
        .execute("INSERT INTO mem.t2 (n, s, d) VALUES (7, 'x', DATE '2026-01-02'), (8, NULL, NULL)")
        .await
        .expect("insert values");
    assert_eq!(n, 2);
    let stored = rows(&mem, &catalog, "t2").await;
    assert_eq!(stored.len(), 2);
    // Ids were generated; the NULLs are NULL.
    assert!(
        stored
            .iter()
            .all(|r| matches!(r.get("id"), Some(Value::String(s)) if !s.is_empty()))
    );
    assert!(
        stored
            .iter()
            .any(|r| r.get("n") == Some(&Value::Int(8)) && r.get("s") == Some(&Value::Null))
    );

    // Rows read from SQLite, written to memory, typed on the way.
    let n = fed
        .execute("INSERT INTO mem.t2 SELECT * FROM lite.t WHERE n > 1")
        .await
        .expect("insert select");
    let want = fed
        .sql_rows("SELECT * FROM lite.t WHERE n > 1 ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(n, want.len() as u64);
    let copied = fed
        .sql_rows("SELECT * FROM mem.t2 WHERE id LIKE 'r%' ORDER BY id")
        .await
        .expect("rows");
    assert_eq!(copied, want);
    let _ = lite;
}

#[tokio::test]
async fn a_bad_row_fails_the_whole_insert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fed, _, mem, catalog) = fixture(dir.path()).await;
    let e = fed
        .execute("INSERT INTO mem.t2 (id, s) VALUES ('ok', 'fine'), ('bad', concat('a', chr(0)))")
        .await
        .expect_err("a NUL in text is refused");
    assert_eq!(e.category(), "validation", "{e:?}");
    assert!(e.to_string().contains("sql.rows[1]"), "{e}");
    assert!(
        rows(&mem, &catalog, "t2").await.is_empty(),
        "nothing was inserted"
    );
    // A duplicate id is a conflict, and again nothing lands.
    let e = fed
        .execute("INSERT INTO mem.t2 (id) VALUES ('a'), ('a')")
        .await
        .expect_err("duplicate");
    assert_eq!(
        e.driver_kind(),
        Some(DriverErrorKind::UniqueViolation),
        "{e:?}"
    );
    assert!(rows(&mem, &catalog, "t2").await.is_empty());
}

#[tokio::test]
async fn update_and_delete_keep_sqls_meaning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fed, lite, _, catalog) = fixture(dir.path()).await;
    // SQL's `<>` never matches NULL: rows whose `n` is NULL are kept.
    let want: Vec<String> = column(
        &fed.sql_rows("SELECT id FROM lite.t WHERE n <> 2 ORDER BY id")
            .await
            .expect("rows"),
        "id",
    );
    let n = fed
        .execute("UPDATE lite.t SET s = 'changed', b = true WHERE n <> 2")
        .await
        .expect("update");
    assert_eq!(n, want.len() as u64);
    let changed = column(
        &fed.sql_rows("SELECT id FROM lite.t WHERE s = 'changed' AND b ORDER BY id")
            .await
            .expect("rows"),
        "id",
    );
    assert_eq!(changed, want);
    let nulls = column(
        &fed.sql_rows("SELECT id FROM lite.t WHERE n IS NULL ORDER BY id")
            .await
            .expect("rows"),
        "id",
    );
    assert_eq!(nulls.len(), 2);
    assert!(nulls.iter().all(|id| !changed.contains(id)));

    let before = rows(&lite, &catalog, "t").await.len();
    let n = fed
        .execute("DELETE FROM lite.t WHERE n <> 2")
        .await
        .expect("delete");
    assert_eq!(n, want.len() as u64);
    let left = rows(&lite, &catalog, "t").await;
    assert_eq!(left.len(), before - want.len());
    assert!(
        left.iter()
            .all(|r| matches!(r.get("n"), Some(Value::Int(2) | Value::Null)))
    );
    assert_eq!(
        fed.execute("DELETE FROM lite.t").await.expect("delete all"),
        left.len() as u64
    );
    assert!(rows(&lite, &catalog, "t").await.is_empty());
}

#[tokio::test]
async fn writes_that_cannot_keep_their_meaning_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fed, lite, _, catalog) = fixture(dir.path()).await;
    let before = rows(&lite, &catalog, "t").await;
    for (sql, category) in [
        // Conditions DataFusion would evaluate are not handed to a driver.
        ("DELETE FROM lite.t WHERE upper(s) = 'A'", "unsupported"),
        ("UPDATE lite.t SET n = 0 WHERE s ILIKE 'a%'", "unsupported"),
        // A subquery's rows never reach the table's hook: refused.
        (
            "DELETE FROM lite.t WHERE id IN (SELECT id FROM mem.t2)",
            "unsupported",
        ),
        (
            "UPDATE lite.t SET n = 0 WHERE EXISTS (SELECT 1 FROM mem.t2)",
            "unsupported",
        ),
        // Computed assignments.
        ("UPDATE lite.t SET n = n + 1", "validation"),
        // A value that does not fit the field: DataFusion's cast to the
        // column's type fails first, naming the value.
        ("UPDATE lite.t SET d = 'not a date'", "decode"),
        // A NUL in text (DataFusion folds the constant; no stored text
        // holds NUL).
        ("UPDATE lite.t SET s = concat('a', chr(0))", "validation"),
        // Only appends.
        (
            "INSERT OVERWRITE lite.t SELECT * FROM lite.t",
            "unsupported",
        ),
    ] {
        let e = fed.execute(sql).await.expect_err(sql);
        assert_eq!(e.category(), category, "{sql}: {e:?}");
    }
    assert_eq!(rows(&lite, &catalog, "t").await, before, "nothing changed");
    // `execute` is for writes, `sql` for queries.
    let e = fed.execute("SELECT 1").await.expect_err("a query");
    assert_eq!(e.category(), "validation", "{e:?}");
    let e = fed.sql("DELETE FROM lite.t").await.expect_err("a write");
    assert_eq!(e.category(), "validation", "{e:?}");
    assert_eq!(rows(&lite, &catalog, "t").await, before);
    let out = dir.path().join("out.csv");
    let e = fed
        .execute(&format!(
            "COPY (SELECT * FROM lite.t) TO '{}'",
            out.display()
        ))
        .await
        .expect_err("copy");
    assert_eq!(e.category(), "validation", "{e:?}");
    assert!(!out.exists());
}
