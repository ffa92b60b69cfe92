//! Grouping and aggregate functions, date buckets.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::Datelike;
use chrono_tz::Tz;
use objectql_query_ast::{
    AggFunction, Aggregation, DateGranularity, DriverErrorKind, Error, Filter, GroupBy, Result,
    Value,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::compare::total_cmp;
use super::filter::Predicate;
use super::hash::{FxBuildHasher, ValueKey, hash_row, key_eq};
use super::{Columns, Relation};

/// The bucket label of a date or datetime (UTC): `2026` (year), `2026-Q1`
/// (quarter), `2026-03` (month), `2026-W09` (ISO week, with the ISO
/// week-numbering year: 2021-01-01 is `2020-W53`), `2026-03-01` (day).
/// NULL and non-date values give NULL.
pub fn date_bucket(v: &Value, g: DateGranularity) -> Value {
    date_bucket_in(v, g, None)
}

/// [`date_bucket`] with datetimes taken in `timezone` (`None` = UTC); dates
/// are calendar days and need no timezone.
pub fn date_bucket_in(v: &Value, g: DateGranularity, timezone: Option<Tz>) -> Value {
    let d = match (v, timezone) {
        (Value::Date(d), _) => *d,
        (Value::DateTime(t), None) => t.date_naive(),
        (Value::DateTime(t), Some(tz)) => t.with_timezone(&tz).date_naive(),
        _ => return Value::Null,
    };
    Value::String(match g {
        DateGranularity::Year => format!("{:04}", d.year()),
        DateGranularity::Quarter => format!("{:04}-Q{}", d.year(), d.month0() / 3 + 1),
        DateGranularity::Month => format!("{:04}-{:02}", d.year(), d.month()),
        DateGranularity::Week => {
            let w = d.iso_week();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        DateGranularity::Day => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
    })
}

fn overflow(what: &str) -> Error {
    Error::driver(
        DriverErrorKind::NumericOverflow,
        format!("{what} overflows its type"),
    )
}

/// i64 → nearest f64 (rounding; used only where a float result is wanted).
fn int_f64(i: i64) -> f64 {
    i.to_f64().unwrap_or(f64::NAN)
}

fn u64_f64(u: u64) -> f64 {
    u.to_f64().unwrap_or(f64::NAN)
}

fn dec_f64(d: &Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

fn finite(f: f64, what: &str) -> Result<f64> {
    if f.is_finite() {
        Ok(f)
    } else {
        Err(overflow(what))
    }
}

#[derive(Debug)]
enum Sum {
    Empty,
    /// Exact whatever the row order: 2^64 rows of ±2^63 cannot overflow
    /// i128; only the total must fit 64 bits.
    Int(i128),
    Float(f64),
    Decimal(Decimal),
}

impl Sum {
    fn add(&mut self, v: &Value) -> Result<()> {
        let next = match (&*self, v) {
            (Self::Empty, Value::Int(i)) => Self::Int(i128::from(*i)),
            (Self::Empty, Value::Float(f)) => Self::Float(*f),
            (Self::Empty, Value::Decimal(d)) => Self::Decimal(*d),
            (Self::Int(a), Value::Int(b)) => Self::Int(
                a.checked_add(i128::from(*b))
                    .ok_or_else(|| overflow("integer sum"))?,
            ),
            (Self::Int(a), Value::Float(b)) => Self::Float(a.to_f64().unwrap_or(f64::NAN) + b),
            (Self::Int(a), Value::Decimal(b)) => Self::Decimal(
                Decimal::try_from_i128_with_scale(*a, 0)
                    .ok()
                    .and_then(|a| a.checked_add(*b))
                    .ok_or_else(|| overflow("decimal sum"))?,
            ),
            (Self::Float(a), Value::Int(b)) => Self::Float(a + int_f64(*b)),
            (Self::Float(a), Value::Float(b)) => Self::Float(a + b),
            (Self::Float(a), Value::Decimal(b)) => Self::Float(a + dec_f64(b)),
            (Self::Decimal(a), Value::Int(b)) => Self::Decimal(
                a.checked_add(Decimal::from(*b))
                    .ok_or_else(|| overflow("decimal sum"))?,
            ),
            (Self::Decimal(a), Value::Float(b)) => Self::Float(dec_f64(a) + b),
            (Self::Decimal(a), Value::Decimal(b)) => {
                Self::Decimal(a.checked_add(*b).ok_or_else(|| overflow("decimal sum"))?)
            }
            (_, other) => {
                return Err(Error::plan(format!(
                    "cannot sum a {} value",
                    other.type_name()
                )));
            }
        };
        *self = next;
        Ok(())
    }

    fn finish(&self) -> Result<Value> {
        Ok(match self {
            Self::Empty => Value::Null,
            Self::Int(i) => Value::Int(i64::try_from(*i).map_err(|_| overflow("integer sum"))?),
            Self::Float(f) => Value::Float(finite(*f, "float sum")?),
            Self::Decimal(d) => Value::Decimal(*d),
        })
    }
}

#[derive(Debug)]
enum AvgSum {
    Empty,
    Int(i128),
    Float(f64),
    Decimal(Decimal),
}

impl AvgSum {
    fn add(&mut self, v: &Value) -> Result<()> {
        let next = match (&*self, v) {
            (Self::Empty, Value::Int(i)) => Self::Int(i128::from(*i)),
            (Self::Empty, Value::Float(f)) => Self::Float(*f),
            (Self::Empty, Value::Decimal(d)) => Self::Decimal(*d),
            (Self::Int(a), Value::Int(b)) => Self::Int(
                a.checked_add(i128::from(*b))
                    .ok_or_else(|| overflow("average"))?,
            ),
            (Self::Int(a), Value::Float(b)) => Self::Float(a.to_f64().unwrap_or(f64::NAN) + b),
            (Self::Int(a), Value::Decimal(b)) => Self::Decimal(
                Decimal::try_from_i128_with_scale(*a, 0)
                    .ok()
                    .and_then(|a| a.checked_add(*b))
                    .ok_or_else(|| overflow("average"))?,
            ),
            (Self::Float(a), Value::Int(b)) => Self::Float(a + int_f64(*b)),
            (Self::Float(a), Value::Float(b)) => Self::Float(a + b),
            (Self::Float(a), Value::Decimal(b)) => Self::Float(a + dec_f64(b)),
            (Self::Decimal(a), Value::Int(b)) => Self::Decimal(
                a.checked_add(Decimal::from(*b))
                    .ok_or_else(|| overflow("average"))?,
            ),
            (Self::Decimal(a), Value::Float(b)) => Self::Float(dec_f64(a) + b),
            (Self::Decimal(a), Value::Decimal(b)) => {
                Self::Decimal(a.checked_add(*b).ok_or_else(|| overflow("average"))?)
            }
            (_, other) => {
                return Err(Error::plan(format!(
                    "cannot average a {} value",
                    other.type_name()
                )));
            }
        };
        *self = next;
        Ok(())
    }

    /// The mean as a float: integer and decimal sums are divided exactly (to
    /// 28 significant digits) before the one conversion to float.
    fn finish(&self, count: u64) -> Result<Value> {
        match self {
            Self::Empty => Ok(Value::Null),
            Self::Int(s) => mean_of_integers(*s, count),
            Self::Float(s) => mean_of_floats(*s, count),
            Self::Decimal(s) => mean_of_decimals(*s, count),
        }
    }
}

/// The mean of `count` integers summing to `sum`, as the evaluator's `avg`
/// computes it: divided exactly (to 28 significant digits) before the one
/// conversion to float. NULL when `count` is 0. Exposed so that another
/// engine (DataFusion, in objectql-federation) finishes an average exactly
/// as the evaluator does.
pub fn mean_of_integers(sum: i128, count: u64) -> Result<Value> {
    if count == 0 {
        return Ok(Value::Null);
    }
    let f = Decimal::try_from_i128_with_scale(sum, 0)
        .ok()
        .and_then(|s| exact_mean(s, count))
        .unwrap_or_else(|| sum.to_f64().unwrap_or(f64::NAN) / u64_f64(count));
    Ok(Value::Float(finite(f, "average")?))
}

/// [`mean_of_integers`] for decimals.
pub fn mean_of_decimals(sum: Decimal, count: u64) -> Result<Value> {
    if count == 0 {
        return Ok(Value::Null);
    }
    let f = exact_mean(sum, count).unwrap_or_else(|| dec_f64(&sum) / u64_f64(count));
    Ok(Value::Float(finite(f, "average")?))
}

/// [`mean_of_integers`] for floats (their sum, divided by the count).
pub fn mean_of_floats(sum: f64, count: u64) -> Result<Value> {
    if count == 0 {
        return Ok(Value::Null);
    }
    Ok(Value::Float(finite(sum / u64_f64(count), "average")?))
}

fn exact_mean(sum: Decimal, count: u64) -> Option<f64> {
    sum.checked_div(Decimal::from(count)).map(|q| dec_f64(&q))
}

/// The error of a sum or count beyond its type, as the evaluator reports
/// it (`what`: "integer sum", "decimal sum", "float sum", "average").
pub fn overflow_error(what: &str) -> Error {
    overflow(what)
}

#[derive(Debug)]
enum Acc<'a> {
    CountRows(u64),
    Count(u64),
    Sum(Sum),
    Avg(AvgSum, u64),
    Min(Option<&'a Value>),
    Max(Option<&'a Value>),
    Array(Vec<&'a Value>),
    Str(Vec<&'a Value>),
}

#[derive(Debug)]
struct State<'a> {
    acc: Acc<'a>,
    /// For distinct aggregations: the non-null values already aggregated.
    /// Boxed to keep `State` small: most aggregations are not distinct.
    #[allow(clippy::box_collection)]
    seen: Option<Box<HashSet<ValueKey<&'a Value>, FxBuildHasher>>>,
}

#[derive(Debug)]
struct CompiledAgg {
    function: AggFunction,
    col: Option<usize>,
    distinct: bool,
    filter: Option<Predicate>,
    separator: String,
}

impl CompiledAgg {
    fn new_state<'a>(&self) -> State<'a> {
        let acc = match (self.function, self.col) {
            (AggFunction::Count, None) => Acc::CountRows(0),
            (AggFunction::Count | AggFunction::CountDistinct, _) => Acc::Count(0),
            (AggFunction::Sum, _) => Acc::Sum(Sum::Empty),
            (AggFunction::Avg, _) => Acc::Avg(AvgSum::Empty, 0),
            (AggFunction::Min, _) => Acc::Min(None),
            (AggFunction::Max, _) => Acc::Max(None),
            (AggFunction::ArrayAgg, _) => Acc::Array(Vec::new()),
            // `string_agg` (`aggregate` refuses functions it does not know).
            _ => Acc::Str(Vec::new()),
        };
        State {
            acc,
            seen: (self.distinct && self.col.is_some()).then(Box::default),
        }
    }
}

const NULL: Value = Value::Null;

fn update<'a>(agg: &CompiledAgg, state: &mut State<'a>, row: &'a [Value]) -> Result<()> {
    if let Some(f) = &agg.filter
        && !f.matches(row)
    {
        return Ok(());
    }
    let v: &'a Value = match agg.col {
        Some(c) => row.get(c).unwrap_or(&NULL),
        None => &NULL,
    };
    if let Some(seen) = &mut state.seen
        && (v.is_null() || !seen.insert(ValueKey(v)))
    {
        return Ok(());
    }
    match &mut state.acc {
        Acc::CountRows(n) => *n += 1,
        Acc::Array(items) => items.push(v),
        _ if v.is_null() => {}
        Acc::Count(n) => *n += 1,
        Acc::Sum(s) => s.add(v)?,
        Acc::Avg(s, n) => {
            s.add(v)?;
            *n += 1;
        }
        Acc::Min(m) => {
            if m.is_none_or(|cur| total_cmp(v, cur).is_lt()) {
                *m = Some(v);
            }
        }
        Acc::Max(m) => {
            if m.is_none_or(|cur| total_cmp(v, cur).is_gt()) {
                *m = Some(v);
            }
        }
        Acc::Str(items) => items.push(v),
    }
    Ok(())
}

fn finish(agg: &CompiledAgg, state: &State<'_>) -> Result<Value> {
    let count = |n: u64| {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| overflow("count"))
    };
    Ok(match &state.acc {
        Acc::CountRows(n) | Acc::Count(n) => count(*n)?,
        Acc::Sum(s) => s.finish()?,
        Acc::Avg(s, n) => s.finish(*n)?,
        Acc::Min(m) | Acc::Max(m) => m.cloned().unwrap_or(Value::Null),
        Acc::Array(items) if items.is_empty() => Value::Null,
        Acc::Array(items) => Value::json(serde_json::Value::Array(
            items.iter().map(|v| v.to_json()).collect(),
        )),
        Acc::Str(items) if items.is_empty() => Value::Null,
        Acc::Str(items) => {
            let mut out = String::new();
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&agg.separator);
                }
                match v {
                    Value::String(s) => out.push_str(s),
                    other => match other.to_json() {
                        serde_json::Value::String(s) => out.push_str(&s),
                        j => out.push_str(&j.to_string()),
                    },
                }
            }
            Value::String(out)
        }
    })
}

