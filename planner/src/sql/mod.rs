//! The SQL compiler: validated queries and writes → SQL text with bound
//! parameters, for SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! Statements are built as [sqlparser] AST nodes and printed with `Display`;
//! no user data is ever concatenated into SQL: every value is a bound
//! parameter (encoded for the backend by the dialect, see [`SqlDialect::encode`])
//! and every identifier is quoted by [`quote_ident`] with the dialect's quote
//! character (every quote doubled), never by sqlparser's printer. Dialect differences are flags and hooks on [`SqlDialect`] with
//! defaults; shared code never asks which backend it is talking to.
//!
//! The SQL returns exactly what the reference evaluator ([`crate::eval`])
//! returns. What a dialect cannot express with the same meaning is classified
//! `Inexact`/`Unsupported` by [`SqlCompiler::classify`] (conditions) or
//! refused with [`Error::Unsupported`] by [`SqlCompiler::select`] (query
//! shapes) so the planner runs it locally — never silently answered
//! differently.
//!
//! ```
//! use objectql_planner::sql::{SqlCompiler, SqliteDialect};
//! use objectql_query_ast::{Catalog, Field, ObjectSchema, Query, field};
//!
//! let mut catalog = Catalog::new();
//! catalog.insert(ObjectSchema::new("task").field(Field::new("title", "text")))?;
//! let dialect = SqliteDialect { version: (3, 45, 1), vectors: false };
//! let compiler = SqlCompiler::new(&dialect, &catalog);
//! let st = compiler.select(&Query::new("task").filter(field("title").ne("x")))?;
//! assert_eq!(
//!     st.sql,
//!     r#"SELECT "id", "title" FROM "task" WHERE "title" IS DISTINCT FROM ?"#
//! );
//! assert_eq!(st.params.len(), 1);
//! # Ok::<(), objectql_query_ast::Error>(())
//! ```
//!
//! Where sqlparser's AST lacks a construct, nothing is spliced in as text:
//! the compiler uses an equivalent construct it has (`glob(p, x)` rather than
//! `x GLOB p`, `IS DISTINCT FROM` rather than SQLite's `IS NOT`).

mod ast;
mod ddl;
mod dialect;
mod expr;
mod ident;
mod nearest;
mod select;
pub mod types;
mod write;

use std::fmt::Debug;

use chrono_tz::Tz;
use objectql_driver::{Conflict, Pushdown};
use objectql_query_ast::{
    AggFunction, Catalog, Condition, DateGranularity, Error, Filter, ObjectSchema, Query, Record,
    Result, StorageType, Value, VectorMetric,
};
pub use sqlparser;
use sqlparser::ast::{ColumnOption, DataType, Expr, Ident, TableFactor};

pub use dialect::{
    AvgForm, FloatOverflow, MySqlDialect, PostgresDialect, SqliteDialect, UpsertStyle,
};
pub use expr::TextOp;
pub use ident::quote_ident;

/// A compiled statement: SQL text with placeholders, its bound values
/// already encoded for the backend, and (for reads and `RETURNING`) the
/// output columns with the storage types needed to decode rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// The bound values, in placeholder order.
    pub params: Vec<Value>,
    /// The storage type of the column each bound value stands for, in
    /// placeholder order (`None`: a value with no column, e.g. a LIKE
    /// pattern or a LIMIT). Clients that type their parameters (PostgreSQL)
    /// need it to bind a NULL with the column's type.
    pub param_types: Vec<Option<StorageType>>,
    /// The output columns (empty when the statement returns no rows).
    pub columns: Vec<OutputColumn>,
}

impl Statement {
    /// A statement written by hand (driver bookkeeping, DDL): `params` bind
    /// values that stand for no column, and it returns no rows.
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        let param_types = vec![None; params.len()];
        Self {
            sql: sql.into(),
            params,
            param_types,
            columns: Vec::new(),
        }
    }
}

/// One output column of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// The column's name in the result (a field name, an alias).
    pub name: String,
    /// How to decode it.
    pub storage: StorageType,
}

