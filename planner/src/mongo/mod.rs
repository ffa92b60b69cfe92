//! The MongoDB compiler: validated queries → aggregation pipelines and query
//! documents, with exactly the reference evaluator's answers.
//!
//! A query compiles to one pipeline in this order (stages only when needed):
//!
//! `$match` (where) → `$group` (groupBy + aggregations, or distinct rows) →
//! `$project` (named outputs) → `$match` (having) → `$addFields` (NULL
//! placement keys) → `$match` (cursor) → `$sort` → `$skip` → `$limit` →
//! `$project` (the output fields; `_id` renamed to the primary key).
//!
//! The semantic gaps between MongoDB and PROTOCOL.md and how each is closed
//! are listed in the `filter` module (NULL-safe negation, `{f: null}`,
//! `$not`, type bracketing, `$regex`) and here:
//!
//! - NULL ordering: MongoDB sorts null and missing first ascending and last
//!   descending — the protocol's default. An explicit `nulls` placement that
//!   differs adds a sort key `{$in: [{$type: "$f"}, ["missing", "null"]]}`
//!   before the field.
//! - `$group` over no documents emits nothing, where an aggregate without
//!   groupBy must return one row (`count` 0, the others NULL):
//!   [`Pipeline::empty_input`] carries that row, and [`empty_input_rows`]
//!   applies `having`, cursor and paging to it.
//! - Group keys and distinct rows: a missing field and a null are one
//!   group (`$ifNull: [f, null]`).
//! - `$sum` of no numbers is 0, the protocol's sum of no values is NULL: a
//!   companion non-null count picks NULL. Integer sums are added as
//!   decimal128 (`$toDecimal`), so an overflow is reported
//!   (`NumericOverflow` when decoding) instead of silently becoming a double.
//! - Date buckets: `$dateToString` (`%G-W%V` for ISO weeks) in the bucket's
//!   timezone; quarters from `$month`. Datetimes are stored as microseconds
//!   (see [`codec`]), turned into a date with an exact floor to milliseconds.
//!
//! Never emitted: `$where`, `$function`, `$accumulator`, and `$expr` holding
//! user text. Values sit in value slots only; field names starting with `$`
//! or containing `.` are refused (they cannot be addressed as plain fields).
//! `_id` is the primary key's storage and never appears in results under
//! its own name.
//!
//! Joins: inner and left joins on one equality between a field already in
//! the row and a field of the joined object compile to `$lookup`
//! (`localField`/`foreignField`) + `$unwind` (keeping unmatched rows for a
//! left join). `$lookup` matches a missing or null local key with missing
//! or null foreign keys; the protocol's NULL never matches, so the matches
//! of a NULL key are dropped before `$unwind`. Conjuncts of `where` on base
//! fields only run before the first `$lookup`; the rest after the joins.
//! Joined fields are read from the unwound sub-documents and returned as
//! `alias.field`.
//!
//! What MongoDB cannot answer with the same meaning is `Unsupported` (the
//! engine then runs that part locally): right and full joins and join
//! conditions other than one equality, `array_agg` / `string_agg`,
//! aggregation filters and `distinct` aggregations other than
//! `count_distinct`, ordering on binary values, `avg` of decimals,
//! aliases that are not plain field names.
//!
//! ```
//! use objectql_planner::mongo::{MongoCompiler, bson::doc};
//! use objectql_query_ast::{Catalog, Field, ObjectSchema, Query, field};
//!
//! let mut catalog = Catalog::new();
//! catalog.insert(ObjectSchema::new("task").field(Field::new("title", "text")))?;
//! let compiler = MongoCompiler::new(&catalog);
//! let p = compiler.find(&Query::new("task").filter(field("title").contains("a.b")))?;
//! assert_eq!(p.collection, "task");
//! // The text is matched literally: `.` is escaped in the pattern.
//! assert_eq!(p.stages[0], doc! { "$match": { "title": { "$regex": r"a\.b" } } });
//! # Ok::<(), objectql_query_ast::Error>(())
//! ```

pub mod codec;
pub(crate) mod filter;
mod pipeline;

pub use bson;
use bson::Document;
use objectql_driver::Pushdown;
use objectql_query_ast::{
    Catalog, Condition, Error, Filter, ObjectSchema, Query, Record, Result, StorageType,
};

pub use filter::{escape as regex_escape, like as like_regex};
pub use pipeline::empty_input_rows;

/// The driver name used in `Unsupported` errors.
pub const DRIVER: &str = "mongodb";

