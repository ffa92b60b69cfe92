//! Writes through SQL: `INSERT`, `UPDATE` and `DELETE` on an
//! [`ObjectTable`](crate::ObjectTable), run by the owning driver.
//!
//! Every write is validated as the engine validates it: inserted rows with
//! `validate_record` (ids generated, defaults applied, types converted),
//! `WHERE` clauses translated into QueryAST with SQL's meaning kept and run
//! only when the driver evaluates them exactly, `SET` values converted to
//! the field's type. Nothing happens at planning time: `EXPLAIN` of a write
//! writes nothing; the write runs when the plan's one partition executes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream,
};
use objectql_driver::{Cx, Driver};
use objectql_query_ast::{Catalog, Error, Filter, Path, Record, Result, Value, WriteMode};

use crate::error::to_datafusion;
use crate::value::batches_to_records;

/// What a [`WriteExec`] does.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// Inserts the rows of its input.
    Insert(Arc<dyn ExecutionPlan>),
    /// Sets `patch` on the rows matching `filter` (all rows: `None`).
    Update {
        filter: Option<Filter>,
        patch: Record,
    },
    /// Deletes the rows matching `filter` (all rows: `None`).
    Delete { filter: Option<Filter> },
}

/// Runs one `INSERT`, `UPDATE` or `DELETE` on a driver; its one output row
/// is the `count` of rows written, as DataFusion's DML plans report it.
#[derive(Debug)]
pub struct WriteExec {
    datasource: String,
    driver: Arc<dyn Driver>,
    catalog: Arc<Catalog>,
    object: String,
    write: Write,
    timeout: Option<Duration>,
    properties: Arc<PlanProperties>,
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl WriteExec {
    pub(crate) fn new(
        datasource: String,
        driver: Arc<dyn Driver>,
        catalog: Arc<Catalog>,
        object: String,
        write: Write,
        timeout: Option<Duration>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            datasource,
            driver,
            catalog,
            object,
            write,
            timeout,
            properties: Arc::new(properties),
        }
    }

    fn verb(&self) -> &'static str {
        match self.write {
            Write::Insert(_) => "insert",
            Write::Update { .. } => "update",
            Write::Delete { .. } => "delete",
        }
    }
}

impl DisplayAs for WriteExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let target = format!(
            "driver:{} {}.{}",
            self.driver.name(),
            self.datasource,
            self.object
        );
        match (t, &self.write) {
            (DisplayFormatType::TreeRender, _) => write!(f, "write={}\n{target}", self.verb()),
            (_, Write::Insert(_)) => write!(f, "ObjectWrite: insert into {target}"),
            (_, Write::Update { filter, patch }) => write!(
                f,
                "ObjectWrite: update {target} set={} where={}",
                patch
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.to_json()))
                    .collect::<Vec<_>>()
                    .join(", "),
                filter
                    .as_ref()
                    .map_or_else(|| "all".into(), |x| x.to_json().to_string())
            ),
            (_, Write::Delete { filter }) => write!(
                f,
                "ObjectWrite: delete from {target} where={}",
                filter
                    .as_ref()
                    .map_or_else(|| "all".into(), |x| x.to_json().to_string())
            ),
        }
    }
}

/// Inserted rows as the engine takes them: a NULL is an omitted column
/// (DataFusion fills columns an `INSERT` does not name with NULL, so the
/// two cannot be told apart), which lets ids be generated and defaults
/// apply; then each row is validated.
fn insert_rows(catalog: &Catalog, object: &str, batches: &[RecordBatch]) -> Result<Vec<Record>> {
    let schema = catalog
        .get(object)
        .ok_or_else(|| Error::internal("a written object left the catalog"))?;
    batches_to_records(batches)?
        .into_iter()
        .enumerate()
        .map(|(i, mut row)| {
            row.retain(|_, v| !v.is_null());
            objectql_query_ast::validate_record(
                row,
                schema,
                WriteMode::Insert,
                &Path::root("sql").key("rows").index(i),
            )
        })
        .collect()
}

async fn run(
    driver: Arc<dyn Driver>,
    catalog: Arc<Catalog>,
    object: String,
    write: Write,
    timeout: Option<Duration>,
    context: Arc<TaskContext>,
) -> Result<u64> {
    let cx = Cx {
        catalog: &catalog,
        tx: None,
        timeout,
    };
    match write {
        Write::Insert(input) => {
            // One driver call: the statement's rows land all or none.
            let batches = datafusion::physical_plan::collect(input, context)
                .await
                .map_err(crate::error::from_datafusion)?;
            let rows = insert_rows(&catalog, &object, &batches)?;
            if rows.is_empty() {
                return Ok(0);
            }
            let n = rows.len();
            driver.insert(cx, &object, rows).await?;
            Ok(n as u64)
        }
        Write::Update { filter, patch } => {
            let all = Filter::always();
            driver
                .update_many(cx, &object, filter.as_ref().unwrap_or(&all), patch)
                .await
        }
        Write::Delete { filter } => {
            let all = Filter::always();
            driver
                .delete_many(cx, &object, filter.as_ref().unwrap_or(&all))
                .await
        }
    }
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &'static str {
        "ObjectWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        match &self.write {
            Write::Insert(input) => vec![input],
            _ => Vec::new(),
        }
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let write = match (&self.write, children.len()) {
            (Write::Insert(_), 1) => Write::Insert(children.remove(0)),
            (Write::Insert(_), _) => {
                return Err(DataFusionError::Internal(
                    "ObjectWriteExec (insert) has one child".into(),
                ));
            }
            (other, 0) => other.clone(),
            _ => {
                return Err(DataFusionError::Internal(
                    "ObjectWriteExec (update, delete) has no children".into(),
                ));
            }
        };
        Ok(Arc::new(Self::new(
            self.datasource.clone(),
            Arc::clone(&self.driver),
            Arc::clone(&self.catalog),
            self.object.clone(),
            write,
            self.timeout,
        )))
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
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "ObjectWriteExec has one partition, not {}",
                partition + 1
            )));
        }
        let work = run(
            Arc::clone(&self.driver),
            Arc::clone(&self.catalog),
            self.object.clone(),
            self.write.clone(),
            self.timeout,
            context,
        );
        let schema = count_schema();
        let out = Arc::clone(&schema);
        let stream = futures::stream::once(async move {
            let n = work.await.map_err(to_datafusion)?;
            RecordBatch::try_new(out, vec![Arc::new(UInt64Array::from(vec![n]))])
                .map_err(DataFusionError::from)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// The value a `SET col = <expr>` assigns, when `<expr>` is a constant.
pub(crate) fn assigned_value(
    expr: &datafusion::logical_expr::Expr,
    field: &str,
) -> std::result::Result<Value, Error> {
    use datafusion::logical_expr::Expr;
    let constant = match expr {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => Some(v),
            _ => None,
        },
        Expr::TryCast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => Some(v),
            _ => None,
        },
        _ => None,
    };
    let refuse = || {
        Error::validation(
            format!("sql.set.{field}"),
            format!(
                "`SET {field} = {expr}`: only a constant value can be assigned through SQL (use `Session::update_many` for computed updates)"
            ),
        )
    };
    let v = constant.ok_or_else(refuse)?;
    if v.is_null() {
        return Ok(Value::Null);
    }
    crate::value::scalar_value(v, field).map_err(|_| refuse())
}
