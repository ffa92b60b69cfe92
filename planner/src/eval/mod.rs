//! The reference evaluator: every local operator with exactly the memory
//! driver's semantics (PROTOCOL.md, "Semantics every driver must reproduce").
//!
//! The in-memory driver runs whole queries with [`execute`]; other drivers
//! run the residual part of their plan (what their backend cannot do) with
//! the same functions, so results never depend on where an operator ran.
//! Everything here is pure and synchronous.
//!
//! Rows are dense: a `&[Value]` aligned with a [`Columns`] header. Filters and
//! sort keys are compiled to column indexes once ([`Predicate`],
//! [`SortKeys`]); rows are filtered by reference and only output rows are
//! cloned.
//!
//! ```
//! use objectql_planner::eval::{Columns, execute};
//! use objectql_query_ast::{Query, Value, field};
//!
//! let columns = Columns::new(vec!["id".into(), "n".into()]);
//! let rows = vec![
//!     vec![Value::Int(1), Value::Int(30)],
//!     vec![Value::Int(2), Value::Null],
//!     vec![Value::Int(3), Value::Int(10)],
//! ];
//! let q = Query::new("t").filter(field("n").ne(30)).asc("n").select(["id"]);
//! let out = execute(&columns, rows.iter().map(Vec::as_slice), &q)?;
//! // `$ne` keeps NULLs; NULL sorts first in ascending order.
//! assert_eq!(out.rows, vec![vec![Value::Int(2)], vec![Value::Int(3)]]);
//! # Ok::<(), objectql_query_ast::Error>(())
//! ```

mod aggregate;
mod compare;
mod filter;
mod hash;
mod join;
mod like;
mod nearest;
mod sort;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use std::collections::{HashMap, HashSet};

use objectql_query_ast::{Error, Filter, Query, Result, Value};

pub use aggregate::{
    aggregate, date_bucket, date_bucket_in, mean_of_decimals, mean_of_floats, mean_of_integers,
    overflow_error,
};
pub use compare::{compare, total_cmp, values_equal};
pub use filter::{Predicate, Truth};
pub use hash::{
    FxBuildHasher, FxHasher, RowKey, ValueKey, hash_row, hash_value, key_eq, row_key_eq,
};
pub use join::join;
pub use nearest::{nearest, vector_distance};
pub use sort::{CursorPosition, SortKeys, sort_cmp, sort_rows, top_k};

/// The column names of a relation, with a name → position index.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    /// A header with these names, in this order (if a name repeats, lookups
    /// find its first position).
    pub fn new(names: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i);
        }
        Self { names, index }
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no column.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl PartialEq for Columns {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl Eq for Columns {}

impl<S: Into<String>> FromIterator<S> for Columns {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        Self::new(iter.into_iter().map(Into::into).collect())
    }
}

/// Rows with their header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relation {
    /// The header.
    pub columns: Columns,
    /// The rows, each aligned with `columns`.
    pub rows: Vec<Vec<Value>>,
}

impl Relation {
    /// A relation.
    pub fn new(columns: Columns, rows: Vec<Vec<Value>>) -> Self {
        Self { columns, rows }
    }

    /// The value of column `name` in row `row`, if both exist.
    pub fn get(&self, row: usize, name: &str) -> Option<&Value> {
        let c = self.columns.index_of(name)?;
        self.rows.get(row)?.get(c)
    }
}

