//! A driver's batch in the types of the plan that reads it.
//!
//! A pushed query's columns mostly arrive in the Arrow types DataFusion
//! planned. Two differ by design, and are converted exactly:
//!
//! - a decimal sum: the driver types it as its column (`decimal(p, s)`),
//!   DataFusion as `decimal(p + 10, s)`: the values are the same, the
//!   type is widened;
//! - a date bucket: the driver labels it (`2026`, `2026-Q1`, `2026-03`,
//!   `2026-W09`, `2026-03-01`), DataFusion's `date_trunc` gives the instant
//!   the bucket starts at (UTC midnight; a week starts on its Monday).
//!
//! Any other difference is an error naming the column, never a silent
//! cast.

use std::sync::Arc;

use chrono::{NaiveDate, Weekday};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, PrimitiveArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::error::Result as DfResult;
use objectql_query_ast::{DriverErrorKind, Error};

use crate::error::to_datafusion;

/// Conforms a driver batch to the node's output schema: keeps the wanted
/// columns (by name) in the plan's types (see the module docs); a
/// projection of no columns keeps the row count.
pub(crate) fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    keep: Option<&[String]>,
) -> DfResult<RecordBatch> {
    if schema.fields().is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        return Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            Vec::new(),
            &options,
        )?);
    }
    let columns: Vec<ArrayRef> = match keep {
        Some(names) => names
            .iter()
            .map(|n| {
                batch.column_by_name(n).cloned().ok_or_else(|| {
                    to_datafusion(Error::internal(format!(
                        "the driver's batch has no column `{n}`"
                    )))
                })
            })
            .collect::<DfResult<_>>()?,
        None => batch.columns().to_vec(),
    };
    let columns = columns
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| column(c, f.data_type(), f.name()))
        .collect::<DfResult<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| {
        to_datafusion(Error::internal(format!(
            "the driver's batch does not have the object's Arrow types: {e}"
        )))
    })
}

/// One column in type `to` (see the module docs); any other difference is
/// left for the batch's own type check to report.
fn column(array: &ArrayRef, to: &DataType, name: &str) -> DfResult<ArrayRef> {
    match (array.data_type(), to) {
        (from, to) if from == to => Ok(Arc::clone(array)),
        (DataType::Decimal128(p, s), DataType::Decimal128(wider, same))
            if s == same && p <= wider =>
        {
            Ok(cast(array, to)?)
        }
        (DataType::Utf8, DataType::Timestamp(unit, zone)) => {
            let labels = array.as_string::<i32>();
            let instants = labels
                .iter()
                .map(|l| l.map(|l| instant(l, *unit, name)).transpose())
                .collect::<DfResult<Vec<Option<i64>>>>()?;
            Ok(match unit {
                TimeUnit::Second => Arc::new(
                    PrimitiveArray::<TimestampSecondType>::from(instants)
                        .with_timezone_opt(zone.clone()),
                ),
                TimeUnit::Millisecond => Arc::new(
                    PrimitiveArray::<TimestampMillisecondType>::from(instants)
                        .with_timezone_opt(zone.clone()),
                ),
                TimeUnit::Microsecond => Arc::new(
                    PrimitiveArray::<TimestampMicrosecondType>::from(instants)
                        .with_timezone_opt(zone.clone()),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    PrimitiveArray::<TimestampNanosecondType>::from(instants)
                        .with_timezone_opt(zone.clone()),
                ),
            })
        }
        (DataType::Utf8, DataType::Date32) => {
            let labels = array.as_string::<i32>();
            let days = labels
                .iter()
                .map(|l| l.map(|l| days(l, name)).transpose())
                .collect::<DfResult<Vec<Option<i32>>>>()?;
            Ok(Arc::new(Date32Array::from(days)))
        }
        _ => Ok(Arc::clone(array)),
    }
}

fn bad_label(label: &str, column: &str) -> datafusion::error::DataFusionError {
    to_datafusion(Error::driver(
        DriverErrorKind::Decode,
        format!("column `{column}`: `{label}` is not a date bucket label"),
    ))
}

