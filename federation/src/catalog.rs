//! Datasources as DataFusion schemas, objects as their tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;

use crate::table::ObjectTable;

/// A DataFusion catalog with one schema per datasource, so SQL can name
/// `<datasource>.<object>`.
#[derive(Debug, Default)]
pub struct ObjectCatalog {
    schemas: BTreeMap<String, Arc<DatasourceSchema>>,
}

impl ObjectCatalog {
    /// A catalog of the given tables, grouped by their datasource.
    pub fn new(tables: impl IntoIterator<Item = ObjectTable>) -> Self {
        let mut schemas: BTreeMap<String, BTreeMap<String, Arc<ObjectTable>>> = BTreeMap::new();
        for t in tables {
            schemas
                .entry(t.datasource().to_owned())
                .or_default()
                .insert(t.object().to_owned(), Arc::new(t));
        }
        Self {
            schemas: schemas
                .into_iter()
                .map(|(name, tables)| (name, Arc::new(DatasourceSchema { tables })))
                .collect(),
        }
    }

    /// The table of `object` in `datasource`.
    pub fn table(&self, datasource: &str, object: &str) -> Option<&Arc<ObjectTable>> {
        self.schemas.get(datasource)?.tables.get(object)
    }
}

impl CatalogProvider for ObjectCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas
            .get(name)
            .map(|s| Arc::clone(s) as Arc<dyn SchemaProvider>)
    }
}

/// The objects of one datasource.
#[derive(Debug, Default)]
pub struct DatasourceSchema {
    tables: BTreeMap<String, Arc<ObjectTable>>,
}

#[async_trait]
impl SchemaProvider for DatasourceSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self
            .tables
            .get(name)
            .map(|t| Arc::clone(t) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
