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
