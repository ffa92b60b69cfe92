//! libsql errors → classified objectql errors.

use std::time::Duration;

use objectql_query_ast::{DriverErrorKind, Error};

// SQLite result codes (https://sqlite.org/rescode.html).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_INTERRUPT: i32 = 9;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_MISMATCH: i32 = 20;
const SQLITE_NOTADB: i32 = 26;
const SQLITE_CONSTRAINT_CHECK: i32 = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_NOTNULL: i32 = 1299;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// Classifies an SQLite result code (primary or extended) and its message.
pub(crate) fn kind_of(code: i32, message: &str) -> DriverErrorKind {
    match code {
        SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
            return DriverErrorKind::UniqueViolation;
        }
        SQLITE_CONSTRAINT_NOTNULL => return DriverErrorKind::NotNullViolation,
        SQLITE_CONSTRAINT_FOREIGNKEY => return DriverErrorKind::ForeignKeyViolation,
        SQLITE_CONSTRAINT_CHECK => return DriverErrorKind::CheckViolation,
        _ => {}
    }
    match code & 0xff {
        SQLITE_BUSY | SQLITE_LOCKED => DriverErrorKind::Busy,
        SQLITE_INTERRUPT => DriverErrorKind::Timeout,
        SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN | SQLITE_CORRUPT | SQLITE_NOTADB => {
            DriverErrorKind::Io
        }
        SQLITE_CONSTRAINT => {
            // Only the primary code is known: classify by SQLite's message.
            if message.contains("UNIQUE constraint failed") {
                DriverErrorKind::UniqueViolation
            } else if message.contains("NOT NULL constraint failed") {
                DriverErrorKind::NotNullViolation
            } else if message.contains("FOREIGN KEY constraint failed") {
                DriverErrorKind::ForeignKeyViolation
            } else {
                DriverErrorKind::CheckViolation
            }
        }
        SQLITE_TOOBIG | SQLITE_MISMATCH => DriverErrorKind::CheckViolation,
        _ if message.contains("integer overflow") => DriverErrorKind::NumericOverflow,
        _ => DriverErrorKind::Other,
    }
}

/// Wraps a libsql error, keeping it as the source.
pub(crate) fn from_libsql(e: libsql::Error, doing: &str) -> Error {
    let kind = match &e {
        libsql::Error::SqliteFailure(code, message) => kind_of(*code, message),
        libsql::Error::ConnectionFailed(_) => DriverErrorKind::ConnectionLost,
        libsql::Error::InvalidColumnType
        | libsql::Error::InvalidColumnIndex
        | libsql::Error::NullValue => DriverErrorKind::Decode,
        _ => DriverErrorKind::Other,
    };
    Error::Driver {
        kind,
        message: format!("SQLite error while {doing}: {e}"),
        source: Some(Box::new(e)),
    }
}

pub(crate) fn pool_timeout(waited: Duration) -> Error {
    Error::driver(
        DriverErrorKind::PoolTimeout,
        format!("no SQLite connection became free within {waited:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_codes_are_classified() {
        assert_eq!(kind_of(2067, ""), DriverErrorKind::UniqueViolation);
        assert_eq!(
            kind_of(19, "UNIQUE constraint failed: t.x"),
            DriverErrorKind::UniqueViolation
        );
        assert_eq!(
            kind_of(19, "NOT NULL constraint failed: t.x"),
            DriverErrorKind::NotNullViolation
        );
        assert_eq!(kind_of(5, "database is locked"), DriverErrorKind::Busy);
        assert!(
            kind_of(517, "").is_retryable(),
            "SQLITE_BUSY_SNAPSHOT is a busy error"
        );
        assert_eq!(
            kind_of(1, "integer overflow"),
            DriverErrorKind::NumericOverflow
        );
    }
}
