//! The dialect trait (flags and hooks with defaults) and the SQLite,
//! PostgreSQL and MySQL/MariaDB dialects.
//!
//! Shared code never asks which backend it talks to: every difference is a
//! flag or a hook here. Defaults follow PostgreSQL / the SQL standard.

use chrono_tz::Tz;
use objectql_driver::Pushdown;
use objectql_query_ast::{
    AggFunction, DateGranularity, Error, Result, StorageType, Value, VectorMetric,
};
use sqlparser::ast::{
    BinaryOperator, CharacterLength, ColumnOption, DataType, ExactNumberInfo, Expr, FunctionArg,
    FunctionArgExpr, Ident, TableFactor, TableFunctionArgs, TimezoneInfo,
};

use super::ast::{
    binop, case_when, cast, collate, eq, func, is_not_null, lit, name, not, num, paren, table,
};
use super::expr::{TextOp, glob_pattern, like_pattern};
use super::ident::{quoted, standard_string_literal};
use super::types;
use super::{Binder, SqlDialect};

/// How `avg` is written so it comes out as an exact-as-possible double.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvgForm {
    /// `avg(x)` already is a double (SQLite).
    Native,
    /// `CAST(avg(x) AS t)` (PostgreSQL: numeric → double precision).
    CastAvg(DataType),
    /// `CAST(sum(x) AS t) / count(x)`.
    SumOverCount(DataType),
}

/// How a float `sum` or `avg` whose total overflows is made an error
/// (`NumericOverflow`, as the protocol says) instead of an infinity or a
/// wrong finite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FloatOverflow {
    /// The backend already fails (PostgreSQL), or decoding refuses the
    /// infinity it returns.
    Native,
    /// `(sum(x) + 0e0)`: the backend's aggregate returns a wrong finite
    /// value (MariaDB answers 0 for `sum` of `[1e308, 1e308]`) but checks
    /// arithmetic on it. Exact for every finite total.
    AddZero,
    /// `CASE WHEN abs(sum(x)) > 1.7976931348623157e308 THEN
    /// abs(-9223372036854775807 - 1) ELSE sum(x) END`: the backend returns
    /// an infinity that its client may not carry (Hrana's JSON has none, so
    /// sqld sent something else), and the `THEN` branch raises SQLite's
    /// "integer overflow" on the server, which is `NumericOverflow`.
    CaseRaise,
}

/// How an upsert is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertStyle {
    /// `ON CONFLICT (keys) DO UPDATE SET c = excluded.c` (SQLite, PostgreSQL).
    OnConflict,
    /// `ON DUPLICATE KEY UPDATE c = VALUES(c)` (MySQL, MariaDB).
    OnDuplicateKey,
}

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

/// `a IS DISTINCT FROM b` for dialects without the syntax (never NULL).
/// `b_is_value`: `b` is a placeholder bound to a non-NULL value, so it is
/// written once.
fn distinct_emulated(a: Expr, b: Expr, b_is_value: bool) -> Expr {
    let fallback = if b_is_value {
        super::ast::is_null(a.clone())
    } else {
        binop(
            super::ast::is_null(a.clone()),
            BinaryOperator::NotEq,
            super::ast::is_null(b.clone()),
        )
    };
    func(
        "COALESCE",
        vec![binop(a, BinaryOperator::NotEq, b), fallback],
    )
}

