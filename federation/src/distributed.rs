//! Federated queries on Apache Ballista (feature `ballista`): a scheduler
//! and executors run the plan, and each node opens its own drivers.
//!
//! A plan that leaves the process is serialized by DataFusion's protobuf
//! codecs; what they cannot write, the objectql tables and scans, goes
//! through [`ObjectCodec`]: an [`ObjectTable`], a pushed subtree or an
//! [`ObjectScanExec`] is written as its datasource's name and URL, the
//! object schemas of the catalog, the pushed QueryAST query (its JSON wire
//! form) and the scan options. A node reading it finds the driver it opened
//! for that URL, validates the query again (which types its values back)
//! and runs it. Nothing of a driver or a connection crosses the wire.
//!
//! [`Federation::ballista_standalone`] runs a scheduler and an executor in
//! this process (Ballista's standalone mode, over gRPC on local ports).
//! Across machines, give every scheduler and executor an [`ObjectCodec`]
//! opened on the URLs they serve, as both their logical and physical
//! extension codec (`SessionConfigExt::with_ballista_logical_extension_codec`
//! and `…_physical_extension_codec`).
//!
//! What does not go: a query inside a transaction (a transaction is one
//! connection of this process; encoding it is refused), and the join keys
//! a hash join hands to the scan on its other side at run time (Ballista
//! plans stages apart, so scans read what their own filters select).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use futures::TryStreamExt;
use objectql_driver::Driver;
use objectql_query_ast::{
    Catalog, Error, ObjectSchema, Query, Record, ResolveContext, Result, validate_query,
};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::error::{from_datafusion, to_datafusion};
use crate::exec::ObjectScanExec;
use crate::source::QueryTable;
use crate::table::{ObjectTable, ScanOptions};
use crate::{CATALOG, Federation, batches_to_records, planned};

/// Opens a driver from a datasource URL: how a Ballista node gets the
/// drivers of the plans it runs. A closure `Fn(String) -> impl Future<Output
/// = Result<Arc<dyn Driver>>>` is one.
#[async_trait]
pub trait OpenDriver: Send + Sync {
    /// Connects a driver to `url`.
    async fn open(&self, url: &str) -> Result<Arc<dyn Driver>>;
}

#[async_trait]
impl<F, Fut> OpenDriver for F
where
    F: Fn(String) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Arc<dyn Driver>>> + Send,
{
    async fn open(&self, url: &str) -> Result<Arc<dyn Driver>> {
        self(url.to_owned()).await
    }
}

/// The bytes that start every plan part [`ObjectCodec`] writes. The first,
/// `O` (0x4F), is a protobuf tag of wire type 7, which no protobuf message
/// (Ballista's own nodes) can start with.
const MAGIC: &[u8; 4] = b"OQL\x01";

/// What a part is.
const TABLE: u8 = b'T';
const SUBTREE: u8 = b'Q';
const SCAN: u8 = b'S';

/// A serialized table or scan: everything but the driver, which the node
/// reading it opens itself from `url`.
#[derive(Debug, Serialize, Deserialize)]
struct Part {
    datasource: String,
    url: String,
    /// The catalog, in registration order: queries validate against it.
    objects: Vec<ObjectSchema>,
    /// An [`ObjectTable`]'s object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    /// A pushed subtree's or a scan's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Query>,
    /// A pushed subtree's output keys; the columns a scan keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default)]
    pushdown: bool,
    /// A pushed subtree's scan asks its driver for row estimates.
    #[serde(default)]
    estimates: bool,
    /// A scan may be narrowed by the join keys handed down to it.
    #[serde(default)]
    reduce: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    estimated_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    planned_rows: Option<u64>,
}

/// The codec a Ballista client, scheduler and executor use for objectql's
/// plan parts (see the [module docs](self)). Every other part goes to
/// Ballista's own codecs.
pub struct ObjectCodec {
    /// Datasource name → the URL written for it.
    urls: BTreeMap<String, String>,
    /// URL → the driver this node opened for it.
    drivers: BTreeMap<String, Arc<dyn Driver>>,
    logical: BallistaLogicalExtensionCodec,
    physical: BallistaPhysicalExtensionCodec,
    tables_decoded: AtomicUsize,
    subtrees_decoded: AtomicUsize,
    scans_decoded: AtomicUsize,
}

