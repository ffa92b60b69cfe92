//! The one error type shared by every objectql crate.

use std::fmt;

/// A `Result` whose error defaults to objectql's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend or a library, kept as the `source` of an
/// [`Error::Driver`] so callers can downcast to the client's own error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in objectql.
///
/// Every variant that concerns a part of a query carries the JSON path of that
/// part (`where.$or[1].age.$gt`), so a caller can point at the offending input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not well-formed JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        /// What the JSON parser said.
        message: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// The input is well-formed but not a valid query, schema or record.
    #[error("invalid input at `{path}`: {message}")]
    Validation {
        /// JSON path of the offending part (`where.$or[1].age.$gt`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The query is valid but cannot be planned (for example a cursor that
    /// does not match the sort key).
    #[error("cannot plan query: {message}")]
    Plan {
        /// What prevents planning.
        message: String,
    },
    /// The driver cannot do what was asked, and it cannot be done locally.
    #[error("`{feature}` is not supported by the `{driver}` driver")]
    Unsupported {
        /// The feature, as named in the capability list (`transactions`, `joins`…).
        feature: String,
        /// The driver's name.
        driver: String,
    },
    /// A record addressed by its primary key does not exist.
    #[error("no `{object}` record with id {id}")]
    NotFound {
        /// The object (table, collection).
        object: String,
        /// The primary key, rendered as JSON.
        id: String,
    },
    /// Configuration is wrong: an unknown URL scheme, an unregistered object
    /// or datasource, bad driver options.
    #[error("configuration error: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The backend (or the memory driver acting as one) refused or failed an
    /// operation. `kind` classifies it so callers can match and retry.
    #[error("{kind} error: {message}")]
    Driver {
        /// The classified kind.
        kind: DriverErrorKind,
        /// A human-readable message (never the only information: see `source`).
        message: String,
        /// The backend client's own error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A bug in objectql: an invariant did not hold. Please report it.
    #[error("internal error (this is a bug in objectql, please report it): {message}")]
    Internal {
        /// What invariant failed.
        message: String,
    },
}

/// The classified kind of an [`Error::Driver`], like sqlx's `ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DriverErrorKind {
    /// A unique constraint (or primary key) was violated.
    UniqueViolation,
    /// A required field was null or missing.
    NotNullViolation,
    /// A reference points to a missing record, or a `restrict` reference blocks a delete.
    ForeignKeyViolation,
    /// A check constraint (type, length, precision) was violated.
    CheckViolation,
    /// The transaction could not be serialized; retry it.
    SerializationFailure,
    /// A deadlock was detected; retry the transaction.
    Deadlock,
    /// The database is busy or locked; retry.
    Busy,
    /// The operation ran past its deadline and was cancelled.
    Timeout,
    /// No connection became free within the pool's wait limit.
    PoolTimeout,
    /// The connection was lost.
    ConnectionLost,
    /// The transaction handle is no longer usable (committed, rolled back, or failed).
    TransactionClosed,
    /// A file or network I/O error.
    Io,
    /// The server refused the credentials (a missing, malformed, expired or
    /// wrong token or password). Not retryable: fix the configuration.
    AuthFailed,
    /// The backend answered something objectql could not map to a value.
    Decode,
    /// An arithmetic result (an integer `sum`) does not fit its type.
    NumericOverflow,
    /// A write (or a commit) was cut off (a timeout, a lost connection)
    /// after it reached the server: it may or may not have been applied.
    /// Not retryable: check what is stored before writing again, or a
    /// retry may apply it twice.
    OutcomeUnknown,
    /// The storage on the server does not hold what the registered schema
    /// declares (a unique constraint is missing, or covers other columns):
    /// found when a schema is synced. Not retryable: fix the table (or the
    /// schema) first.
    SchemaMismatch,
    /// Anything else.
    Other,
}

