//! Every generated query compiles (or is refused as unsupported), re-parses
//! with sqlparser in its dialect, and has as many placeholders as values.

use objectql_conformance::generate;
use objectql_planner::sql::{
    MySqlDialect, PostgresDialect, SqlCompiler, SqlDialect, SqliteDialect,
};
use objectql_query_ast::{Catalog, validate_query};
use proptest::prelude::*;
use sqlparser::dialect::{
    Dialect, MySqlDialect as PMy, PostgreSqlDialect as PPg, SQLiteDialect as PLite,
};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

pub(crate) fn check(
    d: &dyn SqlDialect,
    parser: &dyn Dialect,
    sql: &str,
    params: usize,
) -> Result<(), TestCaseError> {
    Parser::parse_sql(parser, sql).map_err(|e| TestCaseError::fail(format!("{e}: {sql}")))?;
    let tokens = Tokenizer::new(parser, sql)
        .tokenize()
        .map_err(|e| TestCaseError::fail(format!("{e}: {sql}")))?;
    let placeholders: Vec<String> = tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Placeholder(p) => Some(p),
            _ => None,
        })
        .collect();
    prop_assert_eq!(placeholders.len(), params, "{}: {}", d.name(), sql);
    for (i, p) in placeholders.iter().enumerate() {
        let expected = d.placeholder(i + 1);
        prop_assert_eq!(p, &expected, "{}", sql);
    }
    Ok(())
}

fn dialects() -> Vec<(Box<dyn SqlDialect>, Box<dyn Dialect>)> {
    vec![
        (
            Box::new(SqliteDialect {
                version: (3, 45, 1),
                vectors: false,
            }),
            Box::new(PLite {}),
        ),
        (
            Box::new(SqliteDialect {
                version: (3, 25, 0),
                vectors: false,
            }),
            Box::new(PLite {}),
        ),
        (
            Box::new(PostgresDialect { version: (16, 2) }),
            Box::new(PPg {}),
        ),
        (
            Box::new(MySqlDialect {
                mariadb: false,
                version: (8, 0, 36),
            }),
            Box::new(PMy {}),
        ),
        (
            Box::new(MySqlDialect {
                mariadb: true,
                version: (11, 4, 2),
            }),
            Box::new(PMy {}),
        ),
    ]
}

/// Every generated query validates, compiles in every dialect (or is
/// refused as unsupported) and re-parses. A refusal passes the property, so
/// the share of (query, dialect) pairs that really compiled and re-parsed is
/// counted, printed, and must be at least 90%: a generator drifting into
/// refused shapes would otherwise test nothing.
#[test]
fn every_generated_query_compiles_and_reparses() {
    use std::cell::Cell;
    let (tried, compiled) = (Cell::new(0_usize), Cell::new(0_usize));
    let strategy = generate::schema().prop_flat_map(|s| {
        let q = prop_oneof![generate::row_query(&s), generate::aggregate_query(&s)];
        let row = generate::rows(&s, 1);
        (Just(s), q, row, any::<bool>())
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        // Failures found earlier (`properties.proptest-regressions`) run first.
        source_file: Some(file!()),
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |(s, mut q, row, paged)| {
        // A keyset cursor positioned at a generated row (row queries only).
        if paged && !q.is_aggregate() {
            if let Some(r) = row.first() {
                q.limit = Some(3);
                let mut after = indexmap::IndexMap::new();
                let keys: Vec<String> = q
                    .order_by
                    .iter()
                    .map(|o| o.field.clone())
                    .chain(["id".to_owned()])
                    .collect();
                for k in keys {
                    after.insert(
                        k.clone(),
                        r.get(&k)
                            .cloned()
                            .unwrap_or(objectql_query_ast::Value::Null),
                    );
                }
                q.cursor = Some(objectql_query_ast::Cursor { after });
            }
        }
        let mut cat = Catalog::new();
        cat.insert(s.schema.clone()).unwrap();
        let dialects = dialects();
        tried.set(tried.get() + dialects.len());
        let Ok(q) = validate_query(&q, &cat, &crate::common::ctx()) else {
            return Ok(());
        };
        for (d, parser) in dialects {
            let c = SqlCompiler::new(d.as_ref(), &cat);
            match c.select(&q) {
                Ok(st) => {
                    check(d.as_ref(), parser.as_ref(), &st.sql, st.params.len())?;
                    compiled.set(compiled.get() + 1);
                }
                Err(e) => prop_assert_eq!(e.category(), "unsupported", "{}", e),
            }
            for st in c.create_table(&s.schema).unwrap() {
                check(d.as_ref(), parser.as_ref(), &st.sql, st.params.len())?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (tried, compiled) = (tried.get(), compiled.get());
    #[allow(clippy::cast_precision_loss)]
    let share = compiled as f64 / tried.max(1) as f64;
    println!(
        "generated (query, dialect) pairs: {tried}; compiled and re-parsed: {compiled} ({:.1}%)",
        share * 100.0
    );
    assert!(
        share >= 0.9,
        "only {:.1}% of {tried} generated (query, dialect) pairs compiled and re-parsed",
        share * 100.0
    );
}
