//! Bad input and failing drivers: typed errors, never panics or short results.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use objectql_driver::{
    BatchStream, Capabilities, Conflict, Cx, Driver, ExplainStep, Filter, ObjectSchema, Query,
    Record, Result, RowStream, Value,
};
use objectql_federation::Federation;
use objectql_query_ast::{Catalog, DriverErrorKind, Error};

use super::common;

async fn fixture() -> Federation {
    let mut catalog = Catalog::new();
    catalog.insert(common::rules_schema("d")).expect("catalog");
    let driver = common::memory();
    common::load(&driver, &catalog, "t", common::rules_rows()).await;
    Federation::new(Arc::new(catalog)).datasource("d", driver)
}

fn is_validation_at_sql(e: &Error) -> bool {
    matches!(e, Error::Validation { path, .. } if path == "sql")
}

#[tokio::test]
async fn bad_sql_and_unknown_names_are_validation_errors() {
    let fed = fixture().await;
    for sql in [
        "SELEC id FROM d.t",
        "SELECT id FROM d.t WHERE",
        "SELECT id FROM d.nope",
        "SELECT id FROM nowhere.t",
        "SELECT nope FROM d.t",
        "SELECT no_such_function(id) FROM d.t",
        "SELECT id FROM d.t t1 JOIN d.t t2 ON t1.b = t2.d",
    ] {
        let e = fed.sql(sql).await.expect_err(sql);
        assert!(is_validation_at_sql(&e), "{sql}: {e:?}");
    }
    // A literal that does not convert to the column's type fails when
    // DataFusion casts it: a `Decode` error that names the value.
    let e = fed
        .sql("SELECT id FROM d.t WHERE n = 'not a number'")
        .await
        .expect_err("cast");
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::Decode), "{e:?}");
    assert!(e.to_string().contains("not a number"), "{e}");
}

#[tokio::test]
async fn statements_other_than_queries_are_refused() {
    let fed = fixture().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.csv");
    for sql in [
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
        format!("COPY (SELECT * FROM d.t) TO '{}'", out.display()),
        "INSERT INTO d.t (id) VALUES ('x')".to_owned(),
        "SET datafusion.execution.batch_size = 1".to_owned(),
        "CREATE TABLE x AS SELECT 1".to_owned(),
        "DROP TABLE d.t".to_owned(),
    ] {
        let e = fed.sql(&sql).await.expect_err(&sql);
        assert!(is_validation_at_sql(&e), "{sql}: {e:?}");
    }
    assert!(!out.exists(), "COPY wrote a file");
    // The table is still there.
    assert_eq!(
        fed.sql_rows("SELECT id FROM d.t")
            .await
            .expect("rows")
            .len(),
        12
    );
}

