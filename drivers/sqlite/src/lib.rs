//! The objectql SQLite driver (`sqlite://path.db`, `sqlite::memory:`).
//!
//! It runs on the SQLite engine the `libsql` crate embeds: one SQLite per
//! process (sqlx's `sqlite` feature bundles a second copy of SQLite's C
//! symbols and must never be linked beside it). Queries are compiled by
//! `objectql_planner::sql` with the SQLite dialect; what SQLite cannot do
//! with the protocol's exact meaning is classified for the planner, which
//! runs it locally.
//!
//! See `README.md` in this crate for the URL format, the type mapping and
//! the capabilities.

mod connection;
mod driver;
mod error;
mod types;

pub use connection::{LibsqlSetup, SqliteOptions};
pub use driver::SqliteDriver;
/// Classifies a libsql error (local engine codes, a server's Hrana answers,
/// replication failures) into an objectql driver error; `doing` says what
/// was being done, for the message.
pub use error::from_libsql as libsql_error;
/// The `libsql` crate this driver is built on (for [`SqliteDriver::from_database`]).
pub use libsql;
