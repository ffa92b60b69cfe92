//! Proptest strategies for schemas, rows and queries.
//!
//! Used for the memory driver's invariants, and by every other driver for
//! differential testing against the memory driver (same schema, same rows,
//! same query → same answer). Domains are deliberately small so that
//! generated data has NULLs, ties, trailing spaces, mixed case, Unicode and
//! LIKE metacharacters.

use chrono::{NaiveDate, TimeZone, Utc};
use objectql::ast::{
    AggFunction, Aggregation, Filter, GroupBy, NullsOrder, Op, Operand, SortItem, SortOrder,
};
use objectql::{DateGranularity, Field, ObjectSchema, Query, Record, Value};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// The kinds of field the generators use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// text
    Text,
    /// integer
    Integer,
    /// number (float)
    Float,
    /// currency (decimal 10,2)
    Decimal,
    /// boolean
    Boolean,
    /// date
    Date,
    /// datetime
    DateTime,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Self::Text,
        Self::Integer,
        Self::Float,
        Self::Decimal,
        Self::Boolean,
        Self::Date,
        Self::DateTime,
    ];

    fn field(self, name: &str) -> Field {
        match self {
            Self::Text => Field::new(name, "text"),
            Self::Integer => Field::new(name, "integer"),
            Self::Float => Field::new(name, "number"),
            Self::Decimal => Field::new(name, "currency").decimal(10, 2),
            Self::Boolean => Field::new(name, "boolean"),
            Self::Date => Field::new(name, "date"),
            Self::DateTime => Field::new(name, "datetime"),
        }
    }
}

/// A generated object: its schema and the kinds of its fields `f0..fn`.
#[derive(Debug, Clone)]
pub struct GenSchema {
    /// The schema (object `t`, text primary key `id`).
    pub schema: ObjectSchema,
    /// `(field name, kind)` of every non-key field.
    pub fields: Vec<(String, Kind)>,
}

const TEXTS: &[&str] = &[
    "", "a", "A", "a ", "ab", "b", "B", "é", "É", "%", "a_b", "a%b", "x.y", "\\", "ß",
];

fn value_of(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Text => proptest::sample::select(TEXTS)
            .prop_map(Value::from)
            .boxed(),
        Kind::Integer => (-3_i64..=3).prop_map(Value::Int).boxed(),
        Kind::Float => (-4_i32..=4)
            .prop_map(|i| Value::Float(f64::from(i) / 2.0))
            .boxed(),
        Kind::Decimal => (-300_i64..=300)
            .prop_map(|c| Value::Decimal(Decimal::new(c * 25, 2)))
            .boxed(),
        Kind::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Date => (0_u32..6)
            .prop_map(|d| {
                // Around a year boundary and an ISO-week boundary.
                let base = NaiveDate::from_ymd_opt(2020, 12, 29).unwrap_or_default();
                Value::Date(base + chrono::Duration::days(i64::from(d)))
            })
            .boxed(),
        Kind::DateTime => (0_i64..8)
            .prop_map(|h| {
                let base = Utc
                    .with_ymd_and_hms(2026, 2, 28, 18, 0, 0)
                    .single()
                    .unwrap_or_default();
                Value::DateTime(base + chrono::Duration::hours(h * 3))
            })
            .boxed(),
    }
}

fn nullable(kind: Kind) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(Value::Null), 4 => value_of(kind)].boxed()
}

/// A schema with 1–5 fields of random kinds.
pub fn schema() -> impl Strategy<Value = GenSchema> {
    proptest::collection::vec(proptest::sample::select(&Kind::ALL[..]), 1..=5).prop_map(|kinds| {
        let mut schema = ObjectSchema::new("t");
        let mut fields = Vec::new();
        for (i, k) in kinds.into_iter().enumerate() {
            let name = format!("f{i}");
            schema = schema.field(k.field(&name));
            fields.push((name, k));
        }
        GenSchema { schema, fields }
    })
}