/// Runs a validated query over rows: where → aggregate (groupBy,
/// aggregations, having) or distinct → sort → cursor → offset → limit →
/// projection; for a `nearest` query: where → the `k` nearest rows
/// ([`nearest`]) → projection, the distance column kept.
///
/// For aggregate queries the output columns are the group outputs then the
/// aggregation aliases, and `fields`, `order_by` and `having` refer to them.
/// With `distinct`, rows are projected first and sort fields must be among
/// the projected ones.
pub fn execute<'a, I>(columns: &Columns, rows: I, query: &Query) -> Result<Relation>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    // Filtering is fused with the next operator: each row is visited once,
    // while it is in cache, and only borrowed.
    let predicate = query
        .filter
        .as_ref()
        .map(|f| Predicate::compile(f, columns))
        .transpose()?;
    let selected = rows
        .into_iter()
        .filter(|r| predicate.as_ref().is_none_or(|p| p.matches(r)));
    if let Some(n) = &query.nearest {
        let found = nearest(columns, selected, n)?;
        return match &query.fields {
            // The distance is kept whatever the projection.
            Some(fields) => {
                let mut names = fields.clone();
                names.push(n.distance_as.clone());
                project(&found.columns, found.rows, Some(&names))
            }
            None => Ok(found),
        };
    }
    if query.is_aggregate() {
        let out = aggregate(
            columns,
            selected,
            &query.group_by,
            &query.aggregations,
            query.having.as_ref(),
        )?;
        return finish(&out.columns, out.rows, query);
    }
    if query.distinct {
        let projected = distinct_rows(columns, selected, query.fields.as_deref())?;
        return finish(&projected.columns, projected.rows, query);
    }
    finish(columns, selected, query)
}

/// The rows where `filter` is TRUE (all rows when there is no filter), by reference.
pub fn filter_rows<'a, I>(
    columns: &Columns,
    rows: I,
    filter: Option<&Filter>,
) -> Result<Vec<&'a [Value]>>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    match filter {
        None => Ok(rows.into_iter().collect()),
        Some(f) => {
            let p = Predicate::compile(f, columns)?;
            Ok(rows.into_iter().filter(|r| p.matches(r)).collect())
        }
    }
}

/// The number of rows where `filter` is TRUE.
pub fn count<'a, I>(columns: &Columns, rows: I, filter: Option<&Filter>) -> Result<u64>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    let n = match filter {
        None => rows.into_iter().count(),
        Some(f) => {
            let p = Predicate::compile(f, columns)?;
            rows.into_iter().filter(|r| p.matches(r)).count()
        }
    };
    u64::try_from(n).map_err(|_| Error::internal("row count beyond u64"))
}

/// The distinct non-NULL values of `field` over the rows where `filter` is
/// TRUE, in ascending order.
pub fn distinct_values<'a, I>(
    columns: &Columns,
    rows: I,
    field: &str,
    filter: Option<&Filter>,
) -> Result<Vec<Value>>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    let col = resolve(columns, field)?;
    let p = filter.map(|f| Predicate::compile(f, columns)).transpose()?;
    let mut seen: HashSet<ValueKey<&'a Value>, FxBuildHasher> = HashSet::default();
    let mut out: Vec<&'a Value> = Vec::new();
    for row in rows {
        if p.as_ref().is_some_and(|p| !p.matches(row)) {
            continue;
        }
        if let Some(v) = row.get(col)
            && !v.is_null()
            && seen.insert(ValueKey(v))
        {
            out.push(v);
        }
    }
    out.sort_by(|a, b| total_cmp(a, b));
    Ok(out.into_iter().cloned().collect())
}

