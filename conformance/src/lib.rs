//! The objectql conformance suite: one set of data-driven cases that every
//! driver — ours or a community one — must answer exactly like the
//! reference (the memory driver).
//!
//! A driver crate runs the whole suite with a harness and one macro call in
//! `tests/conformance.rs`:
//!
//! ```no_run
//! use std::sync::Arc;
//! use objectql_conformance::{Harness, async_trait};
//!
//! struct MyHarness;
//!
//! #[async_trait]
//! impl Harness for MyHarness {
//!     fn name(&self) -> String { "mydb".into() }
//!     async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
//!         // Connect a driver over a fresh, isolated schema/database called `namespace`.
//!         Err(objectql::Error::config(format!("connect `{namespace}` to your backend here")))
//!     }
//! }
//!
//! objectql_conformance::conformance_suite!(MyHarness);
//! ```
//!
//! That expands to one `#[test]` per case (`operators::eq_string`, …), so a
//! failure names its case. Cases are JSON files embedded in this crate (see
//! `CASES.md` for the format); [`matrix_markdown`] renders the pass matrix
//! of several drivers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub use async_trait::async_trait;
use objectql::{Driver, Result};

mod coded;
mod compare;
#[cfg(feature = "memory")]
pub mod differential;
pub mod faults;
pub mod generate;
#[cfg(any(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "turso",
    feature = "mongo"
))]
pub mod harnesses;
pub mod identifiers;
pub mod liveness;
mod runner;
pub mod storage;

pub use compare::{DISTANCE_TOLERANCE, distance_eq, json_eq, multiset_eq, multiset_eq_by, row_eq};
pub use runner::{Outcome, run_case};

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// Gives each case an isolated namespace of the driver under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The driver's name, for reports.
    fn name(&self) -> String;

    /// A driver over a fresh, isolated namespace (schema, database,
    /// collection prefix…) called `namespace` (`[a-z0-9_]`, ≤ 40 chars). A
    /// case with several datasources asks for several namespaces.
    async fn connect(&self, namespace: &str) -> Result<Arc<dyn Driver>>;

    /// Removes what `connect(namespace)` created. Called after every case.
    async fn cleanup(&self, namespace: &str) -> Result<()> {
        let _ = namespace;
        Ok(())
    }

    /// Whether the runner spreads a case's objects over datasources (see
    /// [`Spread`]). Single-driver harnesses keep the default, `false`.
    fn spreads(&self) -> bool {
        false
    }
}

/// Two harnesses as one: the runner puts a case's objects alternately in a
/// datasource of the first driver and one of the second (object 0, 2, …
/// on `first`; 1, 3, … on `second`), so every join and `expand` between
/// neighbouring objects crosses datasources. The answers must still be the
/// memory reference's. [`spread_cases`] lists the cases it runs.
pub struct Spread {
    /// The driver of the even-numbered objects.
    pub first: Arc<dyn Harness>,
    /// The driver of the odd-numbered objects.
    pub second: Arc<dyn Harness>,
}

/// The marker the runner puts in a spread datasource's name (and so in its
/// namespace) to say which driver holds it.
pub(crate) const SPREAD_MARKS: [&str; 2] = ["s1_", "s2_"];

impl Spread {
    fn pick(&self, namespace: &str) -> &dyn Harness {
        if namespace.contains(&format!("_{}", SPREAD_MARKS[1])) {
            self.second.as_ref()
        } else {
            self.first.as_ref()
        }
    }
}

#[async_trait]
impl Harness for Spread {
    fn name(&self) -> String {
        format!("{}+{}", self.first.name(), self.second.name())
    }
    async fn connect(&self, namespace: &str) -> Result<Arc<dyn Driver>> {
        self.pick(namespace).connect(namespace).await
    }
    async fn cleanup(&self, namespace: &str) -> Result<()> {
        self.pick(namespace).cleanup(namespace).await
    }
    fn spreads(&self) -> bool {
        true
    }
}

#[async_trait]
impl<H: Harness + ?Sized> Harness for Arc<H> {
    fn name(&self) -> String {
        (**self).name()
    }
    async fn connect(&self, namespace: &str) -> Result<Arc<dyn Driver>> {
        (**self).connect(namespace).await
    }
    async fn cleanup(&self, namespace: &str) -> Result<()> {
        (**self).cleanup(namespace).await
    }
    fn spreads(&self) -> bool {
        (**self).spreads()
    }
}

/// One case, identified by file and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseId {
    /// The case file's stem (`operators`).
    pub file: String,
    /// The case name.
    pub name: String,
}

fn parsed_files() -> &'static HashMap<&'static str, std::result::Result<serde_json::Value, String>>
{
    static FILES: OnceLock<HashMap<&'static str, std::result::Result<serde_json::Value, String>>> =
        OnceLock::new();
    FILES.get_or_init(|| {
        CASE_FILES
            .iter()
            .map(|(name, text)| {
                (
                    *name,
                    serde_json::from_str(text).map_err(|e| format!("{name}.json: {e}")),
                )
            })
            .collect()
    })
}

