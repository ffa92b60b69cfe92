//! Inner joins regrouped so that objects of one datasource meet first,
//! and ordered smallest first.
//!
//! SQL's `FROM customer, orders, lineitem` with `customer` in MariaDB and
//! the other two in PostgreSQL plans as `(customer ⋈ orders) ⋈ lineitem`:
//! `orders` and `lineitem` never form a subtree of their own, so
//! [`crate::PushSubtrees`] cannot send their join to PostgreSQL as one query,
//! and both tables are shipped to be joined locally. [`ClusterJoins`]
//! rewrites a tree of inner joins into `customer ⋈ (orders ⋈ lineitem)`.
//!
//! It also picks the order of the joins. When every table of the tree has
//! a row estimate (fetched before optimization, see
//! [`crate::Federation::plan`]), the smallest part (a table, or a group of
//! one datasource's tables) comes first, and each next one is the smallest
//! that a condition connects to what is already joined: each hash join is
//! then built on what is joined so far, and its keys narrow the scan of the
//! next part (TPC-H Q5 starts from `region ⋈ nation`). Without estimates,
//! the written order is kept, each next part being the first that a
//! condition connects.
//!
//! Inner joins commute and associate, and a condition of an inner join
//! means the same wherever it is evaluated once every table it names has
//! joined, so the rewrite keeps the answer: each condition is attached to
//! the first join that has all its tables, and a projection on top gives
//! the columns back in their original order. The rule touches only trees of
//! inner joins (null-rejecting equality, no null-aware anti join) whose
//! conditions are deterministic and hold no subquery; a tree it does not
//! understand is left as it is.
//!
//! What counts as "one datasource" is what [`crate::PushSubtrees`] joins:
//! the tables' scans lower to QueryAST on the same driver. Tables of one
//! datasource are grouped only when equalities connect them (a group is a
//! connected part of the join graph) and the group lowers as a whole, so
//! no cross join is introduced and no group is formed that stays in
//! DataFusion.

use std::collections::BTreeSet;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{NullEquality, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::{can_hash, conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::exec::scaled_estimate;
use crate::subtree::{Joinable, joinable, lowers};

/// The optimizer rule that regroups inner joins so that the tables of one
/// datasource join each other first, and orders them by their row
/// estimates (see the module docs).
/// [`crate::Federation`] adds it to its contexts, before
/// [`crate::PushSubtrees`]; add both to your own in that order. The order
/// by size needs every table's row estimate before optimization, which
/// [`crate::Federation::plan`] fetches; in your own context a table has
/// one only when a scan of it fetched it in the last 30 s, so the first
/// run of a statement may keep the written order and a later one reorder.
///
/// ```
/// # use std::sync::Arc;
/// # use objectql_federation::{ClusterJoins, PushSubtrees};
/// let ctx = objectql_federation::datafusion::prelude::SessionContext::new();
/// ctx.add_optimizer_rule(Arc::new(ClusterJoins));
/// ctx.add_optimizer_rule(Arc::new(PushSubtrees));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterJoins;

impl OptimizerRule for ClusterJoins {
    fn name(&self) -> &'static str {
        "objectql_cluster_joins"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        rewrite(plan)
    }
}

/// Top-down: the first inner join of a tree decides for the whole tree;
/// below it, only the tree's leaves are visited.
fn rewrite(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    if inner_join(&plan).is_none() {
        return plan.map_children(rewrite);
    }
    let plan = replace_leaves(plan)?;
    let changed = plan.transformed;
    match regroup(&plan.data)? {
        Some(regrouped) => Ok(Transformed::yes(regrouped)),
        None => Ok(Transformed::new_transformed(plan.data, changed)),
    }
}

/// `plan`'s tree of inner joins with [`rewrite`] applied to each leaf.
fn replace_leaves(plan: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    if inner_join(&plan).is_some() {
        plan.map_children(replace_leaves)
    } else {
        rewrite(plan)
    }
}

/// The inner join at `plan`, seen through a projection of bare columns.
fn inner_join(plan: &LogicalPlan) -> Option<&Join> {
    let plan = match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            p.input.as_ref()
        }
        _ => plan,
    };
    match plan {
        LogicalPlan::Join(j)
            if j.join_type == JoinType::Inner
                && j.null_equality == NullEquality::NullEqualsNothing
                && !j.null_aware =>
        {
            Some(j)
        }
        _ => None,
    }
}

/// A tree of inner joins taken apart.
#[derive(Default)]
struct Tree {
    leaves: Vec<LogicalPlan>,
    /// Every condition, equalities of join keys included, one conjunct each.
    conditions: Vec<Expr>,
    /// The leaves under each join of the tree (a range of `leaves`).
    joins: Vec<(usize, usize)>,
}

