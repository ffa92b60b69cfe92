//! SQL compiler tests: per-dialect snapshots and a round-trip property.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::format_push_string,
    clippy::collapsible_if,
    clippy::cast_possible_wrap,
    missing_docs
)]

#[path = "sql/common.rs"]
#[macro_use]
mod common;
#[path = "sql/libsql.rs"]
mod libsql;
#[path = "sql/mysql.rs"]
mod mysql;
#[path = "sql/postgres.rs"]
mod postgres;
#[path = "sql/properties.rs"]
mod properties;
#[path = "sql/sqlite.rs"]
mod sqlite;
