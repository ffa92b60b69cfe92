//! Every translation rule, run pushed and not pushed on the same data.
//!
//! "Pushed" means the whole predicate went to the driver as a QueryAST
//! filter (the plan has no `FilterExec` left); "not pushed" is the same
//! federation with pushdown off, where DataFusion evaluates everything
//! with its own SQL semantics. The two answers must be identical, row for
//! row and value for value.

use std::collections::BTreeSet;
use std::sync::Arc;

use objectql_driver::Driver;
use objectql_federation::Federation;
use objectql_query_ast::Catalog;

use super::common::{self, column};

/// A predicate over `t`, and whether it must be pushed whole (`None`:
/// whether it is depends on how DataFusion types the literal; it is
/// compared either way).
const RULES: &[(&str, Option<bool>)] = &[
    // Comparisons, and SQL's NULL rules around them.
    ("n = 2", Some(true)),
    ("n <> 2", Some(true)),
    ("NOT (n = 2)", Some(true)),
    ("n < 2", Some(true)),
    ("n <= 2", Some(true)),
    ("n > 2", Some(true)),
    ("n >= 2", Some(true)),
    ("2 < n", Some(true)),
    ("NOT (n < 2)", Some(true)),
    ("n IS NULL", Some(true)),
    ("n IS NOT NULL", Some(true)),
    ("n IS DISTINCT FROM 2", Some(true)),
    ("n IS NOT DISTINCT FROM 2", Some(true)),
    ("n IS DISTINCT FROM NULL", Some(true)),
    ("n IS NOT DISTINCT FROM NULL", Some(true)),
    ("n BETWEEN 1 AND 3", Some(true)),
    ("n NOT BETWEEN 1 AND 3", Some(true)),
    ("n BETWEEN 3 AND 1", None),
    ("n IN (1, 3)", Some(true)),
    ("n NOT IN (1, 3)", Some(true)),
    ("n IN (1, NULL)", None),
    ("n NOT IN (1, NULL)", None),
    ("n = NULL", None),
    ("n <> NULL", None),
    // Boolean structure: negation reaches the leaves by De Morgan.
    ("NOT (n < 2 AND s = 'a')", Some(true)),
    ("n < 2 OR s = 'a'", Some(true)),
    ("NOT (n < 2 OR s IS NULL)", Some(true)),
    ("NOT (n = 1 OR n = 2)", Some(true)),
    ("n = 1 AND s = 'a'", Some(true)),
    // Boolean columns and IS [NOT] TRUE/FALSE/UNKNOWN.
    ("b", Some(true)),
    ("NOT b", Some(true)),
    ("b = true", Some(true)),
    ("b <> true", Some(true)),
    ("b IS TRUE", Some(true)),
    ("b IS NOT TRUE", Some(true)),
    ("b IS FALSE", Some(true)),
    ("b IS NOT FALSE", Some(true)),
    ("b IS UNKNOWN", Some(true)),
    ("b IS NOT UNKNOWN", Some(true)),
    ("(n > 1) IS NOT TRUE", Some(true)),
    ("(n > 1) IS FALSE", Some(true)),
    ("(n > 1) IS NOT FALSE", Some(true)),
    ("NOT ((n > 1) IS TRUE)", Some(true)),
    // Text: binary comparison, trailing spaces count, LIKE is literal but for % and _.
    ("s = 'a'", Some(true)),
    ("s <> 'a'", Some(true)),
    ("s = 'a '", Some(true)),
    ("s < 'b'", Some(true)),
    ("s > 'Z'", Some(true)),
    ("s >= 'a'", Some(true)),
    ("s LIKE 'a%'", Some(true)),
    ("s LIKE 'a_'", Some(true)),
    ("s LIKE '%\\%%'", Some(true)),
    ("s LIKE '\\_%'", Some(true)),
    ("s LIKE '%\\\\%'", Some(true)),
    ("s NOT LIKE 'a%'", Some(true)),
    ("NOT (s LIKE '%b%')", Some(true)),
    ("s LIKE '%'", None),
    ("s LIKE ''", None),
    // ILIKE folds Unicode case in DataFusion, ASCII only in QueryAST: never pushed.
    ("s ILIKE 'k'", Some(false)),
    ("s ILIKE 'a%'", Some(false)),
    // Text with a NUL: QueryAST refuses it, so DataFusion evaluates it.
    ("s = concat('a', chr(0))", Some(false)),
    // Expressions DataFusion computes are not translated.
    ("n + 1 = 3", Some(false)),
    ("upper(s) = 'A'", Some(false)),
    ("s = 'a' OR upper(s) = 'AB'", Some(false)),
    // Floats: -0.0 sorts below 0.0 in Arrow, so it is not pushed.
    ("f = 1.5", Some(true)),
    ("f <> 1.5", Some(true)),
    ("f >= 0.0", Some(true)),
    ("f > -0.0", Some(false)),
    ("f < 1e301", Some(true)),
    ("f = 1", None),
    // Dates and instants: a bound is an instant, never a whole day.
    ("d = DATE '2026-03-01'", Some(true)),
    ("d < DATE '2026-03-01'", Some(true)),
    (
        "d BETWEEN DATE '2024-01-01' AND DATE '2026-03-01'",
        Some(true),
    ),
    ("d <> DATE '2026-03-01'", Some(true)),
    ("ts <= '2026-03-01'", None),
    ("ts <= TIMESTAMP '2026-03-01T00:00:00Z'", None),
    ("ts > '2026-03-01T12:00:00+02:00'", None),
    ("ts < TIMESTAMP '2000-01-01T00:00:00.000001Z'", None),
    // Text literals of every Arrow string type reach the driver as text.
    ("s = arrow_cast('a', 'LargeUtf8')", Some(true)),
    ("s = arrow_cast('a ', 'Utf8View')", Some(true)),
    ("s < arrow_cast('b', 'LargeUtf8')", Some(true)),
    ("arrow_cast(s, 'LargeUtf8') = 'a'", None),
    (
        "s IN (arrow_cast('a', 'Utf8View'), arrow_cast('abc', 'LargeUtf8'))",
        None,
    ),
    // Decimals at other precisions and scales than the column's.
    ("dec = CAST(1.5 AS DECIMAL(38, 10))", None),
    ("dec > CAST(99999.985 AS DECIMAL(10, 3))", None),
    ("dec < CAST(-0.005 AS DECIMAL(5, 3))", None),
    ("dec >= CAST(2 AS DECIMAL(1, 0))", None),
    ("dec = 2.50", None),
    // Decimals.
    ("dec = 1.5", None),
    ("dec > 1", None),
    ("dec <> 0", None),
    ("dec BETWEEN -1 AND 2.5", None),
];

