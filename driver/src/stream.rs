//! Row and Arrow batch streams.

use std::pin::Pin;

use arrow_array::RecordBatch;
use futures::Stream;
use objectql_query_ast::{Record, Result};

/// A stream of rows.
pub type RowStream = Pin<Box<dyn Stream<Item = Result<Record>> + Send>>;

/// A stream of Arrow record batches.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// A stream over rows already in memory.
pub fn rows_to_stream(rows: Vec<Record>) -> RowStream {
    Box::pin(futures::stream::iter(rows.into_iter().map(Ok)))
}
