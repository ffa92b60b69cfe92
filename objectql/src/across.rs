//! Queries whose `joins` name objects of other datasources, or whose
//! driver does not run their joins ([`Driver::accepts`] refuses the join
//! shape: a full join beside another outer join on MySQL, say).
//!
//! The query is cut into *groups*, each one driver query through the
//! ordinary single-datasource path (planned, pushed down, run in the
//! session's transaction when it is on that datasource):
//!
//! - the base object with the leading joins that share its datasource and
//!   that its driver accepts, as one driver query (the whole
//!   same-datasource subtree, joins included);
//! - each later join's object, on its own datasource.
//!
//! [`Driver::accepts`]: objectql_driver::Driver::accepts
//!
//! Each group gets the conjuncts of `where` that only it references (when
//! no outer join could pad its rows with NULLs), and a join's object the
//! conjuncts of its `on` that only it references (inner and left joins).
//! Before a joined object is read, the distinct keys of its equi-join
//! columns already read on the left go to it as an `$in` (inner and left
//! joins, up to [`Engine::join_key_limit`](crate::Engine::join_key_limit)
//! keys): the right side ships only rows that can match.
//!
//! The groups are joined, and the rest of the query (the remaining filter,
//! sort, cursor, paging, aggregation, projection) runs, in objectql's
//! reference evaluator: the one the memory driver answers with, so the
//! result is the memory reference's by construction.

use std::collections::HashSet;

use objectql_driver::{BatchStream, ExplainStep};
use objectql_planner::Plan;
use objectql_planner::eval::{self, Columns, Relation, ValueKey};
use objectql_query_ast::{
    Catalog, Condition, Error, Filter, Join, JoinType, ObjectSchema, Op, Operand, Query, Record,
    Result, StorageType, Value,
};

use crate::session::Session;

/// Whether `query` joins an object that lives in another datasource than
/// its base object. Unknown objects answer `false`: validation names them.
pub(crate) fn spans_datasources(catalog: &Catalog, query: &Query) -> bool {
    if query.joins.is_empty() {
        return false;
    }
    let Some(base) = query.object.as_deref().and_then(|o| catalog.get(o)) else {
        return false;
    };
    query.joins.iter().any(|j| {
        catalog
            .get(&j.object)
            .is_some_and(|s| s.datasource_name() != base.datasource_name())
    })
}

/// One driver query of a cross-datasource join.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) datasource: String,
    /// What the driver runs: the object, its same-datasource joins (base
    /// group only) and the conjuncts pushed to it.
    pub(crate) query: Query,
    /// The join that brings this group in (`None` for the base group),
    /// with the conjuncts pushed into `query` taken out of its `on`.
    pub(crate) join: Option<Join>,
    /// Equi-join pairs (left column, this group's field) whose left keys
    /// may narrow this group's read.
    pub(crate) reducible: Vec<(String, String)>,
}

/// A cross-datasource query, cut into groups.
#[derive(Debug)]
pub(crate) struct Cut {
    pub(crate) groups: Vec<Group>,
    /// What runs over the joined rows: the query without its joins, with
    /// the conjuncts of `where` that no group took.
    pub(crate) residual: Query,
}

pub(crate) fn schema_of<'c>(catalog: &'c Catalog, object: &str) -> Result<&'c ObjectSchema> {
    catalog
        .get(object)
        .ok_or_else(|| Error::internal(format!("validated query names unknown object `{object}`")))
}

/// The columns an object's rows carry (its stored fields, in schema order).
pub(crate) fn object_columns(schema: &ObjectSchema) -> Vec<String> {
    schema
        .fields
        .iter()
        .filter(|(_, f)| f.storage_type().is_ok_and(|st| st != StorageType::Virtual))
        .map(|(n, _)| n.clone())
        .collect()
}

