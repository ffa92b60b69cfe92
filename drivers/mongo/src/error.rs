//! MongoDB errors → classified objectql errors.

use mongodb::error::{ErrorKind, WriteFailure};
use objectql_query_ast::{DriverErrorKind, Error};

/// Server error codes this driver classifies.
mod code {
    pub const DUPLICATE_KEY: i32 = 11000;
    pub const DUPLICATE_KEY_LEGACY: i32 = 11001;
    pub const WRITE_CONFLICT: i32 = 112;
    pub const NO_SUCH_TRANSACTION: i32 = 251;
    pub const TRANSACTION_EXPIRED: i32 = 225;
    pub const MAX_TIME_EXPIRED: i32 = 50;
    pub const UNAUTHORIZED: i32 = 13;
    pub const AUTHENTICATION_FAILED: i32 = 18;
    pub const INTERRUPTED: i32 = 11601;
    pub const OVERFLOW: i32 = 15;
}

fn kind_of_code(c: i32) -> DriverErrorKind {
    match c {
        code::DUPLICATE_KEY | code::DUPLICATE_KEY_LEGACY => DriverErrorKind::UniqueViolation,
        code::WRITE_CONFLICT => DriverErrorKind::SerializationFailure,
        code::NO_SUCH_TRANSACTION | code::TRANSACTION_EXPIRED => DriverErrorKind::TransactionClosed,
        code::MAX_TIME_EXPIRED | code::INTERRUPTED => DriverErrorKind::Timeout,
        code::UNAUTHORIZED | code::AUTHENTICATION_FAILED => DriverErrorKind::AuthFailed,
        code::OVERFLOW => DriverErrorKind::NumericOverflow,
        _ => DriverErrorKind::Other,
    }
}

/// The classified kind of a client error.
pub(crate) fn kind_of(e: &mongodb::error::Error) -> DriverErrorKind {
    if e.contains_label("TransientTransactionError") {
        return DriverErrorKind::SerializationFailure;
    }
    match e.kind.as_ref() {
        ErrorKind::Command(c) => kind_of_code(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => kind_of_code(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => kind_of_code(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map_or(DriverErrorKind::Other, |w| kind_of_code(w.code)),
        ErrorKind::Authentication { .. } => DriverErrorKind::AuthFailed,
        ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::Io(_)
        | ErrorKind::Shutdown => DriverErrorKind::ConnectionLost,
        ErrorKind::InvalidResponse { .. } | ErrorKind::BsonDeserialization(_) => {
            DriverErrorKind::Decode
        }
        _ => DriverErrorKind::Other,
    }
}

/// A client error while `doing` something, classified, with the client's
/// error kept as the source.
pub(crate) fn from_mongo(e: mongodb::error::Error, doing: &str) -> Error {
    let kind = kind_of(&e);
    let message = match kind {
        DriverErrorKind::UniqueViolation => format!("duplicate key while {doing}"),
        _ => format!("MongoDB error while {doing}"),
    };
    Error::Driver {
        kind,
        message,
        source: Some(Box::new(e)),
    }
}
