//! The objectql PostgreSQL driver, on [sqlx](https://docs.rs/sqlx).
//!
//! ```no_run
//! # async fn demo() -> objectql_query_ast::Result<()> {
//! use objectql_driver_postgres::PostgresDriver;
//!
//! let driver = PostgresDriver::connect(
//!     "postgres://postgres@127.0.0.1:5432/test?max_connections=8&statement_timeout_ms=5000",
//! )
//! .await?;
//! # let _ = driver;
//! # Ok(())
//! # }
//! ```
//!
//! Queries are compiled by `objectql_planner::sql` with the PostgreSQL
//! dialect; see the crate README for the type mapping and what is pushed
//! down.

mod driver;
mod error;
mod introspect;
mod options;
mod types;

pub use driver::PostgresDriver;
pub use options::PostgresOptions;
/// The sqlx this driver is built on, for statements objectql does not model
/// (see [`PostgresDriver::pool`]).
pub use sqlx;
pub use sqlx::postgres::PgConnectOptions;
