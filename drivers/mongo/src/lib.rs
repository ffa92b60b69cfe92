//! The objectql MongoDB driver, on the official [`mongodb`](https://docs.rs/mongodb)
//! crate.
//!
//! ```no_run
//! # async fn demo() -> objectql_query_ast::Result<()> {
//! use objectql_driver_mongo::MongoDriver;
//!
//! // Pool options ride on the URL (maxPoolSize, minPoolSize, maxIdleTimeMS,
//! // serverSelectionTimeoutMS, …); the path names the database.
//! let driver = MongoDriver::connect("mongodb://127.0.0.1:27017/app?maxPoolSize=16").await?;
//! # let _ = driver;
//! # Ok(())
//! # }
//! ```
//!
//! Reads compile to one aggregation pipeline each
//! (`objectql_planner::mongo`), with the protocol's semantics where MongoDB
//! differs (NULL-safe negation, NULL placement, literal text matching, empty
//! `$group`); what a pipeline cannot answer exactly runs locally. Writes
//! are `insert_many` / `find_one_and_update` / `update_many` /
//! `delete_many` with compiled filters. See the crate README for the type
//! mapping.
//!
//! Outside a transaction, an `insert_many` is all or nothing when the
//! client sends it as one `insert` command (up to 100,000 documents and
//! 48 MB): an ordered failure at document k is undone by deleting the
//! documents before it, and a call cut off (its future dropped) either
//! reached the server whole or not at all. A larger batch is sent as
//! several commands, and a call cut off between them leaves the commands
//! already run; insert such batches inside a transaction.

mod driver;
mod error;

pub use driver::MongoDriver;
/// The `mongodb` crate this driver is built on (for commands objectql does
/// not model: see [`MongoDriver::database`]).
pub use mongodb;
