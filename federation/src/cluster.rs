//! Inner joins regrouped so that objects of one datasource meet first.
//!
//! SQL's `FROM customer, orders, lineitem` with `customer` in MariaDB and
//! the other two in PostgreSQL plans as `(customer ⋈ orders) ⋈ lineitem`:
//! `orders` and `lineitem` never form a subtree of their own, so
//! [`crate::PushSubtrees`] cannot send their join to PostgreSQL as one query,
//! and both tables are shipped to be joined locally. [`ClusterJoins`]
//! rewrites a tree of inner joins into `customer ⋈ (orders ⋈ lineitem)`.
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
//! datasource are grouped only when conditions connect them (a cluster is a
//! connected part of the join graph), so no cross join is introduced. The
//! clusters and the remaining tables keep the order of their first table in
//! the query, and each next one is the first that a condition connects to
//! what is already joined.

use std::collections::BTreeSet;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{NullEquality, plan_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::{can_hash, conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::subtree::{joinable_datasource, lowers};

/// The optimizer rule that regroups inner joins so that the tables of one
/// datasource join each other first (see the module docs).
/// [`crate::Federation`] adds it to its contexts, before
/// [`crate::PushSubtrees`]; add both to your own in that order:
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

/// `plan` (a tree of inner joins) regrouped, or `None` when every group of
/// same-datasource tables already is a join of its own, or the tree is not
/// one the rule understands.
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
    let datasource: Vec<_> = tree.leaves.iter().map(joinable_datasource).collect();

    // Groups of same-datasource leaves connected by equalities of two.
    let mut group: Vec<usize> = (0..n).collect();
    for (condition, r) in tree.conditions.iter().zip(&reads) {
        let (Some(&a), Some(&b), 2) = (r.first(), r.last(), r.len()) else {
            continue;
        };
        let equality = matches!(
            condition,
            Expr::BinaryExpr(BinaryExpr {
                op: Operator::Eq,
                ..
            })
        );
        if !equality || datasource[a].is_none() || datasource[a] != datasource[b] {
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
        let Ok((_, joined)) = join_in_order(&tree, &reads, &mut tried, leaves(&tree, &unit)) else {
            return Ok(None);
        };
        if lowers(&joined) {
            used = tried;
            clusters.push((unit, joined));
        } else {
            singles.extend(unit.into_iter().map(|i| BTreeSet::from([i])));
        }
    }
    let joined_already = |u: &BTreeSet<usize>| {
        tree.joins
            .iter()
            .any(|&(s, e)| e - s == u.len() && u.iter().all(|&i| (s..e).contains(&i)))
    };
    if clusters.iter().all(|(u, _)| joined_already(u)) {
        return Ok(None);
    }
    let mut built: Vec<_> = singles
        .into_iter()
        .map(|u| {
            let i = u.first().copied().unwrap_or(0);
            (u, tree.leaves[i].clone())
        })
        .chain(clusters)
        .collect();
    built.sort_by_key(|(u, _)| u.first().copied());
    let Ok((_, mut joined)) = join_in_order(&tree, &reads, &mut used, built) else {
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

/// Each leaf of `unit` as a unit of its own.
fn leaves(tree: &Tree, unit: &BTreeSet<usize>) -> Vec<(BTreeSet<usize>, LogicalPlan)> {
    unit.iter()
        .map(|&i| (BTreeSet::from([i]), tree.leaves[i].clone()))
        .collect()
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

/// `units` (each its leaves and plan) joined left-deep: each next unit is
/// the first that a condition connects to what is joined so far (else the
/// first left), and each condition not yet `used` goes to the first join
/// that has all the leaves it reads (an equality of one side's expression
/// with the other's as a join key, the rest as the join's filter).
fn join_in_order(
    tree: &Tree,
    reads: &[BTreeSet<usize>],
    used: &mut [bool],
    mut units: Vec<(BTreeSet<usize>, LogicalPlan)>,
) -> DfResult<(BTreeSet<usize>, LogicalPlan)> {
    if units.is_empty() {
        return plan_err!("no tables to join");
    }
    let (mut leaves, mut plan) = units.remove(0);
    while !units.is_empty() {
        let fits = |r: &BTreeSet<usize>, u: &BTreeSet<usize>, leaves: &BTreeSet<usize>| {
            r.iter().all(|i| leaves.contains(i) || u.contains(i))
        };
        let next = units
            .iter()
            .position(|(u, _)| {
                reads.iter().zip(used.iter()).any(|(r, &done)| {
                    !done
                        && fits(r, u, &leaves)
                        && r.iter().any(|i| u.contains(i))
                        && r.iter().any(|i| leaves.contains(i))
                })
            })
            .unwrap_or(0);
        let (right_leaves, right) = units.remove(next);
        let (mut left_keys, mut right_keys, mut filter) = (Vec::new(), Vec::new(), Vec::new());
        for (k, r) in reads.iter().enumerate() {
            if used[k] || !fits(r, &right_leaves, &leaves) {
                continue;
            }
            used[k] = true;
            let condition = &tree.conditions[k];
            if let Expr::BinaryExpr(BinaryExpr {
                left: a,
                op: Operator::Eq,
                right: b,
            }) = condition
            {
                let on = |e: &Expr, side: &BTreeSet<usize>, input: &LogicalPlan| {
                    tree.leaves_of(e)
                        .is_some_and(|r| !r.is_empty() && r.is_subset(side))
                        && e.get_type(input.schema()).is_ok_and(|t| can_hash(&t))
                };
                if on(a, &leaves, &plan) && on(b, &right_leaves, &right) {
                    left_keys.push(a.as_ref().clone());
                    right_keys.push(b.as_ref().clone());
                    continue;
                }
                if on(b, &leaves, &plan) && on(a, &right_leaves, &right) {
                    left_keys.push(b.as_ref().clone());
                    right_keys.push(a.as_ref().clone());
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
    Ok((leaves, plan))
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