/// Up to `max` rows for `s`, with ids `r000`, `r001`, …
pub fn rows(s: &GenSchema, max: usize) -> impl Strategy<Value = Vec<Record>> + use<> {
    let per_row: Vec<BoxedStrategy<Value>> = s.fields.iter().map(|(_, k)| nullable(*k)).collect();
    let names: Vec<String> = s.fields.iter().map(|(n, _)| n.clone()).collect();
    proptest::collection::vec(per_row, 0..=max).prop_map(move |rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, values)| {
                let mut r = Record::new();
                r.insert("id".into(), Value::String(format!("r{i:03}")));
                for (n, v) in names.iter().zip(values) {
                    r.insert(n.clone(), v);
                }
                r
            })
            .collect()
    })
}

/// One condition on one field of `s`.
pub fn condition(s: &GenSchema) -> BoxedStrategy<Filter> {
    let per_field: Vec<BoxedStrategy<Filter>> = s
        .fields
        .iter()
        .map(|(name, kind)| condition_on(name.clone(), *kind))
        .collect();
    proptest::strategy::Union::new(per_field).boxed()
}

fn condition_on(name: String, kind: Kind) -> BoxedStrategy<Filter> {
    let v = value_of(kind);
    let n = name.clone();
    let cmp = (0_u8..6, v.clone())
        .prop_map(move |(op, v)| {
            let o = Operand::Value(v);
            Filter::cond(
                n.clone(),
                match op {
                    0 => Op::Eq(o),
                    1 => Op::Ne(o),
                    2 => Op::Gt(o),
                    3 => Op::Gte(o),
                    4 => Op::Lt(o),
                    _ => Op::Lte(o),
                },
            )
        })
        .boxed();
    let n = name.clone();
    let list = (
        any::<bool>(),
        proptest::collection::vec(nullable(kind), 0..4),
    )
        .prop_map(move |(neg, vs)| {
            Filter::cond(n.clone(), if neg { Op::Nin(vs) } else { Op::In(vs) })
        })
        .boxed();
    let n = name.clone();
    let null = any::<bool>()
        .prop_map(move |b| Filter::cond(n.clone(), Op::Null(b)))
        .boxed();
    let n = name.clone();
    let between = (v.clone(), v)
        .prop_map(move |(a, b)| Filter::cond(n.clone(), Op::Between(a, b)))
        .boxed();
    let mut options = vec![cmp, list, null, between];
    if kind == Kind::Text {
        let n = name;
        let text = (
            0_u8..8,
            proptest::sample::select(&["a", "A", "%", "_", "b ", "é", "a%", "_b", "\\%", ""][..]),
        )
            .prop_map(move |(op, s)| {
                let s = s.to_owned();
                Filter::cond(
                    n.clone(),
                    match op {
                        // An empty comparand is refused by the substring
                        // operators (it constrains nothing); `$like` keeps it.
                        0..=4 if s.is_empty() => Op::Like(s),
                        0 => Op::Contains(s),
                        1 => Op::NotContains(s),
                        2 => Op::StartsWith(s),
                        3 => Op::EndsWith(s),
                        4 => Op::IContains(s),
                        5 => Op::Like(s),
                        6 => Op::ILike(s),
                        _ => Op::Eq(Operand::Value(Value::String(s))),
                    },
                )
            })
            .boxed();
        options.push(text);
    }
    proptest::strategy::Union::new(options).boxed()
}

/// A filter of conditions, `$and`, `$or` and `$not`, up to 3 levels deep.
pub fn filter(s: &GenSchema) -> BoxedStrategy<Filter> {
    condition(s)
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
        .boxed()
}

/// Sort keys over the fields of `s` (possibly none).
pub fn order_by(s: &GenSchema) -> BoxedStrategy<Vec<SortItem>> {
    let names: Vec<String> = s.fields.iter().map(|(n, _)| n.clone()).collect();
    let item = (proptest::sample::select(names), any::<bool>(), 0_u8..3).prop_map(
        |(field, desc, nulls)| SortItem {
            field,
            order: if desc {
                SortOrder::Desc
            } else {
                SortOrder::Asc
            },
            nulls: match nulls {
                0 => None,
                1 => Some(NullsOrder::First),
                _ => Some(NullsOrder::Last),
            },
        },
    );
    proptest::collection::vec(item, 0..3)
        .prop_map(|mut items| {
            let mut seen = Vec::new();
            items.retain(|i| {
                let fresh = !seen.contains(&i.field);
                seen.push(i.field.clone());
                fresh
            });
            items
        })
        .boxed()
}