/// Collects bound values and hands out placeholders.
#[derive(Debug)]
pub struct Binder<'d> {
    dialect: &'d dyn SqlDialect,
    values: Vec<Value>,
    types: Vec<Option<StorageType>>,
}

impl<'d> Binder<'d> {
    /// An empty binder for `dialect`.
    pub fn new(dialect: &'d dyn SqlDialect) -> Self {
        Self {
            dialect,
            values: Vec::new(),
            types: Vec::new(),
        }
    }

    /// Binds an already-encoded value; returns its placeholder.
    pub fn bind(&mut self, v: Value) -> Expr {
        self.values.push(v);
        self.types.push(None);
        ast::placeholder(self.dialect.placeholder(self.values.len()))
    }

    /// Encodes `v` for a column of `st`, binds it, and returns its placeholder.
    pub fn bind_typed(&mut self, v: &Value, st: StorageType) -> Result<Expr> {
        let e = self.dialect.encode(v, st)?;
        self.values.push(e);
        self.types.push(Some(st));
        Ok(ast::placeholder(
            self.dialect.placeholder(self.values.len()),
        ))
    }

    /// How many values are bound.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is bound.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The statement, or `Unsupported` when it binds more values than the
    /// backend takes in one statement (the planner then runs a read
    /// locally; a write is refused with that typed error, never sent to
    /// fail with an unclassified one).
    fn finish(self, sql: String, columns: Vec<OutputColumn>) -> Result<Statement> {
        let max = self.dialect.max_bind_params();
        if self.values.len() > max {
            return Err(Error::unsupported(
                format!(
                    "a statement with {} bound parameters (this backend takes at most {max})",
                    self.values.len()
                ),
                self.dialect.name(),
            ));
        }
        Ok(Statement {
            sql,
            params: self.values,
            param_types: self.types,
            columns,
        })
    }
}

