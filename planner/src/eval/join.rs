//! Joins: hash join on equi-join conditions, nested loops otherwise.

use std::collections::HashMap;

use objectql_query_ast::{Condition, Error, Filter, JoinType, Op, Operand, Result, Value};

use super::compare::values_equal;
use super::filter::Predicate;
use super::hash::{FxBuildHasher, hash_row};
use super::{Columns, Relation};

/// Joins `left` with `right` on `on`.
///
/// Output columns are `left`'s columns then `alias.<column>` for every column
/// of `right`; `on` names left columns plain and right ones as `alias.col`.
/// Unmatched rows of the outer side(s) are padded with NULLs. Output order:
/// left rows in order, each followed by its matches in right order; then, for
/// `right`/`full` joins, the unmatched right rows in right order.
///
/// Conjuncts of the form `{l: {$eq: {$field: r}}}` with one side on each
/// relation make a hash join (NULL keys never match); the rest of `on` is
/// checked on each candidate pair.
pub fn join(
    left: Relation,
    right: &Relation,
    alias: &str,
    join_type: JoinType,
    on: &Filter,
) -> Result<Relation> {
    let lw = left.columns.len();
    let rw = right.columns.len();
    let mut names: Vec<String> = left.columns.names().to_vec();
    for n in right.columns.names() {
        let name = format!("{alias}.{n}");
        if left.columns.index_of(&name).is_some() {
            return Err(Error::plan(format!(
                "join output would have two columns named `{name}`"
            )));
        }
        names.push(name);
    }
    let columns = Columns::new(names);

    let mut conjuncts = Vec::new();
    flatten_and(on, &mut conjuncts);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut residual: Vec<Filter> = Vec::new();
    for c in conjuncts {
        match equi_pair(c, &columns, lw) {
            Some(pair) => pairs.push(pair),
            None => residual.push(c.clone()),
        }
    }
    let residual = match residual.len() {
        0 => None,
        1 => residual
            .pop()
            .map(|f| Predicate::compile(&f, &columns))
            .transpose()?,
        _ => Some(Predicate::compile(&Filter::And(residual), &columns)?),
    };

    // Hash table over the right rows' key values (rows with a NULL key never match).
    let table: Option<HashMap<u64, Vec<usize>, FxBuildHasher>> = (!pairs.is_empty()).then(|| {
        let mut t: HashMap<u64, Vec<usize>, FxBuildHasher> = HashMap::default();
        for (i, r) in right.rows.iter().enumerate() {
            let key: Vec<&Value> = pairs
                .iter()
                .map(|(_, rc)| r.get(*rc).unwrap_or(&NULL))
                .collect();
            if key.iter().any(|v| v.is_null()) {
                continue;
            }
            t.entry(hash_row(key)).or_default().push(i);
        }
        t
    });

    let all_right: Vec<usize> = if table.is_none() {
        (0..right.rows.len()).collect()
    } else {
        Vec::new()
    };
    let mut right_matched = vec![false; right.rows.len()];
    let mut out: Vec<Vec<Value>> = Vec::new();
    let keep_left = matches!(join_type, JoinType::Left | JoinType::Full);
    let keep_right = matches!(join_type, JoinType::Right | JoinType::Full);

    for l in left.rows {
        let candidates: &[usize] = match &table {
            Some(t) => {
                let key: Vec<&Value> = pairs
                    .iter()
                    .map(|(lc, _)| l.get(*lc).unwrap_or(&NULL))
                    .collect();
                if key.iter().any(|v| v.is_null()) {
                    &[]
                } else {
                    t.get(&hash_row(key)).map_or(&[], Vec::as_slice)
                }
            }
            None => &all_right,
        };
        let mut matched = false;
        for &ri in candidates {
            let Some(r) = right.rows.get(ri) else {
                continue;
            };
            let keys_equal = pairs.iter().all(|(lc, rc)| {
                values_equal(l.get(*lc).unwrap_or(&NULL), r.get(*rc).unwrap_or(&NULL))
            });
            if !keys_equal {
                continue;
            }
            let row = combine(Some(&l), lw, Some(r), rw);
            if residual.as_ref().is_none_or(|p| p.matches(&row)) {
                matched = true;
                if let Some(m) = right_matched.get_mut(ri) {
                    *m = true;
                }
                out.push(row);
            }
        }
        if !matched && keep_left {
            out.push(combine(Some(&l), lw, None, rw));
        }
    }
    if keep_right {
        for (r, matched) in right.rows.iter().zip(&right_matched) {
            if !matched {
                out.push(combine(None, lw, Some(r), rw));
            }
        }
    }
    Ok(Relation { columns, rows: out })
}

const NULL: Value = Value::Null;

/// A left part and a right part, each padded (or cut) to its width; a missing
/// side is all NULLs.
fn combine(l: Option<&[Value]>, lw: usize, r: Option<&[Value]>, rw: usize) -> Vec<Value> {
    let mut row = Vec::with_capacity(lw + rw);
    for (side, width) in [(l, lw), (r, rw)] {
        let cells = side.unwrap_or(&[]);
        row.extend(cells.iter().take(width).cloned());
        row.extend(std::iter::repeat_n(
            Value::Null,
            width.saturating_sub(cells.len()),
        ));
    }
    row
}

fn flatten_and<'f>(f: &'f Filter, out: &mut Vec<&'f Filter>) {
    match f {
        Filter::And(children) => children.iter().for_each(|c| flatten_and(c, out)),
        other => out.push(other),
    }
}

