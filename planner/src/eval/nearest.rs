//! Exact nearest-neighbour search: the `k` rows with the smallest distance
//! to a query vector, by brute force (the reference for every driver).
//!
//! Components are float32 values (validation rounds them); distances are
//! computed in float64, so they are the exact distances of the float32
//! vectors up to float64 rounding.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use objectql_query_ast::{Error, Nearest, Result, Value, VectorMetric};

use super::{Columns, Relation, resolve, total_cmp};

/// The distance between a stored vector and the query vector; `None` when it
/// is undefined (the cosine of a zero vector).
pub fn vector_distance(
    metric: VectorMetric,
    stored: &[Value],
    query: &[f64],
) -> Result<Option<f64>> {
    if stored.len() != query.len() {
        return Err(Error::internal(format!(
            "a stored vector has {} components, the query vector {} (vectors reach eval validated)",
            stored.len(),
            query.len()
        )));
    }
    // One pass, no allocation: this runs for every row of a brute-force scan.
    let mut sums = Sums::default();
    for (a, &b) in stored.iter().zip(query) {
        sums.add(component(a)?, b);
    }
    match metric {
        VectorMetric::L2 => Ok(Some(sums.squared_diff.sqrt())),
        VectorMetric::Cosine => Ok(sums.cosine()),
        other => Err(Error::internal(format!(
            "metric `{}` has no reference implementation",
            other.name()
        ))),
    }
}

/// The sums both metrics are computed from.
#[derive(Default)]
struct Sums {
    dot: f64,
    norm_a: f64,
    norm_b: f64,
    squared_diff: f64,
}

impl Sums {
    fn add(&mut self, a: f64, b: f64) {
        self.dot += a * b;
        self.norm_a += a * a;
        self.norm_b += b * b;
        self.squared_diff += (a - b) * (a - b);
    }

    /// 1 − a·b / √(‖a‖²‖b‖²), the form libSQL computes; `None` for a zero
    /// vector (squares of float32 values never underflow float64, so a
    /// zero norm means a zero vector).
    fn cosine(&self) -> Option<f64> {
        (self.norm_a != 0.0 && self.norm_b != 0.0)
            .then(|| 1.0 - self.dot / (self.norm_a * self.norm_b).sqrt())
    }
}

fn component(v: &Value) -> Result<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => objectql_query_ast::int_to_f64(*i)
            .ok_or_else(|| Error::internal(format!("vector component {i} is not a float"))),
        other => Err(Error::internal(format!(
            "a vector component is a {} (vectors reach eval validated)",
            other.type_name()
        ))),
    }
}

/// A row that qualifies, with its distance.
struct Candidate<'a> {
    distance: f64,
    row: &'a [Value],
    /// The tie-breaker column.
    key: Option<usize>,
    /// Input position: the last tie-breaker.
    seq: usize,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let cell = |c: &Self| c.key.and_then(|k| c.row.get(k)).unwrap_or(&Value::Null);
        self.distance
            .total_cmp(&other.distance)
            .then_with(|| total_cmp(cell(self), cell(other)))
            .then_with(|| self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

/// The `n.k` rows of `rows` nearest to `n.vector` by column `n.field`, by
/// ascending distance then `n.tie_breaker` (then input order), each with its
/// distance appended as column `n.distance_as`. Rows whose vector is NULL,
/// or whose distance is undefined, are left out.
pub fn nearest<'a, I>(columns: &Columns, rows: I, n: &Nearest) -> Result<Relation>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    let col = resolve(columns, &n.field)?;
    let key = n
        .tie_breaker
        .as_deref()
        .map(|k| resolve(columns, k))
        .transpose()?;
    let k = usize::try_from(n.k).unwrap_or(usize::MAX);
    let metric = n.effective_metric();
    let mut heap: BinaryHeap<Candidate<'a>> = BinaryHeap::new();
    for (seq, row) in rows.into_iter().enumerate() {
        let stored = match row.get(col) {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => continue,
            Some(other) => {
                return Err(Error::internal(format!(
                    "column `{}` holds a {} where a vector belongs",
                    n.field,
                    other.type_name()
                )));
            }
        };
        let Some(distance) = vector_distance(metric, stored, &n.vector)? else {
            continue;
        };
        heap.push(Candidate {
            distance,
            row,
            key,
            seq,
        });
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut names = columns.names().to_vec();
    names.push(n.distance_as.clone());
    let rows = heap
        .into_sorted_vec()
        .into_iter()
        .map(|c| {
            let mut out = Vec::with_capacity(c.row.len() + 1);
            out.extend_from_slice(c.row);
            out.push(Value::Float(c.distance));
            out
        })
        .collect();
    Ok(Relation::new(Columns::new(names), rows))
}
