//! Filters → MongoDB query documents, with the protocol's meaning.
//!
//! Where MongoDB differs from PROTOCOL.md the compiler works around it:
//!
//! - `$ne` / `$nin` match missing and null fields — which is exactly the
//!   protocol's NULL-safe negation, so they are used as they are; NULLs are
//!   dropped from `$in` / `$nin` lists (`{$nin: [null]}` would exclude NULL
//!   rows, `{$in: [null]}` include them; the protocol's NULL never equals).
//! - `{f: null}` matches missing fields: that *is* IS NULL here, since a
//!   missing key reads as NULL.
//! - There is no document-level `$not`: `{$not: p}` is `{$nor: [p]}`, which
//!   holds when `p` does not match — the protocol's `(p) IS NOT TRUE`,
//!   because every compiled positive condition matches exactly when the
//!   reference evaluator says TRUE.
//! - Comparison operators bracket types (`{$gt: 5}` never matches a string
//!   or a null): every value of a field has the field's one BSON type, so
//!   bracketing only ever excludes NULLs, as the protocol does. Ordered
//!   comparisons still carry an explicit `$ne: null`, so a server that
//!   compares across types (NULL below every value) answers the same.
//! - `$regex` is not literal: text operators compile to regular expressions
//!   whose every non-alphanumeric character is escaped; `$icontains` and
//!   `$ilike` spell ASCII letters as `[aA]` classes, so case folding stays
//!   ASCII-only (the `i` flag would fold `É`/`é`); anchors are `^` and
//!   `(?![\s\S])` (`$` would also match before a final newline).
//! - Field-to-field comparisons use `$expr` over the two field paths with
//!   `$ifNull` (a missing field is not null inside `$expr`), and explicit
//!   null checks so NULL never compares. No user text is ever inside `$expr`.
//!
//! Values always sit in value slots (`$eq`, `$in`…), never as a bare
//! document: the stored forms (see [`super::codec`]) have no documents, so no
//! value can be read as an operator.

use std::fmt::Write as _;

use bson::{Bson, Document, doc};
use objectql_query_ast::{Condition, Error, Filter, Op, Operand, Result, StorageType, Value};

use super::codec::to_bson;

/// Resolves field names to document paths and storage types.
pub(crate) trait Resolve {
    /// The document key of `field` and its storage type.
    fn resolve(&self, field: &str) -> Result<(String, StorageType)>;
}

/// A filter that matches nothing (every document has an `_id`, and no
/// document both has and lacks one). Works in any `$match`, also after
/// `$group`/`$project`, where `_id` may be gone: then the second half fails.
pub(crate) fn never() -> Document {
    doc! { "$and": [ { "_id": { "$exists": true } }, { "_id": { "$exists": false } } ] }
}

/// Compiles `filter`; conditions that cannot be expressed with the
/// protocol's meaning are `Unsupported`.
pub(crate) fn compile(r: &dyn Resolve, filter: &Filter) -> Result<Document> {
    Ok(match filter {
        Filter::And(items) => match items.as_slice() {
            [] => Document::new(),
            [one] => compile(r, one)?,
            _ => {
                doc! { "$and": items.iter().map(|f| compile(r, f).map(Bson::Document)).collect::<Result<Vec<_>>>()? }
            }
        },
        Filter::Or(items) => match items.as_slice() {
            [] => never(),
            [one] => compile(r, one)?,
            _ => {
                doc! { "$or": items.iter().map(|f| compile(r, f).map(Bson::Document)).collect::<Result<Vec<_>>>()? }
            }
        },
        Filter::Not(inner) => doc! { "$nor": [ compile(r, inner)? ] },
        Filter::Condition(c) => condition(r, c)?,
    })
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::unsupported(what, "mongodb")
}

