//! `objectql-conformance`: runs the conformance suite against the drivers
//! built into this binary and prints the pass matrix as Markdown.
//!
//! ```sh
//! cargo run -p objectql-conformance --features memory,sqlite -- matrix
//! cargo run -p objectql-conformance --features memory -- list
//! ```
//!
//! With the `postgres` feature the PostgreSQL driver joins the matrix; its
//! server is `OBJECTQL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), one schema per case.
//! With `mysql`, the MySQL/MariaDB driver: `OBJECTQL_TEST_MYSQL_URL`
//! (default `mysql://root@127.0.0.1:3306/test`), one database per case,
//! named `{OBJECTQL_TEST_RUN_ID}_{case}`.
//! With `turso`, the Turso/libSQL driver on local files (its remote and
//! replica modes run the same suite in the driver's own tests).
//! With `mongo`, the MongoDB driver: `OBJECTQL_MONGO_URL` (required), one
//! database per case.

use std::process::ExitCode;
use std::sync::Arc;

use objectql_conformance::harnesses::Memory;
#[cfg(feature = "mongo")]
use objectql_conformance::harnesses::Mongo;
#[cfg(feature = "mysql")]
use objectql_conformance::harnesses::MySql;
#[cfg(feature = "postgres")]
use objectql_conformance::harnesses::Postgres;
#[cfg(feature = "sqlite")]
use objectql_conformance::harnesses::Sqlite;
#[cfg(feature = "turso")]
use objectql_conformance::harnesses::Turso;
use objectql_conformance::{Harness, Outcome, Spread, all_cases, matrix_markdown, run_all};

/// The driver pairs the multi-object cases also run spread over.
const SPREAD_PAIRS: [(&str, &str); 4] = [
    ("memory", "sqlite"),
    ("sqlite", "postgres"),
    ("postgres", "mysql"),
    ("mysql", "mongodb"),
];

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "matrix".into());
    match command.as_str() {
        "list" => {
            for c in all_cases() {
                println!("{}::{}", c.file, c.name);
            }
            ExitCode::SUCCESS
        }
        "matrix" => {
            #[cfg(any(feature = "sqlite", feature = "turso"))]
            let scratch = match tempdir() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("cannot create a scratch directory: {e}");
                    return ExitCode::FAILURE;
                }
            };
            #[cfg(feature = "mongo")]
            let Some(mongo) = Mongo::from_env() else {
                eprintln!(
                    "OBJECTQL_MONGO_URL is not set: the mongo feature needs a MongoDB server (scripts/test starts one)"
                );
                return ExitCode::FAILURE;
            };
            let harnesses: Vec<Arc<dyn Harness>> = vec![
                Arc::new(Memory),
                #[cfg(feature = "sqlite")]
                Arc::new(Sqlite(scratch.clone())),
                #[cfg(feature = "postgres")]
                Arc::new(Postgres::from_env()),
                #[cfg(feature = "mysql")]
                Arc::new(MySql::from_env()),
                #[cfg(feature = "turso")]
                Arc::new(Turso(scratch.clone())),
                #[cfg(feature = "mongo")]
                Arc::new(mongo),
            ];
            // The multi-object cases again, their objects spread over two
            // drivers (both ways round), for each pair whose drivers are built in.
            let by_name = |n: &str| harnesses.iter().find(|h| h.name() == n).cloned();
            let mut spreads: Vec<Arc<dyn Harness>> = Vec::new();
            for (a, b) in SPREAD_PAIRS {
                if let (Some(a), Some(b)) = (by_name(a), by_name(b)) {
                    for (first, second) in [(a.clone(), b.clone()), (b, a)] {
                        spreads.push(Arc::new(Spread { first, second }));
                    }
                }
            }
            let mut results = Vec::new();
            let mut spread_results = Vec::new();
            let mut failed = false;
            for h in harnesses.iter().chain(&spreads) {
                let outcomes = run_all(h.as_ref(), 8).await;
                for (id, o) in &outcomes {
                    if let Outcome::Failed(why) = o {
                        failed = true;
                        eprintln!("FAILED {}::{} on {}: {why}", id.file, id.name, h.name());
                    }
                }
                if h.spreads() {
                    spread_results.push((h.name(), outcomes));
                } else {
                    results.push((h.name(), outcomes));
                }
            }
            #[cfg(any(feature = "sqlite", feature = "turso"))]
            let _ = std::fs::remove_dir_all(&scratch);
            print!("{}", matrix_markdown(&results));
            if !spread_results.is_empty() {
                println!("\nObjects spread over two datasources (first+second):\n");
                print!("{}", matrix_markdown(&spread_results));
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        other => {
            eprintln!("unknown command `{other}`; use `matrix` or `list`");
            ExitCode::from(2)
        }
    }
}

/// A fresh directory under the system temporary directory.
#[cfg(any(feature = "sqlite", feature = "turso"))]
fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("objectql-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
