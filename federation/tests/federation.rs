//! Federation tests (one target; modules inside).
//!
//! - `pushdown`: every translation rule run pushed and not pushed on the
//!   same data, per driver; the answers must be equal.
//! - `joins`: a join across datasources against the same data in one
//!   datasource, with pushdown on and off.
//! - `servers`: the rules and the spread joins on PostgreSQL, MySQL/MariaDB
//!   and MongoDB (the servers `scripts/test` provisions).
//! - `differential`: 1,000 generated queries, pushed whole to one SQLite
//!   datasource, spread over SQLite and memory, and not pushed at all,
//!   must give DataFusion's own answer (with `ballista`, 80 more on
//!   Ballista standalone).
//! - `spread`: the conformance suite's multi-object cases spread over
//!   memory+sqlite (both ways), sqlite+postgres, postgres+mysql and
//!   mysql+mongo, their joins on DataFusion (objectql's `federation`).
//! - `writes`: `INSERT`, `UPDATE` and `DELETE` through SQL.
//! - `ballista` (feature `ballista`): the spread queries on Ballista
//!   standalone (SQLite + PostgreSQL) return the in-process rows.
//! - `errors`: bad SQL, unknown names, refused statements and a driver
//!   failing mid-stream are typed errors, never panics or short results.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

mod federation {
    #[cfg(feature = "ballista")]
    mod ballista;
    pub mod common;
    mod differential;
    mod errors;
    mod joins;
    mod pushdown;
    mod servers;
    mod spread;
    mod writes;
}