fn condition(r: &dyn Resolve, c: &Condition) -> Result<Document> {
    let (path, st) = r.resolve(&c.field)?;
    let value = |v: &Value| to_bson(v, st);
    // Ordering on binary values differs (BSON orders by length first), and
    // json values are stored as text: only equality-free checks push.
    let ordered_ok = !matches!(st, StorageType::Binary | StorageType::Json);
    let eq_ok = !matches!(st, StorageType::Json);
    let op = |name: &str, v: Bson| doc! { path.as_str(): { name: v } };
    Ok(match &c.op {
        Op::Eq(Operand::Field(o))
        | Op::Ne(Operand::Field(o))
        | Op::Gt(Operand::Field(o))
        | Op::Gte(Operand::Field(o))
        | Op::Lt(Operand::Field(o))
        | Op::Lte(Operand::Field(o)) => field_compare(r, &path, st, &c.op, o)?,
        Op::Eq(Operand::Value(v)) if eq_ok => {
            if v.is_null() {
                never()
            } else {
                op("$eq", value(v)?)
            }
        }
        Op::Ne(Operand::Value(v)) if eq_ok => {
            // IS DISTINCT FROM: `$ne` matches null and missing, as wanted;
            // `$ne: null` keeps exactly the non-null values.
            op("$ne", value(v)?)
        }
        Op::Gt(Operand::Value(v))
        | Op::Gte(Operand::Value(v))
        | Op::Lt(Operand::Value(v))
        | Op::Lte(Operand::Value(v))
            if ordered_ok =>
        {
            if v.is_null() {
                return Ok(never());
            }
            let name = match &c.op {
                Op::Gt(_) => "$gt",
                Op::Gte(_) => "$gte",
                Op::Lt(_) => "$lt",
                _ => "$lte",
            };
            // MongoDB's type bracketing already keeps NULLs out; the
            // explicit `$ne: null` keeps servers that compare across types
            // (null sorts below every value) from letting them in.
            doc! { path.as_str(): { name: value(v)?, "$ne": Bson::Null } }
        }
        Op::In(list) if eq_ok => {
            let list = non_null(list, st)?;
            if list.is_empty() {
                never()
            } else {
                op("$in", Bson::Array(list))
            }
        }
        Op::Nin(list) if eq_ok => op("$nin", Bson::Array(non_null(list, st)?)),
        Op::Between(low, high) if ordered_ok => {
            if low.is_null() || high.is_null() {
                never()
            } else {
                doc! { path.as_str(): { "$gte": value(low)?, "$lte": value(high)?, "$ne": Bson::Null } }
            }
        }
        Op::Contains(s) if st == StorageType::Text => op("$regex", Bson::String(escape(s, false))),
        Op::NotContains(s) if st == StorageType::Text => {
            doc! { path.as_str(): { "$not": { "$regex": escape(s, false) } } }
        }
        Op::StartsWith(s) if st == StorageType::Text => {
            op("$regex", Bson::String(format!("^{}", escape(s, false))))
        }
        Op::EndsWith(s) if st == StorageType::Text => {
            op("$regex", Bson::String(format!("{}{END}", escape(s, false))))
        }
        Op::IContains(s) if st == StorageType::Text => op("$regex", Bson::String(escape(s, true))),
        Op::Like(p) if st == StorageType::Text => op("$regex", Bson::String(like(p, false))),
        Op::ILike(p) if st == StorageType::Text => op("$regex", Bson::String(like(p, true))),
        // The protocol's `$exists` is IS NOT NULL (a missing key and a null
        // are the same NULL here).
        Op::Null(true) | Op::Exists(false) => op("$eq", Bson::Null),
        Op::Null(false) | Op::Exists(true) => op("$ne", Bson::Null),
        other => {
            return Err(unsupported(format!(
                "`{}` on a {} field",
                other.name(),
                st.name()
            )));
        }
    })
}

/// The end of the subject: `$` would also match before a final newline.
const END: &str = r"(?![\s\S])";

fn non_null(list: &[Value], st: StorageType) -> Result<Vec<Bson>> {
    list.iter()
        .filter(|v| !v.is_null())
        .map(|v| to_bson(v, st))
        .collect()
}