impl fmt::Debug for ObjectCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCodec")
            .field("datasources", &self.urls.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ObjectCodec {
    /// A codec for datasources `urls` (name → URL), with a driver opened
    /// by `opener` for each URL: the drivers of the plan parts this node
    /// decodes. A part naming a URL not among them is an error.
    pub async fn open(urls: BTreeMap<String, String>, opener: &dyn OpenDriver) -> Result<Self> {
        let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
        for url in urls.values() {
            if !drivers.contains_key(url) {
                drivers.insert(url.clone(), opener.open(url).await?);
            }
        }
        Ok(Self {
            urls,
            drivers,
            logical: BallistaLogicalExtensionCodec::default(),
            physical: BallistaPhysicalExtensionCodec::default(),
            tables_decoded: AtomicUsize::new(0),
            subtrees_decoded: AtomicUsize::new(0),
            scans_decoded: AtomicUsize::new(0),
        })
    }

    /// The driver this node opened for `url`.
    pub fn driver(&self, url: &str) -> Option<&Arc<dyn Driver>> {
        self.drivers.get(url)
    }

    /// How many objectql tables (objects and pushed subtrees) this codec
    /// has read from logical plans.
    pub fn tables_decoded(&self) -> usize {
        self.tables_decoded.load(Ordering::Relaxed)
    }

    /// How many of [`Self::tables_decoded`] were pushed subtrees: one
    /// QueryAST query (joins, grouping, sort, paging) on one datasource.
    pub fn subtrees_decoded(&self) -> usize {
        self.subtrees_decoded.load(Ordering::Relaxed)
    }

    /// How many objectql scans this codec has read from physical plans
    /// (each is a driver query an executor ran or will run).
    pub fn scans_decoded(&self) -> usize {
        self.scans_decoded.load(Ordering::Relaxed)
    }

    /// Closes every driver this node opened.
    pub async fn close(&self) -> Result<()> {
        for driver in self.drivers.values() {
            driver.close().await?;
        }
        Ok(())
    }

    fn url_of(&self, datasource: &str) -> Result<String> {
        self.urls.get(datasource).cloned().ok_or_else(|| {
            Error::config(format!(
                "datasource `{datasource}` has no URL: a plan that runs on Ballista names the URL \
                 each node opens its driver from (`Federation::with_url`)"
            ))
        })
    }

    fn driver_for(&self, part: &Part) -> Result<Arc<dyn Driver>> {
        self.drivers.get(&part.url).cloned().ok_or_else(|| {
            Error::config(format!(
                "datasource `{}`: this node opened no driver for its URL (its codec was opened \
                 on {} URL(s) of other datasources)",
                part.datasource,
                self.drivers.len()
            ))
        })
    }

    fn base_part(&self, datasource: &str, catalog: &Catalog) -> Result<Part> {
        Ok(Part {
            datasource: datasource.to_owned(),
            url: self.url_of(datasource)?,
            objects: catalog.iter().cloned().collect(),
            object: None,
            query: None,
            keys: None,
            timeout_ms: None,
            pushdown: true,
            estimates: false,
            reduce: false,
            estimated_rows: None,
            planned_rows: None,
        })
    }
}

/// A time limit in whole milliseconds (rounded up, so a limit stays one).
fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| u64::try_from(t.as_micros().div_ceil(1000)).unwrap_or(u64::MAX))
}

/// [`MAGIC`], `kind`, then the part's JSON and `tail`, each after its
/// length (4 bytes, little-endian).
fn write(buf: &mut Vec<u8>, kind: u8, part: &Part, tail: &[u8]) -> Result<()> {
    let json = serde_json::to_vec(part)
        .map_err(|e| Error::internal(format!("serializing a plan part: {e}")))?;
    buf.extend_from_slice(MAGIC);
    buf.push(kind);
    for bytes in [json.as_slice(), tail] {
        let len = u32::try_from(bytes.len())
            .map_err(|_| Error::validation("plan", "a plan part is larger than 4 GiB"))?;
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(bytes);
    }
    Ok(())
}