/// A row query (filter, sort, paging, projection) over `s`.
pub fn row_query(s: &GenSchema) -> BoxedStrategy<Query> {
    let names: Vec<String> = s.fields.iter().map(|(n, _)| n.clone()).collect();
    (
        proptest::option::of(filter(s)),
        order_by(s),
        proptest::option::of(0_u64..12),
        proptest::option::of(0_u64..12),
        proptest::option::of(proptest::sample::subsequence(
            names.clone(),
            1..=names.len(),
        )),
    )
        .prop_map(|(filter, order_by, limit, offset, fields)| {
            let mut q = Query::new("t");
            q.filter = filter;
            q.order_by = order_by;
            q.limit = limit;
            q.offset = offset;
            q.fields = fields.map(|mut f| {
                f.insert(0, "id".into());
                f
            });
            q
        })
        .boxed()
}

/// An aggregate query (groupBy on 0–2 fields, 1–3 aggregations, optional
/// having on `count`) over `s`.
pub fn aggregate_query(s: &GenSchema) -> BoxedStrategy<Query> {
    let fields = s.fields.clone();
    let group_fields = fields.clone();
    let group =
        proptest::sample::subsequence(group_fields, 0..=fields.len().min(2)).prop_flat_map(|gs| {
            let per: Vec<BoxedStrategy<GroupBy>> = gs
                .into_iter()
                .map(|(name, kind)| {
                    if matches!(kind, Kind::Date | Kind::DateTime) {
                        proptest::sample::select(
                            &[
                                None,
                                Some(DateGranularity::Day),
                                Some(DateGranularity::Week),
                                Some(DateGranularity::Month),
                                Some(DateGranularity::Quarter),
                                Some(DateGranularity::Year),
                            ][..],
                        )
                        .prop_map(move |g| GroupBy {
                            field: name.clone(),
                            granularity: g,
                            alias: g.map(|_| format!("{name}_bucket")),
                            timezone: None,
                        })
                        .boxed()
                    } else {
                        Just(GroupBy {
                            field: name,
                            granularity: None,
                            alias: None,
                            timezone: None,
                        })
                        .boxed()
                    }
                })
                .collect();
            per
        });
    let agg_fields = fields;
    let agg = (0_u8..8, proptest::sample::select(agg_fields)).prop_map(|(f, (name, kind))| {
        let numeric = matches!(kind, Kind::Integer | Kind::Float | Kind::Decimal);
        let function = match f {
            1 => AggFunction::CountDistinct,
            2 | 3 if numeric => AggFunction::Sum,
            4 if numeric => AggFunction::Avg,
            5 => AggFunction::Min,
            6 => AggFunction::Max,
            _ => AggFunction::Count,
        };
        let field = if f == 0 { None } else { Some(name.as_str()) };
        let alias = format!("a_{}_{}", function.name(), field.unwrap_or("all"));
        Aggregation::new(function, field, alias)
    });
    (
        group,
        proptest::collection::vec(agg, 1..=3),
        proptest::option::of(filter(s)),
        proptest::option::of(0_i64..3),
    )
        .prop_map(|(group_by, mut aggregations, filter, having)| {
            let mut seen = Vec::new();
            aggregations.retain(|a| {
                let fresh = !seen.contains(&a.alias);
                seen.push(a.alias.clone());
                fresh
            });
            let mut q = Query::new("t");
            q.filter = filter;
            q.group_by = group_by;
            if let Some(min) = having {
                aggregations.push(Aggregation::new(AggFunction::Count, None, "n_rows"));
                q.having = Some(objectql::field("n_rows").gt(min));
            }
            q.aggregations = aggregations;
            q
        })
        .boxed()
}