/// Groups `rows` by `group_by` and computes `aggregations` per group, then
/// keeps the groups where `having` is TRUE.
///
/// Output columns: the group outputs ([`GroupBy::output_name`], in order)
/// then the aggregation aliases. Groups come out in first-seen order. Without
/// `group_by` there is exactly one output row, even over zero input rows.
pub fn aggregate<'a, I>(
    columns: &Columns,
    rows: I,
    group_by: &[GroupBy],
    aggregations: &[Aggregation],
    having: Option<&Filter>,
) -> Result<Relation>
where
    I: IntoIterator<Item = &'a [Value]>,
{
    let resolve = |name: &str| {
        columns.index_of(name).ok_or_else(|| {
            Error::internal(format!(
                "aggregate refers to unknown column `{name}` (columns: {})",
                columns.names().join(", ")
            ))
        })
    };
    // (column, date bucket, timezone of datetime buckets: UTC when `None`).
    let groups: Vec<(usize, Option<DateGranularity>, Option<Tz>)> = group_by
        .iter()
        .map(|g| Ok((resolve(&g.field)?, g.granularity, g.timezone)))
        .collect::<Result<_>>()?;
    let aggs: Vec<CompiledAgg> = aggregations
        .iter()
        .map(|a| {
            let col = a.field.as_deref().map(resolve).transpose()?;
            if !matches!(
                a.function,
                AggFunction::Count
                    | AggFunction::CountDistinct
                    | AggFunction::Sum
                    | AggFunction::Avg
                    | AggFunction::Min
                    | AggFunction::Max
                    | AggFunction::ArrayAgg
                    | AggFunction::StringAgg
            ) {
                return Err(Error::internal(format!(
                    "the evaluator does not know aggregate function `{}`",
                    a.function.name()
                )));
            }
            if col.is_none() && a.function != AggFunction::Count {
                return Err(Error::plan(format!(
                    "`{}` needs a field",
                    a.function.name()
                )));
            }
            Ok(CompiledAgg {
                function: a.function,
                col,
                distinct: a.distinct || a.function == AggFunction::CountDistinct,
                filter: a
                    .filter
                    .as_ref()
                    .map(|f| Predicate::compile(f, columns))
                    .transpose()?,
                separator: a.separator.clone().unwrap_or_else(|| ",".to_owned()),
            })
        })
        .collect::<Result<_>>()?;

    // Group keys and aggregate states, flat: group `g` owns
    // `keys[g * kw..][..kw]` and `states[g * aw..][..aw]` (one allocation
    // per table, not per group).
    let (kw, aw) = (groups.len(), aggs.len());
    let mut keys: Vec<Value> = Vec::new();
    let mut states: Vec<State<'a>> = Vec::new();
    let mut ngroups = 0_usize;
    if groups.is_empty() {
        ngroups = 1;
        states.extend(aggs.iter().map(CompiledAgg::new_state));
        for row in rows {
            for (agg, state) in aggs.iter().zip(states.iter_mut()) {
                update(agg, state, row)?;
            }
        }
    } else {
        // hash → latest group with that hash; `chain[g]` → the previous one.
        let mut index: HashMap<u64, usize, FxBuildHasher> = HashMap::default();
        let mut chain: Vec<Option<usize>> = Vec::new();
        let mut scratch: Vec<Cow<'a, Value>> = Vec::with_capacity(kw);
        for row in rows {
            scratch.clear();
            for (col, g, tz) in &groups {
                let v = row.get(*col).unwrap_or(&NULL);
                scratch.push(match g {
                    Some(g) => Cow::Owned(date_bucket_in(v, *g, *tz)),
                    None => Cow::Borrowed(v),
                });
            }
            let h = hash_row(scratch.iter().map(AsRef::as_ref));
            let mut found = None;
            let mut cursor = index.get(&h).copied();
            while let Some(g) = cursor {
                let same = keys
                    .get(g * kw..(g + 1) * kw)
                    .is_some_and(|k| k.iter().zip(&scratch).all(|(a, b)| key_eq(a, b)));
                if same {
                    found = Some(g);
                    break;
                }
                cursor = chain.get(g).copied().flatten();
            }
            let g = if let Some(g) = found {
                g
            } else {
                let g = ngroups;
                ngroups += 1;
                keys.extend(scratch.drain(..).map(Cow::into_owned));
                states.extend(aggs.iter().map(CompiledAgg::new_state));
                chain.push(index.insert(h, g));
                g
            };
            if let Some(group_states) = states.get_mut(g * aw..(g + 1) * aw) {
                for (agg, state) in aggs.iter().zip(group_states.iter_mut()) {
                    update(agg, state, row)?;
                }
            }
        }
    }

    let names: Vec<String> = group_by
        .iter()
        .map(|g| g.output_name().to_owned())
        .chain(aggregations.iter().map(|a| a.alias.clone()))
        .collect();
    let out_columns = Columns::new(names);
    let having = having
        .map(|h| Predicate::compile(h, &out_columns))
        .transpose()?;
    let mut out_rows = Vec::with_capacity(ngroups);
    let mut key_cells = keys.into_iter();
    for g in 0..ngroups {
        let mut row = Vec::with_capacity(kw + aw);
        row.extend(key_cells.by_ref().take(kw));
        for (agg, state) in aggs
            .iter()
            .zip(states.get(g * aw..(g + 1) * aw).unwrap_or(&[]))
        {
            row.push(finish(agg, state)?);
        }
        if having.as_ref().is_none_or(|h| h.matches(&row)) {
            out_rows.push(row);
        }
    }
    Ok(Relation {
        columns: out_columns,
        rows: out_rows,
    })
}