/// The days since 1970-01-01 of the day the bucket `label` starts on.
fn days(label: &str, column: &str) -> DfResult<i32> {
    let start = bucket_start(label).ok_or_else(|| bad_label(label, column))?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| bad_label(label, column))?;
    i32::try_from(start.signed_duration_since(epoch).num_days())
        .map_err(|_| bad_label(label, column))
}

/// The instant (in `unit`s since the epoch) the bucket `label` starts at.
fn instant(label: &str, unit: TimeUnit, column: &str) -> DfResult<i64> {
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    i64::from(days(label, column)?)
        .checked_mul(86_400 * per_second)
        .ok_or_else(|| bad_label(label, column))
}

/// The first day of a date bucket: `YYYY`, `YYYY-Qn`, `YYYY-MM`,
/// `YYYY-Www` (ISO week, from its Monday) or `YYYY-MM-DD`; a year may be
/// signed.
pub(crate) fn bucket_start(label: &str) -> Option<NaiveDate> {
    if let Some((year, week)) = label.split_once("-W") {
        return NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, Weekday::Mon);
    }
    if let Some((year, quarter)) = label.split_once("-Q") {
        let quarter: u32 = quarter.parse().ok()?;
        if !(1..=4).contains(&quarter) {
            return None;
        }
        return NaiveDate::from_ymd_opt(year.parse().ok()?, 3 * quarter - 2, 1);
    }
    let (sign, rest) = label.strip_prefix('-').map_or((1, label), |r| (-1, r));
    let mut parts = rest.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let mut next = || parts.next().map_or(Some(1), |p| p.parse::<u32>().ok());
    let (month, day) = (next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(sign * year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_form_starts_its_bucket() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(bucket_start("2026"), d(2026, 1, 1));
        assert_eq!(bucket_start("2026-Q3"), d(2026, 7, 1));
        assert_eq!(bucket_start("2026-03"), d(2026, 3, 1));
        assert_eq!(bucket_start("2026-03-09"), d(2026, 3, 9));
        // ISO week 1 of 2021 starts on Monday 2021-01-04; week 53 of
        // 2020 on 2020-12-28.
        assert_eq!(bucket_start("2021-W01"), d(2021, 1, 4));
        assert_eq!(bucket_start("2020-W53"), d(2020, 12, 28));
        assert_eq!(bucket_start("-0001-03"), d(-1, 3, 1));
        for bad in [
            "",
            "x",
            "2026-13",
            "2026-02-30",
            "2026-Q0",
            "2026-Q5",
            "2021-W54",
            "2026-03-01-02",
            "2026--03",
            "2026-W",
        ] {
            assert_eq!(bucket_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn labels_become_instants_and_decimals_widen_but_nothing_else_converts() {
        use datafusion::arrow::array::{Decimal128Array, Int64Array, StringArray};
        use datafusion::arrow::datatypes::{Field, Schema};
        let labels: ArrayRef = Arc::new(StringArray::from(vec![Some("2026-03"), None]));
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let out = column(&labels, &ts, "m").expect("labels");
        let out = out.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(out.value(0), 1_772_323_200_000_000);
        assert!(out.is_null(1));
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["March"]));
        let e = column(&bad, &ts, "m").expect_err("not a label");
        assert!(
            e.to_string().contains("`March` is not a date bucket label"),
            "{e}"
        );
        let sums: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(123_456_789_012_345_i128)])
                .with_precision_and_scale(12, 2)
                .expect("decimal"),
        );
        let wide = DataType::Decimal128(22, 2);
        let out = column(&sums, &wide, "s").expect("widened");
        assert_eq!(out.data_type(), &wide);
        assert_eq!(
            out.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                .value(0),
            123_456_789_012_345
        );
        // A scale change or a narrowing is not a widening: the batch's type
        // check refuses it.
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            DataType::Decimal128(22, 3),
            true,
        )]));
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "s",
                DataType::Decimal128(12, 2),
                true,
            )])),
            vec![sums],
        )
        .expect("batch");
        assert!(conform(&batch, &schema, None).is_err());
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(Arc::ptr_eq(
            &column(&ints, &DataType::Int64, "n").expect("same"),
            &ints
        ));
    }
}
