//! Connection options and `mysql://` / `mariadb://` URLs.

use std::str::FromStr;
use std::time::Duration;

use objectql_query_ast::{Error, Result};
use sqlx::mysql::MySqlConnectOptions;

/// Options of a [`crate::MySqlDriver`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MySqlOptions {
    /// How to reach the server (host, port, socket, user, password,
    /// database, TLS mode), as sqlx understands it. The session settings
    /// objectql depends on (UTC time zone, utf8mb4, strict SQL mode) are
    /// applied on top of these by the driver.
    pub connect: MySqlConnectOptions,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a free connection before a `PoolTimeout` error.
    pub acquire_timeout: Duration,
    /// A server-side limit on statements: MariaDB's `max_statement_time`
    /// (every statement) or MySQL's `max_execution_time` (read-only
    /// SELECTs). A statement that runs longer is interrupted by the server
    /// and fails with a `Timeout` error. `None`: the server's setting.
    pub statement_timeout: Option<Duration>,
    /// Plan for a server that answers `SELECT VERSION()` with this instead
    /// of what the server says — for tests that run another server's code
    /// paths (MySQL's writes without `RETURNING`, say, as MariaDB < 10.5)
    /// on the server at hand. Not for production use.
    #[doc(hidden)]
    pub assume_version: Option<String>,
}

impl MySqlOptions {
    /// Options for `connect` with the defaults: 10 connections, a 30 s
    /// acquire timeout, no statement timeout.
    pub fn new(connect: MySqlConnectOptions) -> Self {
        Self {
            connect,
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: None,
            assume_version: None,
        }
    }

    /// Parses a `mysql://` or `mariadb://` URL
    /// (`mysql://user:password@host:3306/database`). Besides what sqlx
    /// accepts (`ssl-mode`, `socket`, `statement-cache-capacity`, …) it
    /// takes `max_connections`, `min_connections`, `acquire_timeout_ms` and
    /// `statement_timeout_ms`. The scheme does not decide the flavour: the
    /// driver asks the server which one it is.
    ///
    /// ```
    /// use objectql_driver_mysql::MySqlOptions;
    ///
    /// let o = MySqlOptions::from_url(
    ///     "mariadb://app@db.internal:3306/shop?max_connections=4&statement_timeout_ms=1500",
    /// )?;
    /// assert_eq!(o.max_connections, 4);
    /// assert_eq!(o.connect.get_database(), Some("shop"));
    /// # Ok::<(), objectql_query_ast::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| Error::config(format!("`{}` is not a URL: {e}", redact(url))))?;
        match parsed.scheme() {
            "mysql" => {}
            "mariadb" => {
                // sqlx knows one scheme; both are served alike.
                parsed
                    .set_scheme("mysql")
                    .map_err(|()| Error::config(format!("bad mariadb URL `{}`", redact(url))))?;
            }
            _ => {
                return Err(Error::config(format!(
                    "`{}` is not a mysql:// or mariadb:// URL",
                    redact(url)
                )));
            }
        }
        if parsed.host_str().is_none_or(str::is_empty)
            && !parsed.query_pairs().any(|(k, _)| k == "socket")
        {
            return Err(Error::config(format!(
                "`{}` names no host (mysql://user@host:3306/database)",
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
                | "statement_timeout_ms" => ours.push((k.into_owned(), v.into_owned())),
                _ => theirs.push((k.into_owned(), v.into_owned())),
            }
        }
        if theirs.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(theirs);
        }
        let connect = MySqlConnectOptions::from_str(parsed.as_str())
            .map_err(|e| Error::config(format!("bad mysql URL `{}`: {e}", redact(url))))?;
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
                _ => {
                    options.statement_timeout = match number()? {
                        0 => None,
                        ms => Some(Duration::from_millis(ms)),
                    };
                }
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
        let o = MySqlOptions::from_url(
            "mysql://u:secret@h:3307/d?ssl-mode=disabled&max_connections=3&statement_timeout_ms=250&min_connections=1&acquire_timeout_ms=90",
        )
        .unwrap();
        assert_eq!(o.max_connections, 3);
        assert_eq!(o.min_connections, 1);
        assert_eq!(o.acquire_timeout, Duration::from_millis(90));
        assert_eq!(o.statement_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.connect.get_port(), 3307);
        assert_eq!(o.connect.get_host(), "h");
        assert_eq!(o.connect.get_username(), "u");
        assert_eq!(o.connect.get_database(), Some("d"));
    }

    #[test]
    fn mariadb_urls_are_mysql_urls() {
        let o = MySqlOptions::from_url("mariadb://root@127.0.0.1/test").unwrap();
        assert_eq!(o.connect.get_port(), 3306);
        assert_eq!(o.connect.get_database(), Some("test"));
        assert_eq!(o.max_connections, 10);
        assert_eq!(o.statement_timeout, None);
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let e = MySqlOptions::from_url("postgres://u:secret@h/d").unwrap_err();
        assert_eq!(e.category(), "config");
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = MySqlOptions::from_url("mysql://h/d?max_connections=0").unwrap_err();
        assert!(e.to_string().contains("max_connections"), "{e}");
        let e = MySqlOptions::from_url("mysql://h/d?acquire_timeout_ms=soon").unwrap_err();
        assert!(e.to_string().contains("acquire_timeout_ms"), "{e}");
        let e = MySqlOptions::from_url("not a url").unwrap_err();
        assert_eq!(e.category(), "config");
    }
}
