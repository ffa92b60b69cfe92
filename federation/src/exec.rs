//! The execution plan node that runs one pushed query on a driver.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use objectql_driver::{Cx, Driver};
use objectql_query_ast::{Catalog, Error, Query};

use crate::error::to_datafusion;

/// Runs one pushed [`Query`] on a datasource's driver and streams its Arrow
/// batches, never holding more than the driver's current batch.
///
/// `EXPLAIN` shows it as `ObjectScan: driver:<name> <datasource>.<object>`
/// with the pushed query; `EXPLAIN ANALYZE` adds the rows it shipped.
#[derive(Debug)]
pub struct ObjectScanExec {
    pub(crate) datasource: String,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) query: Query,
    /// Column names to keep from the driver's batches, when the driver
    /// cannot project (`None`: its batches are already the output).
    pub(crate) keep: Option<Vec<String>>,
    pub(crate) timeout: Option<Duration>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ObjectScanExec {
    pub(crate) fn new(
        datasource: String,
        driver: Arc<dyn Driver>,
        catalog: Arc<Catalog>,
        query: Query,
        keep: Option<Vec<String>>,
        timeout: Option<Duration>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            datasource,
            driver,
            catalog,
            query,
            keep,
            timeout,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The query this node sends to its driver.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The driver that runs it.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The datasource's name.
    pub fn datasource(&self) -> &str {
        &self.datasource
    }

    /// The catalog the query was validated against.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The time limit of the driver call, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

impl DisplayAs for ObjectScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let object = self.query.object.as_deref().unwrap_or_default();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "ObjectScan: driver:{} {}.{object} query={}",
                self.driver.name(),
                self.datasource,
                self.query.to_json()
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "driver=driver:{}", self.driver.name())?;
                write!(f, "object={}.{object}", self.datasource)
            }
        }
    }
}

/// Conforms a driver batch to the node's output schema: keeps the wanted
/// columns (by name) and checks their types; a projection of no columns
/// keeps the row count.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    keep: Option<&[String]>,
) -> DfResult<RecordBatch> {
    if schema.fields().is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        return Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            Vec::new(),
            &options,
        )?);
    }
    let columns: Vec<ArrayRef> = match keep {
        Some(names) => names
            .iter()
            .map(|n| {
                batch.column_by_name(n).cloned().ok_or_else(|| {
                    to_datafusion(Error::internal(format!(
                        "the driver's batch has no column `{n}`"
                    )))
                })
            })
            .collect::<DfResult<_>>()?,
        None => batch.columns().to_vec(),
    };
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| {
        to_datafusion(Error::internal(format!(
            "the driver's batch does not have the object's Arrow types: {e}"
        )))
    })
}

impl ExecutionPlan for ObjectScanExec {
    fn name(&self) -> &'static str {
        "ObjectScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "ObjectScanExec has no children".into(),
            ))
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(
                datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
            ),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ObjectScanExec has one partition, not {}",
                partition + 1
            )));
        }
        let driver = Arc::clone(&self.driver);
        let catalog = Arc::clone(&self.catalog);
        let query = self.query.clone();
        let timeout = self.timeout;
        let batches = futures::stream::once(async move {
            let cx = Cx {
                catalog: &catalog,
                tx: None,
                timeout,
            };
            driver.find_arrow(cx, &query).await
        })
        .try_flatten();
        let schema = Arc::clone(&self.schema);
        let keep = self.keep.clone();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let stream = batches.map(move |batch| {
            let batch = batch.map_err(to_datafusion)?;
            let out = conform(&batch, &schema, keep.as_deref())?;
            metrics.record_output(out.num_rows());
            Ok(out)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}