impl Tree {
    fn of(plan: &LogicalPlan) -> Self {
        let mut tree = Tree::default();
        tree.take_apart(plan);
        tree
    }

    fn take_apart(&mut self, plan: &LogicalPlan) {
        let Some(j) = inner_join(plan) else {
            self.leaves.push(plan.clone());
            return;
        };
        let start = self.leaves.len();
        self.take_apart(&j.left);
        self.take_apart(&j.right);
        self.conditions
            .extend(j.on.iter().map(|(l, r)| l.clone().eq(r.clone())));
        if let Some(f) = &j.filter {
            self.conditions.extend(split_conjunction_owned(f.clone()));
        }
        self.joins.push((start, self.leaves.len()));
    }

    /// The leaves whose columns `expr` reads; `None` when a column is in no
    /// leaf or in more than one.
    fn leaves_of(&self, expr: &Expr) -> Option<BTreeSet<usize>> {
        let mut out = BTreeSet::new();
        for c in expr.column_refs() {
            let mut found = self
                .leaves
                .iter()
                .enumerate()
                .filter(|(_, l)| l.schema().has_column(c))
                .map(|(i, _)| i);
            let i = found.next()?;
            if found.next().is_some() {
                return None;
            }
            out.insert(i);
        }
        Some(out)
    }
}

/// The two sides of `expr` when it is an equality.
fn equality(expr: &Expr) -> Option<(&Expr, &Expr)> {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => Some((left, right)),
        _ => None,
    }
}

/// Whether `expr` may move to another join of the tree: deterministic,
/// no subquery.
fn movable(expr: &Expr) -> bool {
    !expr.is_volatile()
        && !expr
            .exists(|e| {
                Ok(matches!(
                    e,
                    Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::SetComparison(_)
                        | Expr::ScalarSubquery(_)
                        | Expr::OuterReferenceColumn(..)
                ))
            })
            .unwrap_or(true)
}

/// `plan` (a tree of inner joins) regrouped and ordered, or `None` when
/// every group of same-datasource tables already is a join of its own and
/// the order is the one chosen, or the tree is not one the rule
/// understands.
fn regroup(plan: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
    let tree = Tree::of(plan);
    if !tree.conditions.iter().all(movable) || !distinct_columns(&tree.leaves) {
        return Ok(None);
    }
    let Some(reads) = tree
        .conditions
        .iter()
        .map(|c| tree.leaves_of(c))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let n = tree.leaves.len();
    let known: Vec<Option<Joinable>> = tree.leaves.iter().map(joinable).collect();
    let datasource: Vec<_> = known
        .iter()
        .map(|k| k.as_ref().map(|k| k.datasource.clone()))
        .collect();
    // Equalities on a column unique in its table: a join along them
    // yields at most the rows of the other side.
    let keyed: Vec<bool> = tree
        .conditions
        .iter()
        .map(|c| {
            let Some((left, right)) = equality(c) else {
                return false;
            };
            [left, right].iter().any(|side| {
                let Expr::Column(col) = side else {
                    return false;
                };
                tree.leaves.iter().zip(&known).any(|(leaf, k)| {
                    k.as_ref().is_some_and(|k| {
                        leaf.schema()
                            .maybe_index_of_column(col)
                            .is_some_and(|i| k.unique.contains(&i))
                    })
                })
            })
        })
        .collect();

    // Groups of same-datasource leaves connected by equalities of two.
    let mut group: Vec<usize> = (0..n).collect();
    for (condition, r) in tree.conditions.iter().zip(&reads) {
        let (Some(&a), Some(&b), 2) = (r.first(), r.last(), r.len()) else {
            continue;
        };
        if equality(condition).is_none()
            || datasource[a].is_none()
            || datasource[a] != datasource[b]
        {
            continue;
        }
        let (from, to) = (group[a].max(group[b]), group[a].min(group[b]));
        for g in &mut group {
            if *g == from {
                *g = to;
            }
        }
    }
    let mut units: Vec<BTreeSet<usize>> = Vec::new();
    for i in 0..n {
        match units
            .iter_mut()
            .find(|u| u.first().is_some_and(|&f| group[f] == group[i]))
        {
            Some(u) => {
                u.insert(i);
            }
            None => units.push(BTreeSet::from([i])),
        }
    }

    // A condition that reads no table goes on top.
    let mut used: Vec<bool> = reads.iter().map(BTreeSet::is_empty).collect();
    // A group joined on its own must be one `PushSubtrees` lowers (its
    // conditions translate, exactly); else it goes back to single tables.
    let mut clusters = Vec::new();
    let mut singles = Vec::new();
    for unit in units {
        if unit.len() < 2 {
            singles.push(unit);
            continue;
        }
        let mut tried = used.clone();
        let Ok(joined) = join_in_order(&tree, &reads, &mut tried, leaves(&tree, &unit), false)
        else {
            return Ok(None);
        };
        if lowers(&joined.plan) {
            used = tried;
            clusters.push(joined);
        } else {
            singles.extend(unit.into_iter().map(|i| BTreeSet::from([i])));
        }
    }
    let joined_already = |u: &BTreeSet<usize>| {
        u.len() < 2
            || tree
                .joins
                .iter()
                .any(|&(s, e)| e - s == u.len() && u.iter().all(|&i| (s..e).contains(&i)))
    };
    let mut units: Vec<Unit> = singles
        .into_iter()
        .map(|u| {
            let i = u.first().copied().unwrap_or(0);
            Unit {
                leaves: u,
                plan: tree.leaves[i].clone(),
            }
        })
        .chain(clusters)
        .collect();
    units.sort_by_key(|u| u.leaves.first().copied());
    // Smallest first when every unit has an estimate.
    let rows: Option<Vec<f64>> = units.iter().map(|u| u.rows(&known)).collect();
    let order = order(&units, rows.as_deref(), &reads, &used, &keyed);
    let written = order.iter().enumerate().all(|(i, &o)| i == o);
    if written && units.iter().all(|u| joined_already(&u.leaves)) {
        return Ok(None);
    }
    let ordered: Vec<Unit> = {
        let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i)?.take())
            .collect()
    };
    let Ok(Unit {
        plan: mut joined, ..
    }) = join_in_order(&tree, &reads, &mut used, ordered, true)
    else {
        return Ok(None);
    };
    // What reads no table, and (never, once every table has joined)
    // anything not placed.
    let rest: Vec<Expr> = tree
        .conditions
        .iter()
        .zip(reads.iter().zip(&used))
        .filter(|(_, (r, u))| r.is_empty() || !**u)
        .map(|(c, _)| c.clone())
        .collect();
    let columns = plan.schema().columns().into_iter().map(Expr::Column);
    let mut builder = LogicalPlanBuilder::from(joined);
    if let Some(rest) = conjunction(rest) {
        builder = builder.filter(rest)?;
    }
    joined = builder.project(columns)?.build()?;
    Ok(Some(joined))
}

