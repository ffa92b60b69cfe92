//! sqlx / PostgreSQL errors → classified objectql errors.

use objectql_query_ast::{DriverErrorKind, Error};

/// Classifies a PostgreSQL SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html).
pub(crate) fn kind_of_sqlstate(code: &str) -> DriverErrorKind {
    match code {
        "23505" => DriverErrorKind::UniqueViolation,
        "23502" => DriverErrorKind::NotNullViolation,
        "23503" | "23001" => DriverErrorKind::ForeignKeyViolation,
        "23514" | "23P01" => DriverErrorKind::CheckViolation,
        "40001" => DriverErrorKind::SerializationFailure,
        "40P01" => DriverErrorKind::Deadlock,
        // query_canceled: statement_timeout, or our cancel after a caller timeout.
        "57014" => DriverErrorKind::Timeout,
        "55P03" => DriverErrorKind::Busy,
        // admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now.
        "57P01" | "57P02" | "57P03" => DriverErrorKind::ConnectionLost,
        "22003" | "22008" => DriverErrorKind::NumericOverflow,
        "25P02" | "25000" | "25P01" => DriverErrorKind::TransactionClosed,
        c if c.starts_with("08") => DriverErrorKind::ConnectionLost,
        c if c.starts_with("53") || c.starts_with("58") => DriverErrorKind::Io,
        // Data exceptions: a value the column cannot hold (e.g. NUL in text).
        c if c.starts_with("22") => DriverErrorKind::CheckViolation,
        _ => DriverErrorKind::Other,
    }
}

/// Wraps a sqlx error, keeping it as the source.
pub(crate) fn from_sqlx(e: sqlx::Error, doing: &str) -> Error {
    let kind = match &e {
        sqlx::Error::Database(db) => db
            .code()
            .map_or(DriverErrorKind::Other, |c| kind_of_sqlstate(&c)),
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            DriverErrorKind::ConnectionLost
        }
        sqlx::Error::Tls(_) => DriverErrorKind::Io,
        sqlx::Error::PoolTimedOut => DriverErrorKind::PoolTimeout,
        sqlx::Error::PoolClosed => DriverErrorKind::ConnectionLost,
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => DriverErrorKind::Decode,
        _ => DriverErrorKind::Other,
    };
    Error::Driver {
        kind,
        message: format!("PostgreSQL error while {doing}: {e}"),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        assert_eq!(kind_of_sqlstate("23505"), DriverErrorKind::UniqueViolation);
        assert_eq!(kind_of_sqlstate("23502"), DriverErrorKind::NotNullViolation);
        assert!(kind_of_sqlstate("40001").is_retryable());
        assert!(kind_of_sqlstate("40P01").is_retryable());
        assert_eq!(kind_of_sqlstate("57014"), DriverErrorKind::Timeout);
        assert_eq!(kind_of_sqlstate("57P01"), DriverErrorKind::ConnectionLost);
        assert_eq!(kind_of_sqlstate("08006"), DriverErrorKind::ConnectionLost);
        assert_eq!(kind_of_sqlstate("22003"), DriverErrorKind::NumericOverflow);
        assert_eq!(kind_of_sqlstate("22021"), DriverErrorKind::CheckViolation);
        assert_eq!(kind_of_sqlstate("42P01"), DriverErrorKind::Other);
    }

    #[test]
    fn pool_timeouts_are_typed() {
        let e = from_sqlx(sqlx::Error::PoolTimedOut, "acquiring a connection");
        assert!(matches!(
            e,
            Error::Driver {
                kind: DriverErrorKind::PoolTimeout,
                ..
            }
        ));
    }
}
