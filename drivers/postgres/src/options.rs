//! Connection options and `postgres://` URLs.

use std::str::FromStr;
use std::time::Duration;

use objectql_query_ast::{Error, Result};
use sqlx::postgres::PgConnectOptions;

/// Options of a [`crate::PostgresDriver`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// How to reach the server (host, port, user, password, database, TLS
    /// mode), as sqlx understands it.
    pub connect: PgConnectOptions,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a free connection before a `PoolTimeout` error.
    pub acquire_timeout: Duration,
    /// A server-side limit on every statement (`statement_timeout`); a
    /// statement that runs longer is cancelled by the server and fails with
    /// a `Timeout` error. `None`: the server's setting.
    pub statement_timeout: Option<Duration>,
    /// The schema objects live in (the connection's `search_path`); `None`:
    /// the server's default (`public`).
    pub schema: Option<String>,
}

impl PostgresOptions {
    /// Options for `connect` with the defaults: 10 connections, a 30 s
    /// acquire timeout, no statement timeout, the default schema.
    pub fn new(connect: PgConnectOptions) -> Self {
        Self {
            connect,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: None,
            schema: None,
        }
    }

    /// Parses a `postgres://` or `postgresql://` URL. Besides what libpq and
    /// sqlx accept (`sslmode`, `application_name`, `options`, …) it takes
    /// `max_connections`, `min_connections`, `acquire_timeout_ms`,
    /// `statement_timeout_ms` and `schema`.
    ///
    /// ```
    /// use objectql_driver_postgres::PostgresOptions;
    ///
    /// let o = PostgresOptions::from_url(
    ///     "postgres://app@db.internal:5432/shop?max_connections=4&schema=sales",
    /// )?;
    /// assert_eq!(o.max_connections, 4);
    /// assert_eq!(o.schema.as_deref(), Some("sales"));
    /// # Ok::<(), objectql_query_ast::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| Error::config(format!("`{}` is not a URL: {e}", redact(url))))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Error::config(format!(
                "`{}` is not a postgres:// URL",
                redact(url)
            )));
        }
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "max_connections"
                | "min_connections"
                | "acquire_timeout_ms"
                | "statement_timeout_ms"
                | "schema" => ours.push((k.into_owned(), v.into_owned())),
                _ => theirs.push((k.into_owned(), v.into_owned())),
            }
        }
        if theirs.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(theirs);
        }
        let connect = PgConnectOptions::from_str(parsed.as_str())
            .map_err(|e| Error::config(format!("bad postgres URL `{}`: {e}", redact(url))))?;
        let mut options = Self::new(connect);
        for (key, value) in ours {
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    Error::config(format!(
                        "option `{key}` in `{}` takes a number",
                        redact(url)
                    ))
                })
            };
            match key.as_str() {
                "max_connections" => {
                    options.max_connections = u32::try_from(number()?)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            Error::config("max_connections must be between 1 and 2^32-1")
                        })?;
                }
                "min_connections" => {
                    options.min_connections = u32::try_from(number()?)
                        .map_err(|_| Error::config("min_connections is too large"))?;
                }
                "acquire_timeout_ms" => options.acquire_timeout = Duration::from_millis(number()?),
                "statement_timeout_ms" => {
                    options.statement_timeout = Some(Duration::from_millis(number()?));
                }
                _ => options.schema = Some(value),
            }
        }
        Ok(options)
    }
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_options_are_taken_out_of_the_url() {
        let o = PostgresOptions::from_url(
            "postgres://u:secret@h:5433/d?sslmode=disable&max_connections=3&statement_timeout_ms=250&schema=a%20b",
        )
        .unwrap();
        assert_eq!(o.max_connections, 3);
        assert_eq!(o.statement_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.schema.as_deref(), Some("a b"));
        assert_eq!(o.connect.get_port(), 5433);
        assert_eq!(o.connect.get_database(), Some("d"));
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let e = PostgresOptions::from_url("mysql://u:secret@h/d").unwrap_err();
        assert_eq!(e.category(), "config");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = PostgresOptions::from_url("postgres://h/d?max_connections=0").unwrap_err();
        assert!(e.to_string().contains("max_connections"), "{e}");
        let e = PostgresOptions::from_url("postgres://h/d?acquire_timeout_ms=soon").unwrap_err();
        assert!(e.to_string().contains("acquire_timeout_ms"), "{e}");
    }
}