/// `(left column, right column index within right)` when `f` is an equality
/// between a left column and a right column.
fn equi_pair(f: &Filter, columns: &Columns, lw: usize) -> Option<(usize, usize)> {
    let Filter::Condition(Condition {
        field,
        op: Op::Eq(Operand::Field(other)),
    }) = f
    else {
        return None;
    };
    let a = columns.index_of(field)?;
    let b = columns.index_of(other)?;
    match (a < lw, b < lw) {
        (true, false) => Some((a, b - lw)),
        (false, true) => Some((b, a - lw)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use objectql_query_ast::field;

    fn rel(names: &[&str], rows: Vec<Vec<Value>>) -> Relation {
        Relation {
            columns: Columns::new(names.iter().map(|s| (*s).to_owned()).collect()),
            rows,
        }
    }

    fn tasks() -> Relation {
        rel(
            &["id", "owner"],
            vec![
                vec![Value::Int(1), Value::from("u1")],
                vec![Value::Int(2), Value::from("u2")],
                vec![Value::Int(3), Value::Null],
                vec![Value::Int(4), Value::from("u9")],
                vec![Value::Int(5), Value::from("u1")],
            ],
        )
    }

    fn users() -> Relation {
        rel(
            &["id", "name"],
            vec![
                vec![Value::from("u1"), Value::from("Ann")],
                vec![Value::from("u2"), Value::from("Bob")],
                vec![Value::from("u3"), Value::from("Cy")],
                vec![Value::Null, Value::from("Nobody")],
            ],
        )
    }

    fn on() -> Filter {
        field("owner").eq_field("u.id")
    }

    /// (task id, user name) pairs.
    fn pairs(r: &Relation) -> Vec<(Value, Value)> {
        let t = r.columns.index_of("id").unwrap();
        let n = r.columns.index_of("u.name").unwrap();
        r.rows
            .iter()
            .map(|row| (row[t].clone(), row[n].clone()))
            .collect()
    }

    fn p(id: Option<i64>, name: Option<&str>) -> (Value, Value) {
        (Value::from(id), Value::from(name))
    }

    #[test]
    fn output_columns_are_left_then_prefixed_right() {
        let r = join(tasks(), &users(), "u", JoinType::Inner, &on()).unwrap();
        assert_eq!(r.columns.names(), ["id", "owner", "u.id", "u.name"]);
    }

    #[test]
    fn inner_join_keeps_left_order_and_skips_null_keys() {
        let r = join(tasks(), &users(), "u", JoinType::Inner, &on()).unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                p(Some(1), Some("Ann")),
                p(Some(2), Some("Bob")),
                p(Some(5), Some("Ann"))
            ]
        );
    }

    #[test]
    fn left_join_pads_unmatched_left_rows() {
        let r = join(tasks(), &users(), "u", JoinType::Left, &on()).unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                p(Some(1), Some("Ann")),
                p(Some(2), Some("Bob")),
                p(Some(3), None),
                p(Some(4), None),
                p(Some(5), Some("Ann")),
            ]
        );
        assert!(r.rows[2][2].is_null());
    }

    #[test]
    fn right_join_appends_unmatched_right_rows() {
        let r = join(tasks(), &users(), "u", JoinType::Right, &on()).unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                p(Some(1), Some("Ann")),
                p(Some(2), Some("Bob")),
                p(Some(5), Some("Ann")),
                p(None, Some("Cy")),
                p(None, Some("Nobody")),
            ]
        );
    }

    #[test]
    fn full_join_has_both_sides() {
        let r = join(tasks(), &users(), "u", JoinType::Full, &on()).unwrap();
        assert_eq!(r.rows.len(), 7);
        assert_eq!(pairs(&r)[2], p(Some(3), None));
        assert_eq!(pairs(&r)[6], p(None, Some("Nobody")));
    }

    #[test]
    fn reversed_equality_and_residual_conditions() {
        let on = Filter::And(vec![field("u.id").eq_field("owner"), field("id").gt(1)]);
        let r = join(tasks(), &users(), "u", JoinType::Left, &on).unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                p(Some(1), None),
                p(Some(2), Some("Bob")),
                p(Some(3), None),
                p(Some(4), None),
                p(Some(5), Some("Ann")),
            ]
        );
    }

    #[test]
    fn non_equi_conditions_use_nested_loops() {
        let on = Filter::cond("owner", Op::Lt(Operand::Field("u.id".into())));
        let r = join(tasks(), &users(), "u", JoinType::Inner, &on).unwrap();
        // u1 < u2, u1 < u3, u2 < u3 (twice for the two u1 tasks).
        assert_eq!(
            pairs(&r),
            vec![
                p(Some(1), Some("Bob")),
                p(Some(1), Some("Cy")),
                p(Some(2), Some("Cy")),
                p(Some(5), Some("Bob")),
                p(Some(5), Some("Cy")),
            ]
        );
        let cross = join(tasks(), &users(), "u", JoinType::Inner, &Filter::always()).unwrap();
        assert_eq!(cross.rows.len(), 20);
    }

    #[test]
    fn equi_join_matches_numbers_across_types() {
        let l = rel(&["k"], vec![vec![Value::Int(1)], vec![Value::Float(2.5)]]);
        let r = rel(
            &["k"],
            vec![vec![Value::Float(1.0)], vec![Value::Float(2.5)]],
        );
        let out = join(l, &r, "r", JoinType::Inner, &field("k").eq_field("r.k")).unwrap();
        assert_eq!(out.rows.len(), 2);
    }

    #[test]
    fn unknown_join_column_is_an_error_not_a_panic() {
        let e = join(
            tasks(),
            &users(),
            "u",
            JoinType::Inner,
            &field("owner").eq_field("u.nope"),
        )
        .unwrap_err();
        assert_eq!(e.category(), "internal");
    }
}