/// The default (PostgreSQL) text matching, shared by dialects that reuse parts.
pub(crate) fn default_text_op(
    esc: char,
    x: Expr,
    op: TextOp,
    pattern: &str,
    b: &mut Binder<'_>,
) -> Expr {
    let like = |x: Expr, p: Expr| Expr::Like {
        negated: false,
        any: false,
        expr: Box::new(paren(x)),
        pattern: Box::new(p),
        escape_char: Some(sqlparser::ast::Value::SingleQuotedString(esc.to_string()).into()),
    };
    let fold = |x: Expr| func("translate", vec![x, lit(UPPER), lit(LOWER)]);
    match op {
        TextOp::Contains => binop(
            func("strpos", vec![x, b.bind(Value::String(pattern.to_owned()))]),
            BinaryOperator::Gt,
            num(0),
        ),
        TextOp::IContains => binop(
            func(
                "strpos",
                vec![fold(x), b.bind(Value::String(pattern.to_ascii_lowercase()))],
            ),
            BinaryOperator::Gt,
            num(0),
        ),
        TextOp::StartsWith => like(
            x,
            b.bind(Value::String(literal_like(pattern, esc, false, true))),
        ),
        TextOp::EndsWith => like(
            x,
            b.bind(Value::String(literal_like(pattern, esc, true, false))),
        ),
        TextOp::Like => like(x, b.bind(Value::String(like_pattern(pattern, esc)))),
        TextOp::ILike => like(
            fold(x),
            b.bind(Value::String(
                like_pattern(pattern, esc).to_ascii_lowercase(),
            )),
        ),
    }
}

/// A literal as a LIKE pattern, with `%` before and/or after.
pub(crate) fn literal_like(s: &str, esc: char, any_before: bool, any_after: bool) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    if any_before {
        out.push('%');
    }
    for c in s.chars() {
        if c == '%' || c == '_' || c == esc {
            out.push(esc);
        }
        out.push(c);
    }
    if any_after {
        out.push('%');
    }
    out
}

fn utc_only(tz: Option<Tz>, driver: &str) -> Result<()> {
    match tz {
        None | Some(Tz::UTC | Tz::Etc__UTC | Tz::Etc__Universal | Tz::UCT | Tz::Zulu) => Ok(()),
        Some(tz) => Err(Error::unsupported(
            format!("date buckets in timezone {}", tz.name()),
            driver,
        )),
    }
}

/// SQLite (with the version that decides NULLS FIRST, FILTER, RETURNING,
/// IS DISTINCT FROM and RIGHT/FULL joins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteDialect {
    /// The SQLite library version, e.g. `(3, 45, 1)`.
    pub version: (u32, u32, u32),
    /// libSQL's native vectors are available (`F32_BLOB(n)` columns,
    /// `vector_distance_*`, `libsql_vector_idx` indexes and `vector_top_k`):
    /// the Turso/libSQL driver sets it; the SQLite driver does not, so its
    /// files stay readable by stock SQLite.
    pub vectors: bool,
}

impl SqliteDialect {
    fn at_least(&self, minor: u32) -> bool {
        self.version >= (3, minor, 0)
    }
}

