//! One `EXPLAIN` tree for a federated plan.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use objectql_driver::Cx;
use objectql_query_ast::Result;

use crate::exec::ObjectScanExec;

/// The plan as an indented tree: `datafusion: <operator>` for what
/// DataFusion runs, `driver:<name> <datasource>.<object>` for a pushed
/// scan, followed by its pushed query and the driver's own explanation.
pub(crate) async fn tree(plan: &Arc<dyn ExecutionPlan>, analyze: bool) -> Result<String> {
    let mut out = String::new();
    // Depth-first, children in order; an explicit stack keeps deep plans
    // off the call stack.
    let mut stack: Vec<(Arc<dyn ExecutionPlan>, usize)> = vec![(Arc::clone(plan), 0)];
    while let Some((node, depth)) = stack.pop() {
        let pad = "  ".repeat(depth);
        let display = if analyze {
            DisplayableExecutionPlan::with_metrics(node.as_ref())
        } else {
            DisplayableExecutionPlan::new(node.as_ref())
        };
        if let Some(scan) = node.downcast_ref::<ObjectScanExec>() {
            let object = scan.query().object.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "{pad}driver:{} {}.{object}{}",
                scan.driver().name(),
                scan.datasource(),
                metrics_suffix(&display.one_line().to_string()),
            );
            let _ = writeln!(out, "{pad}  query: {}", scan.query().to_json());
            if analyze && let Some(n) = scan.rows_shipped() {
                let _ = writeln!(out, "{pad}  rows shipped: {n}");
            }
            if let Some(keys) = scan.join_keys() {
                let chunks = match scan.driver_queries() {
                    1 => String::new(),
                    n => format!(
                        " (in {n} driver queries: the key list is past the driver's bind limit)"
                    ),
                };
                let _ = writeln!(
                    out,
                    "{pad}  join keys sent{chunks}: {}",
                    abridged(&keys.to_json().to_string())
                );
            } else if scan.awaits_join_keys() {
                let _ = writeln!(
                    out,
                    "{pad}  narrowed by the join keys of the hash join above when it runs"
                );
            }
            let cx = Cx {
                catalog: scan.catalog(),
                tx: None,
                timeout: scan.timeout(),
            };
            for step in scan.driver().explain(cx, scan.query()).await? {
                let _ = writeln!(
                    out,
                    "{pad}  {} {}: {}",
                    step.location, step.operation, step.detail
                );
            }
        } else {
            let _ = writeln!(
                out,
                "{pad}datafusion: {}",
                display.one_line().to_string().trim_end()
            );
        }
        for child in node.children().into_iter().rev() {
            stack.push((Arc::clone(child), depth + 1));
        }
    }
    Ok(out)
}

/// The `, metrics=[…]` part of a node's one-line display, if any.
fn metrics_suffix(line: &str) -> String {
    line.find(", metrics=[")
        .map(|i| line[i..].trim_end().to_owned())
        .unwrap_or_default()
}

/// `json` cut to its first 1,000 characters (a key list may hold
/// thousands of keys), saying how long it was.
fn abridged(json: &str) -> String {
    const SHOWN: usize = 1_000;
    match json.char_indices().nth(SHOWN) {
        None => json.to_owned(),
        Some((at, _)) => format!(
            "{}… ({} characters in all)",
            &json[..at],
            json.chars().count()
        ),
    }
}