/// Tables joined, or to join: their leaves and their plan.
struct Unit {
    leaves: BTreeSet<usize>,
    plan: LogicalPlan,
}

impl Unit {
    /// About how many rows the unit yields: its largest table's estimate
    /// (a join along references yields at most the rows of its larger
    /// side) times 20% per condition of its tables' filters, for up to
    /// three (as a scan reports them, `ObjectScanExec::estimated_output_rows`);
    /// `None` when a table has no estimate.
    fn rows(&self, known: &[Option<Joinable>]) -> Option<f64> {
        let mut largest = 0;
        let mut conditions = 0;
        for &i in &self.leaves {
            let k = known.get(i)?.as_ref()?;
            largest = largest.max(k.rows?);
            conditions += k.conditions;
        }
        Some(scaled_estimate(largest, conditions))
    }
}

/// Each leaf of `unit` as a unit of its own.
fn leaves(tree: &Tree, unit: &BTreeSet<usize>) -> Vec<Unit> {
    unit.iter()
        .map(|&i| Unit {
            leaves: BTreeSet::from([i]),
            plan: tree.leaves[i].clone(),
        })
        .collect()
}

/// The conditions not yet `used` that join `unit` to `joined` (they read
/// both, and nothing else).
fn connecting<'a>(
    reads: &'a [BTreeSet<usize>],
    used: &'a [bool],
    joined: &'a BTreeSet<usize>,
    unit: &'a BTreeSet<usize>,
) -> impl Iterator<Item = usize> + 'a {
    reads
        .iter()
        .zip(used)
        .enumerate()
        .filter(move |(_, (r, done))| {
            !**done
                && r.iter().all(|i| joined.contains(i) || unit.contains(i))
                && r.iter().any(|i| unit.contains(i))
                && r.iter().any(|i| joined.contains(i))
        })
        .map(|(k, _)| k)
}

