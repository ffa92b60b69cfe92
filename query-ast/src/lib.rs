//! The backend-neutral QueryAST of objectql.
//!
//! A [`Query`] says *what* data a service wants — filters, sorting, paging,
//! projections, aggregations, group-by/having, joins, expand, full-text
//! search, nearest-neighbour search over vectors ([`Nearest`]) —
//! independently of where it lives. It has a JSON wire format
//! (compatible with the ObjectStack data protocol; see `PROTOCOL.md`) and a
//! builder API, and is validated against [`ObjectSchema`]s before any driver
//! sees it. This crate does no I/O and is runtime-agnostic.
//!
//! ```
//! use objectql_query_ast::{Catalog, Field, ObjectSchema, Query, ResolveContext, validate_query};
//!
//! let mut catalog = Catalog::new();
//! catalog.insert(ObjectSchema::new("task").field(Field::new("due", "datetime")))?;
//!
//! let q = Query::parse(r#"{"object": "task", "where": {"due": {"$lte": "{today}"}}, "limit": 5}"#)?;
//! let typed = validate_query(&q, &catalog, &ResolveContext::now())?;
//! // Paged queries get the primary key as a tie-breaker.
//! assert_eq!(typed.order_by.last().map(|s| s.field.as_str()), Some("id"));
//!
//! // Mistakes name the JSON path of the problem.
//! let bad = Query::parse(r#"{"object": "task", "where": {"$or": [{"due": {"$gt": true}}]}}"#)?;
//! let err = validate_query(&bad, &catalog, &ResolveContext::now()).unwrap_err();
//! assert_eq!(err.path(), Some("where.$or[0].due.$gt"));
//! # Ok::<(), objectql_query_ast::Error>(())
//! ```

mod builder;
mod error;
mod filter;
mod nearest;
mod query;
mod schema;
pub mod tokens;
mod validate;
mod value;

pub use builder::{FieldRef, field};
pub use error::{BoxError, DriverErrorKind, Error, Path, Result};
pub use filter::{Condition, Filter, MAX_FILTER_CONDITIONS, MAX_FILTER_DEPTH, Op, Operand};
pub use nearest::{DEFAULT_DISTANCE_AS, MAX_NEAREST_K, Nearest, VectorMetric};
pub use query::{
    AggFunction, Aggregation, Cursor, DateGranularity, GroupBy, Join, JoinType, MAX_EXPAND_DEPTH,
    NullsOrder, Query, SearchSpec, SortItem, SortOrder,
};
pub use schema::{
    Catalog, DeleteBehavior, Field, Index, IndexKind, ObjectSchema, StorageType, check_field_name,
    check_name,
};
pub use tokens::ResolveContext;
pub use validate::{
    Record, WriteMode, coerce, first_instant, int_to_f64, last_instant, parse_datetime,
    validate_for, validate_query, validate_record,
};
pub use value::{
    MAX_JSON_DEPTH, MAX_SAFE_JSON_INTEGER, Value, canonical_json_numbers, format_date,
    format_datetime, format_time, json_depth, json_numbers_canonical, restore_json_floats,
    value_json_depth,
};