/// The top-level conjuncts of `f`.
fn conjuncts(f: Option<&Filter>) -> Vec<Filter> {
    fn walk(f: &Filter, out: &mut Vec<Filter>) {
        match f {
            Filter::And(items) => items.iter().for_each(|i| walk(i, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    if let Some(f) = f {
        walk(f, &mut out);
    }
    out
}

fn and_of(mut items: Vec<Filter>) -> Option<Filter> {
    match items.len() {
        0 => None,
        1 => items.pop(),
        _ => Some(Filter::And(items)),
    }
}

/// Every column `f` references (condition fields and `$field` operands).
fn referenced(f: &Filter, out: &mut Vec<String>) {
    match f {
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| referenced(i, out)),
        Filter::Not(inner) => referenced(inner, out),
        Filter::Condition(c) => {
            out.push(c.field.clone());
            if let Some(Operand::Field(other)) = operand(&c.op) {
                out.push(other.clone());
            }
        }
    }
}

fn operand(op: &Op) -> Option<&Operand> {
    match op {
        Op::Eq(o) | Op::Ne(o) | Op::Gt(o) | Op::Gte(o) | Op::Lt(o) | Op::Lte(o) => Some(o),
        _ => None,
    }
}

/// Which group a column belongs to: a base field, or `alias.field` of a
/// join (`None`: neither, which validation would have refused).
fn group_of(column: &str, base: &ObjectSchema, aliases: &[(String, usize)]) -> Option<usize> {
    if base.get(column).is_some() {
        return Some(0);
    }
    let (alias, _) = column.split_once('.')?;
    aliases.iter().find(|(a, _)| a == alias).map(|(_, g)| *g)
}

/// The one group all of `columns` belong to, if there is one.
fn single_group(
    columns: &[String],
    base: &ObjectSchema,
    aliases: &[(String, usize)],
) -> Option<usize> {
    let mut found = None;
    for c in columns {
        let g = group_of(c, base, aliases)?;
        if found.is_some_and(|f| f != g) {
            return None;
        }
        found = Some(g);
    }
    found
}

/// How many leading joins of a validated query name objects on its base
/// object's datasource.
fn same_datasource_prefix(catalog: &Catalog, query: &Query) -> Result<usize> {
    let base = schema_of(catalog, query.object.as_deref().unwrap_or_default())?;
    Ok(query
        .joins
        .iter()
        .take_while(|j| {
            catalog
                .get(&j.object)
                .is_some_and(|s| s.datasource_name() == base.datasource_name())
        })
        .count())
}

/// How many leading joins go to the base object's driver with it, in one
/// query: the longest prefix on its datasource that the driver accepts
/// (the same plan-time decision as a single-datasource query's).
fn leading_joins(session: &Session, catalog: &Catalog, query: &Query) -> Result<usize> {
    let mut n = same_datasource_prefix(catalog, query)?;
    while n > 0 && !session.joins_accepted(catalog, query, n)? {
        n -= 1;
    }
    Ok(n)
}

/// Cuts a validated query into groups: the base object with its first
/// `leading` joins (all on its datasource), then one group per later join.
fn cut(catalog: &Catalog, query: &Query, leading: usize) -> Result<Cut> {
    let base = schema_of(catalog, query.object.as_deref().unwrap_or_default())?;
    let home = base.datasource_name().to_owned();
    let mut first = Query::new(base.name.clone());
    first.joins = query.joins[..leading].to_vec();
    let mut aliases: Vec<(String, usize)> =
        first.joins.iter().map(|j| (j.alias.clone(), 0)).collect();
    let mut groups = vec![Group {
        datasource: home,
        query: first,
        join: None,
        reducible: Vec::new(),
    }];
    for j in &query.joins[leading..] {
        let schema = schema_of(catalog, &j.object)?;
        aliases.push((j.alias.clone(), groups.len()));
        groups.push(Group {
            datasource: schema.datasource_name().to_owned(),
            query: Query::new(j.object.clone()),
            join: Some(j.clone()),
            reducible: Vec::new(),
        });
    }
    let join_type = |g: usize| groups[g].join.as_ref().map(|j| j.join_type);
    // A group whose rows no later outer join pads with NULLs: a `where`
    // conjunct on it alone filters the same rows before the joins as after.
    let preserved: Vec<bool> = (0..groups.len())
        .map(|g| {
            let own = g == 0 || matches!(join_type(g), Some(JoinType::Inner | JoinType::Right));
            own && (g + 1..groups.len())
                .all(|k| matches!(join_type(k), Some(JoinType::Inner | JoinType::Left)))
        })
        .collect();

    let mut pushed: Vec<Vec<Filter>> = vec![Vec::new(); groups.len()];
    let mut residual_where = Vec::new();
    for c in conjuncts(query.filter.as_ref()) {
        let mut cols = Vec::new();
        referenced(&c, &mut cols);
        match single_group(&cols, base, &aliases) {
            Some(g) if preserved[g] => pushed[g].push(c),
            _ => residual_where.push(c),
        }
    }
    for (g, group) in groups.iter_mut().enumerate().skip(1) {
        let Some(join) = group.join.as_mut() else {
            continue;
        };
        let own = format!("{}.", join.alias);
        let strip = |c: &str| c.strip_prefix(&own).unwrap_or(c).to_owned();
        let filters_right = matches!(join.join_type, JoinType::Inner | JoinType::Left);
        let mut kept = Vec::new();
        for c in conjuncts(Some(&join.on)) {
            let mut cols = Vec::new();
            referenced(&c, &mut cols);
            if filters_right && single_group(&cols, base, &aliases) == Some(g) {
                pushed[g].push(c);
                continue;
            }
            // An equi-join pair with one column on each side.
            if filters_right
                && let Filter::Condition(Condition {
                    field,
                    op: Op::Eq(Operand::Field(other)),
                }) = &c
            {
                let side = |x: &str| group_of(x, base, &aliases);
                match (side(field), side(other)) {
                    (Some(a), Some(b)) if a == g && b < g => {
                        group.reducible.push((other.clone(), strip(field)));
                    }
                    (Some(a), Some(b)) if b == g && a < g => {
                        group.reducible.push((field.clone(), strip(other)));
                    }
                    _ => {}
                }
            }
            kept.push(c);
        }
        join.on = and_of(kept).unwrap_or_else(Filter::always);
        let mine = std::mem::take(&mut pushed[g]);
        group.query.filter = and_of(mine.iter().map(|f| f.renamed(&strip)).collect());
    }
    groups[0].query.filter = and_of(std::mem::take(&mut pushed[0]));

    let mut residual = query.clone();
    residual.joins.clear();
    residual.expand.clear();
    residual.filter = and_of(residual_where);
    Ok(Cut { groups, residual })
}

/// The `$in` that keeps only the rows of a group that can match the left
/// side's keys (`None`: too many keys to send, or nothing to narrow).
fn reduction(left: &Relation, pairs: &[(String, String)], limit: usize) -> Option<Filter> {
    if limit == 0 {
        return None;
    }
    let mut narrowing = Vec::new();
    for (left_col, right_field) in pairs {
        let idx = left.columns.index_of(left_col)?;
        let mut seen: HashSet<ValueKey<&Value>> = HashSet::new();
        let mut keys = Vec::new();
        for row in &left.rows {
            let Some(v) = row.get(idx) else { continue };
            // A NULL key never matches; a JSON or array value is not a key.
            if v.is_null() || matches!(v, Value::Json(_) | Value::Array(_)) {
                continue;
            }
            if seen.insert(ValueKey(v)) {
                if keys.len() == limit {
                    return None;
                }
                keys.push(v.clone());
            }
        }
        narrowing.push(Filter::cond(right_field.clone(), Op::In(keys)));
    }
    and_of(narrowing)
}

/// `narrow` (a key list, or several ANDed) as the filters of the queries
/// to run in turn: itself, or, when a list holds more keys than a quarter
/// of the driver's bind limit `max_bind_params`, one filter per chunk of
/// that list (the other lists kept whole).
fn chunked(narrow: Filter, max_bind_params: Option<usize>) -> Vec<Filter> {
    let Some(size) = max_bind_params.map(|m| (m / 4).max(1)) else {
        return vec![narrow];
    };
    let mut items = conjuncts(Some(&narrow));
    let long = items.iter().position(
        |f| matches!(f, Filter::Condition(Condition { op: Op::In(v), .. }) if v.len() > size),
    );
    let Some(at) = long else {
        return vec![narrow];
    };
    let long = items.remove(at);
    let Filter::Condition(Condition {
        field,
        op: Op::In(values),
    }) = &long
    else {
        return vec![narrow];
    };
    values
        .chunks(size)
        .map(|chunk| {
            let keys = Filter::cond(field.clone(), Op::In(chunk.to_vec()));
            Filter::And(items.iter().cloned().chain([keys]).collect())
        })
        .collect()
}

fn relation(columns: Vec<String>, rows: Vec<Record>) -> Relation {
    let dense = rows
        .into_iter()
        .map(|mut r| {
            columns
                .iter()
                .map(|c| r.swap_remove(c).unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Relation::new(Columns::new(columns), dense)
}

/// The columns of the base group's rows: the base object's, then
/// `alias.field` for each same-datasource join.
pub(crate) fn first_columns(catalog: &Catalog, q: &Query) -> Result<Vec<String>> {
    let mut cols = object_columns(schema_of(catalog, q.object.as_deref().unwrap_or_default())?);
    for j in &q.joins {
        for c in object_columns(schema_of(catalog, &j.object)?) {
            cols.push(format!("{}.{c}", j.alias));
        }
    }
    Ok(cols)
}

/// Runs a validated query whose joins span datasources (without `expand`,
/// which the caller resolves on the returned rows).
pub(crate) async fn find(session: &Session, query: &Query) -> Result<Vec<Record>> {
    let catalog = session.engine().catalog()?;
    let cut = cut(&catalog, query, leading_joins(session, &catalog, query)?)?;
    #[cfg(feature = "federation")]
    if let crate::joined::Lowered::Yes(q, _) = crate::joined::lowered(session, &catalog, &cut)? {
        return Box::pin(crate::joined::find(session, &q)).await;
    }
    Box::pin(evaluate(session, &catalog, &cut, &mut Vec::new())).await
}

/// Streams the Arrow batches of a validated query whose joins span
/// datasources (typed like a single-datasource query's).
pub(crate) async fn find_arrow(session: &Session, query: &Query) -> Result<BatchStream> {
    let catalog = session.engine().catalog()?;
    let schema = objectql_driver::joined_schema(&catalog, query)?;
    let mut output = query.clone();
    output.joins.clear();
    let cut = cut(&catalog, query, leading_joins(session, &catalog, query)?)?;
    #[cfg(feature = "federation")]
    if let crate::joined::Lowered::Yes(q, _) = crate::joined::lowered(session, &catalog, &cut)? {
        let arrow = objectql_driver::arrow_schema(&schema, &output)?;
        return Box::pin(crate::joined::stream_as(session, &q, arrow)).await;
    }
    let rows = Box::pin(evaluate(session, &catalog, &cut, &mut Vec::new())).await?;
    let batch = objectql_driver::records_to_batch(&schema, &output, &rows)?;
    Ok(Box::pin(futures::stream::iter([Ok(batch)])))
}

/// Runs a cut query in the reference evaluator; `shipped` gets the number
/// of rows each group's driver queries returned, in group order.
async fn evaluate(
    session: &Session,
    catalog: &Catalog,
    cut: &Cut,
    shipped: &mut Vec<usize>,
) -> Result<Vec<Record>> {
    let limit = session.engine().join_key_limit();
    let first = &cut.groups[0];
    let rows = Box::pin(session.for_datasource(&first.datasource).find(&first.query)).await?;
    shipped.push(rows.len());
    let mut rel = relation(first_columns(catalog, &first.query)?, rows);
    for group in &cut.groups[1..] {
        let Some(join) = &group.join else {
            return Err(Error::internal("a joined group without its join"));
        };
        let on = session.for_datasource(&group.datasource);
        let rows = match reduction(&rel, &group.reducible, limit) {
            None => Box::pin(on.find(&group.query)).await?,
            Some(narrow) => {
                // A key list past the driver's bind limit goes in chunks,
                // one query each (disjoint: no row comes twice).
                let max = session
                    .datasource(&group.datasource)?
                    .capabilities()
                    .max_bind_params;
                let mut rows = Vec::new();
                for keys in chunked(narrow, max) {
                    let mut sub = group.query.clone();
                    sub.filter = and_of(sub.filter.take().into_iter().chain([keys]).collect());
                    rows.extend(Box::pin(on.find(&sub)).await?);
                }
                rows
            }
        };
        shipped.push(rows.len());
        let right = relation(object_columns(schema_of(catalog, &join.object)?), rows);
        rel = eval::join(rel, &right, &join.alias, join.join_type, &join.on)?;
    }
    let out = eval::execute(
        &rel.columns,
        rel.rows.iter().map(Vec::as_slice),
        &cut.residual,
    )?;
    let names = out.columns.names().to_vec();
    Ok(out
        .rows
        .into_iter()
        .map(|row| names.iter().cloned().zip(row).collect())
        .collect())
}

/// A group's equi-join pairs as explain text: `` `left` → `right` ``, ….
pub(crate) fn key_pairs(group: &Group) -> String {
    group
        .reducible
        .iter()
        .map(|(l, r)| format!("`{l}` → `{r}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Describes where each part of a cross-datasource query runs.
pub(crate) async fn explain(session: &Session, query: &Query) -> Result<Vec<ExplainStep>> {
    let catalog = session.engine().catalog()?;
    let cut = cut(&catalog, query, leading_joins(session, &catalog, query)?)?;
    // Without `federation` the evaluator is the only path.
    #[cfg_attr(
        not(feature = "federation"),
        allow(clippy::infallible_destructuring_match)
    )]
    let why = match path(session, &catalog, &cut)? {
        #[cfg(feature = "federation")]
        Path::DataFusion(q, narrowing) => {
            return Box::pin(crate::joined::explain(session, &q, &narrowing)).await;
        }
        Path::Evaluator(why) => why,
    };
    let mut steps = evaluator_step(why);
    steps.extend(Box::pin(evaluated(session, cut)).await?);
    Ok(steps)
}

/// Where a cut query runs.
enum Path {
    /// On DataFusion, with what may narrow each source.
    #[cfg(feature = "federation")]
    DataFusion(Box<objectql_federation::JoinedQuery>, Vec<Option<String>>),
    /// In the reference evaluator (with the reason it is not lowered).
    Evaluator(Option<String>),
}

#[cfg_attr(not(feature = "federation"), allow(clippy::unnecessary_wraps))]
fn path(session: &Session, catalog: &Catalog, cut: &Cut) -> Result<Path> {
    #[cfg(feature = "federation")]
    return Ok(match crate::joined::lowered(session, catalog, cut)? {
        crate::joined::Lowered::Yes(q, narrowing) => Path::DataFusion(q, narrowing),
        crate::joined::Lowered::No(why) => Path::Evaluator(Some(why)),
    });
    #[cfg(not(feature = "federation"))]
    {
        let _ = (session, catalog, cut);
        Ok(Path::Evaluator(None))
    }
}

/// The step saying why the evaluator runs a query, if there is a reason.
fn evaluator_step(why: Option<String>) -> Vec<ExplainStep> {
    why.map(|why| ExplainStep {
        location: "engine".into(),
        operation: "reference evaluator".into(),
        detail: format!("the joins and the rest run in objectql's reference evaluator: {why}"),
    })
    .into_iter()
    .collect()
}

/// [`explain`] after running the query: the steps, each datasource query's
/// followed by the rows it shipped, and the number of rows returned.
pub(crate) async fn explain_analyze(
    session: &Session,
    query: &Query,
) -> Result<(Vec<ExplainStep>, usize)> {
    let catalog = session.engine().catalog()?;
    let cut = cut(&catalog, query, leading_joins(session, &catalog, query)?)?;
    // Without `federation` the evaluator is the only path.
    #[cfg_attr(
        not(feature = "federation"),
        allow(clippy::infallible_destructuring_match)
    )]
    let why = match path(session, &catalog, &cut)? {
        #[cfg(feature = "federation")]
        Path::DataFusion(q, narrowing) => {
            return Box::pin(crate::joined::explain_analyze(session, &q, &narrowing)).await;
        }
        Path::Evaluator(why) => why,
    };
    let mut shipped = Vec::new();
    let rows = Box::pin(evaluate(session, &catalog, &cut, &mut shipped)).await?;
    let mut steps = evaluator_step(why);
    let mut group = 0;
    for step in Box::pin(evaluated(session, cut)).await? {
        let query_step = step.operation == "datasource query";
        steps.push(step);
        if query_step {
            steps.push(ExplainStep {
                location: "engine".into(),
                operation: "rows shipped".into(),
                detail: shipped.get(group).copied().unwrap_or_default().to_string(),
            });
            group += 1;
        }
    }
    Ok((steps, rows.len()))
}

/// The explain steps of a cut query run in the reference evaluator.
async fn evaluated(session: &Session, cut: Cut) -> Result<Vec<ExplainStep>> {
    let limit = session.engine().join_key_limit();
    let mut steps = Vec::new();
    for group in &cut.groups {
        let object = group.query.object.as_deref().unwrap_or_default();
        let detail = match &group.join {
            None => format!(
                "`{object}`{} on datasource `{}`, as one driver query",
                if group.query.joins.is_empty() {
                    String::new()
                } else {
                    format!(
                        " with its {} same-datasource join(s)",
                        group.query.joins.len()
                    )
                },
                group.datasource
            ),
            Some(j) => format!(
                "`{object}` as `{}` on datasource `{}`{}",
                j.alias,
                group.datasource,
                if group.reducible.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", narrowed by the left side's keys of {} as `$in` (up to {limit} keys)",
                        key_pairs(group)
                    )
                }
            ),
        };
        steps.push(ExplainStep {
            location: "engine".into(),
            operation: "datasource query".into(),
            detail,
        });
        steps.extend(
            Box::pin(
                session
                    .for_datasource(&group.datasource)
                    .explain(&group.query),
            )
            .await?,
        );
        if let Some(j) = &group.join {
            steps.push(ExplainStep {
                location: "local".into(),
                operation: "join".into(),
                detail: format!(
                    "{} join `{}` as `{}` on {} (hash join on the equi-join columns)",
                    j.join_type.name(),
                    j.object,
                    j.alias,
                    j.on.to_json()
                ),
            });
        }
    }
    let rest = Plan {
        pushed: Query::new(cut.residual.object.clone().unwrap_or_default()),
        residual: Some(cut.residual),
    };
    steps.extend(rest.local_steps());
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectql_query_ast::Path;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        for (name, ds, fields) in [
            ("a", "one", serde_json::json!({"x": {"type": "integer"}})),
            (
                "b",
                "one",
                serde_json::json!({"a_id": {"type": "text"}, "y": {"type": "integer"}}),
            ),
            (
                "c",
                "two",
                serde_json::json!({"b_id": {"type": "text"}, "z": {"type": "integer"}}),
            ),
        ] {
            c.insert(
                ObjectSchema::from_json(&serde_json::json!({
                    "name": name, "datasource": ds, "fields": fields
                }))
                .expect("schema"),
            )
            .expect("insert");
        }
        c
    }

    fn join(t: JoinType, object: &str, alias: &str, on: &serde_json::Value) -> Join {
        Join {
            join_type: t,
            object: object.into(),
            alias: alias.into(),
            on: Filter::from_json(on, &Path::root("on")).expect("on"),
        }
    }

    #[test]
    fn the_same_datasource_prefix_is_one_group_and_filters_go_where_they_keep_their_meaning() {
        let cat = catalog();
        let mut q = Query::new("a");
        q.joins = vec![
            join(
                JoinType::Inner,
                "b",
                "bb",
                &serde_json::json!({"bb.a_id": {"$field": "id"}}),
            ),
            join(
                JoinType::Left,
                "c",
                "cc",
                &serde_json::json!({"cc.b_id": {"$field": "bb.id"}, "cc.z": {"$gt": 1}}),
            ),
        ];
        q.filter = Some(
            Filter::from_json(
                &serde_json::json!({
                    "x": 1, "bb.y": 2, "cc.z": {"$ne": 3}, "$or": [{"x": 2}, {"cc.z": 4}]
                }),
                &Path::root("where"),
            )
            .expect("where"),
        );
        assert!(spans_datasources(&cat, &q));
        let leading = same_datasource_prefix(&cat, &q).expect("prefix");
        let cut = cut(&cat, &q, leading).expect("cut");
        assert_eq!(cut.groups.len(), 2);
        assert_eq!(cut.groups[0].query.joins.len(), 1);
        // `x` and `bb.y` go to the base group; `cc.z $ne 3` must stay above
        // the left join (it matches the NULL-padded rows), and so must the
        // `$or` across groups.
        let first = cut.groups[0]
            .query
            .filter
            .as_ref()
            .expect("pushed")
            .to_json();
        assert_eq!(first, serde_json::json!({"$and": [{"x": 1}, {"bb.y": 2}]}));
        let rest = cut
            .residual
            .filter
            .as_ref()
            .expect("residual")
            .to_json()
            .to_string();
        assert!(rest.contains("$ne") && rest.contains("$or"), "{rest}");
        // The right-only `on` conjunct filters `c` itself, renamed.
        let second = cut.groups[1]
            .query
            .filter
            .as_ref()
            .expect("on pushed")
            .to_json();
        assert_eq!(second, serde_json::json!({"z": {"$gt": 1}}));
        assert_eq!(
            cut.groups[1].reducible,
            vec![("bb.id".to_owned(), "b_id".to_owned())]
        );
    }

    #[test]
    fn a_right_join_keeps_left_filters_above_it_and_sends_no_keys() {
        let cat = catalog();
        let mut q = Query::new("a");
        q.joins = vec![join(
            JoinType::Right,
            "c",
            "cc",
            &serde_json::json!({"cc.b_id": {"$field": "id"}, "cc.z": 1}),
        )];
        q.filter = Some(
            Filter::from_json(
                &serde_json::json!({"x": 1, "cc.z": 2}),
                &Path::root("where"),
            )
            .expect("where"),
        );
        let leading = same_datasource_prefix(&cat, &q).expect("prefix");
        let cut = cut(&cat, &q, leading).expect("cut");
        assert!(cut.groups[0].query.filter.is_none());
        assert!(cut.groups[1].reducible.is_empty());
        // `cc.z = 2` is on the preserved side of the right join: pushed.
        assert_eq!(
            cut.groups[1].query.filter.as_ref().map(Filter::to_json),
            Some(serde_json::json!({"z": 2}))
        );
        let on = cut.groups[1]
            .join
            .as_ref()
            .expect("join")
            .on
            .to_json()
            .to_string();
        assert!(on.contains("cc.z"), "a right join's `on` stays whole: {on}");
    }

    #[test]
    fn keys_beyond_the_limit_send_no_in_list() {
        let rel = Relation::new(
            Columns::new(vec!["k".into()]),
            vec![
                vec![Value::Int(1)],
                vec![Value::Int(2)],
                vec![Value::Int(1)],
                vec![Value::Null],
            ],
        );
        let pairs = [("k".to_owned(), "f".to_owned())];
        let f = reduction(&rel, &pairs, 2).expect("two keys fit");
        assert_eq!(f.to_json(), serde_json::json!({"f": {"$in": [1, 2]}}));
        assert!(reduction(&rel, &pairs, 1).is_none());
    }

    #[test]
    fn key_lists_past_a_quarter_of_the_bind_limit_go_in_chunks() {
        let ints = |r: std::ops::Range<i64>| r.map(Value::Int).collect::<Vec<_>>();
        let narrow = Filter::And(vec![
            Filter::cond("a", Op::In(ints(0..3))),
            Filter::cond("b", Op::In(ints(0..10))),
        ]);
        // A bind limit of 8: lists of at most 2 keys.
        let chunks = chunked(narrow.clone(), Some(8));
        assert_eq!(chunks.len(), 2, "the first long list is cut: {chunks:?}");
        let json: Vec<_> = chunks.iter().map(Filter::to_json).collect();
        assert_eq!(
            json[0],
            serde_json::json!({"$and": [{"b": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}, {"a": {"$in": [0, 1]}}]})
        );
        assert_eq!(
            json[1],
            serde_json::json!({"$and": [{"b": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}, {"a": {"$in": [2]}}]})
        );
        // Short enough, or no bind limit: one query.
        assert_eq!(chunked(narrow.clone(), Some(40)), vec![narrow.clone()]);
        assert_eq!(chunked(narrow.clone(), None), vec![narrow]);
    }
}
