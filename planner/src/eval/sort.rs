//! Sorting (NULL placement, stable ties, partial selection under a limit)
//! and keyset cursors.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use objectql_query_ast::{Cursor, Error, Result, SortItem, SortOrder, Value};

use super::Columns;
use super::compare::total_cmp;

/// Compares two values under one sort item: a total order where NULL is the
/// smallest value (first in `asc`, last in `desc`) unless `item.nulls` says
/// otherwise.
pub fn sort_cmp(a: &Value, b: &Value, item: &SortItem) -> Ordering {
    cmp_directed(a, b, item.order == SortOrder::Desc, item.nulls_first())
}

#[inline]
fn cmp_directed(a: &Value, b: &Value, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (false, false) => {
            let o = total_cmp(a, b);
            if desc { o.reverse() } else { o }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct SortKey {
    col: usize,
    desc: bool,
    nulls_first: bool,
}

/// Sort items compiled against [`Columns`] (field names resolved once).
#[derive(Debug, Clone, Default)]
pub struct SortKeys {
    keys: Vec<SortKey>,
}

const NULL: Value = Value::Null;

impl SortKeys {
    /// Resolves the sort fields; an unknown field is an [`Error::Internal`].
    pub fn compile(order_by: &[SortItem], columns: &Columns) -> Result<Self> {
        let keys = order_by
            .iter()
            .map(|item| {
                let col = columns.index_of(&item.field).ok_or_else(|| {
                    Error::internal(format!(
                        "sort refers to unknown column `{}` (columns: {})",
                        item.field,
                        columns.names().join(", ")
                    ))
                })?;
                Ok(SortKey {
                    col,
                    desc: item.order == SortOrder::Desc,
                    nulls_first: item.nulls_first(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { keys })
    }

    /// Whether there is no sort key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Compares two rows lexicographically over the sort keys.
    #[inline]
    pub fn compare_rows(&self, a: &[Value], b: &[Value]) -> Ordering {
        for key in &self.keys {
            let x = a.get(key.col).unwrap_or(&NULL);
            let y = b.get(key.col).unwrap_or(&NULL);
            match cmp_directed(x, y, key.desc, key.nulls_first) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        Ordering::Equal
    }

    /// Compares a row with a position given as one value per sort key.
    fn compare_to_position(&self, row: &[Value], position: &[Value]) -> Ordering {
        for (k, p) in self.keys.iter().zip(position) {
            let x = row.get(k.col).unwrap_or(&NULL);
            match cmp_directed(x, p, k.desc, k.nulls_first) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        Ordering::Equal
    }
}

/// Sorts `rows` by `keys`. Ties keep their input order (the result is the one
/// a stable sort gives). With `keep = Some(n)` only the first `n` rows of the
/// sorted order are kept, found by partial selection rather than a full sort.
pub fn sort_rows<R: AsRef<[Value]>>(rows: &mut Vec<R>, keys: &SortKeys, keep: Option<usize>) {
    match keep {
        Some(n) if n < rows.len() => {
            if n == 0 {
                rows.clear();
                return;
            }
            // Break ties by input position so the unstable selection and sort
            // give exactly the stable order.
            let mut indexed: Vec<(usize, R)> = rows.drain(..).enumerate().collect();
            let cmp = |a: &(usize, R), b: &(usize, R)| {
                keys.compare_rows(a.1.as_ref(), b.1.as_ref())
                    .then(a.0.cmp(&b.0))
            };
            indexed.select_nth_unstable_by(n - 1, cmp);
            indexed.truncate(n);
            indexed.sort_unstable_by(cmp);
            rows.extend(indexed.into_iter().map(|(_, r)| r));
        }
        _ => {
            if !keys.is_empty() {
                rows.sort_by(|a, b| keys.compare_rows(a.as_ref(), b.as_ref()));
            }
        }
    }
}

/// The first `k` rows of `rows` in the order of `keys` (ties in input
/// order), in one pass with a bounded heap: O(n log k) comparisons, each row
/// looked at once.
pub fn top_k<R: AsRef<[Value]>>(
    rows: impl IntoIterator<Item = R>,
    keys: &SortKeys,
    k: usize,
) -> Vec<R> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<HeapEntry<'_, R>> = BinaryHeap::with_capacity(k);
    for (idx, row) in rows.into_iter().enumerate() {
        if heap.len() < k {
            heap.push(HeapEntry { keys, idx, row });
        } else if let Some(mut worst) = heap.peek_mut() {
            // A later row with equal keys comes after every kept one.
            if keys.compare_rows(row.as_ref(), worst.row.as_ref()) == Ordering::Less {
                *worst = HeapEntry { keys, idx, row };
            }
        }
    }
    heap.into_sorted_vec().into_iter().map(|e| e.row).collect()
}

/// A row in [`top_k`]'s max-heap, ordered by the sort keys then input position.
struct HeapEntry<'k, R> {
    keys: &'k SortKeys,
    idx: usize,
    row: R,
}

impl<R: AsRef<[Value]>> Ord for HeapEntry<'_, R> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.keys
            .compare_rows(self.row.as_ref(), other.row.as_ref())
            .then(self.idx.cmp(&other.idx))
    }
}

impl<R: AsRef<[Value]>> PartialOrd for HeapEntry<'_, R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<R: AsRef<[Value]>> PartialEq for HeapEntry<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<R: AsRef<[Value]>> Eq for HeapEntry<'_, R> {}

/// A keyset position compiled against the sort keys: selects rows that come
/// strictly after it in the sort order.
#[derive(Debug, Clone)]
pub struct CursorPosition {
    keys: SortKeys,
    position: Vec<Value>,
}

impl CursorPosition {
    /// Builds the position from `cursor.after`, which must give a value for
    /// every sort field (a [`Error::Plan`] otherwise).
    pub fn compile(cursor: &Cursor, order_by: &[SortItem], columns: &Columns) -> Result<Self> {
        let keys = SortKeys::compile(order_by, columns)?;
        let position = order_by
            .iter()
            .map(|item| {
                cursor.after.get(&item.field).cloned().ok_or_else(|| {
                    Error::plan(format!(
                        "cursor lacks a value for sort key `{}`",
                        item.field
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { keys, position })
    }

    /// Whether `row` comes strictly after the position.
    pub fn is_after(&self, row: &[Value]) -> bool {
        self.keys.compare_to_position(row, &self.position) == Ordering::Greater
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use objectql_query_ast::NullsOrder;

    fn cols() -> Columns {
        Columns::new(vec!["id".into(), "v".into()])
    }

    fn rows() -> Vec<Vec<Value>> {
        vec![
            vec![Value::Int(1), Value::Int(3)],
            vec![Value::Int(2), Value::Null],
            vec![Value::Int(3), Value::Int(1)],
            vec![Value::Int(4), Value::Int(3)],
            vec![Value::Int(5), Value::Null],
            vec![Value::Int(6), Value::Int(2)],
        ]
    }

    fn ids(rows: &[Vec<Value>]) -> Vec<i64> {
        rows.iter().map(|r| r[0].as_i64().unwrap()).collect()
    }

    fn sorted(items: &[SortItem], keep: Option<usize>) -> Vec<i64> {
        let keys = SortKeys::compile(items, &cols()).unwrap();
        let mut r = rows();
        sort_rows(&mut r, &keys, keep);
        ids(&r)
    }

    fn with_nulls(mut s: SortItem, n: NullsOrder) -> SortItem {
        s.nulls = Some(n);
        s
    }

    #[test]
    fn nulls_first_in_asc_last_in_desc_by_default() {
        assert_eq!(sorted(&[SortItem::asc("v")], None), vec![2, 5, 3, 6, 1, 4]);
        assert_eq!(sorted(&[SortItem::desc("v")], None), vec![1, 4, 6, 3, 2, 5]);
    }

    #[test]
    fn explicit_null_placement() {
        let asc_last = with_nulls(SortItem::asc("v"), NullsOrder::Last);
        let desc_first = with_nulls(SortItem::desc("v"), NullsOrder::First);
        assert_eq!(sorted(&[asc_last], None), vec![3, 6, 1, 4, 2, 5]);
        assert_eq!(sorted(&[desc_first], None), vec![2, 5, 1, 4, 6, 3]);
    }

    #[test]
    fn ties_keep_input_order() {
        assert_eq!(sorted(&[SortItem::desc("v")], None), vec![1, 4, 6, 3, 2, 5]);
    }

    #[test]
    fn partial_selection_equals_the_stable_sort_prefix() {
        let items = [SortItem::desc("v")];
        let full = sorted(&items, None);
        for n in 0..=7 {
            let part = sorted(&items, Some(n));
            assert_eq!(part, full[..n.min(full.len())].to_vec(), "keep {n}");
        }
    }

    #[test]
    fn top_k_equals_the_stable_sort_prefix() {
        for items in [vec![SortItem::desc("v")], vec![SortItem::asc("v")]] {
            let keys = SortKeys::compile(&items, &cols()).unwrap();
            let full = sorted(&items, None);
            for n in 0..=7 {
                let r = rows();
                let top = top_k(r.iter().map(Vec::as_slice), &keys, n);
                let got: Vec<i64> = top.iter().map(|r| r[0].as_i64().unwrap()).collect();
                assert_eq!(
                    got,
                    full[..n.min(full.len())].to_vec(),
                    "{items:?} keep {n}"
                );
            }
        }
    }

    #[test]
    fn secondary_keys_break_ties() {
        assert_eq!(
            sorted(&[SortItem::asc("v"), SortItem::desc("id")], None),
            vec![5, 2, 3, 6, 4, 1]
        );
    }

    #[test]
    fn sort_cmp_single_values() {
        let asc = SortItem::asc("v");
        let desc = SortItem::desc("v");
        assert_eq!(sort_cmp(&Value::Null, &Value::Int(1), &asc), Ordering::Less);
        assert_eq!(
            sort_cmp(&Value::Null, &Value::Int(1), &desc),
            Ordering::Greater
        );
        assert_eq!(
            sort_cmp(&Value::Int(2), &Value::Int(1), &desc),
            Ordering::Less
        );
        assert_eq!(sort_cmp(&Value::Null, &Value::Null, &desc), Ordering::Equal);
    }

    #[test]
    fn unknown_sort_column_is_internal_error() {
        let e = SortKeys::compile(&[SortItem::asc("nope")], &cols()).unwrap_err();
        assert_eq!(e.category(), "internal");
    }

    #[test]
    fn cursor_walk_visits_every_row_once() {
        for items in [
            vec![SortItem::asc("v"), SortItem::asc("id")],
            vec![SortItem::desc("v"), SortItem::asc("id")],
            vec![
                with_nulls(SortItem::asc("v"), NullsOrder::Last),
                SortItem::desc("id"),
            ],
        ] {
            let keys = SortKeys::compile(&items, &cols()).unwrap();
            let mut seen = Vec::new();
            let mut after: Option<Vec<Value>> = None;
            loop {
                let mut page: Vec<Vec<Value>> = rows();
                if let Some(last) = &after {
                    let mut map = IndexMap::new();
                    map.insert("id".to_owned(), last[0].clone());
                    map.insert("v".to_owned(), last[1].clone());
                    let c =
                        CursorPosition::compile(&Cursor { after: map }, &items, &cols()).unwrap();
                    page.retain(|r| c.is_after(r));
                }
                sort_rows(&mut page, &keys, Some(2));
                if page.is_empty() {
                    break;
                }
                seen.extend(ids(&page));
                after = page.last().cloned();
            }
            let mut all = sorted(&items, None);
            assert_eq!(seen, all, "{items:?}");
            all.sort_unstable();
            assert_eq!(all, vec![1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn cursor_without_a_sort_value_is_a_plan_error() {
        let mut map = IndexMap::new();
        map.insert("id".to_owned(), Value::Int(1));
        let e = CursorPosition::compile(&Cursor { after: map }, &[SortItem::asc("v")], &cols())
            .unwrap_err();
        assert_eq!(e.category(), "plan");
    }
}
