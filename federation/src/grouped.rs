//! A QueryAST aggregation (group by, date buckets, aggregate functions,
//! their `filter`s, `having`) lowered onto DataFusion's aggregation, with
//! the results the reference evaluator gives.
//!
//! DataFusion's own functions differ from the protocol in a few places, so:
//!
//! - an integer `sum` adds in 128-bit decimals (`DECIMAL(38, 0)`), never
//!   wrapping, and a total beyond 64 bits is a `NumericOverflow` error, as
//!   in the evaluator;
//! - `avg` is the sum and the count, finished by the evaluator's own
//!   arithmetic (integer and decimal sums divided exactly before the one
//!   conversion to float) instead of DataFusion's float division;
//! - a float sum or average that is not finite is a `NumericOverflow`
//!   error;
//! - date buckets are labelled by the evaluator's `date_bucket_in` (ISO
//!   weeks, quarters, the group's timezone);
//! - `count` of no field counts rows, `count` of a field and
//!   `count_distinct` skip NULLs (as SQL's).
//!
//! `array_agg` and `string_agg` are not lowered: their elements come in the
//! input rows' order, which DataFusion's hash aggregation does not keep.

use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::{Column, Result as DfResult};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprFunctionExt, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, cast, lit,
};
use objectql_driver::arrow_data_type;
use objectql_planner::eval::{
    date_bucket_in, mean_of_decimals, mean_of_floats, mean_of_integers, overflow_error,
};
use objectql_query_ast::{
    AggFunction, Aggregation, DateGranularity, Error, Query, Result, StorageType, Value,
};
use rust_decimal::Decimal;

use crate::error::{from_datafusion, to_datafusion};
use crate::lower::{self, Scope};

/// Why `q`'s aggregation is not lowered (`None`: it is).
pub(crate) fn refusal(q: &Query) -> Option<String> {
    q.aggregations
        .iter()
        .find(|a| matches!(a.function, AggFunction::ArrayAgg | AggFunction::StringAgg))
        .map(|a| {
            format!(
                "`{}` over joined rows (its elements come in input order, which DataFusion's \
                 hash aggregation does not keep)",
                a.function.name()
            )
        })
}

/// The columns after an aggregation: each output's unqualified column and
/// storage type, in output order (group outputs, then aggregations).
pub(crate) struct Outputs(pub(crate) Vec<(String, StorageType)>);

impl Scope for Outputs {
    fn column(&self, name: &str) -> Option<(Column, StorageType)> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, st)| (Column::new_unqualified(n), *st))
    }
}

/// The precision of a decimal sum: DataFusion's (ten more digits, at most
/// 38).
fn sum_precision(precision: u32) -> u32 {
    (precision + 10).min(38)
}

fn internal_column(prefix: &str, i: usize) -> Expr {
    Expr::Column(Column::new_unqualified(format!("{prefix}{i}")))
}

/// `plan` grouped and aggregated as `q` says (`where` already applied),
/// then projected onto the outputs, named as in `q`'s rows. `having`, the
/// sort and the page are the caller's, over [`Outputs`].
pub(crate) fn aggregate(
    plan: LogicalPlanBuilder,
    q: &Query,
    scope: &dyn Scope,
) -> Result<(LogicalPlanBuilder, Outputs)> {
    let column = |name: &str| {
        scope
            .column(name)
            .ok_or_else(|| Error::internal(format!("an aggregation names unknown column `{name}`")))
    };
    let mut groups = Vec::with_capacity(q.group_by.len());
    let mut finals = Vec::new();
    let mut outputs = Vec::new();
    for (i, g) in q.group_by.iter().enumerate() {
        let (col, st) = column(&g.field)?;
        let (expr, st) = match g.granularity {
            Some(granularity) => (
                DateBucket::expr(Expr::Column(col), st, granularity, g.timezone)?,
                StorageType::Text,
            ),
            None => (Expr::Column(col), st),
        };
        groups.push(expr.alias(format!("g{i}")));
        finals.push(internal_column("g", i).alias(g.output_name()));
        outputs.push((g.output_name().to_owned(), st));
    }
    let mut aggs = Vec::new();
    for (i, a) in q.aggregations.iter().enumerate() {
        let input = a.field.as_deref().map(column).transpose()?;
        let filter = a
            .filter
            .as_ref()
            .map(|f| lower::filter(f, scope))
            .transpose()?;
        let distinct = a.distinct || a.function == AggFunction::CountDistinct;
        let (finished, st) = aggregation(a, input, filter.as_ref(), distinct, i, &mut aggs)?;
        finals.push(finished.alias(a.alias.as_str()));
        outputs.push((a.alias.clone(), st));
    }
    let plan = plan
        .aggregate(groups, aggs)
        .map_err(from_datafusion)?
        .project(finals)
        .map_err(from_datafusion)?;
    Ok((plan, Outputs(outputs)))
}

