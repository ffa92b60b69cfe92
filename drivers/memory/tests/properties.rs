//! Property tests of the memory driver's invariants over generated schemas,
//! rows and queries (`objectql_conformance::generate`):
//!
//! - ternary partitioning: for a condition `p` on field `f`, the rows of `q`
//!   split exactly into `q ∧ p`, `q ∧ ¬p ∧ ¬unknown(p)` and `unknown(p)`;
//! - a page walk (by offset and by keyset cursor) equals the unpaged result;
//! - JSON round-trip preserves a query's meaning;
//! - the planner's residual path (a scan-only driver, everything local) gives
//!   the same answers as full pushdown.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use objectql::ast::{Condition, Cursor, Filter, Op};
use objectql::{
    BatchStream, Capabilities, Conflict, Cx, Driver, Engine, ExplainStep, MemoryDriver,
    ObjectSchema, Pushdown, Query, Record, Result, RowStream, Value,
};
use objectql_conformance::generate::{self, GenSchema};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn engine(driver: Arc<dyn Driver>, s: &GenSchema, rows: &[Record]) -> Engine {
    let engine = Engine::new();
    engine.add_driver("default", driver).unwrap();
    engine.register(s.schema.clone()).await.unwrap();
    engine
        .default_session()
        .insert_many("t", rows.to_vec())
        .await
        .unwrap();
    engine
}

