//! sqlx / MySQL / MariaDB errors → classified objectql errors.

use objectql_query_ast::{DriverErrorKind, Error};
use sqlx::mysql::MySqlDatabaseError;

/// Classifies a MySQL / MariaDB server error number
/// (<https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>,
/// <https://mariadb.com/kb/en/mariadb-error-code-reference/>).
pub(crate) fn kind_of_number(number: u16) -> DriverErrorKind {
    match number {
        // ER_DUP_KEY, ER_DUP_ENTRY, ER_DUP_UNIQUE, ER_DUP_ENTRY_WITH_KEY_NAME.
        1022 | 1062 | 1169 | 1586 => DriverErrorKind::UniqueViolation,
        // ER_BAD_NULL_ERROR, ER_NO_DEFAULT_FOR_FIELD.
        1048 | 1364 => DriverErrorKind::NotNullViolation,
        // ER_NO_REFERENCED_ROW(_2), ER_ROW_IS_REFERENCED(_2).
        1216 | 1217 | 1451 | 1452 => DriverErrorKind::ForeignKeyViolation,
        // MySQL's ER_CHECK_CONSTRAINT_VIOLATED, MariaDB's ER_CONSTRAINT_FAILED;
        // a value the column cannot hold: ER_DATA_TOO_LONG,
        // ER_TRUNCATED_WRONG_VALUE(_FOR_FIELD), ER_INVALID_JSON_TEXT.
        3819 | 4025 | 1406 | 1366 | 1292 | 3140 => DriverErrorKind::CheckViolation,
        // ER_WARN_DATA_OUT_OF_RANGE, ER_DATA_OUT_OF_RANGE.
        1264 | 1690 => DriverErrorKind::NumericOverflow,
        // ER_LOCK_WAIT_TIMEOUT; MySQL's ER_LOCK_NOWAIT.
        1205 | 3572 => DriverErrorKind::Busy,
        // ER_LOCK_DEADLOCK (the server rolled the transaction back).
        1213 => DriverErrorKind::Deadlock,
        // MySQL's max_execution_time, MariaDB's max_statement_time,
        // ER_QUERY_INTERRUPTED (KILL QUERY).
        3024 | 1969 | 1317 => DriverErrorKind::Timeout,
        // ER_CONNECTION_KILLED, ER_SERVER_SHUTDOWN, CR_SERVER_GONE_ERROR,
        // CR_SERVER_LOST, ER_NEW_ABORTING_CONNECTION, MariaDB's idle
        // transaction timeout disconnect.
        1927 | 1053 | 2006 | 2013 | 1184 | 4031 => DriverErrorKind::ConnectionLost,
        // ER_CON_COUNT_ERROR, ER_OUT_OF_RESOURCES, ER_RECORD_FILE_FULL.
        1040 | 1041 | 1114 => DriverErrorKind::Io,
        _ => DriverErrorKind::Other,
    }
}

/// The classification of a sqlx error.
pub(crate) fn kind_of(e: &sqlx::Error) -> DriverErrorKind {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map_or(DriverErrorKind::Other, |m| kind_of_number(m.number())),
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            DriverErrorKind::ConnectionLost
        }
        sqlx::Error::Tls(_) => DriverErrorKind::Io,
        sqlx::Error::PoolTimedOut => DriverErrorKind::PoolTimeout,
        sqlx::Error::PoolClosed => DriverErrorKind::ConnectionLost,
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => DriverErrorKind::Decode,
        _ => DriverErrorKind::Other,
    }
}

/// Wraps a sqlx error, keeping it as the source.
pub(crate) fn from_sqlx(e: sqlx::Error, doing: &str) -> Error {
    Error::Driver {
        kind: kind_of(&e),
        message: format!("MySQL error while {doing}: {e}"),
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_error_numbers_are_classified() {
        use DriverErrorKind as K;
        for (n, k) in [
            (1062, K::UniqueViolation),
            (1586, K::UniqueViolation),
            (1048, K::NotNullViolation),
            (1364, K::NotNullViolation),
            (1451, K::ForeignKeyViolation),
            (1452, K::ForeignKeyViolation),
            (3819, K::CheckViolation),
            (4025, K::CheckViolation),
            (1406, K::CheckViolation),
            (1366, K::CheckViolation),
            (1264, K::NumericOverflow),
            (1690, K::NumericOverflow),
            (1205, K::Busy),
            (1213, K::Deadlock),
            (3024, K::Timeout),
            (1969, K::Timeout),
            (1317, K::Timeout),
            (1927, K::ConnectionLost),
            (2006, K::ConnectionLost),
            (2013, K::ConnectionLost),
            (1146, K::Other),
        ] {
            assert_eq!(kind_of_number(n), k, "error {n}");
        }
        assert!(kind_of_number(1213).is_retryable());
        assert!(kind_of_number(1205).is_retryable());
        assert!(kind_of_number(1969).is_retryable());
        assert!(!kind_of_number(1062).is_retryable());
    }

    #[test]
    fn client_errors_are_typed_and_keep_their_source() {
        let e = from_sqlx(sqlx::Error::PoolTimedOut, "acquiring a connection");
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::PoolTimeout));
        assert!(std::error::Error::source(&e).is_some());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = from_sqlx(sqlx::Error::Io(io), "reading rows");
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::ConnectionLost));
        let e = from_sqlx(sqlx::Error::Protocol("bad packet".into()), "reading rows");
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::ConnectionLost));
        let e = from_sqlx(sqlx::Error::PoolClosed, "acquiring a connection");
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::ConnectionLost));
    }
}