impl SqlDialect for SqliteDialect {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn max_bind_params(&self) -> usize {
        if self.at_least(32) { 32_766 } else { 999 }
    }
    fn nulls_first_last(&self) -> bool {
        self.at_least(30)
    }
    fn aggregate_filter(&self) -> bool {
        self.at_least(30)
    }
    fn returning(&self) -> bool {
        self.at_least(35)
    }
    fn right_full_joins(&self) -> (bool, bool) {
        (self.at_least(39), self.at_least(39))
    }
    fn unbounded_limit(&self) -> Option<Expr> {
        Some(num(-1))
    }
    fn scaled_decimals(&self) -> bool {
        true
    }
    fn split_integer_sums(&self) -> bool {
        true
    }
    fn float_overflow(&self) -> FloatOverflow {
        FloatOverflow::CaseRaise
    }
    fn table_rebuild(&self) -> bool {
        true
    }
    fn max_decimal_precision(&self) -> u32 {
        types::SQLITE_MAX_DECIMAL_PRECISION
    }
    fn null_safe_ne(&self, a: Expr, b: Expr, b_is_value: bool) -> Expr {
        if self.at_least(39) {
            Expr::IsDistinctFrom(Box::new(paren(a)), Box::new(paren(b)))
        } else {
            distinct_emulated(a, b, b_is_value)
        }
    }
    fn classify_field_compare(&self, a: StorageType, b: StorageType) -> Pushdown {
        // Encodings differ across storage types (scaled decimals, REAL vs INTEGER).
        if a == b {
            Pushdown::Exact
        } else {
            Pushdown::Unsupported
        }
    }
    fn text_op(&self, x: Expr, op: TextOp, pattern: &str, b: &mut Binder<'_>) -> Result<Expr> {
        let s = |v: String| Value::String(v);
        let glob = |x: Expr, p: Expr| func("glob", vec![p, x]);
        Ok(match op {
            // instr is binary; LIKE would fold ASCII case.
            TextOp::Contains => binop(
                func("instr", vec![x, b.bind(s(pattern.to_owned()))]),
                BinaryOperator::Gt,
                num(0),
            ),
            TextOp::StartsWith => glob(x, b.bind(s(format!("{}*", glob_escape(pattern))))),
            TextOp::EndsWith => glob(x, b.bind(s(format!("*{}", glob_escape(pattern))))),
            TextOp::Like => glob(x, b.bind(s(glob_pattern(pattern)))),
            // SQLite's LIKE folds ASCII letters only: exactly $icontains/$ilike.
            TextOp::IContains | TextOp::ILike => {
                let p = if op == TextOp::ILike {
                    like_pattern(pattern, '\\')
                } else {
                    literal_like(pattern, '\\', true, true)
                };
                Expr::Like {
                    negated: false,
                    any: false,
                    expr: Box::new(paren(x)),
                    pattern: Box::new(b.bind(s(p))),
                    escape_char: Some(
                        sqlparser::ast::Value::SingleQuotedString("\\".into()).into(),
                    ),
                }
            }
        })
    }
    fn date_bucket(
        &self,
        x: Expr,
        _st: StorageType,
        g: DateGranularity,
        tz: Option<Tz>,
        _b: &mut Binder<'_>,
    ) -> Result<Expr> {
        utc_only(tz, self.name())?;
        let strftime = |fmt: &str, e: Expr| func("strftime", vec![lit(fmt), e]);
        let int = |e: Expr| cast(e, DataType::Integer(None));
        let label = match g {
            DateGranularity::Year => return Ok(strftime("%Y", x)),
            DateGranularity::Month => return Ok(strftime("%Y-%m", x)),
            DateGranularity::Day => return Ok(strftime("%Y-%m-%d", x)),
            DateGranularity::Quarter => func(
                "printf",
                vec![
                    lit("%s-Q%d"),
                    strftime("%Y", x.clone()),
                    binop(
                        binop(int(strftime("%m", x.clone())), BinaryOperator::Plus, num(2)),
                        BinaryOperator::Divide,
                        num(3),
                    ),
                ],
            ),
            DateGranularity::Week => {
                // The ISO week's Thursday decides its year; its day of year its number.
                let thursday = func("date", vec![x.clone(), lit("-3 days"), lit("weekday 4")]);
                func(
                    "printf",
                    vec![
                        lit("%s-W%02d"),
                        strftime("%Y", thursday.clone()),
                        binop(
                            binop(
                                binop(int(strftime("%j", thursday)), BinaryOperator::Minus, num(1)),
                                BinaryOperator::Divide,
                                num(7),
                            ),
                            BinaryOperator::Plus,
                            num(1),
                        ),
                    ],
                )
            }
        };
        // printf would turn NULL into a label.
        Ok(case_when(is_not_null(x), label, None))
    }
    fn avg_form(&self) -> AvgForm {
        AvgForm::Native
    }
    fn column_type(
        &self,
        st: StorageType,
        _max_length: Option<u32>,
        _key: bool,
    ) -> Result<DataType> {
        Ok(match st {
            StorageType::Integer | StorageType::Boolean | StorageType::Decimal { .. } => {
                DataType::Integer(None)
            }
            StorageType::Float => DataType::Real,
            StorageType::Binary => DataType::Blob(None),
            // libSQL's vector column: `dimensions` little-endian float32s.
            StorageType::Vector { dimensions } if self.vectors => {
                DataType::Custom(name("F32_BLOB"), vec![dimensions.to_string()])
            }
            StorageType::Text
            | StorageType::Date
            | StorageType::DateTime
            | StorageType::Time
            | StorageType::Json => DataType::Text,
            _ => {
                return Err(Error::unsupported(
                    format!("{} fields", st.name()),
                    "sqlite",
                ));
            }
        })
    }
    fn column_check(&self, col: Expr, st: StorageType) -> Option<Expr> {
        (st == StorageType::Boolean).then(|| Expr::InList {
            expr: Box::new(col),
            list: vec![num(0), num(1)],
            negated: false,
        })
    }
    fn vector_distance(&self, col: Expr, query: Expr, metric: VectorMetric) -> Option<Expr> {
        let f = match metric {
            VectorMetric::Cosine => "vector_distance_cos",
            VectorMetric::L2 => "vector_distance_l2",
            _ => return None,
        };
        self.vectors.then(|| func(f, vec![col, query]))
    }
    fn vector_index_key(&self, col: Expr, metric: VectorMetric) -> Option<Expr> {
        // The index's own option string, written by the compiler (never user data).
        let options = format!("metric={}", metric.name());
        self.vectors
            .then(|| func("libsql_vector_idx", vec![col, lit(&options)]))
    }
    fn vector_index_scan(
        &self,
        index: &str,
        alias: &Ident,
        table_name: &Ident,
        query: Expr,
        k: Expr,
    ) -> Option<(TableFactor, Expr)> {
        if !self.vectors {
            return None;
        }
        // `vector_top_k('index', ?, ?) AS "v"`: a table-valued function
        // whose `id` is the rowid of a row of the indexed table.
        let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
        let mut scan = table(Ident::new("vector_top_k"), Some(alias.clone()));
        if let TableFactor::Table { args, .. } = &mut scan {
            *args = Some(TableFunctionArgs {
                args: vec![arg(standard_string_literal(index)), arg(query), arg(k)],
                settings: None,
            });
        }
        let rowid = Expr::CompoundIdentifier(vec![table_name.clone(), Ident::new("rowid")]);
        let id = Expr::CompoundIdentifier(vec![alias.clone(), quoted('"', "id")]);
        Some((scan, eq(rowid, id)))
    }
    fn encode(&self, v: &Value, st: StorageType) -> Result<Value> {
        match st {
            StorageType::Vector { dimensions } if self.vectors => {
                types::encode_f32_blob(v, dimensions)
            }
            _ => types::encode_sqlite(v, st),
        }
    }
}

