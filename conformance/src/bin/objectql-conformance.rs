//! `objectql-conformance`: runs the conformance suite against the drivers
//! built into this binary and prints the pass matrix as Markdown.
//!
//! ```sh
//! cargo run -p objectql-conformance --features memory,sqlite -- matrix
//! cargo run -p objectql-conformance --features memory -- list
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use objectql_conformance::{Harness, Outcome, all_cases, async_trait, matrix_markdown, run_all};

struct Memory;

#[async_trait]
impl Harness for Memory {
    fn name(&self) -> String {
        "memory".into()
    }
    async fn connect(&self, _namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        Ok(Arc::new(objectql::MemoryDriver::new()))
    }
}

#[cfg(feature = "sqlite")]
struct Sqlite(std::path::PathBuf);

#[cfg(feature = "sqlite")]
#[async_trait]
impl Harness for Sqlite {
    fn name(&self) -> String {
        "sqlite".into()
    }
    async fn connect(&self, namespace: &str) -> objectql::Result<Arc<dyn objectql::Driver>> {
        let path = self.0.join(format!("{namespace}.db"));
        Ok(Arc::new(
            objectql::SqliteDriver::open(objectql::SqliteOptions::file(path)).await?,
        ))
    }
    async fn cleanup(&self, namespace: &str) -> objectql::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.0.join(format!("{namespace}.db{suffix}")));
        }
        Ok(())
    }
}

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
            #[cfg(feature = "sqlite")]
            let scratch = match tempdir() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("cannot create a scratch directory: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let harnesses: Vec<Box<dyn Harness>> = vec![
                Box::new(Memory),
                #[cfg(feature = "sqlite")]
                Box::new(Sqlite(scratch.clone())),
            ];
            let mut results = Vec::new();
            let mut failed = false;
            for h in &harnesses {
                let outcomes = run_all(h.as_ref(), 8).await;
                for (id, o) in &outcomes {
                    if let Outcome::Failed(why) = o {
                        failed = true;
                        eprintln!("FAILED {}::{} on {}: {why}", id.file, id.name, h.name());
                    }
                }
                results.push((h.name(), outcomes));
            }
            #[cfg(feature = "sqlite")]
            let _ = std::fs::remove_dir_all(&scratch);
            print!("{}", matrix_markdown(&results));
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
#[cfg(feature = "sqlite")]
fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("objectql-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