impl DriverErrorKind {
    /// Whether retrying the same operation (or transaction) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::SerializationFailure
                | Self::Deadlock
                | Self::Busy
                | Self::Timeout
                | Self::PoolTimeout
                | Self::ConnectionLost
        )
    }

    /// The snake_case name used in conformance cases and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UniqueViolation => "unique_violation",
            Self::NotNullViolation => "not_null_violation",
            Self::ForeignKeyViolation => "foreign_key_violation",
            Self::CheckViolation => "check_violation",
            Self::SerializationFailure => "serialization_failure",
            Self::Deadlock => "deadlock",
            Self::Busy => "busy",
            Self::Timeout => "timeout",
            Self::PoolTimeout => "pool_timeout",
            Self::ConnectionLost => "connection_lost",
            Self::TransactionClosed => "transaction_closed",
            Self::Io => "io",
            Self::AuthFailed => "auth_failed",
            Self::Decode => "decode",
            Self::NumericOverflow => "numeric_overflow",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::SchemaMismatch => "schema_mismatch",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for DriverErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// This error as the result of a write that may have been applied:
    /// a `Timeout` or `ConnectionLost` becomes `OutcomeUnknown` (keeping
    /// the original as its source), since the server may have applied the
    /// write before the call was cut off, and a blind retry could apply it
    /// twice. Any other error is returned unchanged.
    #[must_use]
    pub fn into_write_outcome(self) -> Self {
        match self.driver_kind() {
            Some(DriverErrorKind::Timeout | DriverErrorKind::ConnectionLost) => Self::Driver {
                kind: DriverErrorKind::OutcomeUnknown,
                message: format!(
                    "the write may or may not have been applied (check before retrying): {self}"
                ),
                source: Some(Box::new(self)),
            },
            _ => self,
        }
    }

    /// A validation error at `path`.
    pub fn validation(path: impl fmt::Display, message: impl Into<String>) -> Self {
        Self::Validation {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// A driver error of `kind` with no underlying source.
    pub fn driver(kind: DriverErrorKind, message: impl Into<String>) -> Self {
        Self::Driver {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An unsupported-feature error.
    pub fn unsupported(feature: impl Into<String>, driver: impl Into<String>) -> Self {
        Self::Unsupported {
            feature: feature.into(),
            driver: driver.into(),
        }
    }

    /// A configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// A planning error.
    pub fn plan(message: impl Into<String>) -> Self {
        Self::Plan {
            message: message.into(),
        }
    }

    /// An internal error (a bug).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    /// The driver error kind, if this is a driver error.
    pub fn driver_kind(&self) -> Option<DriverErrorKind> {
        match self {
            Self::Driver { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether retrying may succeed (see [`DriverErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.driver_kind()
            .is_some_and(DriverErrorKind::is_retryable)
    }

    /// The JSON path of the offending input, for validation errors.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Validation { path, .. } => Some(path),
            _ => None,
        }
    }

    /// A short, stable name of the error's category, used by the conformance
    /// suite: `json`, `validation`, `plan`, `unsupported`, `not_found`,
    /// `config`, `internal`, or the driver kind (`unique_violation`, …).
    pub fn category(&self) -> &'static str {
        match self {
            Self::Json { .. } => "json",
            Self::Validation { .. } => "validation",
            Self::Plan { .. } => "plan",
            Self::Unsupported { .. } => "unsupported",
            Self::NotFound { .. } => "not_found",
            Self::Config { .. } => "config",
            Self::Driver { kind, .. } => kind.as_str(),
            Self::Internal { .. } => "internal",
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Json {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// A JSON path under construction (`where.$or[1].age.$gt`), cheap to extend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// The root path with the given first segment.
    pub fn root(segment: &str) -> Self {
        Self(segment.to_owned())
    }

    /// The empty path.
    pub fn empty() -> Self {
        Self(String::new())
    }

    /// This path followed by `.key`.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Self(key.to_owned())
        } else {
            Self(format!("{}.{key}", self.0))
        }
    }

    /// This path followed by `[index]`.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// A validation error at this path.
    pub fn err(&self, message: impl Into<String>) -> Error {
        Error::validation(if self.0.is_empty() { "$" } else { &self.0 }, message)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_off_write_has_an_unknown_outcome() {
        for kind in [DriverErrorKind::Timeout, DriverErrorKind::ConnectionLost] {
            let e = Error::driver(kind, "cut off").into_write_outcome();
            assert_eq!(e.driver_kind(), Some(DriverErrorKind::OutcomeUnknown));
            assert!(!e.is_retryable(), "{e}");
            assert!(std::error::Error::source(&e).is_some());
        }
        let e = Error::driver(DriverErrorKind::UniqueViolation, "dup").into_write_outcome();
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::UniqueViolation));
        assert_eq!(DriverErrorKind::OutcomeUnknown.as_str(), "outcome_unknown");
    }
}
