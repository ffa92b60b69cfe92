//! The objectql MySQL and MariaDB driver, on [sqlx](https://docs.rs/sqlx).
//!
//! ```no_run
//! # async fn demo() -> objectql_query_ast::Result<()> {
//! use objectql_driver_mysql::MySqlDriver;
//!
//! let driver = MySqlDriver::connect(
//!     "mysql://root@127.0.0.1:3306/test?max_connections=8&statement_timeout_ms=5000",
//! )
//! .await?;
//! println!("connected to {}", driver.server_version());
//! # Ok(())
//! # }
//! ```
//!
//! Queries are compiled by `objectql_planner::sql` with the MySQL dialect
//! (MariaDB or MySQL, and its version, read from the server when the
//! driver connects); see the crate README for the type mapping, the session
//! settings and what is pushed down.

mod driver;
mod error;
mod introspect;
mod options;
mod types;

pub use driver::{MySqlDriver, dialect_for_version};
pub use objectql_planner::sql::MySqlDialect;
pub use options::MySqlOptions;
/// The sqlx this driver is built on, for statements objectql does not model
/// (see [`MySqlDriver::pool`]).
pub use sqlx;
pub use sqlx::mysql::MySqlConnectOptions;