/// The order to join `units` in (indices into `units`). With `rows` (each
/// unit's estimate): the smallest first, then always the smallest that a
/// condition connects to what is joined (else the smallest left), so each
/// hash join is built on what is joined so far and its keys narrow the
/// next scan; a unit joined by an equality one side of which is a column
/// unique in its table (`keyed`: the join yields at most the rows of the
/// other side) goes before one that is not, whose join may multiply rows. Without: the written order, each next unit the first that a
/// condition connects.
fn order(
    units: &[Unit],
    rows: Option<&[f64]>,
    reads: &[BTreeSet<usize>],
    used: &[bool],
    keyed: &[bool],
) -> Vec<usize> {
    let mut left: Vec<usize> = (0..units.len()).collect();
    let mut order = Vec::with_capacity(units.len());
    let mut joined = BTreeSet::new();
    // The first of `candidates` by the estimate (ties: written order), or
    // the first written.
    let pick = |candidates: &mut dyn Iterator<Item = usize>| -> Option<usize> {
        match rows {
            Some(rows) => candidates.min_by(|&a, &b| {
                rows.get(a)
                    .partial_cmp(&rows.get(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.cmp(&b))
            }),
            None => candidates.next(),
        }
    };
    while !left.is_empty() {
        let joins = |u: usize, by_key: bool| {
            !order.is_empty()
                && connecting(reads, used, &joined, &units[u].leaves)
                    .any(|k| !by_key || keyed.get(k).copied().unwrap_or(false))
        };
        let by_key = rows.is_some();
        let connected = pick(&mut left.iter().copied().filter(|&u| joins(u, by_key)))
            .or_else(|| pick(&mut left.iter().copied().filter(|&u| joins(u, false))));
        let Some(next) = connected.or_else(|| pick(&mut left.iter().copied())) else {
            break;
        };
        left.retain(|&u| u != next);
        joined.extend(units[next].leaves.iter().copied());
        order.push(next);
    }
    order
}

/// Whether no qualified column is in two leaves (a projection seen through
/// may hide one that the join would then repeat).
fn distinct_columns(leaves: &[LogicalPlan]) -> bool {
    let mut seen = std::collections::HashSet::new();
    leaves
        .iter()
        .flat_map(|l| l.schema().columns())
        .all(|c| seen.insert(c))
}

/// `units` joined left-deep: in the order given (`as_given`), or in
/// written order with each next unit the first that a condition connects
/// to what is joined so far. Each condition not yet `used` goes to the
/// first join that has all the leaves it reads (an equality of one side's
/// expression with the other's as a join key, the rest as the join's
/// filter).
fn join_in_order(
    tree: &Tree,
    reads: &[BTreeSet<usize>],
    used: &mut [bool],
    units: Vec<Unit>,
    as_given: bool,
) -> DfResult<Unit> {
    let units: Vec<Unit> = if as_given {
        units
    } else {
        let order = order(&units, None, reads, used, &[]);
        let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i)?.take())
            .collect()
    };
    let mut units = units.into_iter();
    let Some(Unit {
        mut leaves,
        mut plan,
    }) = units.next()
    else {
        return plan_err!("no tables to join");
    };
    for Unit {
        leaves: right_leaves,
        plan: right,
    } in units
    {
        let (mut left_keys, mut right_keys, mut filter) = (Vec::new(), Vec::new(), Vec::new());
        for (k, r) in reads.iter().enumerate() {
            if used[k]
                || !r
                    .iter()
                    .all(|i| leaves.contains(i) || right_leaves.contains(i))
            {
                continue;
            }
            used[k] = true;
            let condition = &tree.conditions[k];
            if let Some((a, b)) = equality(condition) {
                let on = |e: &Expr, side: &BTreeSet<usize>, input: &LogicalPlan| {
                    tree.leaves_of(e)
                        .is_some_and(|r| !r.is_empty() && r.is_subset(side))
                        && e.get_type(input.schema()).is_ok_and(|t| can_hash(&t))
                };
                if on(a, &leaves, &plan) && on(b, &right_leaves, &right) {
                    left_keys.push(a.clone());
                    right_keys.push(b.clone());
                    continue;
                }
                if on(b, &leaves, &plan) && on(a, &right_leaves, &right) {
                    left_keys.push(b.clone());
                    right_keys.push(a.clone());
                    continue;
                }
            }
            filter.push(condition.clone());
        }
        plan = LogicalPlanBuilder::from(plan)
            .join_with_expr_keys(
                right,
                JoinType::Inner,
                (left_keys, right_keys),
                conjunction(filter),
            )?
            .build()?;
        leaves.extend(right_leaves);
    }
    Ok(Unit { leaves, plan })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_with_a_subquery_stays_where_it_is() {
        use datafusion::logical_expr::{col, exists, lit};
        assert!(movable(&col("a.x").eq(col("b.y"))));
        assert!(movable(&col("a.x").gt(lit(3))));
        let empty = LogicalPlanBuilder::empty(false).build().expect("plan");
        assert!(!movable(
            &col("a.x")
                .gt(lit(3))
                .and(exists(std::sync::Arc::new(empty)))
        ));
    }
}
