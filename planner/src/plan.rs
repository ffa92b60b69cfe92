//! The capability-aware split of a query into the part a driver runs (the
//! *pushed* query) and the part run locally (the *residual*), with exactly
//! the reference semantics of [`crate::eval`].
//!
//! Nothing is dropped: a condition the driver cannot evaluate exactly runs
//! locally (`Unsupported`), or is pushed as a superset pre-filter and checked
//! again locally (`Inexact`); a query shape the driver cannot push (sort,
//! paging, aggregation, distinct, cursor) runs locally over the rows the
//! pushed filter returns.

use objectql_driver::{Capabilities, ExplainStep, Feature, Pushdown};
use objectql_query_ast::{Condition, Error, Filter, ObjectSchema, Query, Result};

/// A planned query.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What the driver runs.
    pub pushed: Query,
    /// What runs locally over the pushed query's rows (`None`: nothing).
    pub residual: Option<Query>,
}

impl Plan {
    /// The plan's steps that run locally, for `EXPLAIN`.
    pub fn local_steps(&self) -> Vec<ExplainStep> {
        let Some(r) = &self.residual else {
            return Vec::new();
        };
        let step = |operation: &str, detail: String| ExplainStep {
            location: "local".into(),
            operation: operation.into(),
            detail,
        };
        let mut steps = Vec::new();
        if let Some(f) = &r.filter {
            steps.push(step("filter", f.to_json().to_string()));
        }
        if let Some(n) = &r.nearest {
            steps.push(step(
                "nearest",
                format!(
                    "exact {} top {} by `{}`",
                    n.effective_metric().name(),
                    n.k,
                    n.field
                ),
            ));
        }
        if r.is_aggregate() {
            steps.push(step(
                "aggregate",
                format!(
                    "{} keys, {} aggregations",
                    r.group_by.len(),
                    r.aggregations.len()
                ),
            ));
        }
        if r.distinct {
            steps.push(step("distinct", String::new()));
        }
        if !r.order_by.is_empty() {
            let keys: Vec<String> = r
                .order_by
                .iter()
                .map(|s| format!("{} {:?}", s.field, s.order))
                .collect();
            steps.push(step("sort", keys.join(", ")));
        }
        if r.limit.is_some() || r.offset.is_some() || r.cursor.is_some() {
            steps.push(step(
                "page",
                format!("limit {:?} offset {:?}", r.limit, r.offset),
            ));
        }
        steps
    }
}

