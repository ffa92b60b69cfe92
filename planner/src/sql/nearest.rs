//! Nearest-neighbour queries on dialects with vectors (libSQL).
//!
//! Exact (the default, and whenever no index fits):
//!
//! ```sql
//! SELECT <fields>, vector_distance_cos("e", ?) AS "_distance" FROM "t"
//! WHERE <filter> AND "e" IS NOT NULL [AND "e" <> ?]
//! ORDER BY "_distance" ASC, "id" ASC LIMIT ?
//! ```
//!
//! `"e" <> ?` (bound to the zero vector) is there for `cosine` only: the
//! cosine of a zero vector is undefined (libSQL answers NULL) and such rows
//! are excluded, as in the reference evaluator. Validation stores `-0` as
//! `0`, so the zero vector has one encoding.
//!
//! Approximate (`approximate: true`, and the field has a vector index built
//! for the query's metric):
//!
//! ```sql
//! SELECT "t"."id" AS "id", …, vector_distance_cos("t"."e", ?) AS "_distance"
//! FROM vector_top_k('t_e_idx', ?, ?) AS "v" JOIN "t" ON "t".rowid = "v"."id"
//! WHERE <filter> AND "t"."e" IS NOT NULL [AND "t"."e" <> ?]
//! ORDER BY "_distance" ASC, "t"."id" ASC LIMIT ?
//! ```
//!
//! The index is asked for `K = k` candidates; the filter applies to them
//! after the lookup, so a selective filter can leave fewer than `k` rows
//! (which `approximate` allows). Distances are still computed exactly, and
//! the order is the exact order of the candidates. Columns are qualified
//! because the index scan has columns of its own (`id`, `distance`).
//!
//! Placeholders are bound in text order: the distance's query vector, the
//! index scan's arguments, the filter, the zero vector, the limit.

use objectql_query_ast::{Error, Nearest, ObjectSchema, Query, Result, StorageType, Value};
use sqlparser::ast::{Expr, Ident, Join, JoinConstraint, JoinOperator, SetExpr, TableWithJoins};

use super::ast::{
    binop, is_not_null, order_item, query, select as select_node, select_item, table,
};
use super::ddl::vector_index;
use super::expr::{Col, Scope, conjunction};
use super::select::{key_ord, projection, where_clause};
use super::{Binder, OutputColumn, SqlCompiler, Statement};

/// The alias of the index scan (anything but the table's name).
fn scan_alias(c: &SqlCompiler<'_>, table_name: &str) -> Ident {
    c.ident(if table_name == "v" { "v_" } else { "v" })
}

/// The stored columns of `schema`, qualified by `qualifier` when given.
fn scope(c: &SqlCompiler<'_>, schema: &ObjectSchema, qualifier: Option<&Ident>) -> Result<Scope> {
    let mut scope = Scope::default();
    for (name, f) in &schema.fields {
        let st = f.storage_type()?;
        if st == StorageType::Virtual {
            continue;
        }
        let col = c.ident(f.column());
        let expr = match qualifier {
            Some(q) => Expr::CompoundIdentifier(vec![q.clone(), col]),
            None => Expr::Identifier(col),
        };
        scope.cols.insert(name.clone(), Col { expr, st });
    }
    Ok(scope)
}

/// The index an approximate query may use: one over the field, built for
/// the query's metric.
fn usable_index(c: &SqlCompiler<'_>, schema: &ObjectSchema, n: &Nearest) -> Result<Option<String>> {
    if !n.approximate {
        return Ok(None);
    }
    Ok(vector_index(c, schema, &n.field)?
        .and_then(|(name, metric)| (metric == n.effective_metric()).then_some(name)))
}

fn vector_value(n: &Nearest) -> Value {
    Value::Array(n.vector.iter().map(|&x| Value::Float(x)).collect())
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(super) fn select(c: &SqlCompiler<'_>, q: &Query, n: &Nearest) -> Result<Statement> {
    let object = q
        .object
        .as_deref()
        .ok_or_else(|| Error::plan("the query has no object"))?;
    let schema = c.schema(object)?;
    let base = c.ident(schema.table());
    let index = usable_index(c, schema, n)?;
    let scope = scope(c, schema, index.as_ref().map(|_| &base))?;
    let col = scope.get(&n.field)?.clone();
    let metric = n.effective_metric();
    let mut b = Binder::new(c.dialect);

    let all: Vec<String> = scope.cols.keys().cloned().collect();
    let names = q.fields.clone().unwrap_or(all);
    let (mut items, mut columns) = projection(c, &scope, &names)?;
    let query_vector = b.bind_typed(&vector_value(n), col.st)?;
    let distance = c
        .dialect
        .vector_distance(col.expr.clone(), query_vector, metric)
        .ok_or_else(|| c.unsupported("vectors"))?;
    let distance_as = c.ident(&n.distance_as);
    items.push(select_item(distance, Some(distance_as.clone())));
    columns.push(OutputColumn {
        name: n.distance_as.clone(),
        storage: StorageType::Float,
    });

    let from = match &index {
        Some(name) => {
            let alias = scan_alias(c, schema.table());
            let query_vector = b.bind_typed(&vector_value(n), col.st)?;
            let candidates = b.bind(int(n.k));
            let (scan, on) = c
                .dialect
                .vector_index_scan(name, &alias, &base, query_vector, candidates)
                .ok_or_else(|| c.unsupported("approximate vector search"))?;
            TableWithJoins {
                relation: scan,
                joins: vec![Join {
                    relation: table(base, None),
                    global: false,
                    join_operator: JoinOperator::Join(JoinConstraint::On(on)),
                }],
            }
        }
        None => TableWithJoins {
            relation: table(base, None),
            joins: Vec::new(),
        },
    };

    let mut conds = Vec::new();
    if let Some(w) = where_clause(c, &scope, q.filter.as_ref(), &mut b)? {
        conds.push(w);
    }
    conds.push(is_not_null(col.expr.clone()));
    if metric == objectql_query_ast::VectorMetric::Cosine {
        let zero = Value::Array(vec![Value::Float(0.0); n.vector.len()]);
        let zero = b.bind_typed(&zero, col.st)?;
        conds.push(binop(
            col.expr.clone(),
            sqlparser::ast::BinaryOperator::NotEq,
            zero,
        ));
    }

    let mut order = vec![order_item(Expr::Identifier(distance_as), true, None)];
    if let Some(key) = n.tie_breaker.as_deref() {
        order.push(order_item(key_ord(c, scope.get(key)?), true, None));
    }
    let limit = b.bind(int(n.k));
    let body = select_node(items, vec![from], conjunction(conds), Vec::new(), false);
    let sql = query(SetExpr::Select(Box::new(body)), order, Some(limit), None).to_string();
    b.finish(sql, columns)
}
