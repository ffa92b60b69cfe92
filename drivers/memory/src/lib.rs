//! The objectql in-memory driver (`memory://`): the reference implementation
//! of every rule in the QueryAST protocol.
//!
//! Queries run through `objectql_planner::eval`, the same evaluator that runs
//! the residual part of every other driver's plans, so the memory driver
//! *defines* the answers the conformance suite expects of every driver.
//!
//! ```
//! use objectql_driver::{Cx, Driver};
//! use objectql_driver_memory::MemoryDriver;
//! use objectql_query_ast::{Catalog, Field, ObjectSchema, Query, Record, Value, field};
//! use futures::TryStreamExt;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let schema = ObjectSchema::new("item").field(Field::new("qty", "integer"));
//! let mut catalog = Catalog::new();
//! catalog.insert(schema.clone())?;
//! let driver = MemoryDriver::new();
//! driver.sync_schema(&schema).await?;
//! let cx = Cx::new(&catalog);
//! let rows: Vec<Record> = [("a", 3), ("b", 5)]
//!     .into_iter()
//!     .map(|(id, qty)| Record::from([("id".into(), Value::from(id)), ("qty".into(), Value::from(qty))]))
//!     .collect();
//! driver.insert(cx, "item", rows).await?;
//! let q = Query::new("item").filter(field("qty").gt(4));
//! let found: Vec<Record> = driver.find(cx, &q).await?.try_collect().await?;
//! assert_eq!(found.len(), 1);
//! # Ok::<(), objectql_query_ast::Error>(())
//! # }).unwrap();
//! ```

mod driver;
mod persist;
mod table;

pub use driver::{MemoryDriver, MemoryOptions};
