//! Errors across the DataFusion boundary, in both directions.
//!
//! An objectql error that travels through DataFusion (a driver failing in
//! the middle of a stream) comes back out as the same typed error, so a
//! caller can still tell a timeout from a unique violation.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use objectql_query_ast::{DriverErrorKind, Error};

/// Wraps an objectql error for DataFusion.
pub(crate) fn to_datafusion(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The objectql error behind a DataFusion error: the original one when an
/// objectql error travelled through DataFusion, otherwise a typed error
/// by what went wrong (bad SQL text and unknown names are validation
/// errors at `sql`, a feature DataFusion lacks is `Unsupported`, a failure
/// while running is a driver error of the federation engine).
pub fn from_datafusion(e: DataFusionError) -> Error {
    match e {
        DataFusionError::External(b) => external(b),
        DataFusionError::Context(_, inner) => from_datafusion(*inner),
        DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
            Ok(inner) => from_datafusion(inner),
            Err(shared) => by_kind(&shared),
        },
        DataFusionError::ArrowError(a, _) => match *a {
            ArrowError::ExternalError(b) => external(b),
            other => by_kind(&DataFusionError::ArrowError(Box::new(other), None)),
        },
        other => by_kind(&other),
    }
}

fn external(b: Box<dyn std::error::Error + Send + Sync>) -> Error {
    match b.downcast::<Error>() {
        Ok(e) => *e,
        Err(b) => match b.downcast::<DataFusionError>() {
            Ok(e) => from_datafusion(*e),
            Err(b) => Error::Driver {
                kind: DriverErrorKind::Other,
                message: format!("federation: {b}"),
                source: Some(b),
            },
        },
    }
}

/// The objectql error inside `e`, found by reference (an error shared by
/// several partitions cannot be taken out of its `Arc`).
fn find_objectql(e: &DataFusionError) -> Option<&Error> {
    match e {
        DataFusionError::External(b) => b
            .downcast_ref::<Error>()
            .or_else(|| b.downcast_ref::<DataFusionError>().and_then(find_objectql)),
        DataFusionError::Context(_, inner) => find_objectql(inner),
        DataFusionError::Shared(inner) => find_objectql(inner),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::ExternalError(b) => b.downcast_ref::<Error>(),
            _ => None,
        },
        _ => None,
    }
}

/// A copy of `e` (the backend's own error, its `source`, stays behind).
fn copy_of(e: &Error) -> Error {
    match e {
        Error::Json {
            message,
            line,
            column,
        } => Error::Json {
            message: message.clone(),
            line: *line,
            column: *column,
        },
        Error::Validation { path, message } => Error::Validation {
            path: path.clone(),
            message: message.clone(),
        },
        Error::Plan { message } => Error::plan(message.clone()),
        Error::Unsupported { feature, driver } => Error::Unsupported {
            feature: feature.clone(),
            driver: driver.clone(),
        },
        Error::NotFound { object, id } => Error::NotFound {
            object: object.clone(),
            id: id.clone(),
        },
        Error::Config { message } => Error::config(message.clone()),
        Error::Driver { kind, message, .. } => Error::driver(*kind, message.clone()),
        other => Error::internal(other.to_string()),
    }
}

fn by_kind(e: &DataFusionError) -> Error {
    if let Some(inner) = find_objectql(e) {
        return copy_of(inner);
    }
    match e.find_root() {
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Error::validation("sql", e.to_string())
        }
        DataFusionError::NotImplemented(m) => Error::Unsupported {
            feature: m.clone(),
            driver: "federation".into(),
        },
        DataFusionError::ResourcesExhausted(m) => Error::driver(
            DriverErrorKind::Other,
            format!("federation: resources exhausted: {m}"),
        ),
        DataFusionError::ArrowError(a, _)
            if matches!(
                **a,
                ArrowError::ArithmeticOverflow(_) | ArrowError::DivideByZero
            ) =>
        {
            Error::driver(DriverErrorKind::NumericOverflow, format!("federation: {e}"))
        }
        DataFusionError::ArrowError(a, _) if matches!(**a, ArrowError::CastError(_)) => {
            Error::driver(DriverErrorKind::Decode, format!("federation: {e}"))
        }
        DataFusionError::Internal(m) => Error::internal(format!("DataFusion: {m}")),
        _ => Error::driver(DriverErrorKind::Other, format!("federation: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objectql_error_comes_back_typed() {
        let e = Error::driver(DriverErrorKind::Timeout, "slow");
        let df = DataFusionError::Context("scan".into(), Box::new(to_datafusion(e)));
        let back = from_datafusion(df);
        assert_eq!(back.driver_kind(), Some(DriverErrorKind::Timeout), "{back}");
        let through_arrow = DataFusionError::ArrowError(
            Box::new(ArrowError::ExternalError(Box::new(Error::driver(
                DriverErrorKind::ConnectionLost,
                "cut",
            )))),
            None,
        );
        assert_eq!(
            from_datafusion(through_arrow).driver_kind(),
            Some(DriverErrorKind::ConnectionLost)
        );
    }

    #[test]
    fn plan_errors_are_validation_errors_at_sql() {
        let e = from_datafusion(DataFusionError::Plan("table 'x' not found".into()));
        assert_eq!(e.path(), Some("sql"), "{e}");
    }
}
