//! Rows ↔ Arrow record batches, typed from the object schema.
//!
//! Conversions are strict: a value that does not fit its column type is an
//! error (`Decode`), never a silent NULL.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeListBuilder,
    Float64Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{NaiveDate, Timelike};
use futures::StreamExt;
use objectql_query_ast::{
    AggFunction, Catalog, DriverErrorKind, Error, ObjectSchema, Query, Record, Result, StorageType,
    Value,
};

use crate::stream::{BatchStream, RowStream};

const BATCH_ROWS: usize = 8192;

/// The Arrow type a column of `st` has in objectql's record batches.
pub fn arrow_data_type(st: StorageType) -> DataType {
    match st {
        StorageType::Integer => DataType::Int64,
        StorageType::Float => DataType::Float64,
        StorageType::Decimal { precision, scale } => DataType::Decimal128(
            u8::try_from(precision).unwrap_or(38),
            i8::try_from(scale).unwrap_or(0),
        ),
        StorageType::Boolean => DataType::Boolean,
        StorageType::Date => DataType::Date32,
        StorageType::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        StorageType::Time => DataType::Time64(TimeUnit::Microsecond),
        StorageType::Vector { dimensions } => DataType::FixedSizeList(
            Arc::new(Field::new("item", DataType::Float64, true)),
            i32::try_from(dimensions).unwrap_or(i32::MAX),
        ),
        StorageType::Binary => DataType::Binary,
        // Text, JSON (as JSON text), virtual.
        _ => DataType::Utf8,
    }
}

/// The output columns of `query` over `schema`, with their storage types.
fn output_columns(schema: &ObjectSchema, query: &Query) -> Result<Vec<(String, StorageType)>> {
    let field_type = |name: &str| -> Result<StorageType> {
        schema
            .get(name)
            .ok_or_else(|| {
                Error::internal(format!(
                    "column `{name}` is not a field of `{}`",
                    schema.name
                ))
            })?
            .storage_type()
    };
    let all: Vec<(String, StorageType)> = if query.is_aggregate() {
        let mut cols = Vec::new();
        for g in &query.group_by {
            let st = if g.granularity.is_some() {
                StorageType::Text
            } else {
                field_type(&g.field)?
            };
            cols.push((g.output_name().to_owned(), st));
        }
        for a in &query.aggregations {
            let input = a.field.as_deref().map(field_type).transpose()?;
            let st = match (a.function, input) {
                (AggFunction::Count | AggFunction::CountDistinct, _) => StorageType::Integer,
                (AggFunction::Avg, _) => StorageType::Float,
                (AggFunction::Sum | AggFunction::Min | AggFunction::Max, Some(st)) => st,
                _ => StorageType::Text,
            };
            cols.push((a.alias.clone(), st));
        }
        cols
    } else {
        schema
            .fields
            .iter()
            .map(|(n, f)| Ok((n.clone(), f.storage_type()?)))
            .collect::<Result<_>>()?
    };
    let mut cols: Vec<(String, StorageType)> = match &query.fields {
        Some(fields) => fields
            .iter()
            .map(|f| {
                all.iter()
                    .find(|(n, _)| n == f)
                    .cloned()
                    .ok_or_else(|| Error::internal(format!("projected column `{f}` is unknown")))
            })
            .collect::<Result<_>>()?,
        None => all,
    };
    // A nearest query's rows carry their distance, whatever the projection.
    if let Some(n) = &query.nearest {
        cols.push((n.distance_as.clone(), StorageType::Float));
    }
    Ok(cols)
}

/// The schema of a query's rows before projection: its object's fields,
/// then `alias.field` for every field of each joined object. This is the
/// `schema` to give [`arrow_schema()`] and [`records_to_batch`] for a query
/// with joins.
pub fn joined_schema(catalog: &Catalog, query: &Query) -> Result<ObjectSchema> {
    let named = |object: &str| {
        catalog
            .get(object)
            .ok_or_else(|| Error::internal(format!("the query names unknown object `{object}`")))
    };
    let mut schema = named(query.object.as_deref().unwrap_or_default())?.clone();
    for j in &query.joins {
        for (name, field) in &named(&j.object)?.fields {
            schema
                .fields
                .insert(format!("{}.{name}", j.alias), field.clone());
        }
    }
    Ok(schema)
}

/// The Arrow schema of `query`'s output over `schema`.
pub fn arrow_schema(schema: &ObjectSchema, query: &Query) -> Result<SchemaRef> {
    let cols = output_columns(schema, query)?;
    Ok(Arc::new(Schema::new(
        cols.into_iter()
            .map(|(n, st)| Field::new(n, arrow_data_type(st), true))
            .collect::<Vec<_>>(),
    )))
}

fn decode_err(column: &str, v: &Value, st: StorageType) -> Error {
    Error::driver(
        DriverErrorKind::Decode,
        format!(
            "value {v} of column `{column}` does not fit Arrow type for {}",
            st.name()
        ),
    )
}