/// A SQL dialect: flags and hooks with defaults (PostgreSQL / SQL standard).
///
/// Hooks receive and return sqlparser expressions; values they need go
/// through the [`Binder`].
pub trait SqlDialect: Send + Sync + Debug {
    /// The driver name used in [`Error::Unsupported`].
    fn name(&self) -> &str;
    /// The identifier quote character.
    fn quote_char(&self) -> char {
        '"'
    }
    /// The placeholder for the `index`-th (1-based) bound value.
    fn placeholder(&self, index: usize) -> String {
        let _ = index;
        "?".to_owned()
    }
    /// The most bound values one statement may carry.
    fn max_bind_params(&self) -> usize;
    /// Index columns take a NULL order (`CREATE INDEX … (x NULLS FIRST)`):
    /// nullable columns are then indexed in the protocol's order.
    fn index_nulls_first(&self) -> bool {
        false
    }
    /// `ORDER BY … NULLS FIRST/LAST` is available (else an `x IS NULL` key).
    fn nulls_first_last(&self) -> bool {
        true
    }
    /// `agg(…) FILTER (WHERE …)` is available (else `CASE WHEN`).
    fn aggregate_filter(&self) -> bool {
        true
    }
    /// `INSERT/UPDATE/DELETE … RETURNING` is available.
    fn returning(&self) -> bool {
        false
    }
    /// `RETURNING` works on upserts too.
    fn upsert_returning(&self) -> bool {
        self.returning()
    }
    /// `RETURNING` works on `UPDATE` too.
    fn update_returning(&self) -> bool {
        self.returning()
    }
    /// (`RIGHT JOIN`, `FULL JOIN`) are available.
    fn right_full_joins(&self) -> (bool, bool) {
        (true, true)
    }
    /// The `LIMIT` to write when only `OFFSET` is given (`None`: OFFSET alone is valid).
    fn unbounded_limit(&self) -> Option<Expr> {
        None
    }
    /// The `LIKE … ESCAPE` character.
    fn like_escape(&self) -> char {
        '\\'
    }
    /// Decimals are stored as integers scaled by `10^scale`.
    fn scaled_decimals(&self) -> bool {
        false
    }
    /// The backend's integer `sum` fails when its running total overflows,
    /// so the answer depends on row order (SQLite: `[i64::MAX, 1, -1]`
    /// fails, `[i64::MAX, -1, 1]` does not). Integer sums are then compiled
    /// as two partial sums that cannot overflow (high and low 32 bits); the
    /// combination falls back to a float when the total leaves 64 bits,
    /// which decoding reports as `NumericOverflow`. PostgreSQL and MySQL sum
    /// bigints exactly as numeric/decimal and need none of this.
    fn split_integer_sums(&self) -> bool {
        false
    }
    /// How a float `sum` or `avg` that overflows is made an error.
    fn float_overflow(&self) -> FloatOverflow {
        FloatOverflow::Native
    }
    /// The largest decimal precision a column can hold exactly.
    fn max_decimal_precision(&self) -> u32 {
        28
    }
    /// How upserts are written.
    fn upsert_style(&self) -> UpsertStyle {
        UpsertStyle::OnConflict
    }
    /// Column changes are made by rebuilding the table (SQLite's 12 steps),
    /// which is also how keyed or NOT NULL columns are added.
    fn table_rebuild(&self) -> bool {
        false
    }
    /// Indexes are declared inside `CREATE TABLE` (no `CREATE INDEX IF NOT EXISTS`).
    fn inline_indexes(&self) -> bool {
        false
    }
    /// NULL-safe `a <> b` (never NULL): `a IS DISTINCT FROM b` by default.
    /// `b_is_value`: `b` is a placeholder bound to a non-NULL value.
    fn null_safe_ne(&self, a: Expr, b: Expr, b_is_value: bool) -> Expr {
        let _ = b_is_value;
        dialect::default_null_safe_ne(a, b)
    }
    /// Wraps a text expression so `=`, `IN`, grouping and `DISTINCT` are binary.
    fn text_eq_key(&self, e: Expr) -> Expr {
        e
    }
    /// Wraps a text expression so `<`, `>` and `ORDER BY` are binary (code point order).
    fn text_order_key(&self, e: Expr) -> Expr {
        e
    }
    /// How exactly this dialect evaluates a text operator.
    fn classify_text(&self, op: TextOp) -> Pushdown {
        let _ = op;
        Pushdown::Exact
    }
    /// How exactly a comparison of a field of type `a` with one of type `b` is evaluated.
    fn classify_field_compare(&self, a: StorageType, b: StorageType) -> Pushdown {
        let no_float = a != StorageType::Float && b != StorageType::Float;
        if a == b || (a.is_numeric() && b.is_numeric() && no_float) {
            Pushdown::Exact
        } else {
            Pushdown::Unsupported
        }
    }
    /// A text operator on `x` (a text column) with the literal or pattern `pattern`.
    fn text_op(&self, x: Expr, op: TextOp, pattern: &str, b: &mut Binder<'_>) -> Result<Expr> {
        Ok(dialect::default_text_op(
            self.like_escape(),
            x,
            op,
            pattern,
            b,
        ))
    }
    /// Whether [`Self::in_array`] binds an `$in` list over a column of `st`
    /// as one parameter. When it does not, a list too long for the bind
    /// limit is classified `Unsupported` and evaluated locally.
    fn in_list_as_one_parameter(&self, st: StorageType) -> bool {
        let _ = st;
        false
    }
    /// `x IN (list)` as one array parameter (`x = ANY($1)`, or
    /// `x <> ALL($1)` when `negated`), for a column of `st`; `None`: an IN
    /// list of one placeholder per value. `values` are non-NULL and encoded.
    /// One parameter keeps the SQL text the same for every list length (so
    /// prepared statements are reused) and lifts the bind limit.
    fn in_array(
        &self,
        x: Expr,
        values: Vec<Value>,
        st: StorageType,
        negated: bool,
        b: &mut Binder<'_>,
    ) -> Option<Expr> {
        let _ = (x, values, st, negated, b);
        None
    }
    /// The date bucket label of `x` (a date or datetime column).
    fn date_bucket(
        &self,
        x: Expr,
        st: StorageType,
        g: DateGranularity,
        tz: Option<Tz>,
        b: &mut Binder<'_>,
    ) -> Result<Expr>;
    /// How `avg` is written (it must come out as a double).
    fn avg_form(&self) -> AvgForm {
        AvgForm::CastAvg(DataType::DoublePrecision)
    }
    /// The SQL function for `min`/`max`/`sum`/`count` over a column of `st`.
    fn aggregate_name(&self, f: AggFunction, st: StorageType) -> &'static str {
        let _ = st;
        match f {
            AggFunction::Min => "min",
            AggFunction::Max => "max",
            AggFunction::Sum => "sum",
            _ => "count",
        }
    }
    /// The column type of a field.
    fn column_type(&self, st: StorageType, max_length: Option<u32>, key: bool) -> Result<DataType>;
    /// Extra column options (character set, collation).
    fn column_options(&self, st: StorageType) -> Vec<ColumnOption> {
        let _ = st;
        Vec::new()
    }
    /// A CHECK constraint for a column, where useful.
    fn column_check(&self, col: Expr, st: StorageType) -> Option<Expr> {
        let _ = (col, st);
        None
    }
    /// The option that makes an integer primary key generated.
    fn auto_increment(&self) -> Option<ColumnOption> {
        None
    }
    /// The distance between the vector column `col` and the bound query
    /// vector `query` under `metric`, for rows whose vector is neither NULL
    /// nor (for cosine) the zero vector — the compiler excludes those
    /// (`None`: this dialect has no vectors; nearest queries are
    /// `Unsupported`).
    fn vector_distance(&self, col: Expr, query: Expr, metric: VectorMetric) -> Option<Expr> {
        let _ = (col, query, metric);
        None
    }
    /// The key of a vector index on column `col` built for `metric`, as it
    /// goes between the parentheses of `CREATE INDEX … ON t (…)` (`None`:
    /// no vector indexes).
    fn vector_index_key(&self, col: Expr, metric: VectorMetric) -> Option<Expr> {
        let _ = (col, metric);
        None
    }
    /// An approximate index scan for a dialect with vector indexes: the
    /// table function (aliased `alias`) that yields the `k` rows of index
    /// `index` nearest to the bound query vector `query`, and the condition
    /// that joins its rows to the rows of `table`.
    fn vector_index_scan(
        &self,
        index: &str,
        alias: &Ident,
        table: &Ident,
        query: Expr,
        k: Expr,
    ) -> Option<(TableFactor, Expr)> {
        let _ = (index, alias, table, query, k);
        None
    }
    /// Encodes a value for a column of `st` (what the client binds).
    fn encode(&self, v: &Value, st: StorageType) -> Result<Value>;
    /// Decodes a raw value from the client as `st`. Strict: a value that does
    /// not decode is `Error::Driver { kind: Decode }`.
    fn decode(&self, v: Value, st: StorageType) -> Result<Value> {
        types::decode(v, st, self.scaled_decimals())
    }
}

