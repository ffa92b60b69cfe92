//! `objectql-conformance`: runs the conformance suite against the drivers
//! built into this binary and prints the pass matrix as Markdown.
//!
//! ```sh
//! cargo run -p objectql-conformance --features memory -- matrix
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
            let harnesses: Vec<Box<dyn Harness>> = vec![Box::new(Memory)];
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
