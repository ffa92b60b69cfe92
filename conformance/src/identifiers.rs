//! Hostile identifiers: names built from every quote character, backslash,
//! comment marker and placeholder spelling, registered as objects and fields
//! on a driver, which must store and return them as exactly themselves.
//!
//! A SQL driver's test also hands [`roundtrip`] a function that lists the
//! backend's own catalog (`sqlite_master` + `pragma_table_info`,
//! `information_schema.columns`, …), and every generated name must appear
//! there byte for byte: a name the server saw differently from the one
//! registered (a quote left undoubled, a doubled quote kept doubled) is a
//! failure even when the reads happen to agree.

use std::future::Future;

use objectql::{Engine, Query, Value, field, record};

/// The pieces names are made of: every quote character, doubled and
/// backslash-escaped quotes, backslash, comment and statement markers,
/// placeholder spellings, spaces and non-ASCII letters.
pub const PIECES: &[&str] = &[
    "\"", "`", "'", "\\", "\"\"", "``", "''", "\\\"", "\\`", "\\'", "\\\\", ";", "--", "/*", "*/",
    "#", " ", "?", "$1", ":a", "%", "_", "(", ")", ",", "a", "Z", "é", "ß", "☃", "İ", "\u{3000}",
];

/// `n` names from `seed` (deterministic): 1 to 8 pieces each, then `#` and
/// the name's index, so they are distinct under any case folding, never end
/// with a space, and stay within every backend's length limit (≤ 40 bytes).
pub fn hostile_names(seed: u64, n: usize) -> Vec<String> {
    let mut state = seed | 1;
    let mut next = move |bound: usize| {
        // xorshift64*: small, deterministic, good enough to pick pieces.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(r >> 33).unwrap_or(0) % bound
    };
    (0..n)
        .map(|i| {
            let len = 1 + next(8);
            let mut s: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            s.push('#');
            s.push_str(&i.to_string());
            s
        })
        .collect()
}

/// Registers one object per name in `names` (with a text field named `f`
/// followed by the name), writes the name into it, and reads it back by an
/// equality filter on the hostile field, sorted by it. Then checks that
/// `catalog()`, the backend's own list of `(table, column)` pairs, holds
/// every such pair exactly. Returns a description of the first difference.
pub async fn roundtrip<F, Fut>(engine: &Engine, names: &[String], catalog: F) -> Result<(), String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Vec<(String, String)>>,
{
    let db = engine.default_session();
    for name in names {
        let column = format!("f{name}");
        let schema =
            serde_json::json!({"name": name, "fields": {column.clone(): {"type": "text"}}});
        engine
            .register_json(&schema)
            .await
            .map_err(|e| format!("registering {name:?}: {e}"))?;
        db.insert(
            name,
            record! {"id" => "1", column.as_str() => name.as_str()},
        )
        .await
        .map_err(|e| format!("inserting into {name:?}: {e}"))?;
        let rows = db
            .find(
                &Query::new(name.as_str())
                    .filter(field(column.as_str()).eq(name.as_str()))
                    .asc(column.as_str()),
            )
            .await
            .map_err(|e| format!("reading {name:?}: {e}"))?;
        let got: Vec<Option<&Value>> = rows.iter().map(|r| r.get(&column)).collect();
        if got != [Some(&Value::String(name.clone()))] {
            return Err(format!("{name:?} read back as {got:?}"));
        }
    }
    let listed = catalog().await;
    for name in names {
        let column = format!("f{name}");
        if !listed.iter().any(|(t, c)| *t == *name && *c == column) {
            let near: Vec<&(String, String)> = listed
                .iter()
                .filter(|(t, _)| t.ends_with(&name[name.rfind('#').unwrap_or(0)..]))
                .collect();
            return Err(format!(
                "the backend's catalog has no table {name:?} with column {column:?}; it has {near:?}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_legal_and_cover_every_quote() {
        let names = hostile_names(7, 400);
        let mut folded: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        folded.sort();
        folded.dedup();
        assert_eq!(folded.len(), names.len());
        for q in ["\"", "`", "'", "\\\""] {
            assert!(names.iter().any(|n| n.contains(q)), "{q}");
        }
        assert!(names.iter().all(|n| n.len() <= 40 && !n.ends_with(' ')));
        assert!(names.iter().all(|n| !n.contains('.')));
    }
}