/// A compiled read: an aggregation pipeline over one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The collection.
    pub collection: String,
    /// The stages.
    pub stages: Vec<Document>,
    /// The output fields of each document, with the storage types needed
    /// to decode them (a missing key reads as NULL).
    pub columns: Vec<OutputColumn>,
    /// The query can return no rows (`limit: 0`): do not run it.
    pub empty: bool,
    /// An aggregate without groupBy: the one row it returns over no input
    /// (`count` 0, every other aggregate NULL), before `having` and paging.
    pub empty_input: Option<Record>,
}

/// One output field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// The name in the result (`alias.field` for a joined field).
    pub name: String,
    /// The key it is read from in each output document (the name, or a
    /// positional `c0`, `c1`… where the name is not a plain key).
    pub key: String,
    /// How to decode it.
    pub storage: StorageType,
}

/// Compiles queries and filters for MongoDB against a catalog.
#[derive(Debug, Clone)]
pub struct MongoCompiler<'c> {
    catalog: &'c Catalog,
}

impl<'c> MongoCompiler<'c> {
    /// A compiler over `catalog` (every object a query may name).
    pub fn new(catalog: &'c Catalog) -> Self {
        Self { catalog }
    }

    pub(crate) fn schema(&self, object: &str) -> Result<&'c ObjectSchema> {
        self.catalog
            .get(object)
            .ok_or_else(|| Error::plan(format!("object `{object}` is not in the catalog")))
    }

    /// Whether `condition` compiles with exactly the protocol's meaning.
    pub fn classify(schema: &ObjectSchema, condition: &Condition) -> Pushdown {
        let r = ObjectFields(schema);
        match filter::compile(&r, &Filter::Condition(condition.clone())) {
            Ok(_) => Pushdown::Exact,
            Err(_) => Pushdown::Unsupported,
        }
    }

    /// The query document selecting the rows of `object` matching `filter`
    /// (for `find`, `count`, updates and deletes).
    pub fn filter(&self, object: &str, filter: Option<&Filter>) -> Result<Document> {
        let schema = self.schema(object)?;
        match filter {
            None => Ok(Document::new()),
            Some(f) => filter::compile(&ObjectFields(schema), f),
        }
    }

    /// The pushed part of a plan → one aggregation pipeline. What it cannot
    /// express is `Err(Error::Unsupported)`, never dropped.
    pub fn find(&self, query: &Query) -> Result<Pipeline> {
        pipeline::find(self, query)
    }

    /// The distinct non-null values of `field` among rows matching
    /// `filter`, ascending: documents `{v: value}`.
    pub fn distinct(&self, object: &str, field: &str, filter: Option<&Filter>) -> Result<Pipeline> {
        pipeline::distinct(self, object, field, filter)
    }

    /// The document key and storage type of `field` of `object` (the
    /// primary key is `_id`).
    pub fn field_path(&self, object: &str, field: &str) -> Result<(String, StorageType)> {
        ObjectFields(self.schema(object)?).resolve_field(field)
    }
}

/// Whether `name` can be used as a plain document key: not empty, no `.`,
/// no leading `$`, no NUL, and not `_id` (the primary key's storage).
pub fn is_plain_key(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('$')
        && !name.contains('.')
        && !name.contains('\0')
        && name != "_id"
}

/// Checks that every stored field of `schema` has a plain document key.
pub fn check_schema(schema: &ObjectSchema) -> Result<()> {
    for (name, f) in &schema.fields {
        if name == &schema.primary_key || f.storage_type()? == StorageType::Virtual {
            continue;
        }
        if !is_plain_key(f.column()) {
            return Err(Error::validation(
                format!("fields.{name}"),
                format!(
                    "`{}` cannot be a MongoDB field name (empty, starting with `$`, containing `.` or NUL, or `_id`)",
                    f.column()
                ),
            ));
        }
    }
    Ok(())
}

/// Field resolution over one object's schema.
pub(crate) struct ObjectFields<'s>(pub(crate) &'s ObjectSchema);

impl ObjectFields<'_> {
    fn resolve_field(&self, field: &str) -> Result<(String, StorageType)> {
        let schema = self.0;
        let f = schema
            .get(field)
            .ok_or_else(|| Error::plan(format!("`{}` has no field `{field}`", schema.name)))?;
        let st = f.storage_type()?;
        if st == StorageType::Virtual {
            return Err(Error::unsupported(
                format!("virtual field `{field}`"),
                DRIVER,
            ));
        }
        if field == schema.primary_key {
            return Ok(("_id".to_owned(), st));
        }
        if !is_plain_key(f.column()) {
            return Err(Error::unsupported(
                format!("field `{field}` (its name cannot be a MongoDB field name)"),
                DRIVER,
            ));
        }
        Ok((f.column().to_owned(), st))
    }
}

impl filter::Resolve for ObjectFields<'_> {
    fn resolve(&self, field: &str) -> Result<(String, StorageType)> {
        self.resolve_field(field)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
