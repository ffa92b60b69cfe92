//! A table that is one validated QueryAST query on one driver: a pushed
//! subtree ([`crate::PushSubtrees`]) or one datasource's part of a
//! QueryAST query across datasources ([`crate::JoinedQuery`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use objectql_driver::{Driver, TxId};
use objectql_query_ast::{Catalog, Error, Query};

use crate::error::to_datafusion;
use crate::exec::{ObjectScanExec, estimate_rows, planned_rows};
use crate::table::ObjectTable;

/// One validated query on one driver, as a table. Its columns are the
/// query's output keys (`keys`), named and typed by `schema`. Filters
/// above it stay in DataFusion; the join keys of a hash join above it
/// narrow its query when it runs (see [`ObjectScanExec`]).
#[derive(Debug)]
pub(crate) struct QueryTable {
    pub(crate) datasource: String,
    pub(crate) driver: Arc<dyn Driver>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) query: Query,
    /// The QueryAST key of each output column.
    pub(crate) keys: Vec<String>,
    pub(crate) schema: SchemaRef,
    pub(crate) timeout: Option<Duration>,
    /// The transaction the query runs in, if any.
    pub(crate) tx: Option<TxId>,
    /// Whether its scan asks the driver for row estimates (not in a plan
    /// without joins, where nothing uses them).
    pub(crate) estimates: bool,
}

impl QueryTable {
    /// `query` on the datasource of `table`, outside any transaction.
    pub(crate) fn on(
        table: &ObjectTable,
        query: Query,
        keys: Vec<String>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            datasource: table.datasource().to_owned(),
            driver: Arc::clone(table.driver()),
            catalog: table.catalog_ref(),
            query,
            keys,
            schema,
            timeout: table.options().timeout,
            tx: None,
            estimates: table.estimates_wanted(),
        }
    }
}

#[async_trait]
impl TableProvider for QueryTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (keys, schema) = match projection {
            Some(p) => (
                p.iter()
                    .map(|&i| {
                        self.keys.get(i).cloned().ok_or_else(|| {
                            to_datafusion(Error::internal(format!(
                                "projection index {i} is past the pushed query's columns"
                            )))
                        })
                    })
                    .collect::<DfResult<Vec<_>>>()?,
                Arc::new(self.schema.project(p)?),
            ),
            None => (self.keys.clone(), Arc::clone(&self.schema)),
        };
        let mut objects: Vec<&str> = self.query.object.iter().map(String::as_str).collect();
        for join in &self.query.joins {
            objects.push(&join.object);
        }
        let (estimate, planned) = if self.estimates {
            let estimate =
                estimate_rows(&*self.driver, &self.catalog, objects, self.timeout, self.tx).await;
            let planned = match estimate {
                Some(_) => {
                    planned_rows(
                        &*self.driver,
                        &self.catalog,
                        &self.query,
                        self.timeout,
                        self.tx,
                    )
                    .await
                }
                None => None,
            };
            (estimate, planned)
        } else {
            (None, None)
        };
        Ok(Arc::new(
            ObjectScanExec::new(
                self.datasource.clone(),
                Arc::clone(&self.driver),
                Arc::clone(&self.catalog),
                self.query.clone(),
                Some(keys),
                self.timeout,
                schema,
            )
            .with_key_reduction(true)
            .in_transaction(self.tx)
            .with_estimated_rows(estimate)
            .with_planned_rows(planned),
        ))
    }
}
