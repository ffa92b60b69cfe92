//! SQL over every datasource (the `federation` feature).

use objectql_federation::Federation;
use objectql_federation::datafusion::arrow::array::RecordBatch;
use objectql_query_ast::{Record, Result};

use crate::engine::Engine;
use crate::session::Session;

impl Session {
    /// Every object of every datasource as a table of a DataFusion
    /// catalog: schema `<datasource>`, table `<object>`. A tenant session
    /// sees its tenant's databases. Calls made through it carry this
    /// session's time limit. Refused inside a transaction with
    /// `Unsupported`: its tables would read and write outside it.
    pub fn federation(&self) -> Result<Federation> {
        if self.in_transaction() {
            // Its tables would read and write outside the transaction,
            // missing its uncommitted writes: a silent difference.
            return Err(objectql_query_ast::Error::Unsupported {
                feature: "SQL inside a transaction (its tables would read and write outside it)"
                    .into(),
                driver: "engine".into(),
            });
        }
        self.federation_of_datasources()
    }

    /// A federation over this session's datasources, whether or not the
    /// session is in a transaction (a QueryAST query hands each of its
    /// scans the transaction itself).
    pub(crate) fn federation_of_datasources(&self) -> Result<Federation> {
        let mut fed = Federation::new(self.engine().catalog()?)
            .with_timeout(self.timeout())
            .with_join_key_limit(self.engine().join_key_limit());
        for (name, driver) in self.datasources()? {
            if let Some(url) = self.engine().datasource_url(&name)? {
                fed = fed.with_url(name.clone(), url);
            }
            fed = fed.datasource(name, driver);
        }
        Ok(fed)
    }

    /// This session's SQL on Apache Ballista, in this process: a scheduler
    /// and an executor (Ballista's standalone mode) whose drivers are
    /// connected anew from the URLs of the datasources (the engine's
    /// factories; see `objectql::federation::distributed`). Every
    /// datasource must have been added with [`Engine::add_datasource`]: a
    /// driver added as it is has no URL to connect from.
    #[cfg(feature = "ballista")]
    pub async fn ballista_standalone(
        &self,
    ) -> Result<objectql_federation::distributed::Distributed> {
        let engine = self.engine().clone();
        let open = move |url: String| {
            let engine = engine.clone();
            async move { engine.connect_url(&url).await }
        };
        self.federation()?.ballista_standalone(&open).await
    }

    /// Runs a SQL query over every datasource (`SELECT … FROM pg.orders o
    /// JOIN lite.customers c ON …`) and returns its Arrow batches.
    ///
    /// Only queries (writes: [`Session::execute_sql`]); DDL and `SET` are
    /// refused, and so is SQL inside a transaction (see
    /// [`Session::federation`]). Filters, projections
    /// and limits go to each object's driver with the protocol's meaning;
    /// DataFusion joins across datasources.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.federation()?.sql(sql).await
    }

    /// Runs one `INSERT`, `UPDATE` or `DELETE` statement over the
    /// datasources and returns how many rows it wrote (see
    /// [`Federation::execute`]). Refused inside a transaction: the write
    /// would not be part of it.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64> {
        self.federation()?.execute(sql).await
    }

    /// Runs a SQL query over every datasource and returns its rows.
    pub async fn sql_rows(&self, sql: &str) -> Result<Vec<Record>> {
        self.federation()?.sql_rows(sql).await
    }

    /// How a SQL query runs: one tree of DataFusion operators and
    /// `driver:<name>` scans with what was pushed to each. With `analyze`
    /// the query runs and each scan shows the rows its datasource shipped.
    pub async fn explain_sql(&self, sql: &str, analyze: bool) -> Result<String> {
        self.federation()?.explain(sql, analyze).await
    }
}

impl Engine {
    /// [`Session::sql`] in a default session.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.default_session().sql(sql).await
    }

    /// [`Session::execute_sql`] in a default session.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64> {
        self.default_session().execute_sql(sql).await
    }

    /// [`Session::sql_rows`] in a default session.
    pub async fn sql_rows(&self, sql: &str) -> Result<Vec<Record>> {
        self.default_session().sql_rows(sql).await
    }

    /// [`Session::explain_sql`] in a default session.
    pub async fn explain_sql(&self, sql: &str, analyze: bool) -> Result<String> {
        self.default_session().explain_sql(sql, analyze).await
    }

    /// [`Session::federation`] in a default session.
    pub fn federation(&self) -> Result<Federation> {
        self.default_session().federation()
    }
}
