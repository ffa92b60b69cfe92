//! objectql planner: the capability-aware split of a query into the part a
//! driver pushes down and the residual part run locally, and the reference
//! evaluator ([`eval`]) that gives every local operator the memory driver's
//! semantics.

pub mod eval;
pub mod mongo;
mod plan;
pub mod sql;

pub use plan::{Plan, classify_filter, plan, plan_without_shape, split_filter};