/// Every case, in file order.
pub fn all_cases() -> Vec<CaseId> {
    let files = parsed_files();
    CASE_FILES
        .iter()
        .flat_map(|(file, _)| {
            let names: Vec<String> = files
                .get(file)
                .and_then(|r| r.as_ref().ok())
                .and_then(|j| j.get("cases"))
                .and_then(serde_json::Value::as_array)
                .map(|cases| {
                    cases
                        .iter()
                        .filter_map(|c| {
                            c.get("name")
                                .and_then(serde_json::Value::as_str)
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.into_iter().map(|name| CaseId {
                file: (*file).to_owned(),
                name,
            })
        })
        .collect()
}

/// Runs one case against `harness`.
pub async fn run(harness: &dyn Harness, file: &str, case: &str) -> Outcome {
    match parsed_files().get(file) {
        Some(Ok(json)) => run_case(harness, file, json, case).await,
        Some(Err(e)) => Outcome::Failed(format!("case file is not valid JSON: {e}")),
        None => Outcome::Failed(format!("no case file `{file}`")),
    }
}

/// The cases a [`Spread`] harness runs: those of every case file with
/// more than one object, except cases that name a datasource themselves
/// (a transaction's) or register objects in their steps, whose meaning the
/// spread would change.
pub fn spread_cases() -> Vec<CaseId> {
    let files = parsed_files();
    all_cases()
        .into_iter()
        .filter(|id| {
            let Some(Ok(file)) = files.get(id.file.as_str()) else {
                return false;
            };
            let objects = file
                .get("objects")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            let case = file
                .get("cases")
                .and_then(serde_json::Value::as_array)
                .and_then(|cases| {
                    cases.iter().find(|c| {
                        c.get("name").and_then(serde_json::Value::as_str) == Some(&id.name)
                    })
                });
            objects > 1
                && case.is_some_and(|c| {
                    let text = c.to_string();
                    !text.contains("\"datasource\"") && !text.contains("\"op\":\"register\"")
                })
        })
        .collect()
}

/// Runs every case against `harness` (for a [`Spread`] harness, the
/// [`spread_cases`]), `concurrency` at a time.
pub async fn run_all(harness: &dyn Harness, concurrency: usize) -> Vec<(CaseId, Outcome)> {
    use futures::StreamExt;
    let cases = if harness.spreads() {
        spread_cases()
    } else {
        all_cases()
    };
    futures::stream::iter(cases)
        .map(|id| async move {
            let outcome = run(harness, &id.file, &id.name).await;
            (id, outcome)
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// The test body generated by [`conformance_suite!`]: runs one case on a
/// fresh runtime and panics with the failure, so the test fails.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn run_test(harness: &dyn Harness, file: &str, case: &str) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    };
    match runtime.block_on(run(harness, file, case)) {
        Outcome::Passed | Outcome::Unsupported(_) => {}
        Outcome::Failed(why) => panic!(
            "conformance case {file}::{case} failed on `{}`:\n{why}",
            harness.name()
        ),
    }
}

/// Renders results of several drivers as a Markdown matrix: one row per
/// case file, one column per driver, `passed/total` (and how many were
/// refused as undeclared features), then a total row.
pub fn matrix_markdown(results: &[(String, Vec<(CaseId, Outcome)>)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("| cases |");
    for (driver, _) in results {
        let _ = write!(out, " {driver} |");
    }
    out.push_str("\n|---|");
    for _ in results {
        out.push_str("---|");
    }
    out.push('\n');
    let mut files: Vec<&str> = CASE_FILES.iter().map(|(f, _)| *f).collect();
    files.push("**total**");
    for file in files {
        let in_file = |id: &CaseId| file == "**total**" || id.file == file;
        // A file none of the runs covered (a spread run's single-object files).
        if results
            .iter()
            .all(|(_, outcomes)| !outcomes.iter().any(|(id, _)| in_file(id)))
        {
            continue;
        }
        let _ = write!(out, "| {file} |");
        for (_, outcomes) in results {
            let selected: Vec<&Outcome> = outcomes
                .iter()
                .filter(|(id, _)| in_file(id))
                .map(|(_, o)| o)
                .collect();
            let passed = selected
                .iter()
                .filter(|o| matches!(o, Outcome::Passed))
                .count();
            let unsupported = selected
                .iter()
                .filter(|o| matches!(o, Outcome::Unsupported(_)))
                .count();
            let failed = selected.len() - passed - unsupported;
            let mut cell = format!("{passed}/{}", selected.len());
            if unsupported > 0 {
                let _ = write!(cell, " ({unsupported} unsupported)");
            }
            if failed > 0 {
                let _ = write!(cell, " **{failed} failed**");
            }
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}