fn column_array(name: &str, st: StorageType, rows: &[Record]) -> Result<ArrayRef> {
    let values = rows.iter().map(|r| r.get(name).unwrap_or(&Value::Null));
    let err = |v: &Value| decode_err(name, v, st);
    Ok(match st {
        StorageType::Integer => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Int(i) => b.append_value(*i),
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Float => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Float(f) => b.append_value(*f),
                    Value::Int(i) => {
                        b.append_value(objectql_query_ast::int_to_f64(*i).ok_or_else(|| err(v))?);
                    }
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Decimal { precision, scale } => {
            let p = u8::try_from(precision)
                .map_err(|_| Error::internal("decimal precision beyond 255"))?;
            let s = i8::try_from(scale).map_err(|_| Error::internal("decimal scale beyond 127"))?;
            let mut b = Decimal128Builder::with_capacity(rows.len())
                .with_precision_and_scale(p, s)
                .map_err(|e| Error::internal(format!("decimal type: {e}")))?;
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Decimal(d) => {
                        let mut d = *d;
                        d.rescale(scale);
                        if d.scale() != scale {
                            return Err(err(v));
                        }
                        b.append_value(d.mantissa());
                    }
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Bool(x) => b.append_value(*x),
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Date => {
            let epoch =
                NaiveDate::from_ymd_opt(1970, 1, 1).ok_or_else(|| Error::internal("epoch"))?;
            let mut b = Date32Builder::with_capacity(rows.len());
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Date(d) => {
                        let days = i32::try_from(d.signed_duration_since(epoch).num_days())
                            .map_err(|_| err(v))?;
                        b.append_value(days);
                    }
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::DateTime => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::DateTime(t) => b.append_value(t.timestamp_micros()),
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Time => {
            let mut b = Time64MicrosecondBuilder::with_capacity(rows.len());
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Time(t) => {
                        let micros = i64::from(t.num_seconds_from_midnight()) * 1_000_000
                            + i64::from(t.nanosecond() / 1_000);
                        b.append_value(micros);
                    }
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Binary => {
            let mut b = BinaryBuilder::with_capacity(rows.len(), 0);
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Bytes(x) => b.append_value(x),
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        StorageType::Vector { dimensions } => {
            let n = i32::try_from(dimensions)
                .map_err(|_| Error::internal("vector dimensions beyond i32"))?;
            let mut b = FixedSizeListBuilder::new(Float64Builder::new(), n);
            for v in values {
                match v {
                    Value::Null => {
                        for _ in 0..dimensions {
                            b.values().append_null();
                        }
                        b.append(false);
                    }
                    Value::Array(items) if items.len() == dimensions as usize => {
                        for x in items {
                            match x {
                                Value::Float(f) => b.values().append_value(*f),
                                other => return Err(err(other)),
                            }
                        }
                        b.append(true);
                    }
                    other => return Err(err(other)),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::with_capacity(rows.len(), 0);
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::String(s) => b.append_value(s),
                    other => b.append_value(other.to_json().to_string()),
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// Converts rows (already the output of `query`) into one record batch.
pub fn records_to_batch(
    schema: &ObjectSchema,
    query: &Query,
    rows: &[Record],
) -> Result<RecordBatch> {
    let cols = output_columns(schema, query)?;
    let arrow = arrow_schema(schema, query)?;
    let arrays = cols
        .iter()
        .map(|(n, st)| column_array(n, *st, rows))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(arrow, arrays).map_err(|e| Error::internal(format!("record batch: {e}")))
}

/// Groups a row stream into record batches of up to 8192 rows.
pub(crate) fn batches_from_rows(
    schema: &ObjectSchema,
    query: &Query,
    rows: RowStream,
) -> Result<BatchStream> {
    // Fail early on a query whose output cannot be typed.
    output_columns(schema, query)?;
    let schema = schema.clone();
    let query = query.clone();
    let stream = rows.chunks(BATCH_ROWS).map(move |chunk| {
        let rows = chunk.into_iter().collect::<Result<Vec<_>>>()?;
        records_to_batch(&schema, &query, &rows)
    });
    Ok(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use objectql_query_ast::{Field as F, ObjectSchema};

    #[test]
    fn typed_batch_from_rows() {
        let schema = ObjectSchema::new("t")
            .field(F::new("n", "integer"))
            .field(F::new("price", "currency").decimal(10, 2))
            .field(F::new("at", "datetime"));
        let q = Query::new("t");
        let mut r = Record::new();
        r.insert("id".into(), Value::String("a".into()));
        r.insert("n".into(), Value::Int(7));
        r.insert(
            "price".into(),
            Value::Decimal(rust_decimal::Decimal::new(150, 2)),
        );
        r.insert("at".into(), Value::Null);
        let b = records_to_batch(&schema, &q, &[r]).unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(
            b.schema().field(2).data_type(),
            &DataType::Decimal128(10, 2)
        );
        assert!(b.column(3).is_null(0));
    }

    #[test]
    fn mismatched_values_are_errors_not_nulls() {
        let schema = ObjectSchema::new("t").field(F::new("n", "integer"));
        let mut r = Record::new();
        r.insert("n".into(), Value::String("x".into()));
        let e = records_to_batch(&schema, &Query::new("t"), &[r]).unwrap_err();
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::Decode));
    }
}
