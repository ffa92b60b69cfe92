//! The server of this run and drivers over fresh databases.

#![allow(dead_code)]

use objectql_driver_mongo::MongoDriver;
use objectql_driver_mongo::mongodb::Client;

/// The server's URL, from `OBJECTQL_MONGO_URL`.
pub fn url() -> String {
    match std::env::var("OBJECTQL_MONGO_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "OBJECTQL_MONGO_URL is not set: run the suite with scripts/test (it starts a \
             MongoDB wire-protocol server), or point OBJECTQL_MONGO_URL at a MongoDB server"
        ),
    }
}

/// `url()` with its database path replaced by `db`.
pub fn url_for(db: &str) -> String {
    let u = url();
    let (scheme, rest) = u.split_once("://").expect("a mongodb:// URL");
    let (hosts, query) = match rest.find(['/', '?']) {
        Some(i) => {
            let tail = &rest[i..];
            let query = tail.find('?').map_or("", |q| &tail[q..]);
            (&rest[..i], query)
        }
        None => (rest, ""),
    };
    format!("{scheme}://{hosts}/{db}{query}")
}

/// Database names are short: MongoDB limits them to 63 bytes.
pub fn db_name(namespace: &str) -> String {
    let mut n: String = format!("oq_{namespace}");
    n.truncate(60);
    n
}

/// A driver over a fresh database for `namespace`.
pub async fn driver_in(namespace: &str) -> objectql::Result<MongoDriver> {
    MongoDriver::connect(&url_for(&db_name(namespace))).await
}

/// Drops the database of `namespace`.
pub async fn drop_database(namespace: &str) {
    let client = Client::with_uri_str(url()).await.expect("a client");
    client
        .database(&db_name(namespace))
        .drop()
        .await
        .expect("drop the database");
    client.shutdown().await;
}

/// A TCP proxy in front of the server whose replies can be held back:
/// while frozen, requests still reach the server (and are carried out) but
/// no answer comes back, so a call's time limit runs out deterministically,
/// however fast the loopback round trip is.
pub struct Proxy {
    /// The loopback port the proxy listens on.
    port: u16,
    frozen: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Proxy {
    /// Starts a proxy to the server of [`url`] on a free loopback port.
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let u = url();
        let rest = u.split_once("://").expect("a mongodb:// URL").1;
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let upstream = authority.rsplit('@').next().unwrap_or(authority).to_owned();
        assert!(
            !upstream.contains(','),
            "the proxy needs a single-host OBJECTQL_MONGO_URL, got {upstream}"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, _) = tokio::sync::watch::channel(false);
        let frozen = std::sync::Arc::new(tx);
        let f = std::sync::Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut gate = f.subscribe();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 || gate.wait_for(|frozen| !*frozen).await.is_err() {
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { port, frozen }
    }

    /// The URL of database `db` through the proxy (a direct connection, so
    /// the client never bypasses it for a host the server names).
    pub fn url_for(&self, db: &str) -> String {
        let u = url_for(db);
        let (scheme, rest) = u.split_once("://").expect("a mongodb:// URL");
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let creds = authority
            .rsplit_once('@')
            .map_or(String::new(), |(c, _)| format!("{c}@"));
        let direct = if tail.contains("directConnection=") {
            String::new()
        } else if tail.contains('?') {
            "&directConnection=true".to_owned()
        } else {
            "?directConnection=true".to_owned()
        };
        format!("{scheme}://{creds}127.0.0.1:{}{tail}{direct}", self.port)
    }

    /// Holds back every answer from now on (requests still go through).
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Lets answers through again, the held ones first.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}
