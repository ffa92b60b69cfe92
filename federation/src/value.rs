//! Arrow batches → objectql rows.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use objectql_query_ast::{DriverErrorKind, Error, Record, Result, Value};

/// The rows of `batches`, one [`Record`] per row, keyed by column name.
///
/// Every Arrow type a query can produce from objectql columns converts
/// exactly; a value that does not fit (an unsigned 64-bit integer above
/// `i64::MAX`, a decimal wider than 28 digits) is a `Decode` error naming
/// its column, never a silent NULL or a rounded number.
pub fn batches_to_records(batches: &[RecordBatch]) -> Result<Vec<Record>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut r = Record::with_capacity(batch.num_columns());
            for (i, field) in schema.fields().iter().enumerate() {
                let scalar = ScalarValue::try_from_array(batch.column(i), row)
                    .map_err(|e| decode(field.name(), &e.to_string()))?;
                r.insert(field.name().clone(), scalar_value(&scalar, field.name())?);
            }
            out.push(r);
        }
    }
    Ok(out)
}

fn decode(column: &str, what: &str) -> Error {
    Error::driver(
        DriverErrorKind::Decode,
        format!("column `{column}`: {what}"),
    )
}

fn date(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(TimeDelta::try_days(days)?)
}

fn time(nanos: i64) -> Option<NaiveTime> {
    let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let frac = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)
}

/// One Arrow scalar as a value.
pub(crate) fn scalar_value(s: &ScalarValue, column: &str) -> Result<Value> {
    if s.is_null() {
        return Ok(Value::Null);
    }
    let out_of_range = || decode(column, &format!("{s} is out of range"));
    Ok(match s {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int16(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int32(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::Int64(Some(i)) => Value::Int(*i),
        ScalarValue::UInt8(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::UInt16(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::UInt32(Some(i)) => Value::Int(i64::from(*i)),
        ScalarValue::UInt64(Some(i)) => Value::Int(i64::try_from(*i).map_err(|_| out_of_range())?),
        ScalarValue::Float32(Some(f)) => Value::Float(f64::from(*f)),
        ScalarValue::Float64(Some(f)) => Value::Float(*f),
        ScalarValue::Decimal128(Some(m), _, scale) => {
            let scale = u32::try_from(*scale).map_err(|_| out_of_range())?;
            Value::Decimal(
                rust_decimal::Decimal::try_from_i128_with_scale(*m, scale)
                    .map_err(|_| out_of_range())?,
            )
        }
        ScalarValue::Utf8(Some(t))
        | ScalarValue::LargeUtf8(Some(t))
        | ScalarValue::Utf8View(Some(t)) => Value::String(t.clone()),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => Value::Bytes(b.clone()),
        ScalarValue::Date32(Some(d)) => Value::Date(date(i64::from(*d)).ok_or_else(out_of_range)?),
        ScalarValue::Date64(Some(ms)) => {
            Value::Date(date(ms.div_euclid(86_400_000)).ok_or_else(out_of_range)?)
        }
        ScalarValue::TimestampSecond(Some(v), _) => {
            Value::DateTime(DateTime::<Utc>::from_timestamp(*v, 0).ok_or_else(out_of_range)?)
        }
        ScalarValue::TimestampMillisecond(Some(v), _) => {
            Value::DateTime(DateTime::<Utc>::from_timestamp_millis(*v).ok_or_else(out_of_range)?)
        }
        ScalarValue::TimestampMicrosecond(Some(v), _) => {
            Value::DateTime(DateTime::<Utc>::from_timestamp_micros(*v).ok_or_else(out_of_range)?)
        }
        ScalarValue::TimestampNanosecond(Some(v), _) => {
            Value::DateTime(DateTime::<Utc>::from_timestamp_nanos(*v))
        }
        ScalarValue::Time32Second(Some(v)) => {
            Value::Time(time(i64::from(*v) * 1_000_000_000).ok_or_else(out_of_range)?)
        }
        ScalarValue::Time32Millisecond(Some(v)) => {
            Value::Time(time(i64::from(*v) * 1_000_000).ok_or_else(out_of_range)?)
        }
        ScalarValue::Time64Microsecond(Some(v)) => Value::Time(
            time(v.checked_mul(1000).ok_or_else(out_of_range)?).ok_or_else(out_of_range)?,
        ),
        ScalarValue::Time64Nanosecond(Some(v)) => Value::Time(time(*v).ok_or_else(out_of_range)?),
        ScalarValue::FixedSizeList(_) | ScalarValue::List(_) | ScalarValue::LargeList(_) => {
            Value::Array(list_values(s, column)?)
        }
        other => {
            return Err(decode(
                column,
                &format!("Arrow type {} has no objectql value", other.data_type()),
            ));
        }
    })
}

fn list_values(s: &ScalarValue, column: &str) -> Result<Vec<Value>> {
    let array = match s {
        ScalarValue::List(a) => a.value(0),
        ScalarValue::LargeList(a) => a.value(0),
        ScalarValue::FixedSizeList(a) => a.value(0),
        _ => return Ok(Vec::new()),
    };
    (0..array.len())
        .map(|i| {
            let v = ScalarValue::try_from_array(&array, i)
                .map_err(|e| decode(column, &e.to_string()))?;
            scalar_value(&v, column)
        })
        .collect()
}