/// Compiles queries and writes for one dialect against a catalog.
#[derive(Debug, Clone, Copy)]
pub struct SqlCompiler<'a> {
    dialect: &'a dyn SqlDialect,
    catalog: &'a Catalog,
}

impl<'a> SqlCompiler<'a> {
    /// A compiler for `dialect` over the objects of `catalog`.
    pub fn new(dialect: &'a dyn SqlDialect, catalog: &'a Catalog) -> Self {
        Self { dialect, catalog }
    }

    /// The dialect.
    pub fn dialect(&self) -> &'a dyn SqlDialect {
        self.dialect
    }

    /// Whether this dialect evaluates `c` with exactly eval's meaning
    /// (`Exact`), as a superset (`Inexact`), or not at all (`Unsupported`).
    pub fn classify(&self, schema: &ObjectSchema, c: &Condition) -> Pushdown {
        expr::classify(self.dialect, schema, c)
    }

    /// The pushed part of a plan → one SELECT. What it cannot express is
    /// `Err(Error::Unsupported)`, never dropped. A `nearest` query compiles
    /// to a distance-ordered SELECT (see the `nearest` module) on dialects
    /// with vectors, and is `Unsupported` elsewhere.
    pub fn select(&self, query: &Query) -> Result<Statement> {
        select::select(self, query)
    }

    /// `SELECT count(*) AS count …`: one column `count`, Integer.
    pub fn count(&self, object: &str, filter: Option<&Filter>) -> Result<Statement> {
        select::count(self, object, filter)
    }

    /// The distinct non-null values of `field`, ascending in eval's order.
    pub fn distinct(
        &self,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Statement> {
        select::distinct(self, object, field, filter)
    }

    /// INSERTs chunked under the bind limit, with RETURNING where supported.
    pub fn insert(&self, object: &str, records: &[Record]) -> Result<Vec<Statement>> {
        write::insert(self, object, records, None)
    }

    /// `UPDATE … WHERE pk = ?`, with RETURNING where supported.
    pub fn update_by_id(&self, object: &str, id: &Value, patch: &Record) -> Result<Statement> {
        write::update_by_id(self, object, id, patch)
    }

    /// `UPDATE … WHERE filter`.
    pub fn update_where(&self, object: &str, filter: &Filter, patch: &Record) -> Result<Statement> {
        write::update_where(self, object, filter, patch)
    }

    /// `DELETE … WHERE pk = ?`.
    pub fn delete_by_id(&self, object: &str, id: &Value) -> Result<Statement> {
        write::delete_by_id(self, object, id)
    }

    /// `DELETE … WHERE filter`.
    pub fn delete_where(&self, object: &str, filter: &Filter) -> Result<Statement> {
        write::delete_where(self, object, filter)
    }

    /// INSERT … ON CONFLICT (keys) DO UPDATE / ON DUPLICATE KEY UPDATE;
    /// chunked; RETURNING where supported.
    pub fn upsert(
        &self,
        object: &str,
        records: &[Record],
        conflict: &Conflict,
    ) -> Result<Vec<Statement>> {
        write::insert(self, object, records, Some(conflict))
    }

    /// CREATE TABLE IF NOT EXISTS and its indexes.
    pub fn create_table(&self, schema: &ObjectSchema) -> Result<Vec<Statement>> {
        ddl::create_table(self, schema)
    }

    /// DROP TABLE IF EXISTS.
    pub fn drop_table(&self, object: &str) -> Result<Statement> {
        Ok(ddl::drop_table(self, object))
    }

    /// Statements that turn table `old` into `new` without losing data.
    pub fn migrate(&self, old: &ObjectSchema, new: &ObjectSchema) -> Result<Vec<Statement>> {
        ddl::migrate(self, old, new)
    }

    /// Decodes one raw row (in `columns` order) into a record.
    pub fn decode_row(&self, columns: &[OutputColumn], raw: Vec<Value>) -> Result<Record> {
        if raw.len() != columns.len() {
            return Err(Error::driver(
                objectql_query_ast::DriverErrorKind::Decode,
                format!("row has {} values for {} columns", raw.len(), columns.len()),
            ));
        }
        let mut out = Record::with_capacity(columns.len());
        for (c, v) in columns.iter().zip(raw) {
            out.insert(c.name.clone(), self.dialect.decode(v, c.storage)?);
        }
        Ok(out)
    }

    fn schema(&self, object: &str) -> Result<&'a ObjectSchema> {
        self.catalog
            .get(object)
            .ok_or_else(|| Error::config(format!("object `{object}` is not registered")))
    }

    /// A quoted identifier (see [`quote_ident`]: the only way a name
    /// reaches SQL text).
    fn ident(&self, s: &str) -> Ident {
        ident::quoted(self.dialect.quote_char(), s)
    }

    fn unsupported(&self, feature: impl Into<String>) -> Error {
        Error::unsupported(feature, self.dialect.name())
    }
}
