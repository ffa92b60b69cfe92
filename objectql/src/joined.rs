//! Queries across datasources on DataFusion operators (the `federation`
//! feature).
//!
//! [`across`](crate::across) cuts the query into one driver query per
//! group. Here each group is planned like any single-datasource query (what
//! its driver does not run stays as a filter on its rows) and becomes a
//! [`Source`] of a [`JoinedQuery`]; `objectql-federation` lowers the joins
//! and the rest onto DataFusion, which streams each group's Arrow batches
//! and sends a hash join's build-side keys to the next group's driver.

use futures::{StreamExt, TryStreamExt};
use objectql_driver::{BatchStream, ExplainStep};
use std::sync::Arc;

use objectql_federation::datafusion::arrow::array::{RecordBatch, new_null_array};
use objectql_federation::datafusion::arrow::compute::{CastOptions, cast_with_options};
use objectql_federation::datafusion::arrow::datatypes::SchemaRef;
use objectql_federation::{Federation, JoinedQuery, Source, batches_to_records, from_datafusion};
use objectql_query_ast::{Catalog, DriverErrorKind, Error, Record, Result};

use crate::across::{Cut, first_columns, key_pairs, object_columns, schema_of};
use crate::session::Session;

/// What decides the path of a cut query.
pub(crate) enum Lowered {
    /// It runs on DataFusion; with, for each source, what may narrow it.
    Yes(Box<JoinedQuery>, Vec<Option<String>>),
    /// It stays in the reference evaluator, for this reason.
    No(String),
}

/// The cut query as a [`JoinedQuery`], or why it stays in the evaluator.
pub(crate) fn lowered(session: &Session, catalog: &Catalog, cut: &Cut) -> Result<Lowered> {
    if !session.engine().joins_on_datafusion() {
        return Ok(Lowered::No(
            "the engine runs joins in the reference evaluator".into(),
        ));
    }
    let mut sources = Vec::with_capacity(cut.groups.len());
    let mut narrowing = Vec::with_capacity(cut.groups.len());
    let limit = session.engine().join_key_limit();
    let mut joins = Vec::with_capacity(cut.groups.len().saturating_sub(1));
    for group in &cut.groups {
        let on = session.for_datasource(&group.datasource);
        let prepared = on.prepare(&group.query)?;
        let mut filter = None;
        if let Some(r) = &prepared.plan.residual {
            // A group is an object (with its same-datasource joins) and a
            // filter: what its driver does not run can only be a filter.
            let mut bare = group.query.clone();
            bare.filter = None;
            bare.joins.clear();
            bare.expand.clear();
            let mut rest = r.clone();
            rest.filter = None;
            if rest != bare {
                return Ok(Lowered::No(format!(
                    "datasource `{}` leaves more than a filter of its part to run locally",
                    group.datasource
                )));
            }
            filter.clone_from(&r.filter);
        }
        let columns = match &group.join {
            None => first_columns(catalog, &group.query)?
                .into_iter()
                .map(|c| (c.clone(), c))
                .collect(),
            Some(j) => object_columns(schema_of(catalog, &j.object)?)
                .into_iter()
                .map(|c| {
                    let name = format!("{}.{c}", j.alias);
                    (c, name)
                })
                .collect(),
        };
        if let Some(j) = &group.join {
            joins.push((j.join_type, j.on.clone()));
        }
        narrowing.push((limit > 0 && !group.reducible.is_empty()).then(|| {
            format!(
                ", narrowed by the left side's keys of {} as `$in` when DataFusion's \
                 hash join hands them over (up to {limit} keys; the tree below marks \
                 the scans it does)",
                key_pairs(group)
            )
        }));
        sources.push(Source {
            datasource: group.datasource.clone(),
            query: prepared.plan.pushed,
            columns,
            filter,
            tx: on.tx_id(),
        });
    }
    let joined = JoinedQuery {
        sources,
        joins,
        rest: cut.residual.clone(),
    };
    Ok(match joined.refusal(catalog)? {
        Some(why) => Lowered::No(why),
        None => Lowered::Yes(Box::new(joined), narrowing),
    })
}

