//! Embeds every case file and generates `conformance_suite!`, which expands
//! to one `#[test]` per case (a module per file), so a failure names its case.

use std::fmt::Write as _;
use std::path::Path;

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn ident(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.insert_str(0, "r#");
    }
    out
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();

    let mut table = String::from(
        "/// Every embedded case file: (name, JSON text).\npub static CASE_FILES: &[(&str, &str)] = &[\n",
    );
    let mut modules = String::new();
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let _ = writeln!(
            table,
            "    ({stem:?}, include_str!({:?})),",
            path.display().to_string()
        );
        // Invalid JSON still gets one test, which reports the parse error.
        let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|j| j.get("cases").and_then(|c| c.as_array()).cloned())
            .map_or_else(
                || vec!["__file".to_owned()],
                |cases| {
                    cases
                        .iter()
                        .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                        .collect()
                },
            );
        let _ = writeln!(
            modules,
            "        #[allow(non_snake_case)] mod {} {{\n            #[allow(unused_imports)] use super::*;",
            ident(&stem)
        );
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let mut fn_name = ident(&name);
            while !seen.insert(fn_name.clone()) {
                fn_name.push('_');
            }
            let _ = writeln!(
                modules,
                "            #[test] fn {fn_name}() {{ $crate::run_test(&$harness, {stem:?}, {name:?}); }}"
            );
        }
        modules.push_str("        }\n");
    }
    table.push_str("];\n");
    let out = format!(
        "{table}\n/// Expands to one `#[test]` per conformance case, each running the case\n/// against the harness that `$harness` evaluates to (it is evaluated once per test).\n#[macro_export]\nmacro_rules! conformance_suite {{\n    ($harness:expr) => {{\n{modules}    }};\n}}\n"
    );
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("cases.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}