/// Adds the DataFusion aggregates of `a` (the `i`th aggregation) to
/// `aggs`, and returns the expression that finishes them, over the
/// aggregation's output, with its storage type.
fn aggregation(
    a: &Aggregation,
    input: Option<(Column, StorageType)>,
    filter: Option<&Expr>,
    distinct: bool,
    i: usize,
    aggs: &mut Vec<Expr>,
) -> Result<(Expr, StorageType)> {
    let build = |e: Expr, distinct: bool| -> Result<Expr> {
        match (filter.cloned(), distinct) {
            (None, false) => Ok(e),
            (None, true) => e.distinct().build(),
            (Some(f), false) => e.filter(f).build(),
            (Some(f), true) => e.distinct().filter(f).build(),
        }
        .map_err(from_datafusion)
    };
    let needs_field = || Error::plan(format!("`{}` needs a field", a.function.name()));
    let wide = DataType::Decimal128(38, 0);
    Ok(match (a.function, input) {
        (AggFunction::Count, None) => {
            aggs.push(build(count(lit(1_i64)), false)?.alias(format!("a{i}")));
            (internal_column("a", i), StorageType::Integer)
        }
        (AggFunction::Count | AggFunction::CountDistinct, Some((col, _))) => {
            aggs.push(build(count(Expr::Column(col)), distinct)?.alias(format!("a{i}")));
            (internal_column("a", i), StorageType::Integer)
        }
        (AggFunction::Min | AggFunction::Max, Some((col, st))) => {
            let f = if a.function == AggFunction::Min {
                min
            } else {
                max
            };
            aggs.push(build(f(Expr::Column(col)), false)?.alias(format!("a{i}")));
            (internal_column("a", i), st)
        }
        (AggFunction::Sum | AggFunction::Avg, Some((col, st))) => {
            let (summed, kind) = match st {
                StorageType::Integer => {
                    (cast(Expr::Column(col.clone()), wide.clone()), Kind::Integer)
                }
                StorageType::Float => (Expr::Column(col.clone()), Kind::Float),
                StorageType::Decimal { precision, scale } => (
                    Expr::Column(col.clone()),
                    Kind::Decimal {
                        precision: sum_precision(precision),
                        scale,
                    },
                ),
                other => {
                    return Err(Error::plan(format!(
                        "cannot {} a {} column",
                        a.function.name(),
                        other.name()
                    )));
                }
            };
            aggs.push(build(sum(summed), distinct)?.alias(format!("a{i}")));
            let total = cast(internal_column("a", i), kind.sum_type());
            if a.function == AggFunction::Sum {
                (
                    Finish::call(Step::Sum(kind), vec![total]),
                    kind.sum_storage(),
                )
            } else {
                aggs.push(build(count(Expr::Column(col)), distinct)?.alias(format!("n{i}")));
                (
                    Finish::call(Step::Mean(kind), vec![total, internal_column("n", i)]),
                    StorageType::Float,
                )
            }
        }
        (AggFunction::ArrayAgg | AggFunction::StringAgg, _) => {
            return Err(Error::Unsupported {
                feature: format!("`{}` on DataFusion", a.function.name()),
                driver: "federation".into(),
            });
        }
        (_, None) => return Err(needs_field()),
        #[allow(unreachable_patterns)]
        (other, _) => {
            return Err(Error::Unsupported {
                feature: format!("aggregate function `{}` on DataFusion", other.name()),
                driver: "federation".into(),
            });
        }
    })
}

/// The type of the values a `sum` or `avg` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Integers, added as `DECIMAL(38, 0)`.
    Integer,
    Float,
    /// Decimals, added as `DECIMAL(precision, scale)` (the sum's type).
    Decimal {
        precision: u32,
        scale: u32,
    },
}

impl Kind {
    fn sum_type(self) -> DataType {
        match self {
            Self::Integer => DataType::Decimal128(38, 0),
            Self::Float => DataType::Float64,
            Self::Decimal { precision, scale } => {
                arrow_data_type(StorageType::Decimal { precision, scale })
            }
        }
    }

    /// The storage type of the finished sum.
    fn sum_storage(self) -> StorageType {
        match self {
            Self::Integer => StorageType::Integer,
            Self::Float => StorageType::Float,
            Self::Decimal { precision, scale } => StorageType::Decimal { precision, scale },
        }
    }
}

/// What [`Finish`] computes from an aggregation's DataFusion results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    /// The sum, checked: an integer sum must fit 64 bits, a decimal sum
    /// the evaluator's decimals, a float sum must be finite.
    Sum(Kind),
    /// The average from the sum and the count, as the evaluator divides.
    Mean(Kind),
}

/// A scalar function that finishes an aggregation exactly as objectql's
/// reference evaluator does (see the [module docs](self)).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Finish {
    step: Step,
    signature: Signature,
}

