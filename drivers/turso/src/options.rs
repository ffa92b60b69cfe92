//! Connection modes and URL options.

use std::path::PathBuf;
use std::time::Duration;

use objectql_query_ast::{Error, Result};

/// Where the database lives and how it is reached.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A local database file, on the embedded engine.
    File(PathBuf),
    /// A private in-memory database.
    Memory,
    /// A libSQL server (Turso, `sqld`) over HTTP(S): every statement is a
    /// round trip to it.
    Remote {
        /// `libsql://host`, `https://host` or `http://host:port`.
        url: String,
        /// The bearer token (a JWT); empty when the server needs none.
        auth_token: String,
    },
    /// An embedded replica: a local file kept in sync with a remote primary.
    /// Reads are local; writes are forwarded to the primary, and with
    /// `read_your_writes` the writer sees its own writes at once.
    Replica {
        /// The local file.
        path: PathBuf,
        /// The primary's URL.
        url: String,
        /// The bearer token for the primary.
        auth_token: String,
        /// Pull the primary's changes every this often (besides on connect
        /// and on an explicit `sync()`); `None`: only then.
        sync_interval: Option<Duration>,
        /// After a forwarded write, wait until the local file has it.
        read_your_writes: bool,
    },
}

impl std::fmt::Debug for Mode {
    // The token is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Memory => f.write_str("Memory"),
            Self::Remote { url, .. } => f.debug_struct("Remote").field("url", url).finish(),
            Self::Replica {
                path,
                url,
                sync_interval,
                read_your_writes,
                ..
            } => f
                .debug_struct("Replica")
                .field("path", path)
                .field("url", url)
                .field("sync_interval", sync_interval)
                .field("read_your_writes", read_your_writes)
                .finish_non_exhaustive(),
        }
    }
}

impl Mode {
    /// [`Mode::name`] of an embedded replica.
    pub const REPLICA: &'static str = "replica";

    /// A short name: `file`, `memory`, `remote` or `replica`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Memory => "memory",
            Self::Remote { .. } => "remote",
            Self::Replica { .. } => Self::REPLICA,
        }
    }
}

/// Options of a [`crate::TursoDriver`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TursoOptions {
    /// The connection mode.
    pub mode: Mode,
    /// Connections in the pool (`:memory:` always uses one).
    pub max_connections: u32,
    /// How long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long the embedded engine retries a locked file before `Busy`
    /// (file and replica modes).
    pub busy_timeout: Duration,
}

impl TursoOptions {
    fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// A local database file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::with_mode(Mode::File(path.into()))
    }

    /// A private in-memory database.
    pub fn in_memory() -> Self {
        Self::with_mode(Mode::Memory)
    }

    /// A remote libSQL server (`libsql://…`, `https://…`, `http://…`).
    pub fn remote(url: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self::with_mode(Mode::Remote {
            url: url.into(),
            auth_token: auth_token.into(),
        })
    }

    /// An embedded replica of the primary at `url`, kept in the file `path`
    /// (synced on connect; no interval; read-your-writes on).
    pub fn replica(
        path: impl Into<PathBuf>,
        url: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> Self {
        Self::with_mode(Mode::Replica {
            path: path.into(),
            url: url.into(),
            auth_token: auth_token.into(),
            sync_interval: None,
            read_your_writes: true,
        })
    }

    /// Pulls the primary's changes every `interval` (replica mode; ignored
    /// elsewhere).
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        if let Mode::Replica { sync_interval, .. } = &mut self.mode {
            *sync_interval = Some(interval);
        }
        self
    }

    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Parses a URL into options.
    ///
    /// | URL | mode |
    /// |---|---|
    /// | `libsql://db-org.turso.io?auth_token=…` | remote, over TLS |
    /// | `https://host?auth_token=…`, `http://127.0.0.1:8080` | remote |
    /// | `file:path/to.db`, `file:///abs/path.db` | local file |
    /// | `:memory:`, `file::memory:` | in memory |
    /// | `file:replica.db?sync_url=<url-encoded primary URL>&auth_token=…` | embedded replica |
    ///
    /// Query options: `auth_token` (also `authToken`), `sync_url` (also
    /// `syncUrl`), `sync_interval_ms`, `read_your_writes` (`true`/`false`),
    /// `max_connections`, `acquire_timeout_ms`, `busy_timeout_ms`. Anything
    /// else is a configuration error naming the option.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::config(format!("bad libSQL URL `{}`: {why}", redact(url)));
        let (location, query) = url.split_once('?').unwrap_or((url, ""));
        let mut token = String::new();
        let mut sync_url: Option<String> = None;
        let mut sync_interval = None;
        let mut read_your_writes = true;
        let mut max_connections = None;
        let mut acquire_timeout = None;
        let mut busy_timeout = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let millis = || {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| bad(&format!("option `{key}` takes a number of milliseconds")))
            };
            match key.as_ref() {
                "auth_token" | "authToken" => token = value.into_owned(),
                "sync_url" | "syncUrl" => sync_url = Some(value.into_owned()),
                "sync_interval_ms" => sync_interval = Some(millis()?),
                "read_your_writes" => {
                    read_your_writes = value
                        .parse::<bool>()
                        .map_err(|_| bad("option `read_your_writes` takes true or false"))?;
                }
                "max_connections" => {
                    max_connections = Some(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad("max_connections must be between 1 and 2^32-1"))?,
                    );
                }
                "acquire_timeout_ms" => acquire_timeout = Some(millis()?),
                "busy_timeout_ms" => busy_timeout = Some(millis()?),
                other => return Err(bad(&format!("unknown option `{other}`"))),
            }
        }
        let mode = if let Some(scheme) = ["libsql://", "https://", "http://"]
            .into_iter()
            .find(|s| location.starts_with(s))
        {
            if sync_url.is_some() {
                return Err(bad(
                    "`sync_url` belongs to a replica URL (`file:replica.db?sync_url=…`)",
                ));
            }
            let host = &location[scheme.len()..];
            if host.is_empty() || host.starts_with('/') {
                return Err(bad("no host"));
            }
            url::Url::parse(location).map_err(|e| bad(&e.to_string()))?;
            Mode::Remote {
                url: location.to_owned(),
                auth_token: token,
            }
        } else if matches!(location, ":memory:" | "file::memory:") {
            if sync_url.is_some() {
                return Err(bad("an in-memory database cannot be a replica"));
            }
            Mode::Memory
        } else if let Some(path) = location.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad("no file path (use file:path.db)"));
            }
            match sync_url {
                Some(primary) => {
                    let parsed = Self::from_url(&primary)?;
                    let Mode::Remote { url, .. } = parsed.mode else {
                        return Err(bad(
                            "`sync_url` must be a libsql://, https:// or http:// URL",
                        ));
                    };
                    Mode::Replica {
                        path: PathBuf::from(path),
                        url,
                        auth_token: token,
                        sync_interval,
                        read_your_writes,
                    }
                }
                None => Mode::File(PathBuf::from(path)),
            }
        } else {
            let scheme = location.split_once(':').map_or("", |(s, _)| s);
            return Err(if matches!(scheme, "ws" | "wss") {
                bad("WebSocket URLs are not supported; use the server's http(s):// URL")
            } else {
                bad("expected libsql://, https://, http://, file: or :memory:")
            });
        };
        let mut options = Self::with_mode(mode);
        if let Some(n) = max_connections {
            options.max_connections = n;
        }
        if let Some(t) = acquire_timeout {
            options.acquire_timeout = t;
        }
        if let Some(t) = busy_timeout {
            options.busy_timeout = t;
        }
        Ok(options)
    }
}