/// `a <op> b` over two fields, inside `$expr` (field paths only; the paths
/// come from the schema and are checked by the resolver).
fn field_compare(
    r: &dyn Resolve,
    path: &str,
    st: StorageType,
    op: &Op,
    other: &str,
) -> Result<Document> {
    let (other_path, other_st) = r.resolve(other)?;
    let comparable = |t: StorageType| !matches!(t, StorageType::Binary | StorageType::Json);
    if !comparable(st) || !comparable(other_st) {
        return Err(unsupported(format!(
            "`{}` between {} fields",
            op.name(),
            st.name()
        )));
    }
    let a = doc! { "$ifNull": [ format!("${path}"), Bson::Null ] };
    let b = doc! { "$ifNull": [ format!("${other_path}"), Bson::Null ] };
    let not_null = |x: &Document| doc! { "$ne": [ x.clone(), Bson::Null ] };
    let name = match op {
        // IS DISTINCT FROM: after `$ifNull`, two NULLs are equal and a NULL
        // differs from every value — exactly aggregation `$ne`.
        Op::Ne(_) => return Ok(doc! { "$expr": { "$ne": [ a, b ] } }),
        Op::Eq(_) => "$eq",
        Op::Gt(_) => "$gt",
        Op::Gte(_) => "$gte",
        Op::Lt(_) => "$lt",
        _ => "$lte",
    };
    Ok(
        doc! { "$expr": { "$and": [ { name: [ a.clone(), b.clone() ] }, not_null(&a), not_null(&b) ] } },
    )
}

/// A regular expression matching `s` literally (as a substring). Every
/// ASCII character that is not a letter, digit or `_` is escaped (escaping
/// those is literal in PCRE and in every common engine), NUL as `\x00`;
/// with `fold`, ASCII letters become `[aA]`.
pub fn escape(s: &str, fold: bool) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        push_literal(&mut out, c, fold);
    }
    out
}

fn push_literal(out: &mut String, c: char, fold: bool) {
    match c {
        '\0' => out.push_str(r"\x00"),
        c if c.is_ascii_alphabetic() && fold => {
            out.push('[');
            out.push(c.to_ascii_lowercase());
            out.push(c.to_ascii_uppercase());
            out.push(']');
        }
        c if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() => out.push(c),
        // Control characters other than NUL are literal in a pattern, but
        // escaping them with a backslash is not (`\n` is fine, `\a` is not
        // the same everywhere): write them as hex escapes.
        c if c.is_ascii_control() => {
            let _ = write!(out, r"\x{:02x}", u32::from(c));
        }
        c => {
            out.push('\\');
            out.push(c);
        }
    }
}

/// A LIKE pattern as an anchored regular expression: `%` any sequence, `_`
/// one character, backslash escapes the next character (a trailing
/// backslash is literal) — the reference evaluator's reading.
pub fn like(pattern: &str, fold: bool) -> String {
    let mut out = String::from("^");
    let mut chars = pattern.chars();
    let mut last_any = false;
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                if !last_any {
                    out.push_str(r"[\s\S]*");
                }
                last_any = true;
                continue;
            }
            '_' => out.push_str(r"[\s\S]"),
            '\\' => push_literal(&mut out, chars.next().unwrap_or('\\'), fold),
            c => push_literal(&mut out, c, fold),
        }
        last_any = false;
    }
    out.push_str(END);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_make_every_metacharacter_literal() {
        assert_eq!(escape("a.b*c", false), r"a\.b\*c");
        assert_eq!(
            escape("(x)[y]{z}^$|?+\\/", false),
            r"\(x\)\[y\]\{z\}\^\$\|\?\+\\\/"
        );
        assert_eq!(escape("é1_", false), "é1_");
        assert_eq!(escape("a\0\n", false), r"a\x00\x0a");
        assert_eq!(escape("aB", true), "[aA][bB]");
    }

    #[test]
    fn like_patterns_anchor_and_translate_wildcards() {
        assert_eq!(like("a%b_c", false), r"^a[\s\S]*b[\s\S]c(?![\s\S])");
        assert_eq!(like("%%x", false), r"^[\s\S]*x(?![\s\S])");
        assert_eq!(like(r"100\%", false), r"^100\%(?![\s\S])");
        assert_eq!(like("a\\", false), r"^a\\(?![\s\S])");
        assert_eq!(like("Ab", true), r"^[aA][bB](?![\s\S])");
    }
}