/// Escapes GLOB metacharacters so `s` matches literally.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresDialect {
    /// The server version, e.g. `(16, 2)`.
    pub version: (u32, u32),
}

impl SqlDialect for PostgresDialect {
    fn index_nulls_first(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }
    fn max_bind_params(&self) -> usize {
        65_535
    }
    fn returning(&self) -> bool {
        true
    }
    fn text_order_key(&self, e: Expr) -> Expr {
        collate(e, quoted('"', "C"))
    }
    fn in_list_as_one_parameter(&self, st: StorageType) -> bool {
        matches!(st, StorageType::Text | StorageType::Integer)
    }
    fn in_array(
        &self,
        x: Expr,
        values: Vec<Value>,
        st: StorageType,
        negated: bool,
        b: &mut Binder<'_>,
    ) -> Option<Expr> {
        // text[] and int8[] parameters; other types keep the IN list.
        if !self.in_list_as_one_parameter(st) {
            return None;
        }
        let right = Box::new(b.bind(Value::Array(values)));
        let left = Box::new(x);
        Some(if negated {
            Expr::AllOp {
                left,
                compare_op: BinaryOperator::NotEq,
                right,
            }
        } else {
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                is_some: false,
            }
        })
    }
    fn aggregate_name(&self, f: AggFunction, st: StorageType) -> &'static str {
        match (f, st) {
            (AggFunction::Min, StorageType::Boolean) => "bool_and",
            (AggFunction::Max, StorageType::Boolean) => "bool_or",
            (AggFunction::Min, _) => "min",
            (AggFunction::Max, _) => "max",
            (AggFunction::Sum, _) => "sum",
            _ => "count",
        }
    }
    fn date_bucket(
        &self,
        x: Expr,
        st: StorageType,
        g: DateGranularity,
        tz: Option<Tz>,
        b: &mut Binder<'_>,
    ) -> Result<Expr> {
        let local = match (st, tz) {
            (StorageType::DateTime, Some(tz)) => Expr::AtTimeZone {
                timestamp: Box::new(paren(x)),
                time_zone: Box::new(b.bind(Value::String(tz.name().to_owned()))),
            },
            (StorageType::DateTime, None) => Expr::AtTimeZone {
                timestamp: Box::new(paren(x)),
                time_zone: Box::new(lit("UTC")),
            },
            _ => x,
        };
        let fmt = match g {
            DateGranularity::Year => "YYYY",
            DateGranularity::Quarter => "YYYY-\"Q\"Q",
            DateGranularity::Month => "YYYY-MM",
            DateGranularity::Week => "IYYY-\"W\"IW",
            DateGranularity::Day => "YYYY-MM-DD",
        };
        Ok(func("to_char", vec![local, lit(fmt)]))
    }
    fn column_type(
        &self,
        st: StorageType,
        _max_length: Option<u32>,
        _key: bool,
    ) -> Result<DataType> {
        Ok(match st {
            StorageType::Text => DataType::Text,
            StorageType::Integer => DataType::BigInt(None),
            StorageType::Float => DataType::DoublePrecision,
            StorageType::Decimal { precision, scale } => DataType::Numeric(
                ExactNumberInfo::PrecisionAndScale(u64::from(precision), i64::from(scale)),
            ),
            StorageType::Boolean => DataType::Boolean,
            StorageType::Date => DataType::Date,
            StorageType::DateTime => DataType::Timestamp(None, TimezoneInfo::Tz),
            StorageType::Time => DataType::Time(None, TimezoneInfo::None),
            StorageType::Json => DataType::JSONB,
            StorageType::Binary => DataType::Bytea,
            _ => {
                return Err(Error::unsupported(
                    format!("{} fields", st.name()),
                    "postgres",
                ));
            }
        })
    }
    fn column_options(&self, st: StorageType) -> Vec<ColumnOption> {
        if st == StorageType::Text {
            vec![ColumnOption::Collation(sqlparser::ast::ObjectName::from(
                vec![quoted('"', "C")],
            ))]
        } else {
            Vec::new()
        }
    }
    fn auto_increment(&self) -> Option<ColumnOption> {
        Some(ColumnOption::Generated {
            generated_as: sqlparser::ast::GeneratedAs::ByDefault,
            sequence_options: None,
            generation_expr: None,
            generation_expr_mode: None,
            generated_keyword: true,
        })
    }
    fn encode(&self, v: &Value, st: StorageType) -> Result<Value> {
        types::encode_typed(v, st, false)
    }
}