/// `url` with the value of any `auth_token` replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((location, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == "auth_token" || k == "authToken" => format!("{k}=…"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{location}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Mode {
        TursoOptions::from_url(url).unwrap().mode
    }

    fn error(url: &str) -> String {
        TursoOptions::from_url(url).unwrap_err().to_string()
    }

    #[test]
    fn every_mode_is_chosen_from_the_url() {
        assert_eq!(mode("file:data/app.db"), Mode::File("data/app.db".into()));
        assert_eq!(mode("file:///tmp/app.db"), Mode::File("/tmp/app.db".into()));
        assert_eq!(mode(":memory:"), Mode::Memory);
        assert_eq!(mode("file::memory:"), Mode::Memory);
        assert_eq!(
            mode("libsql://db-org.turso.io?authToken=abc"),
            Mode::Remote {
                url: "libsql://db-org.turso.io".into(),
                auth_token: "abc".into()
            }
        );
        assert_eq!(
            mode("http://127.0.0.1:8080"),
            Mode::Remote {
                url: "http://127.0.0.1:8080".into(),
                auth_token: String::new()
            }
        );
        assert_eq!(
            mode(
                "file:r.db?sync_url=https%3A%2F%2Fdb.example&auth_token=t&sync_interval_ms=250&read_your_writes=false"
            ),
            Mode::Replica {
                path: "r.db".into(),
                url: "https://db.example".into(),
                auth_token: "t".into(),
                sync_interval: Some(Duration::from_millis(250)),
                read_your_writes: false,
            }
        );
        let o = TursoOptions::from_url("file:x.db?max_connections=2&busy_timeout_ms=10").unwrap();
        assert_eq!(o.max_connections, 2);
        assert_eq!(o.busy_timeout, Duration::from_millis(10));
    }

    #[test]
    fn bad_urls_are_configuration_errors_that_say_what() {
        assert!(error("postgres://x").contains("expected libsql://"));
        assert!(error("wss://db.example").contains("WebSocket"));
        assert!(error("libsql://").contains("no host"));
        assert!(error("file:").contains("no file path"));
        assert!(error("file:x.db?colour=blue").contains("unknown option `colour`"));
        assert!(error("file:x.db?max_connections=0").contains("max_connections"));
        assert!(error("file:x.db?sync_interval_ms=soon").contains("sync_interval_ms"));
        assert!(error(":memory:?sync_url=http%3A%2F%2Fh").contains("in-memory"));
        assert!(error("file:r.db?sync_url=file%3Aother.db").contains("sync_url"));
        assert!(error("http://h?sync_url=http%3A%2F%2Fh").contains("replica URL"));
        let e = TursoOptions::from_url("libsql://h?auth_token=SECRET&colour=1").unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }

    #[test]
    fn tokens_are_never_printed() {
        let o = TursoOptions::remote("libsql://h", "SECRET");
        assert!(!format!("{o:?}").contains("SECRET"));
        let o = TursoOptions::replica("r.db", "libsql://h", "SECRET");
        assert!(!format!("{o:?}").contains("SECRET"));
    }
}