/// The first `len`-prefixed run of bytes in `rest`, and what follows it.
fn prefixed(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The kind, part and tail of bytes [`write`] wrote; `None` when they are
/// not objectql's.
fn read(buf: &[u8]) -> Option<Result<(u8, Part, &[u8])>> {
    let rest = buf.strip_prefix(MAGIC)?;
    Some((|| {
        let bad = || Error::validation("plan", "a truncated objectql plan part");
        let (&kind, rest) = rest.split_first().ok_or_else(bad)?;
        let (json, rest) = prefixed(rest).ok_or_else(bad)?;
        let (tail, rest) = prefixed(rest).ok_or_else(bad)?;
        if !rest.is_empty() {
            return Err(Error::validation(
                "plan",
                "an objectql plan part has bytes past its end",
            ));
        }
        let part: Part = serde_json::from_slice(json).map_err(|e| {
            Error::validation("plan", format!("an objectql plan part does not read: {e}"))
        })?;
        Ok((kind, part, tail))
    })())
}

/// The catalog of `part`, and its query validated against it again (its
/// JSON form carries values untyped: dates as text, decimals as text).
fn catalog_and_query(part: &Part) -> Result<(Arc<Catalog>, Option<Query>)> {
    let mut catalog = Catalog::new();
    for schema in &part.objects {
        catalog.insert(schema.clone())?;
    }
    let query = match &part.query {
        Some(q) => Some(validate_query(q, &catalog, &ResolveContext::now())?),
        None => None,
    };
    Ok((Arc::new(catalog), query))
}

fn no_query() -> Error {
    Error::validation("plan", "an objectql plan part lacks its query")
}

fn refuse_transaction() -> DataFusionError {
    to_datafusion(Error::Unsupported {
        feature: "a query inside a transaction on Ballista (the transaction is one connection of \
                  this process)"
            .into(),
        driver: "federation".into(),
    })
}

impl LogicalExtensionCodec for ObjectCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.logical.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.logical.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let Some(read) = read(buf) else {
            return self
                .logical
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let (kind, part, _) = read.map_err(to_datafusion)?;
        let driver = self.driver_for(&part).map_err(to_datafusion)?;
        let (catalog, query) = catalog_and_query(&part).map_err(to_datafusion)?;
        let options = ScanOptions::default()
            .with_pushdown(part.pushdown)
            .with_timeout(part.timeout_ms.map(Duration::from_millis));
        let provider: Arc<dyn TableProvider> = match kind {
            TABLE => {
                let object = part.object.as_deref().ok_or_else(|| {
                    to_datafusion(Error::validation(
                        "plan",
                        "an objectql table lacks its object",
                    ))
                })?;
                Arc::new(
                    ObjectTable::new(part.datasource.clone(), driver, catalog, object)
                        .map_err(to_datafusion)?
                        .with_options(options),
                )
            }
            SUBTREE => {
                self.subtrees_decoded.fetch_add(1, Ordering::Relaxed);
                Arc::new(QueryTable {
                    datasource: part.datasource,
                    driver,
                    catalog,
                    query: query.ok_or_else(|| to_datafusion(no_query()))?,
                    keys: part.keys.ok_or_else(|| {
                        to_datafusion(Error::validation(
                            "plan",
                            "a pushed objectql subtree lacks its columns",
                        ))
                    })?,
                    schema,
                    timeout: options.timeout,
                    tx: None,
                    estimates: part.estimates,
                })
            }
            other => {
                return Err(to_datafusion(Error::validation(
                    "plan",
                    format!("an objectql table of unknown kind {other}"),
                )));
            }
        };
        self.tables_decoded.fetch_add(1, Ordering::Relaxed);
        Ok(provider)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if let Some(table) = node.downcast_ref::<ObjectTable>() {
            let mut part = self
                .base_part(table.datasource(), &table.catalog_ref())
                .map_err(to_datafusion)?;
            part.object = Some(table.object().to_owned());
            part.pushdown = table.options().pushdown;
            part.timeout_ms = millis(table.options().timeout);
            return write(buf, TABLE, &part, &[]).map_err(to_datafusion);
        }
        if let Some(table) = node.downcast_ref::<QueryTable>() {
            if table.tx.is_some() {
                return Err(refuse_transaction());
            }
            let mut part = self
                .base_part(&table.datasource, &table.catalog)
                .map_err(to_datafusion)?;
            part.query = Some(table.query.clone());
            part.keys = Some(table.keys.clone());
            part.timeout_ms = millis(table.timeout);
            part.estimates = table.estimates;
            return write(buf, SUBTREE, &part, &[]).map_err(to_datafusion);
        }
        self.logical.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        LogicalExtensionCodec::try_decode_udf(&self.logical, name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        LogicalExtensionCodec::try_encode_udf(&self.logical, node, buf)
    }
}

impl PhysicalExtensionCodec for ObjectCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some(read) = read(buf) else {
            return self.physical.try_decode(buf, inputs, ctx, converter);
        };
        let (kind, part, tail) = read.map_err(to_datafusion)?;
        if kind != SCAN {
            return Err(to_datafusion(Error::validation(
                "plan",
                format!("an objectql plan node of unknown kind {kind}"),
            )));
        }
        let driver = self.driver_for(&part).map_err(to_datafusion)?;
        let (catalog, query) = catalog_and_query(&part).map_err(to_datafusion)?;
        let proto = datafusion_proto::protobuf::Schema::decode(tail).map_err(|e| {
            to_datafusion(Error::validation(
                "plan",
                format!("an objectql scan's schema does not read: {e}"),
            ))
        })?;
        let schema = Arc::new(Schema::try_from(&proto)?);
        let scan = ObjectScanExec::new(
            part.datasource,
            driver,
            catalog,
            query.ok_or_else(|| to_datafusion(no_query()))?,
            part.keys,
            part.timeout_ms.map(Duration::from_millis),
            schema,
        )
        .with_key_reduction(part.reduce)
        .with_estimated_rows(part.estimated_rows)
        .with_planned_rows(part.planned_rows);
        self.scans_decoded.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(scan))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        let Some(scan) = node.downcast_ref::<ObjectScanExec>() else {
            return self.physical.try_encode(node, buf, converter);
        };
        if scan.tx.is_some() {
            return Err(refuse_transaction());
        }
        let mut part = self
            .base_part(&scan.datasource, &scan.catalog)
            .map_err(to_datafusion)?;
        part.query = Some(scan.query.clone());
        part.keys.clone_from(&scan.keep);
        part.timeout_ms = millis(scan.timeout);
        part.reduce = scan.reduce;
        part.estimated_rows = scan.estimated_rows;
        part.planned_rows = scan.planned_rows;
        let schema = datafusion_proto::protobuf::Schema::try_from(scan.schema().as_ref())?;
        write(buf, SCAN, &part, &schema.encode_to_vec()).map_err(to_datafusion)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        PhysicalExtensionCodec::try_decode_udf(&self.physical, name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        PhysicalExtensionCodec::try_encode_udf(&self.physical, node, buf)
    }
}