impl Finish {
    fn call(step: Step, args: Vec<Expr>) -> Expr {
        let types = match step {
            Step::Sum(k) => vec![k.sum_type()],
            Step::Mean(k) => vec![k.sum_type(), DataType::Int64],
        };
        let udf = Self {
            step,
            signature: Signature::exact(types, Volatility::Immutable),
        };
        ScalarUDF::new_from_impl(udf).call(args)
    }
}

fn decimal_of(mantissa: i128, scale: u32, what: &str) -> Result<Decimal> {
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| overflow_error(what))
}

impl ScalarUDFImpl for Finish {
    fn name(&self) -> &'static str {
        "objectql_finish_aggregate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.step {
            Step::Sum(k) => arrow_data_type(k.sum_storage()),
            Step::Mean(_) => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = lower::arrays(args)?;
        let sums = arrays
            .first()
            .ok_or_else(|| to_datafusion(Error::internal("an aggregate finish without its sum")))?;
        let counts = arrays.get(1).map(AsArray::as_primitive::<Int64Type>);
        let count_at =
            |i: usize| -> u64 { counts.map_or(0, |c| u64::try_from(c.value(i)).unwrap_or(0)) };
        let out: ArrayRef = match self.step {
            Step::Sum(Kind::Integer) => {
                let s = sums.as_primitive::<Decimal128Type>();
                let mut b = Int64Builder::with_capacity(rows);
                for i in 0..rows {
                    if s.is_null(i) {
                        b.append_null();
                    } else {
                        let v = i64::try_from(s.value(i))
                            .map_err(|_| to_datafusion(overflow_error("integer sum")))?;
                        b.append_value(v);
                    }
                }
                Arc::new(b.finish())
            }
            Step::Sum(Kind::Float) => {
                let s = sums.as_primitive::<Float64Type>();
                for i in 0..rows {
                    if s.is_valid(i) && !s.value(i).is_finite() {
                        return Err(to_datafusion(overflow_error("float sum")));
                    }
                }
                Arc::clone(sums)
            }
            // Already of the sum's type (the signature says so): checked,
            // and passed on as it is.
            Step::Sum(Kind::Decimal { scale, .. }) => {
                let s = sums.as_primitive::<Decimal128Type>();
                for i in 0..rows {
                    if s.is_valid(i) {
                        decimal_of(s.value(i), scale, "decimal sum").map_err(to_datafusion)?;
                    }
                }
                Arc::clone(sums)
            }
            Step::Mean(kind) => {
                let mut b = Float64Builder::with_capacity(rows);
                for i in 0..rows {
                    let n = count_at(i);
                    let mean = if sums.is_null(i) {
                        Value::Null
                    } else {
                        match kind {
                            Kind::Integer => {
                                mean_of_integers(sums.as_primitive::<Decimal128Type>().value(i), n)
                            }
                            Kind::Float => {
                                mean_of_floats(sums.as_primitive::<Float64Type>().value(i), n)
                            }
                            Kind::Decimal { scale, .. } => decimal_of(
                                sums.as_primitive::<Decimal128Type>().value(i),
                                scale,
                                "average",
                            )
                            .and_then(|d| mean_of_decimals(d, n)),
                        }
                        .map_err(to_datafusion)?
                    };
                    match mean {
                        Value::Float(f) => b.append_value(f),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `objectql_date_bucket`: the evaluator's bucket label of a date or a
/// datetime (in the group's timezone).
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateBucket {
    granularity: DateGranularity,
    timezone: Option<Tz>,
    signature: Signature,
}

impl DateBucket {
    fn expr(
        arg: Expr,
        st: StorageType,
        granularity: DateGranularity,
        timezone: Option<Tz>,
    ) -> Result<Expr> {
        if !matches!(st, StorageType::Date | StorageType::DateTime) {
            return Err(Error::plan(format!(
                "a date bucket of a {} column",
                st.name()
            )));
        }
        let udf = Self {
            granularity,
            timezone,
            signature: Signature::exact(vec![arrow_data_type(st)], Volatility::Immutable),
        };
        Ok(ScalarUDF::new_from_impl(udf).call(vec![arg]))
    }
}

impl ScalarUDFImpl for DateBucket {
    fn name(&self) -> &'static str {
        "objectql_date_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = lower::arrays(args)?;
        let array = arrays
            .first()
            .ok_or_else(|| to_datafusion(Error::internal("a date bucket without its argument")))?;
        let mut b = StringBuilder::with_capacity(rows, rows * 10);
        for i in 0..rows {
            let v = lower::cell(array, i, "a date bucket's column")?;
            match date_bucket_in(&v, self.granularity, self.timezone) {
                Value::String(s) => b.append_value(s),
                _ => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
