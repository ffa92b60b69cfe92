//! Integration tests of the `objectql` facade (one target; modules inside).
//!
//! - `across`: queries whose joins cross datasources (SQLite and memory)
//!   against the memory reference holding every object in one datasource:
//!   1,000 generated joins, every read API, the join-key limit, and a
//!   transaction on one of the datasources.
//! - `lowering` (feature `federation`): every rule that lowers a filter
//!   or sort onto DataFusion, lowered vs the reference evaluator vs the
//!   memory reference, over hostile values.
//! - `planning`: `count` and `distinct` through the plan-time decision
//!   (`Driver::accepts`) when SQLite refuses a filter past its bind limit.
//! - `sql` (feature `federation`): writes through SQL, and their refusal
//!   inside a transaction; with `ballista`, an engine's SQL on Ballista
//!   standalone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    missing_docs
)]

mod objectql {
    mod across;
    #[cfg(all(feature = "federation", feature = "sqlite", feature = "memory"))]
    mod lowering;
    #[cfg(all(feature = "sqlite", feature = "memory"))]
    mod planning;
    #[cfg(feature = "federation")]
    mod sql;
}