/// A federation running on Ballista: see [`Federation::ballista_standalone`].
pub struct Distributed {
    context: SessionContext,
    codec: Arc<ObjectCodec>,
    /// The federation's pushdown setting (estimates are fetched for it).
    pushdown: bool,
}

impl fmt::Debug for Distributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distributed")
            .field("session", &self.context.session_id())
            .field("codec", &self.codec)
            .field("pushdown", &self.pushdown)
            .finish()
    }
}

impl Distributed {
    /// The Ballista client context: its catalog is the federation's, and
    /// every plan it runs goes to the scheduler.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// The codec the scheduler and the executor decode plans with (and the
    /// drivers they opened).
    pub fn codec(&self) -> &Arc<ObjectCodec> {
        &self.codec
    }

    /// Runs `sql` (a query) on the cluster and returns its Arrow batches.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        planned(&self.context, sql, self.pushdown)
            .await?
            .execute_stream()
            .await
            .map_err(from_datafusion)?
            .try_collect()
            .await
            .map_err(from_datafusion)
    }

    /// Runs `sql` on the cluster and returns its rows.
    pub async fn sql_rows(&self, sql: &str) -> Result<Vec<Record>> {
        batches_to_records(&self.sql(sql).await?)
    }

    /// Closes the drivers the scheduler and executor opened.
    pub async fn close(&self) -> Result<()> {
        self.codec.close().await
    }
}

