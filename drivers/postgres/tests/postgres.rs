//! The PostgreSQL driver's own tests (beyond the shared suite).

use std::sync::Arc;

use objectql::{DriverErrorKind, IsolationLevel, Query, Value, field, record};
use objectql_driver_postgres::{PostgresDriver, PostgresOptions};

use crate::common::{admin, drop_schema, engine_in, fresh_namespace, quoted, url};

#[tokio::test]
async fn an_external_table_is_introspected_and_used_without_ddl() {
    let ns = fresh_namespace("ext");
    let engine = engine_in(&ns, |_| {}).await;
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {ns}.\"product\" (\
           \"sku\" varchar(20) PRIMARY KEY, \
           \"name\" text NOT NULL UNIQUE, \
           \"qty\" integer, \
           \"price\" numeric(10,2), \
           \"seen\" timestamptz, \
           \"tags\" jsonb, \
           \"active\" boolean); \
         INSERT INTO {ns}.\"product\" VALUES \
           ('a-1', 'anvil', 3, 19.99, '2024-05-01T10:00:00Z', '[\"heavy\"]', true), \
           ('b-2', 'bucket', NULL, 4.50, NULL, NULL, false)",
        ns = quoted(&ns)
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    let driver = engine.datasource("default").unwrap();
    let schema = driver
        .introspect("product")
        .await
        .unwrap()
        .expect("the table exists");
    assert_eq!(schema.primary_key, "sku");
    assert!(schema.get("name").unwrap().required && schema.get("name").unwrap().unique);
    assert_eq!(schema.get("qty").unwrap().field_type, "integer");
    assert_eq!(schema.get("price").unwrap().precision, Some(10));
    assert_eq!(schema.get("price").unwrap().scale, Some(2));
    assert_eq!(schema.get("seen").unwrap().field_type, "datetime");
    assert_eq!(schema.get("tags").unwrap().field_type, "json");

    let ddl_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
    )
    .bind(&ns)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    engine.register(schema).await.unwrap();
    let db = engine.default_session();
    let rows = db
        .find(
            &Query::new("product")
                .filter(field("price").gt(5))
                .asc("sku"),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], Value::String("anvil".into()));
    assert_eq!(rows[0]["tags"], Value::json(serde_json::json!(["heavy"])));
    db.insert(
        "product",
        record! {"sku" => "c-3", "name" => "chisel", "qty" => 1},
    )
    .await
    .unwrap();
    assert_eq!(db.count("product", None).await.unwrap(), 3);
    // Only the schema table was added; the product table and its indexes are as they were.
    let ddl_after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname NOT LIKE '\\_objectql\\_schema%'",
    )
    .bind(&ns)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        ddl_after <= ddl_before,
        "{ddl_before} → {ddl_after} relations"
    );
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

#[tokio::test]
async fn serialization_failures_are_classified_retryable() {
    let ns = fresh_namespace("serial");
    let engine = engine_in(&ns, |_| {}).await;
    engine
        .register(objectql::ObjectSchema::new("acct").field(objectql::Field::new("n", "integer")))
        .await
        .unwrap();
    let db = engine.default_session();
    db.insert_many(
        "acct",
        vec![
            record! {"id" => "a", "n" => 1},
            record! {"id" => "b", "n" => 1},
        ],
    )
    .await
    .unwrap();
    // Write skew: each reads both rows and updates the other one.
    let t1 = db
        .begin("default", IsolationLevel::Serializable)
        .await
        .unwrap();
    let t2 = db
        .begin("default", IsolationLevel::Serializable)
        .await
        .unwrap();
    assert_eq!(t1.count("acct", Some(field("n").eq(1))).await.unwrap(), 2);
    assert_eq!(t2.count("acct", Some(field("n").eq(1))).await.unwrap(), 2);
    t1.update("acct", "a", record! {"n" => 0}).await.unwrap();
    t2.update("acct", "b", record! {"n" => 0}).await.unwrap();
    t1.commit().await.unwrap();
    let error = t2.commit().await.unwrap_err();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::SerializationFailure),
        "{error}"
    );
    assert!(error.is_retryable());
    assert_eq!(db.count("acct", Some(field("n").eq(0))).await.unwrap(), 1);

    // Every declared level begins, and reads its own writes.
    for level in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
        IsolationLevel::Serializable,
    ] {
        let tx = db.begin("default", level).await.unwrap();
        tx.insert("acct", record! {"id" => format!("{level:?}"), "n" => 7})
            .await
            .unwrap();
        assert_eq!(tx.count("acct", Some(field("n").eq(7))).await.unwrap(), 1);
        tx.rollback().await.unwrap();
    }
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