/// Runs every rule on `driver` (which holds `t`), pushed and not pushed.
/// With `strict`, a rule marked as pushed whole (or not) must be; a server
/// driver classifies some rules its own way, and only the answers are
/// pinned there.
pub(super) async fn check_rules(driver: Arc<dyn Driver>, catalog: Arc<Catalog>, strict: bool) {
    let on = Federation::new(Arc::clone(&catalog)).datasource("d", Arc::clone(&driver));
    let off = on.clone().with_pushdown(false);
    let name = driver.name().to_owned();
    let mut answers = BTreeSet::new();
    for (pred, must_push) in RULES {
        let sql = format!("SELECT * FROM d.t WHERE {pred} ORDER BY id");
        let pushed = on
            .sql_rows(&sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: `{pred}` pushed: {e}"));
        let local = off
            .sql_rows(&sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: `{pred}` not pushed: {e}"));
        assert_eq!(
            pushed,
            local,
            "{name}: `{pred}` gives other rows pushed ({:?}) than not pushed ({:?})",
            column(&pushed, "id"),
            column(&local, "id")
        );
        let plan = on.explain(&sql, false).await.expect("explain");
        let whole = !plan.contains("FilterExec");
        if let Some(must) = must_push.filter(|_| strict) {
            assert_eq!(
                whole, must,
                "{name}: `{pred}` pushed whole: {whole}\n{plan}"
            );
        }
        let unpushed_plan = off.explain(&sql, false).await.expect("explain");
        assert!(
            unpushed_plan.contains("FilterExec") || pred.contains("NULL"),
            "{name}: with pushdown off `{pred}` must be evaluated by DataFusion\n{unpushed_plan}"
        );
        answers.insert(column(&pushed, "id"));
    }
    // The data discriminates: the rules do not all give the same few answers.
    assert!(
        answers.len() > 40,
        "{name}: only {} distinct answers",
        answers.len()
    );
}

pub(super) fn catalog_with(datasource: &str) -> Arc<Catalog> {
    let mut catalog = Catalog::new();
    catalog
        .insert(common::rules_schema(datasource))
        .expect("catalog");
    Arc::new(catalog)
}

#[tokio::test]
async fn memory_rules_pushed_and_not_pushed_agree() {
    let catalog = catalog_with("d");
    let driver = common::memory();
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    check_rules(driver, catalog, true).await;
}

#[tokio::test]
async fn sqlite_rules_pushed_and_not_pushed_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog_with("d");
    let driver = common::sqlite(dir.path(), "rules").await;
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    check_rules(driver, catalog, true).await;
}

#[tokio::test]
async fn a_limit_is_pushed_only_when_every_filter_is() {
    let catalog = catalog_with("d");
    let driver = common::memory();
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    let fed = Federation::new(catalog).datasource("d", driver);
    let plan = fed
        .explain("SELECT id FROM d.t WHERE n > 0 LIMIT 2", false)
        .await
        .expect("explain");
    assert!(plan.contains("\"limit\":2"), "{plan}");
    let plan = fed
        .explain("SELECT id FROM d.t WHERE upper(s) = 'AB' LIMIT 1", false)
        .await
        .expect("explain");
    assert!(!plan.contains("\"limit\""), "{plan}");
    // Pushed under the filter, the limit would keep r01, which fails it.
    let rows = fed
        .sql_rows("SELECT id FROM d.t WHERE upper(s) = 'AB' LIMIT 1")
        .await
        .expect("rows");
    assert_eq!(column(&rows, "id"), vec!["\"r11\"".to_owned()]);
}

/// The plan-time decision (`Driver::accepts`) on the SQL path: an `IN`
/// list past SQLite's bind limit (32,766) is not pushed, and two lists the
/// driver takes one by one but refuses together are filtered by DataFusion
/// over a scan. Both answer what the unpushed plan answers.
#[tokio::test]
async fn filters_past_the_bind_limit_stay_in_datafusion_alone_or_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog_with("d");
    let driver = common::sqlite(dir.path(), "binds").await;
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    let on = Federation::new(Arc::clone(&catalog)).datasource("d", driver);
    let off = on.clone().with_pushdown(false);
    let list = |from: i64, to: i64| {
        (from..to)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    // One list of 40,000: refused alone, so DataFusion keeps it.
    let one = format!(
        "SELECT id FROM d.t WHERE n IN ({}) ORDER BY id",
        list(-20_000, 20_000)
    );
    // Two lists of 20,000 on two columns (each taken alone, 40,000
    // parameters together; DataFusion would merge two on one column).
    let texts = (0..20_000)
        .map(|i| format!("'x{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    let two = format!(
        "SELECT id, s FROM d.t WHERE n IN ({}) AND s NOT IN ({texts}) ORDER BY id",
        list(-10_000, 10_000)
    );
    for sql in [&one, &two] {
        let pushed = on.sql_rows(sql).await.expect("pushed");
        let local = off.sql_rows(sql).await.expect("not pushed");
        assert_eq!(pushed, local);
        assert!(
            pushed.len() >= 3,
            "the lists must select rows for the comparison to mean something: {pushed:?}"
        );
        let plan = on.explain(sql, false).await.expect("explain");
        // (Plans with 20,000-value lists are too long to print.)
        assert!(
            plan.contains("FilterExec"),
            "no FilterExec for {}",
            &sql[..80]
        );
    }
    // A list the driver takes is still pushed whole.
    let small = format!(
        "SELECT id FROM d.t WHERE n IN ({}) ORDER BY id",
        list(-5, 5)
    );
    let plan = on.explain(&small, false).await.expect("explain");
    assert!(!plan.contains("FilterExec"), "{plan}");
    assert_eq!(
        on.sql_rows(&small).await.expect("pushed"),
        off.sql_rows(&small).await.expect("not pushed")
    );
}