#[tokio::test]
async fn hostile_sql_is_an_error_not_a_crash() {
    let fed = fixture().await;
    let deep = format!("SELECT {}1{} FROM d.t", "(".repeat(5000), ")".repeat(5000));
    let e = fed.sql(&deep).await.expect_err("deep nesting");
    assert!(is_validation_at_sql(&e), "{e:?}");
    let deep_not = format!("SELECT id FROM d.t WHERE {}n = 1", "NOT ".repeat(5000));
    assert!(fed.sql(&deep_not).await.is_err());
    // A wide IN list is a query, not an attack: it runs (and is pushed).
    let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let wide = format!(
        "SELECT id FROM d.t WHERE n IN ({}) ORDER BY id",
        list.join(", ")
    );
    let rows = fed.sql_rows(&wide).await.expect("wide IN");
    assert_eq!(rows.len(), 9);
    // Quotes, backslashes and NUL in literals are data.
    for lit in ["'a''b'", "'a\\\\'", "concat('x', chr(0), 'y')", "'%_\\%'"] {
        let sql = format!("SELECT id FROM d.t WHERE s = {lit} OR s LIKE {lit}");
        fed.sql_rows(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A driver that serves its inner driver's rows in 2-row batches and fails
/// with `ConnectionLost` after `good` of them.
#[derive(Debug)]
struct FailsMidStream {
    inner: Arc<dyn Driver>,
    good: usize,
}

#[async_trait]
impl Driver for FailsMidStream {
    fn name(&self) -> &'static str {
        "fails-mid-stream"
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    fn accepts(&self, catalog: &Catalog, query: &Query) -> Result<()> {
        self.inner.accepts(catalog, query)
    }
    async fn health_check(&self) -> Result<()> {
        self.inner.health_check().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        self.inner.sync_schema(schema).await
    }
    async fn drop_object(&self, object: &str) -> Result<()> {
        self.inner.drop_object(object).await
    }
    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        self.inner.introspect(object).await
    }
    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        self.inner.find(cx, query).await
    }
    async fn find_arrow(&self, cx: Cx<'_>, query: &Query) -> Result<BatchStream> {
        let batches: Vec<_> = self.inner.find_arrow(cx, query).await?.collect().await;
        let mut slices = Vec::new();
        for b in batches {
            let b = b?;
            let mut at = 0;
            while at < b.num_rows() {
                let len = 2.min(b.num_rows() - at);
                slices.push(Ok(b.slice(at, len)));
                at += len;
            }
        }
        slices.truncate(self.good);
        slices.push(Err(Error::driver(
            DriverErrorKind::ConnectionLost,
            "cut mid-stream",
        )));
        Ok(Box::pin(futures::stream::iter(slices)))
    }
    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        self.inner.count(cx, object, filter).await
    }
    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        self.inner.distinct(cx, object, field, filter).await
    }
    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        self.inner.explain(cx, query).await
    }
    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        self.inner.insert(cx, object, records).await
    }
    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        self.inner.update(cx, object, id, patch).await
    }
    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        self.inner.update_many(cx, object, filter, patch).await
    }
    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        self.inner.upsert(cx, object, records, conflict).await
    }
    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        self.inner.delete(cx, object, id).await
    }
    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        self.inner.delete_many(cx, object, filter).await
    }
}

#[tokio::test]
async fn a_driver_failing_mid_stream_is_an_error_not_a_short_result() {
    let mut catalog = Catalog::new();
    catalog.insert(common::rules_schema("d")).expect("catalog");
    let inner = common::memory();
    common::load(&inner, &catalog, "t", common::rules_rows()).await;
    let driver: Arc<dyn Driver> = Arc::new(FailsMidStream { inner, good: 3 });
    let fed = Federation::new(Arc::new(catalog)).datasource("d", driver);
    for sql in [
        "SELECT * FROM d.t",
        "SELECT COUNT(*) FROM d.t",
        "SELECT a.id FROM d.t a JOIN d.t b ON a.id = b.id",
        "SELECT id FROM d.t ORDER BY n LIMIT 1",
    ] {
        let e = fed.sql_rows(sql).await.expect_err(sql);
        assert_eq!(
            e.driver_kind(),
            Some(DriverErrorKind::ConnectionLost),
            "{sql}: {e:?}"
        );
        let e = fed.sql(sql).await.expect_err(sql);
        assert_eq!(
            e.driver_kind(),
            Some(DriverErrorKind::ConnectionLost),
            "{sql}: {e:?}"
        );
    }
    // Streamed: the good batches, then the error as an item.
    let items: Vec<_> = fed
        .sql_stream("SELECT * FROM d.t")
        .await
        .expect("stream")
        .collect()
        .await;
    assert!(
        items.iter().take_while(|i| i.is_ok()).count() <= 3,
        "{items:?}"
    );
    assert!(
        items.last().is_some_and(|i| i
            .as_ref()
            .is_err_and(|e| e.driver_kind() == Some(DriverErrorKind::ConnectionLost))),
        "{items:?}"
    );
}