#[tokio::test]
async fn a_failed_write_inside_a_transaction_leaves_it_usable() {
    let ns = fresh_namespace("savepoint");
    let engine = engine_in(&ns, |_| {}).await;
    engine
        .register(objectql::ObjectSchema::new("t"))
        .await
        .unwrap();
    let db = engine.default_session();
    let tx = db
        .begin("default", IsolationLevel::Serializable)
        .await
        .unwrap();
    tx.insert("t", record! {"id" => "x"}).await.unwrap();
    let error = tx.insert("t", record! {"id" => "x"}).await.unwrap_err();
    assert_eq!(error.driver_kind(), Some(DriverErrorKind::UniqueViolation));
    tx.insert("t", record! {"id" => "y"}).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.count("t", None).await.unwrap(), 2);
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

#[tokio::test]
async fn the_server_version_and_pool_settings_come_from_the_url() {
    let driver = PostgresDriver::connect(&format!(
        "{}{}max_connections=3&statement_timeout_ms=5000",
        url(),
        if url().contains('?') { "&" } else { "?" }
    ))
    .await
    .unwrap();
    assert!(driver.version().0 >= 12, "{:?}", driver.version());
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(driver.pool())
        .await
        .unwrap();
    assert_eq!(timeout, "5s");
    let driver: Arc<dyn objectql::Driver> = Arc::new(driver);
    driver.health_check().await.unwrap();
    assert!(driver.pool_stats().total <= 3);
    driver.close().await.unwrap();

    let error =
        PostgresDriver::open(PostgresOptions::from_url("postgres://nobody@127.0.0.1:1/x").unwrap())
            .await
            .unwrap_err();
    assert_eq!(
        error.driver_kind(),
        Some(DriverErrorKind::ConnectionLost),
        "{error}"
    );
}

