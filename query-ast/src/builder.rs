//! A builder API for queries and filters.
//!
//! ```
//! use objectql_query_ast::{Query, field};
//!
//! let q = Query::new("task")
//!     .select(["id", "title"])
//!     .filter(field("status").eq("open").and(field("priority").gte(2)))
//!     .desc("priority")
//!     .limit(10);
//! assert_eq!(q.limit, Some(10));
//! ```

use crate::filter::{Filter, Op, Operand};
use crate::nearest::Nearest;
use crate::query::{
    AggFunction, Aggregation, Cursor, DateGranularity, GroupBy, Join, JoinType, Query, SortItem,
};
use crate::value::Value;

/// Starts a condition on `name`.
pub fn field(name: impl Into<String>) -> FieldRef {
    FieldRef(name.into())
}

/// A field about to be compared; each method returns a [`Filter`].
#[derive(Debug, Clone)]
pub struct FieldRef(String);

macro_rules! cmp {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        $($(#[$doc])* pub fn $name(self, v: impl Into<Value>) -> Filter {
            Filter::cond(self.0, Op::$op(Operand::Value(v.into())))
        })*
    };
}

macro_rules! text {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        $($(#[$doc])* pub fn $name(self, s: impl Into<String>) -> Filter {
            Filter::cond(self.0, Op::$op(s.into()))
        })*
    };
}

impl FieldRef {
    cmp! {
        /// `$eq` (a null value means IS NULL).
        eq => Eq,
        /// `$ne`, NULL-safe.
        ne => Ne,
        /// `$gt`.
        gt => Gt,
        /// `$gte`.
        gte => Gte,
        /// `$lt`.
        lt => Lt,
        /// `$lte`.
        lte => Lte,
    }

    text! {
        /// `$contains` (case-sensitive, literal).
        contains => Contains,
        /// `$notContains`, NULL-safe.
        not_contains => NotContains,
        /// `$startsWith`.
        starts_with => StartsWith,
        /// `$endsWith`.
        ends_with => EndsWith,
        /// `$icontains` (ASCII case folding).
        icontains => IContains,
        /// `$like`.
        like => Like,
        /// `$ilike`.
        ilike => ILike,
    }

    /// `$in`.
    pub fn in_list<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::cond(self.0, Op::In(values.into_iter().map(Into::into).collect()))
    }

    /// `$nin`, NULL-safe.
    pub fn not_in<V: Into<Value>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        Filter::cond(
            self.0,
            Op::Nin(values.into_iter().map(Into::into).collect()),
        )
    }

    /// `$between` (inclusive).
    pub fn between(self, low: impl Into<Value>, high: impl Into<Value>) -> Filter {
        Filter::cond(self.0, Op::Between(low.into(), high.into()))
    }

    /// IS NULL.
    pub fn is_null(self) -> Filter {
        Filter::cond(self.0, Op::Null(true))
    }

    /// IS NOT NULL.
    pub fn is_not_null(self) -> Filter {
        Filter::cond(self.0, Op::Null(false))
    }

    /// Equal to another field.
    pub fn eq_field(self, other: impl Into<String>) -> Filter {
        Filter::cond(self.0, Op::Eq(Operand::Field(other.into())))
    }
}

impl Query {
    /// Sets the projection.
    pub fn select<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// ANDs a filter into `where`.
    pub fn filter(mut self, f: Filter) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(existing) => existing.and(f),
            None => f,
        });
        self
    }

    /// Appends a sort key.
    pub fn order_by(mut self, item: SortItem) -> Self {
        self.order_by.push(item);
        self
    }

    /// Appends an ascending sort key.
    pub fn asc(self, field: impl Into<String>) -> Self {
        self.order_by(SortItem::asc(field))
    }

    /// Appends a descending sort key.
    pub fn desc(self, field: impl Into<String>) -> Self {
        self.order_by(SortItem::desc(field))
    }

    /// Sets the limit.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Sets the offset.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    /// Continues after a keyset cursor.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// Adds an aggregation.
    pub fn aggregate(mut self, a: Aggregation) -> Self {
        self.aggregations.push(a);
        self
    }

    /// Adds `count(*) AS alias`.
    pub fn count_as(self, alias: impl Into<String>) -> Self {
        self.aggregate(Aggregation::new(AggFunction::Count, None, alias))
    }

    /// Adds `function(field) AS alias`.
    pub fn agg(self, function: AggFunction, field: &str, alias: impl Into<String>) -> Self {
        self.aggregate(Aggregation::new(function, Some(field), alias))
    }

    /// Groups by a field.
    pub fn group_by(mut self, field: impl Into<String>) -> Self {
        self.group_by.push(GroupBy {
            field: field.into(),
            granularity: None,
            alias: None,
            timezone: None,
        });
        self
    }

    /// Groups by date buckets of a date/datetime field.
    pub fn group_by_date(
        mut self,
        field: impl Into<String>,
        g: DateGranularity,
        alias: impl Into<String>,
    ) -> Self {
        self.group_by.push(GroupBy {
            field: field.into(),
            granularity: Some(g),
            alias: Some(alias.into()),
            timezone: None,
        });
        self
    }

    /// Sets `having`.
    pub fn having(mut self, f: Filter) -> Self {
        self.having = Some(f);
        self
    }

    /// Distinct rows of the projection.
    pub fn distinct(mut self) -> Self {
        self.distinct = true;
        self
    }

    /// Expands a lookup field.
    pub fn expand(mut self, lookup_field: impl Into<String>, sub: Query) -> Self {
        self.expand.insert(lookup_field.into(), sub);
        self
    }

    /// Makes this a nearest-neighbour query (see [`Nearest`]).
    pub fn nearest(mut self, n: Nearest) -> Self {
        self.nearest = Some(n);
        self
    }

    /// Adds a join.
    pub fn join(
        mut self,
        join_type: JoinType,
        object: impl Into<String>,
        alias: impl Into<String>,
        on: Filter,
    ) -> Self {
        self.joins.push(Join {
            join_type,
            object: object.into(),
            alias: alias.into(),
            on,
        });
        self
    }
}
