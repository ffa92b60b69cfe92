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

/// Classifies what a libSQL *server* answered (remote and replica modes):
/// its errors arrive as text — a Hrana stream error carries SQLite's message
/// and code name (`SQLITE_CONSTRAINT`), an HTTP failure its status.
pub(crate) fn kind_of_remote(text: &str) -> DriverErrorKind {
    const CONNECTION: [&str; 7] = [
        "error trying to connect",
        "Connection refused",
        "connection closed",
        "connection reset",
        "Broken pipe",
        "PrimaryHandshakeTimeout",
        "dns error",
    ];
    if text.contains("status=401") || text.contains("status=403") || text.contains("Unauthorized") {
        DriverErrorKind::AuthFailed
    } else if text.contains("constraint failed") || text.contains("SQLITE_CONSTRAINT") {
        kind_of(SQLITE_CONSTRAINT, text)
    } else if text.contains("SQLITE_BUSY")
        || text.contains("SQLITE_LOCKED")
        || text.contains("database is locked")
    {
        DriverErrorKind::Busy
    } else if text.contains("SQLITE_INTERRUPT") || text.contains("interrupted") {
        // A remote server's statement time limit (sqld interrupts a
        // statement that runs too long).
        DriverErrorKind::Timeout
    } else if text.contains("integer overflow") {
        DriverErrorKind::NumericOverflow
    } else if CONNECTION.iter().any(|c| text.contains(c)) {
        DriverErrorKind::ConnectionLost
    } else {
        DriverErrorKind::Other
    }
}

/// Wraps a libsql error, keeping it as the source.
pub fn from_libsql(e: libsql::Error, doing: &str) -> Error {
    let kind = match &e {
        libsql::Error::SqliteFailure(code, message) => kind_of(*code, message),
        libsql::Error::RemoteSqliteFailure(_, extended, message) => kind_of(*extended, message),
        libsql::Error::Hrana(_)
        | libsql::Error::WriteDelegation(_)
        | libsql::Error::Replication(_)
        | libsql::Error::Sync(_) => kind_of_remote(&e.to_string()),
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

    #[test]
    fn server_answers_are_classified() {
        // As sqld 0.24 words them over Hrana.
        assert_eq!(
            kind_of_remote(
                r#"Hrana: `stream error: `Error { message: "SQLite error: UNIQUE constraint failed: t.name", code: "SQLITE_CONSTRAINT" }``"#
            ),
            DriverErrorKind::UniqueViolation
        );
        assert_eq!(
            kind_of_remote(
                r#"Hrana: `api error: `status=401 Unauthorized, body={"error":"Unauthorized: `The JWT is invalid`"}``"#
            ),
            DriverErrorKind::AuthFailed
        );
        assert_eq!(
            kind_of_remote(
                "Hrana: `http error: `error trying to connect: tcp connect error: Connection refused (os error 111)``"
            ),
            DriverErrorKind::ConnectionLost
        );
        assert_eq!(
            kind_of_remote("SQLite error: NOT NULL constraint failed: t.x"),
            DriverErrorKind::NotNullViolation
        );
        assert_eq!(kind_of_remote("something new"), DriverErrorKind::Other);
    }
}