async fn ids(engine: &Engine, q: &Query) -> Vec<String> {
    engine
        .default_session()
        .find(q)
        .await
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn with_filter(q: &Query, f: Filter) -> Query {
    let mut q = q.clone();
    q.filter = Some(match q.filter.take() {
        Some(existing) => existing.and(f),
        None => f,
    });
    q
}

/// Whether a condition is unknown (rather than false) on a NULL field.
fn positive(f: &Filter) -> Option<&Condition> {
    match f {
        Filter::Condition(c) => match c.op {
            Op::Ne(_) | Op::Nin(_) | Op::NotContains(_) | Op::Null(_) | Op::Exists(_) => None,
            _ => Some(c),
        },
        _ => None,
    }
}

fn scenario() -> impl Strategy<Value = (GenSchema, Vec<Record>, Query, Filter)> {
    generate::schema().prop_flat_map(|s| {
        let rows = generate::rows(&s, 25);
        let q = generate::row_query(&s);
        let p = generate::condition(&s);
        (Just(s), rows, q, p)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn ternary_partition((s, rows, q, p) in scenario()) {
        rt().block_on(async {
            let engine = engine(Arc::new(MemoryDriver::new()), &s, &rows).await;
            let mut base = q.clone();
            base.limit = None;
            base.offset = None;
            base.fields = None;
            let all: BTreeSet<String> = ids(&engine, &base).await.into_iter().collect();
            let yes: BTreeSet<String> = ids(&engine, &with_filter(&base, p.clone())).await.into_iter().collect();
            let no: BTreeSet<String> = ids(&engine, &with_filter(&base, p.clone().not())).await.into_iter().collect();
            let unknown: BTreeSet<String> = match positive(&p) {
                Some(c) => ids(&engine, &with_filter(&base, objectql::field(c.field.as_str()).is_null())).await.into_iter().collect(),
                None => BTreeSet::new(),
            };
            assert!(yes.is_disjoint(&no), "p and ¬p overlap");
            assert!(yes.is_disjoint(&unknown), "p holds on a row where it is unknown");
            assert!(unknown.is_subset(&no), "¬p (IS NOT TRUE) must include unknown rows");
            let union: BTreeSet<String> = yes.union(&no).cloned().collect();
            assert_eq!(union, all, "p ⊎ ¬p ≠ all rows");
            let double: BTreeSet<String> = ids(&engine, &with_filter(&base, p.clone().not().not())).await.into_iter().collect();
            assert_eq!(double, yes, "¬¬p ≠ p");
        });
    }

    #[test]
    fn page_walks_equal_the_unpaged_result((s, rows, q, _p) in scenario(), page in 1_u64..5) {
        rt().block_on(async {
            let engine = engine(Arc::new(MemoryDriver::new()), &s, &rows).await;
            let mut full = q.clone();
            full.fields = None;
            full.limit = None;
            full.offset = None;
            if !full.order_by.iter().any(|o| o.field == "id") {
                full.order_by.push(objectql::SortItem::asc("id"));
            }
            let expected = engine.default_session().find(&full).await.unwrap();

            let mut by_offset = Vec::new();
            let mut by_cursor = Vec::new();
            let mut cursor: Option<Cursor> = None;
            for n in 0.. {
                let mut paged = full.clone();
                paged.limit = Some(page);
                paged.offset = Some(n * page);
                let got = engine.default_session().find(&paged).await.unwrap();
                let done = (got.len() as u64) < page;
                by_offset.extend(got);
                if done { break; }
            }
            loop {
                let mut paged = full.clone();
                paged.limit = Some(page);
                paged.cursor = cursor.clone();
                let got = engine.default_session().find(&paged).await.unwrap();
                let done = (got.len() as u64) < page;
                if let Some(last) = got.last() {
                    cursor = Some(Cursor {
                        after: full.order_by.iter().map(|o| (o.field.clone(), last[&o.field].clone())).collect(),
                    });
                }
                by_cursor.extend(got);
                if done { break; }
            }
            assert_eq!(by_offset, expected, "offset walk");
            assert_eq!(by_cursor, expected, "cursor walk");
        });
    }

    #[test]
    fn json_round_trip_preserves_meaning((s, _rows, q, _p) in scenario()) {
        let mut catalog = objectql::Catalog::new();
        catalog.insert(s.schema.clone()).unwrap();
        let ctx = objectql::ResolveContext::now();
        let json = q.to_json();
        let back = Query::from_json(&json).unwrap();
        assert_eq!(back.to_json(), json, "serialization is a fixpoint");
        let a = objectql::ast::validate_query(&q, &catalog, &ctx).unwrap();
        let b = objectql::ast::validate_query(&back, &catalog, &ctx).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn aggregates_agree_between_pushdown_and_local(
        (s, rows, q) in generate::schema().prop_flat_map(|s| {
            let rows = generate::rows(&s, 25);
            let q = generate::aggregate_query(&s);
            (Just(s), rows, q)
        })
    ) {
        rt().block_on(async {
            let memory: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
            let pushed = engine(memory, &s, &rows).await;
            let local = engine(Arc::new(ScanOnly(MemoryDriver::new(), Capabilities::default())), &s, &rows).await;
            let a = pushed.default_session().find(&q).await;
            let b = local.default_session().find(&q).await;
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.category(), b.category()),
                (a, b) => panic!("pushed {a:?} vs local {b:?}"),
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// 1,000 generated row queries: full pushdown vs everything local.
    #[test]
    fn residual_plans_match_pushdown((s, rows, q, _p) in scenario()) {
        rt().block_on(async {
            let pushed = engine(Arc::new(MemoryDriver::new()), &s, &rows).await;
            // Pushes filters except text operators (run locally), nothing else.
            let mut caps = Capabilities::default();
            caps.filters = true;
            let local = engine(Arc::new(ScanOnly(MemoryDriver::new(), caps)), &s, &rows).await;
            let a = pushed.default_session().find(&q).await.unwrap();
            let b = local.default_session().find(&q).await.unwrap();
            assert_eq!(a, b);
        });
    }
}

/// A memory driver that claims fewer capabilities, so the planner runs the
/// rest locally: text conditions are `Unsupported`, `$between` `Inexact`.
pub(crate) struct ScanOnly(pub(crate) MemoryDriver, pub(crate) Capabilities);

#[async_trait]
impl Driver for ScanOnly {
    fn name(&self) -> &'static str {
        "scan-only"
    }
    fn capabilities(&self) -> &Capabilities {
        &self.1
    }
    fn classify(&self, _schema: &ObjectSchema, c: &Condition) -> Pushdown {
        match c.op {
            Op::Contains(_)
            | Op::NotContains(_)
            | Op::StartsWith(_)
            | Op::EndsWith(_)
            | Op::IContains(_)
            | Op::Like(_)
            | Op::ILike(_) => Pushdown::Unsupported,
            Op::Between(..) => Pushdown::Inexact,
            _ => Pushdown::Exact,
        }
    }
    async fn health_check(&self) -> Result<()> {
        self.0.health_check().await
    }
    async fn close(&self) -> Result<()> {
        self.0.close().await
    }
    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        self.0.sync_schema(schema).await
    }
    async fn drop_object(&self, object: &str) -> Result<()> {
        self.0.drop_object(object).await
    }
    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        self.0.introspect(object).await
    }
    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        assert!(
            query.order_by.is_empty() || self.1.sorting,
            "planner pushed a sort to a driver without sorting"
        );
        assert!(
            !query.is_aggregate() || self.1.aggregations,
            "planner pushed an aggregate"
        );
        assert!(
            query.limit.is_none() || self.1.paging,
            "planner pushed a limit"
        );
        self.0.find(cx, query).await
    }
    async fn find_arrow(&self, cx: Cx<'_>, query: &Query) -> Result<BatchStream> {
        self.0.find_arrow(cx, query).await
    }
    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        self.0.count(cx, object, filter).await
    }
    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        self.0.distinct(cx, object, field, filter).await
    }
    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        self.0.explain(cx, query).await
    }
    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        self.0.insert(cx, object, records).await
    }
    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        self.0.update(cx, object, id, patch).await
    }
    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        self.0.update_many(cx, object, filter, patch).await
    }
    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        self.0.upsert(cx, object, records, conflict).await
    }
    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        self.0.delete(cx, object, id).await
    }
    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        self.0.delete_many(cx, object, filter).await
    }
}