/// Splits a filter into the pushed part and the residual part.
///
/// Top-level conjuncts are classified one by one; a disjunction or negation
/// is pushed only when every condition inside it is `Exact`.
pub fn split_filter(
    filter: &Filter,
    classify: &dyn Fn(&Condition) -> Pushdown,
) -> (Option<Filter>, Option<Filter>) {
    let conjuncts: Vec<&Filter> = match filter {
        Filter::And(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut pushed = Vec::new();
    let mut residual = Vec::new();
    for c in conjuncts {
        match classify_filter(c, classify) {
            Pushdown::Exact => pushed.push(c.clone()),
            Pushdown::Inexact => {
                pushed.push(c.clone());
                residual.push(c.clone());
            }
            Pushdown::Unsupported => residual.push(c.clone()),
        }
    }
    let wrap = |mut v: Vec<Filter>| match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(Filter::And(v)),
    };
    (wrap(pushed), wrap(residual))
}

/// How a whole filter pushes, from its conditions' classifications: an
/// `AND` or `OR` is as good as its worst part, and a negation pushes only
/// when exact (the negation of a superset is a subset).
pub fn classify_filter(f: &Filter, classify: &dyn Fn(&Condition) -> Pushdown) -> Pushdown {
    match f {
        Filter::Condition(c) => classify(c),
        Filter::And(items) => {
            // Inside AND, an inexact part keeps the whole a superset.
            let mut out = Pushdown::Exact;
            for i in items {
                match classify_filter(i, classify) {
                    Pushdown::Exact => {}
                    Pushdown::Inexact => out = Pushdown::Inexact,
                    Pushdown::Unsupported => return Pushdown::Unsupported,
                }
            }
            out
        }
        Filter::Or(items) => {
            let mut out = Pushdown::Exact;
            for i in items {
                match classify_filter(i, classify) {
                    Pushdown::Exact => {}
                    Pushdown::Inexact => out = Pushdown::Inexact,
                    Pushdown::Unsupported => return Pushdown::Unsupported,
                }
            }
            out
        }
        // The negation of a superset is a subset: only exact negations push.
        Filter::Not(inner) => match classify_filter(inner, classify) {
            Pushdown::Exact => Pushdown::Exact,
            _ => Pushdown::Unsupported,
        },
    }
}

/// Plans a validated query for the driver called `driver` with `caps`.
///
/// A `nearest` query is pushed whole to a driver with [`Feature::Vectors`];
/// when part of its filter cannot be pushed, the filter is pushed as usual
/// and the nearest search runs locally (exactly) over the rows it returns.
///
/// # Errors
/// `Unsupported` for what cannot run locally either: joins the driver cannot
/// run (joins across datasources belong to federation), full-text `search`
/// on a driver without [`Feature::FullText`], and `nearest` on a driver
/// without [`Feature::Vectors`].
pub fn plan(
    query: &Query,
    schema: &ObjectSchema,
    driver: &str,
    caps: &Capabilities,
    classify: &dyn Fn(&Condition) -> Pushdown,
) -> Result<Plan> {
    let _ = schema;
    if !query.joins.is_empty() && !caps.joins {
        return Err(Error::unsupported("joins", driver));
    }
    if query.search.is_some() && !caps.has(Feature::FullText) {
        return Err(Error::unsupported(Feature::FullText.as_str(), driver));
    }
    // Never answered locally for a driver without vectors: that would scan
    // every row behind the caller's back.
    if query.nearest.is_some() && !caps.has(Feature::Vectors) {
        return Err(Error::unsupported(Feature::Vectors.as_str(), driver));
    }
    let (pushed_filter, residual_filter) = match &query.filter {
        Some(f) if caps.filters => split_filter(f, classify),
        Some(f) => (None, Some(f.clone())),
        None => (None, None),
    };
    let shape_pushable = (query.order_by.is_empty() || caps.sorting)
        && (query.limit.is_none() && query.offset.is_none() || caps.paging)
        && (query.cursor.is_none() || caps.cursor)
        && (!query.is_aggregate() || caps.aggregations)
        && (!query.distinct || caps.distinct)
        && (query.fields.is_none() || caps.projection);
    if residual_filter.is_none() && shape_pushable {
        return Ok(Plan {
            pushed: query.clone(),
            residual: None,
        });
    }
    Ok(filter_only(query, pushed_filter, residual_filter))
}

/// Pushes the filter (and joins) only; everything else runs locally.
fn filter_only(
    query: &Query,
    pushed_filter: Option<Filter>,
    residual_filter: Option<Filter>,
) -> Plan {
    let mut pushed = Query::new(query.object.clone().unwrap_or_default());
    pushed.filter = pushed_filter;
    pushed.joins.clone_from(&query.joins);
    let mut residual = query.clone();
    residual.filter = residual_filter;
    residual.joins.clear();
    residual.expand.clear();
    Plan {
        pushed,
        residual: Some(residual),
    }
}

/// The fallback when a driver refuses a fully pushed query's *shape* (its
/// compiler answered `Unsupported`, e.g. date buckets in a timezone its
/// backend cannot compute): the same split of the filter, and everything
/// else local.
pub fn plan_without_shape(
    query: &Query,
    caps: &Capabilities,
    classify: &dyn Fn(&Condition) -> Pushdown,
) -> Plan {
    let (pushed_filter, residual_filter) = match &query.filter {
        Some(f) if caps.filters => split_filter(f, classify),
        Some(f) => (None, Some(f.clone())),
        None => (None, None),
    };
    filter_only(query, pushed_filter, residual_filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectql_query_ast::{Op, field};

    fn no_contains(c: &Condition) -> Pushdown {
        match c.op {
            Op::Contains(_) => Pushdown::Unsupported,
            Op::IContains(_) => Pushdown::Inexact,
            _ => Pushdown::Exact,
        }
    }

    #[test]
    fn conjuncts_split_by_classification() {
        let f = field("a")
            .eq(1)
            .and(field("b").contains("x"))
            .and(field("c").icontains("y"));
        let (p, r) = split_filter(&f, &no_contains);
        assert_eq!(p, Some(field("a").eq(1).and(field("c").icontains("y"))));
        assert_eq!(
            r,
            Some(field("b").contains("x").and(field("c").icontains("y")))
        );
    }

    #[test]
    fn negated_inexact_is_not_pushed() {
        let f = field("c").icontains("y").not();
        let (p, r) = split_filter(&f, &no_contains);
        assert_eq!(p, None);
        assert_eq!(r, Some(f));
    }

    #[test]
    fn a_scan_only_driver_gets_a_bare_scan() {
        let q = Query::new("t").filter(field("a").eq(1)).asc("a").limit(3);
        let caps = Capabilities::default();
        let p = plan(&q, &ObjectSchema::new("t"), "scan", &caps, &|_| {
            Pushdown::Exact
        })
        .unwrap();
        assert_eq!(p.pushed, Query::new("t"));
        assert_eq!(p.residual.as_ref().and_then(|r| r.limit), Some(3));
        assert!(!p.local_steps().is_empty());
    }

    #[test]
    fn nearest_without_vectors_is_refused_not_run_locally() {
        let q = Query::new("t").nearest(objectql_query_ast::Nearest::new("e", [1.0], 3));
        let e = plan(
            &q,
            &ObjectSchema::new("t"),
            "scan",
            &Capabilities::everything(),
            &|_| Pushdown::Exact,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { feature, driver } if feature == "vectors" && driver == "scan"),
            "{e}"
        );
        let caps = Capabilities::everything().with(Feature::Vectors);
        let p = plan(&q, &ObjectSchema::new("t"), "v", &caps, &|_| {
            Pushdown::Exact
        })
        .unwrap();
        assert_eq!(p.pushed, q);
        assert!(p.residual.is_none());
        // A filter the driver cannot run: the filter is pushed, nearest runs locally.
        let q = q.filter(objectql_query_ast::field("a").eq(1));
        let p = plan(&q, &ObjectSchema::new("t"), "v", &caps, &|_| {
            Pushdown::Unsupported
        })
        .unwrap();
        assert_eq!(p.pushed, Query::new("t"));
        assert!(p.residual.as_ref().is_some_and(|r| r.nearest.is_some()));
        assert!(p.local_steps().iter().any(|s| s.operation == "nearest"));
    }

    #[test]
    fn search_without_full_text_is_refused_not_dropped() {
        let q = Query::from_json(&serde_json::json!({"object": "t", "search": "hello"})).unwrap();
        let e = plan(
            &q,
            &ObjectSchema::new("t"),
            "scan",
            &Capabilities::everything(),
            &|_| Pushdown::Exact,
        )
        .unwrap_err();
        assert_eq!(e.category(), "unsupported");
    }
}
