//! The one place an identifier becomes SQL text.
//!
//! sqlparser's printer escapes a quoted identifier with its own rules: it
//! leaves a quote that follows a backslash alone and treats an already
//! doubled quote as escaped, so a name such as `inj\" AS SELECT …` closed the
//! identifier early. Identifiers are therefore never handed to a printer to
//! escape. [`quote_ident`] writes the whole quoted form itself, doubling
//! every quote character with no exception, and the compiler puts that text
//! into the AST as an *unquoted* [`Ident`], which sqlparser prints verbatim.
//!
//! Backslash is an ordinary character inside a quoted identifier in every
//! dialect we compile for (SQLite, PostgreSQL, and MySQL/MariaDB backticks),
//! so doubling the quote is the complete escape. Which names are legal at
//! all is decided before any SQL is built: see
//! [`objectql_query_ast::check_name`] and the driver's `NameRules` (checked by the
//! engine at registration).
//!
//! `scripts/check-sql-identifiers` (run by `scripts/test`) fails the build if
//! an identifier reaches SQL text any other way.

use sqlparser::ast::Ident;

/// `name` as a quoted identifier: `quote`, the name with every `quote`
/// doubled, `quote`.
///
/// ```
/// use objectql_planner::sql::quote_ident;
/// assert_eq!(quote_ident('"', r#"inj\" AS x"#), r#""inj\"" AS x""#);
/// assert_eq!(quote_ident('`', "a``b"), "`a````b`");
/// ```
pub fn quote_ident(quote: char, name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push(quote);
    for ch in name.chars() {
        if ch == quote {
            out.push(quote);
        }
        out.push(ch);
    }
    out.push(quote);
    out
}

/// A quoted identifier as a sqlparser node that prints exactly
/// [`quote_ident`]'s text (sqlparser prints an unquoted [`Ident`] verbatim).
pub(crate) fn quoted(quote: char, name: &str) -> Ident {
    Ident::new(quote_ident(quote, name))
}

/// `s` as a SQL string literal for a dialect where backslash is an ordinary
/// character in literals (SQLite, PostgreSQL with standard strings): `'`
/// doubled. Printed verbatim, like [`quoted`]. Never used for MySQL, where a
/// backslash escapes; values reach every backend as bound parameters.
pub(crate) fn standard_string_literal(s: &str) -> sqlparser::ast::Expr {
    sqlparser::ast::Expr::Identifier(Ident::new(quote_ident('\'', s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quote_is_doubled() {
        assert_eq!(quote_ident('"', ""), r#""""#);
        assert_eq!(quote_ident('"', r#"""#), r#""""""#);
        assert_eq!(quote_ident('"', r#"a\""#), r#""a\""""#);
        assert_eq!(quote_ident('"', r#"a""b"#), r#""a""""b""#);
        assert_eq!(quote_ident('`', r"inj\` AS SELECT"), r"`inj\`` AS SELECT`");
        // Other quote characters are ordinary inside the identifier.
        assert_eq!(quote_ident('"', "a`b'c"), r#""a`b'c""#);
        assert_eq!(quote_ident('`', r#"a"b'c"#), r#"`a"b'c`"#);
    }

    #[test]
    fn printed_verbatim_by_sqlparser() {
        for name in [
            r#"inj\" AS SELECT * FROM victim; --"#,
            r#"x"""y"#,
            "\\",
            "é😀",
        ] {
            assert_eq!(quoted('"', name).to_string(), quote_ident('"', name));
        }
    }
}