/// The rows of a lowered query.
pub(crate) async fn find(session: &Session, q: &JoinedQuery) -> Result<Vec<Record>> {
    let batches: Vec<RecordBatch> = stream(session, q).await?.try_collect().await?;
    batches_to_records(&batches)
}

/// The Arrow batches of a lowered query, streamed.
pub(crate) async fn stream(session: &Session, q: &JoinedQuery) -> Result<BatchStream> {
    let df = session.federation_of_datasources()?.joined(q).await?;
    let s = df.execute_stream().await.map_err(from_datafusion)?;
    Ok(Box::pin(s.map(|b| b.map_err(from_datafusion))))
}

/// [`stream`] with each batch carrying `arrow`'s fields, in its order (a
/// column DataFusion does not produce, a virtual field, is all NULL). A
/// column of another type (a decimal sum, wider on DataFusion) is cast to
/// the field's; a value it cannot hold is a `Decode` error, as when the
/// evaluator's rows are made into a batch.
pub(crate) async fn stream_as(
    session: &Session,
    q: &JoinedQuery,
    arrow: SchemaRef,
) -> Result<BatchStream> {
    let s = stream(session, q).await?;
    // A value the type cannot hold is an error, never NULL.
    let exact = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    Ok(Box::pin(s.map(move |b| {
        let b = b?;
        let columns = arrow
            .fields()
            .iter()
            .map(|f| match b.column_by_name(f.name()) {
                Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
                Some(c) => cast_with_options(c, f.data_type(), &exact).map_err(|e| {
                    Error::driver(
                        DriverErrorKind::Decode,
                        format!("column `{}` does not fit its type: {e}", f.name()),
                    )
                }),
                None => Ok(new_null_array(f.data_type(), b.num_rows())),
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(Arc::clone(&arrow), columns)
            .map_err(|e| Error::internal(format!("a joined query's batch: {e}")))
    })))
}

/// The explain steps of a lowered query: each source's driver plan, then
/// the DataFusion tree that runs the query.
pub(crate) async fn explain(
    session: &Session,
    q: &JoinedQuery,
    narrowing: &[Option<String>],
) -> Result<Vec<ExplainStep>> {
    let mut steps = sources(session, q, narrowing).await?;
    let df = session.federation_of_datasources()?.joined(q).await?;
    steps.push(ExplainStep {
        location: "datafusion".into(),
        operation: "plan".into(),
        detail: Federation::explain_frame(df, false).await?,
    });
    Ok(steps)
}

/// [`explain`] after running the query: the DataFusion tree carries the
/// rows each operator produced, the rows each scan's driver shipped and
/// the join keys it was sent; with the number of rows returned.
pub(crate) async fn explain_analyze(
    session: &Session,
    q: &JoinedQuery,
    narrowing: &[Option<String>],
) -> Result<(Vec<ExplainStep>, usize)> {
    let mut steps = sources(session, q, narrowing).await?;
    let df = session.federation_of_datasources()?.joined(q).await?;
    let (tree, returned) = Federation::explain_frame_counted(df).await?;
    steps.push(ExplainStep {
        location: "datafusion".into(),
        operation: "plan (analyzed)".into(),
        detail: tree,
    });
    Ok((steps, returned))
}

/// Each source's step: what its driver query is and what narrows it, then
/// its driver's own plan.
async fn sources(
    session: &Session,
    q: &JoinedQuery,
    narrowing: &[Option<String>],
) -> Result<Vec<ExplainStep>> {
    let mut steps = Vec::new();
    for (i, s) in q.sources.iter().enumerate() {
        steps.push(ExplainStep {
            location: "engine".into(),
            operation: "datasource query".into(),
            detail: format!(
                "`{}` on datasource `{}`, as one driver query{}{}",
                s.query.object.as_deref().unwrap_or_default(),
                s.datasource,
                narrowing.get(i).cloned().flatten().unwrap_or_default(),
                match &s.filter {
                    Some(f) => format!(", then filtered by DataFusion on {}", f.to_json()),
                    None => String::new(),
                }
            ),
        });
        steps.extend(Box::pin(session.for_datasource(&s.datasource).explain(&s.query)).await?);
    }
    Ok(steps)
}