impl Federation {
    /// Runs this federation's SQL on Ballista in this process: a scheduler
    /// and an executor (Ballista's standalone mode, over gRPC on local
    /// ports), with two task slots. They decode the plans with an
    /// [`ObjectCodec`] whose drivers `opener` opens from the URLs given
    /// with [`Federation::with_url`] (so they are not this federation's
    /// drivers; a `memory://` datasource there is a new, empty one).
    ///
    /// # Errors
    /// A datasource without a URL, a driver that does not open, or
    /// Ballista failing to start.
    pub async fn ballista_standalone(&self, opener: &dyn OpenDriver) -> Result<Distributed> {
        for name in self.sources.keys() {
            if !self.urls.contains_key(name) {
                return Err(Error::config(format!(
                    "datasource `{name}` has no URL: a node of the cluster opens its driver from \
                     it (`Federation::with_url`)"
                )));
            }
        }
        let codec = Arc::new(ObjectCodec::open(self.urls.clone(), opener).await?);
        let mut config = self.configured(SessionConfig::new_with_ballista());
        // Joins shuffle on their keys, planned so by DataFusion. Left to one
        // partition (what suits one process), a join Ballista demotes from
        // `CollectLeft` to a shuffled join keeps a parent that reads one of
        // its 16 partitions: Ballista 55 then returns a sixteenth of the
        // rows, silently (seen with a `LEFT JOIN … ORDER BY`).
        config.options_mut().optimizer.repartition_joins = true;
        // Hash joins, as in one process: Ballista prefers sort-merge joins,
        // and DataFusion 55.2's `SortMergeJoinExec` fails a right join whose
        // `ON` condition reads the right side ("column types must match
        // schema types", a generated query with two full joins); it does so
        // in one process too, with `prefer_hash_join` off. DataFusion plans
        // them partitioned on the keys, not `CollectLeft` for a small side
        // (the join Ballista demotes, see above); Ballista itself may still
        // broadcast a small side, and a null-aware anti join (`NOT IN`) is
        // `CollectLeft` in any case.
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.prefer_hash_join = true;
        optimizer.hash_join_single_partition_threshold = 0;
        optimizer.hash_join_single_partition_threshold_rows = 0;
        // A partitioned hash join's dynamic filter is complete once every
        // build partition has reported, and each partition's stream waits
        // for that; Ballista runs each partition as its own task, so the
        // query hung.
        config
            .options_mut()
            .optimizer
            .enable_join_dynamic_filter_pushdown = false;
        let config = config
            .with_ballista_logical_extension_codec(Arc::clone(&codec) as _)
            .with_ballista_physical_extension_codec(Arc::clone(&codec) as _)
            .with_ballista_standalone_parallelism(2)
            // Adaptive planning re-plans stages with its own rules only.
            .with_ballista_adaptive_query_planner(false);
        let state = self.state(config);
        let context = SessionContext::standalone_with_state(state)
            .await
            .map_err(from_datafusion)?;
        context.register_catalog(CATALOG, Arc::new(self.catalog_provider()?));
        Ok(Distributed {
            context,
            codec,
            pushdown: self.options.pushdown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::physical_plan::DefaultPhysicalProtoConverter;
    use objectql_query_ast::{Field, Value, field};

    fn catalog() -> Arc<Catalog> {
        let mut catalog = Catalog::new();
        catalog
            .insert(
                ObjectSchema::new("t")
                    .field(Field::new("d", "date"))
                    .field(Field::new("n", "integer"))
                    .datasource("m"),
            )
            .unwrap();
        Arc::new(catalog)
    }

    async fn codec() -> ObjectCodec {
        let urls = BTreeMap::from([("m".to_owned(), "memory://".to_owned())]);
        let opener = |_: String| async {
            Ok(
                Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://")?)
                    as Arc<dyn Driver>,
            )
        };
        ObjectCodec::open(urls, &opener).await.unwrap()
    }

    fn scan(catalog: &Arc<Catalog>, driver: Arc<dyn Driver>) -> Arc<dyn ExecutionPlan> {
        let query = Query::new("t")
            .select(["d".to_owned(), "n".to_owned()])
            .filter(field("d").gte(Value::from("2026-02-28")));
        let query = validate_query(&query, catalog, &ResolveContext::now()).unwrap();
        let schema = objectql_driver::arrow_schema(catalog.get("t").unwrap(), &query).unwrap();
        Arc::new(
            ObjectScanExec::new(
                "m".into(),
                driver,
                Arc::clone(catalog),
                query,
                None,
                Some(Duration::from_micros(1_500)),
                schema,
            )
            .with_planned_rows(Some(7)),
        )
    }

    /// A scan written and read back is the same scan (its query typed
    /// again: the date bound is a date, not text), on the reader's driver.
    #[tokio::test]
    async fn a_scan_reads_back_as_the_same_query_on_the_nodes_driver() {
        let codec = codec().await;
        let catalog = catalog();
        let mine = Arc::new(objectql_driver_memory::MemoryDriver::connect("memory://").unwrap());
        let plan = scan(&catalog, mine.clone());
        let mut buf = Vec::new();
        PhysicalExtensionCodec::try_encode(
            &codec,
            Arc::clone(&plan),
            &mut buf,
            &DefaultPhysicalProtoConverter {},
        )
        .unwrap();
        assert!(buf.starts_with(MAGIC));
        let task = SessionContext::new().task_ctx();
        let back = PhysicalExtensionCodec::try_decode(
            &codec,
            &buf,
            &[],
            &task,
            &DefaultPhysicalProtoConverter {},
        )
        .unwrap();
        let (before, after) = (
            plan.downcast_ref::<ObjectScanExec>().unwrap(),
            back.downcast_ref::<ObjectScanExec>().unwrap(),
        );
        assert_eq!(after.query, before.query);
        assert_eq!(after.schema(), before.schema());
        assert_eq!(after.timeout, Some(Duration::from_millis(2)));
        assert_eq!(after.planned_rows, Some(7));
        assert!(Arc::ptr_eq(
            after.driver(),
            codec.driver("memory://").unwrap()
        ));
        assert!(!Arc::ptr_eq(after.driver(), &(mine as Arc<dyn Driver>)));
        assert_eq!(codec.scans_decoded(), 1);
        let shown = datafusion::physical_plan::displayable(back.as_ref())
            .one_line()
            .to_string();
        assert!(shown.contains("driver:memory m.t"), "{shown}");
    }

    /// Damaged or foreign bytes behind the marker, and a URL this node has
    /// no driver for, are typed errors, never panics.
    #[tokio::test]
    async fn damaged_parts_and_unknown_urls_are_errors() {
        let codec = codec().await;
        let catalog = catalog();
        let mut good = Vec::new();
        PhysicalExtensionCodec::try_encode(
            &codec,
            scan(&catalog, codec.driver("memory://").unwrap().clone()),
            &mut good,
            &DefaultPhysicalProtoConverter {},
        )
        .unwrap();
        let task = SessionContext::new().task_ctx();
        let decode = |buf: &[u8]| {
            PhysicalExtensionCodec::try_decode(
                &codec,
                buf,
                &[],
                &task,
                &DefaultPhysicalProtoConverter {},
            )
            .map(drop)
        };
        let mut cases: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        let mut flipped = good.clone();
        flipped[10] ^= 0xff;
        cases.push(flipped);
        let mut long = good[..5].to_vec();
        long.extend_from_slice(&u32::MAX.to_le_bytes());
        cases.push(long);
        let mut extra = good.clone();
        extra.push(0);
        cases.push(extra);
        // Not ours, not Ballista's.
        cases.push(b"\x4fQL".to_vec());
        for case in &cases {
            assert!(decode(case).is_err(), "{case:?} decoded");
        }
        let elsewhere = {
            let mut part = read(&good).unwrap().unwrap().1;
            part.url = "postgres://elsewhere".into();
            let mut buf = Vec::new();
            write(&mut buf, SCAN, &part, read(&good).unwrap().unwrap().2).unwrap();
            buf
        };
        let error = decode(&elsewhere).unwrap_err().to_string();
        assert!(error.contains("opened no driver"), "{error}");
        assert_eq!(codec.scans_decoded(), 0);
    }
}