/// MySQL or MariaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MySqlDialect {
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// The server version, e.g. `(8, 0, 36)` or `(11, 4, 2)`.
    pub version: (u32, u32, u32),
}

const BIN_COLLATION: &str = "utf8mb4_bin";

impl MySqlDialect {
    /// The server's binary NO PAD utf8mb4 collation (code point order,
    /// trailing spaces significant), if it has one: MariaDB ≥ 10.2
    /// `utf8mb4_nopad_bin`, MySQL ≥ 8.0 `utf8mb4_0900_bin`. Text columns
    /// are created with it (so unique keys, `=`, `IN`, `ORDER BY`, `GROUP
    /// BY` are exact and use indexes), and the driver sets it as the
    /// connection collation (so parameters and computed text agree).
    pub fn exact_collation(&self) -> Option<&'static str> {
        let has = if self.mariadb {
            self.version >= (10, 2, 0)
        } else {
            self.version >= (8, 0, 0)
        };
        match (has, self.mariadb) {
            (false, _) => None,
            (true, true) => Some("utf8mb4_nopad_bin"),
            (true, false) => Some("utf8mb4_0900_bin"),
        }
    }

    /// The collation text columns are created with.
    pub fn text_collation(&self) -> &'static str {
        self.exact_collation().unwrap_or(BIN_COLLATION)
    }

    /// A binary comparison key, needed only without a NO PAD binary collation.
    fn binary_key(&self, e: Expr) -> Expr {
        if self.exact_collation().is_some() {
            e
        } else {
            // utf8mb4_bin is PAD SPACE: only a binary comparison keeps trailing spaces.
            cast(e, DataType::Binary(None))
        }
    }
}

