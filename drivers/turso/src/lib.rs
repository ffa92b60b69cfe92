//! The objectql Turso / libSQL driver.
//!
//! One driver for every way of reaching a libSQL database, chosen from the
//! URL ([`TursoOptions::from_url`]): a local file, `:memory:`, a remote
//! server (`libsql://`, `https://`, `http://` with an auth token), or an
//! embedded replica (a local file synced from a remote primary).
//!
//! It is the SQLite driver's implementation run over a `libsql::Database`
//! built for the mode (see [`objectql_driver_sqlite::SqliteDriver::from_database`]):
//! one SQL compiler — the SQLite dialect, with libSQL's native vectors
//! switched on through the dialect's `vectors` flag — for all modes, so a
//! filter means the same locally and remotely.
//!
//! [`TenantRouter`] maps tenant ids to databases through a URL template,
//! with an LRU of open databases, so one engine serves many tenants.
//!
//! See `README.md` in this crate for the URL format, the modes and the
//! vector type mapping.

mod driver;
mod options;
mod tenants;

pub use driver::{SyncReport, TursoDriver};
pub use options::{Mode, TursoOptions};
pub use tenants::{TenantOptions, TenantRouter};