#[tokio::test]
async fn an_in_list_beyond_the_bind_limit_is_one_array_parameter() {
    let ns = fresh_namespace("anyin");
    let engine = engine_in(&ns, |_| {}).await;
    engine
        .register(objectql::ObjectSchema::new("t").field(objectql::Field::new("n", "integer")))
        .await
        .unwrap();
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.\"t\" SELECT i::text, i FROM generate_series(1, 100000) AS i",
        quoted(&ns)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let db = engine.default_session();
    // 70,000 values: more than PostgreSQL's 65,535 bind parameters.
    let ids: Vec<Value> = (1..=70_000).map(|i| Value::String(i.to_string())).collect();
    let evens: Vec<Value> = (1..=70_000)
        .filter(|i| i % 2 == 0)
        .map(Value::Int)
        .collect();
    assert_eq!(
        db.count("t", Some(field("id").in_list(ids.clone())))
            .await
            .unwrap(),
        70_000
    );
    assert_eq!(
        db.count("t", Some(field("n").in_list(evens.clone())))
            .await
            .unwrap(),
        35_000
    );
    assert_eq!(
        db.count("t", Some(field("n").not_in(evens))).await.unwrap(),
        65_000
    );
    let explain = db
        .explain(&Query::new("t").filter(field("id").in_list(ids)))
        .await
        .unwrap();
    let sql = explain.iter().find(|s| s.operation == "sql").unwrap();
    assert!(sql.detail.contains("= ANY($1)"), "{}", sql.detail);
    assert!(sql.detail.contains("1 bound parameters"), "{}", sql.detail);
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

/// Every hostile name is stored as exactly itself: read back through
/// objectql and listed as such in `information_schema.columns` (issue 12
/// §1: `inj\"` once closed the identifier and ran `CREATE TABLE … AS
/// SELECT`; names with `""` reached the server undoubled).
#[tokio::test]
async fn hostile_identifiers_round_trip_into_the_catalog() {
    let ns = fresh_namespace("names");
    let engine = engine_in(&ns, |_| {}).await;
    let names = objectql_conformance::identifiers::hostile_names(15, 64);
    let schema = ns.clone();
    let catalog = || async move {
        let mut admin = admin().await;
        sqlx::query_as::<_, (String, String)>(
            "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&mut admin)
        .await
        .unwrap()
    };
    let result = objectql_conformance::identifiers::roundtrip(&engine, &names, catalog).await;
    engine.close().await.unwrap();
    drop_schema(&ns).await;
    result.unwrap();
}

/// PostgreSQL truncates names to 63 bytes, so two long names could become
/// one table: a 64-byte name is refused, a 63-byte one works (issue 12 §4).
/// Index names are hashed and never truncated, so two long objects with
/// unique fields both keep their constraint (§5).
#[tokio::test]
async fn long_names_are_refused_not_truncated() {
    let ns = fresh_namespace("long");
    let engine = engine_in(&ns, |_| {}).await;
    let long = |c: char, n: usize| c.to_string().repeat(n);
    let err = engine
        .register_json(
            &serde_json::json!({"name": long('a', 64), "fields": {"v": {"type": "integer"}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), "validation", "{err}");
    assert!(err.to_string().contains("63"), "{err}");
    let err = engine
        .register_json(
            &serde_json::json!({"name": "t", "fields": {long('é', 32): {"type": "integer"}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), "validation", "{err}");
    let db = engine.default_session();
    for c in ['x', 'y'] {
        let name = format!("{}{c}", long('a', 62));
        engine
            .register_json(&serde_json::json!({"name": name, "fields": {"u": {"type": "text", "unique": true}}}))
            .await
            .unwrap();
        db.insert(&name, record! {"id" => "1", "u" => "same"})
            .await
            .unwrap();
        let dup = db
            .insert(&name, record! {"id" => "2", "u" => "same"})
            .await
            .unwrap_err();
        assert_eq!(dup.category(), "unique_violation", "{name}: {dup}");
    }
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

/// Objects synced by another engine (another process) count for
/// collisions (issue 12 §4): the schema table, not this engine's catalog,
/// says which tables are taken.
#[tokio::test]
async fn collisions_count_objects_synced_by_other_engines() {
    let ns = fresh_namespace("others");
    let first = engine_in(&ns, |_| {}).await;
    first
        .register_json(&serde_json::json!({"name": "a", "tableName": "shared", "fields": {"v": {"type": "integer"}}}))
        .await
        .unwrap();
    first
        .default_session()
        .insert("a", record! {"id" => "1", "v" => 1})
        .await
        .unwrap();
    first.close().await.unwrap();
    let second = engine_in(&ns, |_| {}).await;
    let err = second
        .register_json(&serde_json::json!({"name": "b", "tableName": "shared", "fields": {"v": {"type": "integer"}}}))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "validation", "{err}");
    assert!(
        err.to_string().contains("`a`") && err.to_string().contains("`b`"),
        "{err}"
    );
    assert!(second.default_session().count("b", None).await.is_err());
    second.close().await.unwrap();
    drop_schema(&ns).await;
}

/// `drop_object` drops the object's own table (its `tableName`), not
/// another object's table that carries its name.
#[tokio::test]
async fn drop_object_drops_its_own_table() {
    let ns = fresh_namespace("dropown");
    let engine = engine_in(&ns, |_| {}).await;
    objectql_conformance::storage::drop_object_drops_its_own_table(&engine)
        .await
        .unwrap();
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

/// Two processes registering at the same moment (issue 12 §4): the
/// collision check and the DDL run in one transaction under the schema's
/// sync lock. Two objects claiming one `tableName` admit exactly one (the
/// other gets a validation error naming both), and the same object
/// registered by both processes at once succeeds twice with one table.
/// Before, both read an empty schema table and both went ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_take_turns() {
    let ns = fresh_namespace("race");
    for round in 0..25 {
        let (a, b) = (engine_in(&ns, |_| {}).await, engine_in(&ns, |_| {}).await);
        let register = |e: objectql::Engine, name: String, table: String| {
            tokio::spawn(async move {
                let r = e
                    .register_json(&serde_json::json!({"name": name, "tableName": table, "fields": {"v": {"type": "integer"}}}))
                    .await;
                (e, r)
            })
        };
        let table = format!("shared{round}");
        let (ra, rb) = tokio::join!(
            register(a, format!("a{round}"), table.clone()),
            register(b, format!("b{round}"), table.clone())
        );
        let ((a, ra), (b, rb)) = (ra.unwrap(), rb.unwrap());
        let (winner, loser) = match (&ra, &rb) {
            (Ok(()), Err(e)) => (format!("a{round}"), e),
            (Err(e), Ok(())) => (format!("b{round}"), e),
            _ => panic!("round {round}: expected one registration to win, got {ra:?} and {rb:?}"),
        };
        assert_eq!(loser.category(), "validation", "round {round}: {loser}");
        let msg = loser.to_string();
        assert!(
            msg.contains(&format!("`a{round}`")) && msg.contains(&format!("`b{round}`")),
            "round {round}: {msg}"
        );
        // The same object from both at once: both succeed, one table.
        let same = format!("same{round}");
        let (ra, rb) = tokio::join!(
            register(a, same.clone(), same.clone()),
            register(b, same.clone(), same.clone())
        );
        let ((a, ra), (b, rb)) = (ra.unwrap(), rb.unwrap());
        ra.unwrap_or_else(|e| panic!("round {round}: {e}"));
        rb.unwrap_or_else(|e| panic!("round {round}: {e}"));
        a.close().await.unwrap();
        b.close().await.unwrap();
        let mut admin = admin().await;
        let stored: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT \"name\" FROM {}.\"_objectql_schema\" WHERE \"name\" IN ($1, $2, $3) ORDER BY 1",
            quoted(&ns)
        )))
        .bind(format!("a{round}"))
        .bind(format!("b{round}"))
        .bind(&same)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        let mut expected = vec![winner, same];
        expected.sort();
        assert_eq!(stored, expected, "round {round}");
    }
    drop_schema(&ns).await;
}

/// A declared unique constraint missing on the server is found at sync
/// (issue 12 §5), whether it was dropped or replaced by an index of the
/// same name over another column: the schema is refused with
/// `SchemaMismatch` rather than accepting duplicates.
#[tokio::test]
async fn a_missing_unique_constraint_is_found_at_sync() {
    let ns = fresh_namespace("uniq");
    let schema = serde_json::json!({"name": "ixa", "fields": {
        "b_c": {"type": "text", "unique": true},
        "c": {"type": "text"}
    }});
    let first = engine_in(&ns, |_| {}).await;
    first.register_json(&schema).await.unwrap();
    first.close().await.unwrap();
    let mut admin = admin().await;
    let index: String = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = $1 AND t.relname = 'ixa' AND i.indisunique AND NOT i.indisprimary",
    )
    .bind(&ns)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let (ns_q, ix_q) = (quoted(&ns), quoted(&index));
    let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    run(format!("DROP INDEX {ns_q}.{ix_q}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let second = engine_in(&ns, |_| {}).await;
    let err = second.register_json(&schema).await.unwrap_err();
    assert_eq!(
        err.driver_kind(),
        Some(DriverErrorKind::SchemaMismatch),
        "{err}"
    );
    assert!(err.to_string().contains("unique field `b_c`"), "{err}");
    second.close().await.unwrap();
    run(format!(
        "CREATE UNIQUE INDEX {ix_q} ON {ns_q}.\"ixa\" (\"c\")"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let third = engine_in(&ns, |_| {}).await;
    let err = third.register_json(&schema).await.unwrap_err();
    assert!(err.to_string().contains("(c)"), "{err}");
    third.close().await.unwrap();
    run(format!(
        "DROP INDEX {ns_q}.{ix_q}; CREATE UNIQUE INDEX {ix_q} ON {ns_q}.\"ixa\" (\"b_c\")"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let fourth = engine_in(&ns, |_| {}).await;
    fourth.register_json(&schema).await.unwrap();
    fourth.close().await.unwrap();
    drop_schema(&ns).await;
}

/// A paged read ordered by the primary key walks its index: no NULL
/// placement is written for a key that holds no NULL, so PostgreSQL reads
/// the first rows from the btree instead of sorting the whole table (issue
/// 14 §5: `ORDER BY "id" COLLATE "C" ASC NULLS FIRST` planned a Seq Scan
/// and a full Sort). A nullable sort key keeps its NULL placement, and its
/// index is built in that order.
#[tokio::test]
async fn paged_reads_by_the_primary_key_use_its_index() {
    let ns = fresh_namespace("order");
    let engine = engine_in(&ns, |_| {}).await;
    engine
        .register_json(&serde_json::json!({"name": "big", "fields": {"v": {"type": "integer", "index": true}}}))
        .await
        .unwrap();
    let db = engine.default_session();
    let rows = (0..20_000)
        .map(|i| record! {"id" => format!("k{i:06}"), "v" => i % 7})
        .collect();
    db.insert_many("big", rows).await.unwrap();
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ANALYZE {}.\"big\"",
        quoted(&ns)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    for q in [
        Query::new("big").asc("id").limit(20),
        Query::new("big").desc("id").limit(20),
        // A nullable indexed key: its index is built `NULLS FIRST`, the
        // protocol's order, so both directions walk it.
        Query::new("big").asc("v").limit(20),
        Query::new("big").desc("v").limit(20),
    ] {
        let plan = db.explain(&q).await.unwrap();
        let text: Vec<&str> = plan.iter().map(|s| s.detail.as_str()).collect();
        let text = text.join("\n");
        assert!(text.contains("Index"), "{text}");
        // No full sort: at most an incremental one over the index's order
        // (the primary key breaking ties within equal `v`).
        let full_sort = text.lines().any(|l| {
            l.trim_start()
                .trim_start_matches("->")
                .trim_start()
                .starts_with("Sort  (")
        });
        assert!(!full_sort, "{text}");
        let got = db.find(&q).await.unwrap();
        assert_eq!(got.len(), 20);
    }
    let first = db
        .find(&Query::new("big").asc("id").limit(2))
        .await
        .unwrap();
    assert_eq!(first[0]["id"], Value::from("k000000"));
    assert_eq!(first[1]["id"], Value::from("k000001"));
    // A nullable key still places NULLs first (ascending), as the protocol says.
    let plan = db
        .explain(&Query::new("big").asc("v").limit(5))
        .await
        .unwrap();
    assert!(plan[0].detail.contains("NULLS FIRST"), "{}", plan[0].detail);
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

/// Issue 14 §5 at scale: over 1,000,000 rows, a primary-key-ordered
/// `limit 20` read and keyset-cursor pages (both directions) compile to
/// SQL that PostgreSQL answers by walking the primary key's index and
/// reading only the page: `EXPLAIN (ANALYZE)` of the very statement the
/// driver runs shows no sequential scan, no sort, and at most page + 1
/// rows out of the index scan.
#[tokio::test]
async fn ordered_pages_over_a_million_rows_read_only_the_page() {
    use objectql::{Cursor, ResolveContext};
    use objectql_planner::sql::{PostgresDialect, SqlCompiler};
    use objectql_query_ast::validate_query;
    let ns = fresh_namespace("million");
    let engine = engine_in(&ns, |_| {}).await;
    engine
        .register_json(&serde_json::json!({"name": "big", "fields": {"v": {"type": "integer"}}}))
        .await
        .unwrap();
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {ns}.\"big\" (\"id\", \"v\") \
         SELECT 'k' || lpad(g::text, 7, '0'), g % 7 FROM generate_series(0, 999999) AS g; \
         ANALYZE {ns}.\"big\"",
        ns = quoted(&ns)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET search_path TO {}",
        quoted(&ns)
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let catalog = engine.catalog().unwrap();
    let dialect = PostgresDialect { version: (15, 0) };
    let cursor = |id: &str| Cursor {
        after: [("id".to_owned(), Value::from(id))].into_iter().collect(),
    };
    let db = engine.default_session();
    assert_eq!(db.count("big", None).await.unwrap(), 1_000_000);
    for (label, q, first) in [
        (
            "first page",
            Query::new("big").asc("id").limit(20),
            "k0000000",
        ),
        (
            "keyset page",
            Query::new("big")
                .asc("id")
                .limit(20)
                .after(cursor("k0500000")),
            "k0500001",
        ),
        (
            "keyset page, descending",
            Query::new("big")
                .desc("id")
                .limit(20)
                .after(cursor("k0500000")),
            "k0499999",
        ),
    ] {
        let valid = validate_query(&q, &catalog, &ResolveContext::now()).unwrap();
        let st = SqlCompiler::new(&dialect, &catalog).select(&valid).unwrap();
        let mut explain = sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) {}",
            st.sql
        )));
        for p in &st.params {
            explain = match p {
                Value::String(s) => explain.bind(s.clone()),
                Value::Int(i) => explain.bind(*i),
                other => panic!("{label}: unexpected parameter {other:?}"),
            };
        }
        let plan = explain.fetch_one(&mut admin).await.unwrap();
        let text = plan.to_string();
        assert!(!text.contains("\"Seq Scan\""), "{label}: {text}");
        assert!(!text.contains("\"Sort\""), "{label}: {text}");
        let scans = index_scan_rows(&plan[0]["Plan"]);
        assert!(!scans.is_empty(), "{label}: no index scan: {text}");
        for rows in scans {
            assert!(
                rows <= 21,
                "{label}: an index scan read {rows} rows: {text}"
            );
        }
        let got = db.find(&q).await.unwrap();
        assert_eq!(got.len(), 20, "{label}");
        assert_eq!(got[0]["id"], Value::from(first), "{label}");
    }
    engine.close().await.unwrap();
    drop_schema(&ns).await;
}

/// The "Actual Rows" of every index scan node in an `EXPLAIN (FORMAT
/// JSON)` plan tree.
fn index_scan_rows(node: &serde_json::Value) -> Vec<u64> {
    let mut out = Vec::new();
    if node["Node Type"]
        .as_str()
        .is_some_and(|t| t.starts_with("Index"))
    {
        out.push(node["Actual Rows"].as_u64().unwrap_or(u64::MAX));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        out.extend(index_scan_rows(child));
    }
    out
}