impl SqlDialect for MySqlDialect {
    fn name(&self) -> &str {
        if self.mariadb { "mariadb" } else { "mysql" }
    }
    fn float_overflow(&self) -> FloatOverflow {
        FloatOverflow::AddZero
    }
    fn quote_char(&self) -> char {
        '`'
    }
    fn max_bind_params(&self) -> usize {
        65_535
    }
    fn nulls_first_last(&self) -> bool {
        false
    }
    fn aggregate_filter(&self) -> bool {
        false
    }
    fn returning(&self) -> bool {
        self.mariadb && self.version >= (10, 5, 0)
    }
    fn upsert_returning(&self) -> bool {
        false
    }
    fn update_returning(&self) -> bool {
        // MariaDB has INSERT/DELETE … RETURNING, not UPDATE … RETURNING.
        false
    }
    fn right_full_joins(&self) -> (bool, bool) {
        (true, false)
    }
    fn unbounded_limit(&self) -> Option<Expr> {
        Some(num(u64::MAX))
    }
    fn like_escape(&self) -> char {
        // A backslash would need escaping inside MySQL string literals.
        '!'
    }
    fn upsert_style(&self) -> UpsertStyle {
        UpsertStyle::OnDuplicateKey
    }
    fn inline_indexes(&self) -> bool {
        true
    }
    fn null_safe_ne(&self, a: Expr, b: Expr, _b_is_value: bool) -> Expr {
        not(binop(a, BinaryOperator::Spaceship, b))
    }
    fn text_eq_key(&self, e: Expr) -> Expr {
        self.binary_key(e)
    }
    fn text_order_key(&self, e: Expr) -> Expr {
        self.binary_key(e)
    }
    fn classify_text(&self, op: TextOp) -> Pushdown {
        match op {
            // LOWER() folds beyond ASCII: a superset, re-checked locally.
            TextOp::IContains | TextOp::ILike => Pushdown::Inexact,
            _ => Pushdown::Exact,
        }
    }
    fn text_op(&self, x: Expr, op: TextOp, pattern: &str, b: &mut Binder<'_>) -> Result<Expr> {
        let esc = self.like_escape();
        let bin = |e: Expr| collate(e, Ident::new(BIN_COLLATION));
        let like = |x: Expr, p: Expr| Expr::Like {
            negated: false,
            any: false,
            expr: Box::new(bin(x)),
            pattern: Box::new(p),
            escape_char: Some(sqlparser::ast::Value::SingleQuotedString(esc.to_string()).into()),
        };
        let s = |v: String| Value::String(v);
        Ok(match op {
            TextOp::Contains => binop(
                func(
                    "LOCATE",
                    vec![
                        cast(b.bind(s(pattern.to_owned())), DataType::Binary(None)),
                        x,
                    ],
                ),
                BinaryOperator::Gt,
                num(0),
            ),
            TextOp::StartsWith => like(x, b.bind(s(literal_like(pattern, esc, false, true)))),
            TextOp::EndsWith => like(x, b.bind(s(literal_like(pattern, esc, true, false)))),
            TextOp::Like => like(x, b.bind(s(like_pattern(pattern, esc)))),
            TextOp::IContains => like(
                func("LOWER", vec![x]),
                func(
                    "LOWER",
                    vec![b.bind(s(literal_like(pattern, esc, true, true)))],
                ),
            ),
            TextOp::ILike => like(
                func("LOWER", vec![x]),
                func("LOWER", vec![b.bind(s(like_pattern(pattern, esc)))]),
            ),
        })
    }
    fn date_bucket(
        &self,
        x: Expr,
        _st: StorageType,
        g: DateGranularity,
        tz: Option<Tz>,
        _b: &mut Binder<'_>,
    ) -> Result<Expr> {
        // CONVERT_TZ needs the server's timezone tables (NULL without them).
        utc_only(tz, self.name())?;
        let fmt = |f: &str, e: Expr| func("DATE_FORMAT", vec![e, lit(f)]);
        Ok(match g {
            DateGranularity::Year => fmt("%Y", x),
            DateGranularity::Month => fmt("%Y-%m", x),
            DateGranularity::Day => fmt("%Y-%m-%d", x),
            DateGranularity::Week => fmt("%x-W%v", x),
            DateGranularity::Quarter => func(
                "CONCAT",
                vec![fmt("%Y", x.clone()), lit("-Q"), func("QUARTER", vec![x])],
            ),
        })
    }
    fn avg_form(&self) -> AvgForm {
        // AVG returns DECIMAL with 4 extra digits; divide as DOUBLE instead.
        AvgForm::SumOverCount(DataType::Double(ExactNumberInfo::None))
    }
    fn column_type(&self, st: StorageType, max_length: Option<u32>, key: bool) -> Result<DataType> {
        Ok(match st {
            StorageType::Text => match (max_length, key) {
                (Some(n), _) if n <= 16_383 => varchar(n),
                (_, true) => varchar(255),
                _ => DataType::LongText,
            },
            StorageType::Integer => DataType::BigInt(None),
            StorageType::Float => DataType::Double(ExactNumberInfo::None),
            StorageType::Decimal { precision, scale } => DataType::Decimal(
                ExactNumberInfo::PrecisionAndScale(u64::from(precision), i64::from(scale)),
            ),
            StorageType::Boolean => DataType::Boolean,
            StorageType::Date => DataType::Date,
            StorageType::DateTime => DataType::Datetime(Some(6)),
            StorageType::Time => DataType::Time(Some(6), TimezoneInfo::None),
            StorageType::Json if self.mariadb => DataType::LongText,
            StorageType::Json => DataType::JSON,
            StorageType::Binary => DataType::LongBlob,
            _ => {
                return Err(Error::unsupported(
                    format!("{} fields", st.name()),
                    self.name(),
                ));
            }
        })
    }
    fn column_options(&self, st: StorageType) -> Vec<ColumnOption> {
        if st == StorageType::Text {
            vec![
                ColumnOption::CharacterSet(name("utf8mb4")),
                ColumnOption::Collation(name(self.text_collation())),
            ]
        } else {
            Vec::new()
        }
    }
    fn column_check(&self, col: Expr, st: StorageType) -> Option<Expr> {
        (self.mariadb && st == StorageType::Json).then(|| func("JSON_VALID", vec![col]))
    }
    fn auto_increment(&self) -> Option<ColumnOption> {
        Some(ColumnOption::DialectSpecific(vec![
            sqlparser::tokenizer::Token::make_keyword("AUTO_INCREMENT"),
        ]))
    }
    fn encode(&self, v: &Value, st: StorageType) -> Result<Value> {
        types::encode_typed(v, st, self.mariadb)
    }
}

fn varchar(n: u32) -> DataType {
    DataType::Varchar(Some(CharacterLength::IntegerLength {
        length: u64::from(n),
        unit: None,
    }))
}

/// `a IS DISTINCT FROM b`.
pub(crate) fn default_null_safe_ne(a: Expr, b: Expr) -> Expr {
    Expr::IsDistinctFrom(Box::new(paren(a)), Box::new(paren(b)))
}