/// Projects `rows` onto `fields` (`None` = all columns, in order).
pub fn project<R: IntoRow>(
    columns: &Columns,
    rows: impl IntoIterator<Item = R>,
    fields: Option<&[String]>,
) -> Result<Relation> {
    let Some(fields) = fields else {
        return Ok(Relation {
            columns: columns.clone(),
            rows: rows.into_iter().map(IntoRow::into_row).collect(),
        });
    };
    let idx: Vec<usize> = fields
        .iter()
        .map(|f| resolve(columns, f))
        .collect::<Result<_>>()?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let r = r.as_ref();
            idx.iter()
                .map(|&i| r.get(i).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Ok(Relation {
        columns: Columns::new(fields.to_vec()),
        rows,
    })
}

/// A row that can be turned into an owned `Vec<Value>` (cloned when
/// borrowed, moved when owned).
pub trait IntoRow: AsRef<[Value]> {
    /// The owned row.
    fn into_row(self) -> Vec<Value>;
}

impl IntoRow for &[Value] {
    fn into_row(self) -> Vec<Value> {
        self.to_vec()
    }
}

impl IntoRow for Vec<Value> {
    fn into_row(self) -> Vec<Value> {
        self
    }
}

fn resolve(columns: &Columns, name: &str) -> Result<usize> {
    columns.index_of(name).ok_or_else(|| {
        Error::internal(format!(
            "unknown column `{name}` (columns: {})",
            columns.names().join(", ")
        ))
    })
}

/// Projects rows onto `fields` and keeps the first of each set of equal rows
/// (equality by [`key_eq`]: NULLs equal, numbers by value, JSON structurally).
fn distinct_rows<'a>(
    columns: &Columns,
    rows: impl IntoIterator<Item = &'a [Value]>,
    fields: Option<&[String]>,
) -> Result<Relation> {
    let idx: Vec<usize> = match fields {
        Some(fields) => fields
            .iter()
            .map(|f| resolve(columns, f))
            .collect::<Result<_>>()?,
        None => (0..columns.len()).collect(),
    };
    let cell = |r: &[Value], i: usize| -> Value { r.get(i).cloned().unwrap_or(Value::Null) };
    let mut buckets: HashMap<u64, Vec<usize>, FxBuildHasher> = HashMap::default();
    let mut out: Vec<Vec<Value>> = Vec::new();
    for row in rows {
        let h = hash_row(idx.iter().map(|&i| row.get(i).unwrap_or(&Value::Null)));
        let bucket = buckets.entry(h).or_default();
        let duplicate = bucket.iter().any(|&k| {
            out.get(k).is_some_and(|kept| {
                kept.iter()
                    .zip(&idx)
                    .all(|(a, &i)| key_eq(a, row.get(i).unwrap_or(&Value::Null)))
            })
        });
        if !duplicate {
            bucket.push(out.len());
            out.push(idx.iter().map(|&i| cell(row, i)).collect());
        }
    }
    let names = idx
        .iter()
        .map(|&i| columns.names().get(i).cloned().unwrap_or_default())
        .collect();
    Ok(Relation {
        columns: Columns::new(names),
        rows: out,
    })
}

/// sort → cursor → offset → limit → projection. The cursor keeps rows
/// strictly after its position, which commutes with sorting, so it is applied
/// first (fewer rows to sort).
fn finish<R: IntoRow>(
    columns: &Columns,
    rows: impl IntoIterator<Item = R>,
    query: &Query,
) -> Result<Relation> {
    let keys = SortKeys::compile(&query.order_by, columns).map_err(|e| match e {
        Error::Internal { .. } if query.distinct => {
            Error::plan("with `distinct`, every sort field must be one of the selected fields")
        }
        e => e,
    })?;
    let position = query
        .cursor
        .as_ref()
        .map(|c| CursorPosition::compile(c, &query.order_by, columns))
        .transpose()?;
    let rows = rows
        .into_iter()
        .filter(|r| position.as_ref().is_none_or(|p| p.is_after(r.as_ref())));
    let offset = query.offset.map_or(0, to_usize);
    let keep = query.limit.map(|l| offset.saturating_add(to_usize(l)));
    let mut rows: Vec<R> = match keep {
        // Unsorted: stop reading at the last row needed.
        Some(k) if keys.is_empty() => rows.take(k).collect(),
        // A short page: one pass with a bounded heap.
        Some(k) if k <= TOP_K_HEAP_MAX => top_k(rows, &keys, k),
        _ => {
            let mut all: Vec<R> = rows.collect();
            sort_rows(&mut all, &keys, keep);
            all
        }
    };
    if let Some(end) = keep {
        rows.truncate(end);
    }
    let start = offset.min(rows.len());
    project(
        columns,
        rows.into_iter().skip(start),
        query.fields.as_deref(),
    )
}

/// Pages up to this many rows (offset + limit) are selected with a bounded
/// heap in one pass; longer ones by partial selection over all rows.
const TOP_K_HEAP_MAX: usize = 10_000;

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
