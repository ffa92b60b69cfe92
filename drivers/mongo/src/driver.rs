//! The MongoDB driver: compiled pipelines in, decoded documents out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use objectql_driver::{
    Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel, Pushdown, RowStream,
    TxId, rows_to_stream,
};
use objectql_planner::eval::{self, Columns, Relation};
use objectql_planner::mongo::codec::{from_bson, to_bson};
use objectql_planner::mongo::{
    MongoCompiler, OutputColumn, Pipeline, check_schema, empty_input_rows,
};
use objectql_query_ast::{
    Condition, DriverErrorKind, Error, Filter, ObjectSchema, Query, Record, Result, StorageType,
    Value,
};

use crate::error::{from_mongo, kind_of};

/// Where the schema of every synced object is kept (for `introspect`).
const SCHEMA_COLLECTION: &str = "_objectql_schema";
/// Counters for integer primary keys.
const COUNTER_COLLECTION: &str = "_objectql_counters";
/// Which object each collection belongs to (`{_id: collection, object}`):
/// claimed atomically at sync, released by `drop_object`.
const CLAIM_COLLECTION: &str = "_objectql_claims";
/// The database when the URL names none.
const DEFAULT_DATABASE: &str = "objectql";
const NAME: &str = "mongodb";

type Session = Arc<tokio::sync::Mutex<ClientSession>>;

/// The MongoDB driver (`mongodb://host:27017/db`, `mongodb+srv://…`).
///
/// One `mongodb::Client` (its own pool); every read is one aggregation
/// pipeline, streamed as the server returns batches. Transactions are
/// declared only when the server supports them (a replica set or a sharded
/// cluster, from `hello` at connect time).
pub struct MongoDriver {
    client: Client,
    db: Database,
    caps: Capabilities,
    txs: Mutex<HashMap<u64, Session>>,
    next_tx: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for MongoDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoDriver")
            .field("database", &self.db.name())
            .field("capabilities", &self.caps)
            .finish_non_exhaustive()
    }
}

fn closed() -> Error {
    Error::driver(
        DriverErrorKind::ConnectionLost,
        "the MongoDB driver is closed",
    )
}

fn tx_closed() -> Error {
    Error::driver(
        DriverErrorKind::TransactionClosed,
        "the transaction is no longer open",
    )
}

/// Runs `work` within the caller's time limit.
async fn limited<T>(
    timeout: Option<Duration>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match timeout {
        None => work.await,
        Some(t) => tokio::time::timeout(t, work).await.unwrap_or_else(|_| {
            Err(Error::driver(
                DriverErrorKind::Timeout,
                format!("the call took longer than {t:?}"),
            ))
        }),
    }
}

impl MongoDriver {
    /// Connects to the server at `url` (`mongodb://` or `mongodb+srv://`);
    /// the URL's path names the database (default `objectql`). The server
    /// is asked `hello` at once, so an unreachable server or a bad password
    /// fails here (`ConnectionLost` / `AuthFailed`). Without
    /// `serverSelectionTimeoutMS` in the URL, servers are looked for for
    /// 10 s (the client's default is 30 s).
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| Error::config(format!("invalid MongoDB URL ({}): {e}", redact(url))))?;
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(Duration::from_secs(10));
        }
        if options.app_name.is_none() {
            options.app_name = Some("objectql".into());
        }
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(options)
            .map_err(|e| Error::config(format!("invalid MongoDB options: {e}")))?;
        Self::with_client(client, &database).await
    }

    /// A driver over an existing client and database `database`.
    pub async fn with_client(client: Client, database: &str) -> Result<Self> {
        if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
            return Err(Error::config(format!(
                "`{database}` is not a valid MongoDB database name"
            )));
        }
        let db = client.database(database);
        let hello = client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| from_mongo(e, "connecting (hello)"))?;
        // Transactions need sessions, and a server that runs them: a
        // replica set or mongos says so in `hello`; a server that looks
        // standalone is asked to run (and abort) an empty one — a
        // standalone mongod refuses it (IllegalOperation).
        let sessions = hello.contains_key("logicalSessionTimeoutMinutes");
        let replicated =
            hello.contains_key("setName") || hello.get_str("msg").is_ok_and(|m| m == "isdbgrid");
        let transactions = sessions && (replicated || probe_transactions(&client, &db).await);
        let mut caps = Capabilities::everything()
            .with(Feature::UniqueConstraints)
            .with(Feature::JsonFields)
            .with(Feature::BinaryFields);
        // Joins are evaluated in the driver over the fetched collections.
        caps.joins = true;
        // Collection names compare exactly; `system.` is MongoDB's and `$`
        // is refused in them. The primary key is stored as `_id`, so no
        // other field may take that key.
        caps.names.reserved_table_prefixes = vec!["system."];
        caps.names.forbidden_table_chars = vec!['$'];
        caps.names.reserved_columns = vec!["_id"];
        if transactions {
            caps = caps.with(Feature::Transactions);
            // Snapshot isolation: repeatable read (and anything weaker),
            // never serializable (write skew is possible).
            caps.isolation_levels = vec![
                IsolationLevel::ReadCommitted,
                IsolationLevel::RepeatableRead,
            ];
        }
        Ok(Self {
            client,
            db,
            caps,
            txs: Mutex::new(HashMap::new()),
            next_tx: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        })
    }

    /// The database this driver works in (for commands objectql does not model).
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn coll(&self, name: &str) -> Result<Collection<Document>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        Ok(self.db.collection(name))
    }

    fn session(&self, tx: Option<TxId>) -> Result<Option<Session>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        match tx {
            None => Ok(None),
            Some(t) => self
                .txs
                .lock()
                .map_err(|_| Error::internal("transaction table poisoned"))?
                .get(&t.0)
                .cloned()
                .map(Some)
                .ok_or_else(tx_closed),
        }
    }

    /// Runs a pipeline and returns its documents decoded; in a transaction
    /// the documents are read under the session's lock.
    async fn run_pipeline(&self, cx: Cx<'_>, p: &Pipeline) -> Result<Vec<Record>> {
        if p.empty {
            return Ok(Vec::new());
        }
        let coll = self.coll(&p.collection)?;
        let mut rows = Vec::new();
        let work = async {
            match self.session(cx.tx)? {
                None => {
                    let mut op = coll.aggregate(p.stages.clone());
                    if let Some(t) = cx.timeout {
                        op = op.max_time(t);
                    }
                    let mut cursor = op.await.map_err(|e| from_mongo(e, "running a pipeline"))?;
                    while let Some(d) = cursor
                        .try_next()
                        .await
                        .map_err(|e| from_mongo(e, "reading a pipeline's results"))?
                    {
                        rows.push(decode(&d, &p.columns)?);
                    }
                }
                Some(s) => {
                    let mut s = s.lock().await;
                    let mut cursor = coll
                        .aggregate(p.stages.clone())
                        .session(&mut *s)
                        .await
                        .map_err(|e| from_mongo(e, "running a pipeline"))?;
                    while let Some(d) = cursor.next(&mut s).await {
                        let d = d.map_err(|e| from_mongo(e, "reading a pipeline's results"))?;
                        rows.push(decode(&d, &p.columns)?);
                    }
                }
            }
            Ok::<_, Error>(())
        };
        self.limited(cx, work).await?;
        Ok(rows)
    }

    /// Every record of `object` (joins are evaluated over whole collections).
    async fn scan(&self, cx: Cx<'_>, object: &str) -> Result<Relation> {
        let compiler = MongoCompiler::new(cx.catalog);
        let p = compiler.find(&Query::new(object))?;
        let names: Vec<String> = p.columns.iter().map(|c| c.name.clone()).collect();
        let rows = self.run_pipeline(cx, &p).await?;
        Ok(Relation::new(
            Columns::new(names.clone()),
            rows.into_iter()
                .map(|mut r| {
                    names
                        .iter()
                        .map(|n| r.shift_remove(n).unwrap_or(Value::Null))
                        .collect()
                })
                .collect(),
        ))
    }

    /// A join query `$lookup` cannot express (right and full joins, join
    /// conditions other than one equality), evaluated here with the
    /// reference evaluator over the fetched collections.
    async fn find_joined(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<Record>> {
        let object = query.object.as_deref().unwrap_or_default();
        let mut rel = self.scan(cx, object).await?;
        for j in &query.joins {
            let right = self.scan(cx, &j.object).await?;
            rel = eval::join(rel, &right, &j.alias, j.join_type, &j.on)?;
        }
        let mut q = query.clone();
        q.joins.clear();
        let out = eval::execute(&rel.columns, rel.rows.iter().map(Vec::as_slice), &q)?;
        let names = out.columns.names().to_vec();
        Ok(out
            .rows
            .into_iter()
            .map(|r| names.iter().cloned().zip(r).collect())
            .collect())
    }

    /// The stored form of a validated record (`_id` = the primary key).
    fn encode(schema: &ObjectSchema, record: &Record) -> Result<Document> {
        let mut d = Document::new();
        for (name, key, st) in stored_fields(schema)? {
            if let Some(v) = record.get(name) {
                d.insert(key, to_bson(v, st)?);
            }
        }
        Ok(d)
    }

    /// A stored document as a full record (every stored field, in schema order).
    fn decode_full(schema: &ObjectSchema, d: &Document) -> Result<Record> {
        let fields = stored_fields(schema)?;
        let mut r = Record::with_capacity(fields.len());
        for (name, key, st) in fields {
            r.insert(name.to_owned(), from_bson(d.get(key), st)?);
        }
        Ok(r)
    }

    /// Assigns integer primary keys to records without one, from a counter
    /// kept at or above the largest key in the collection.
    async fn assign_keys(
        &self,
        session: Option<&Session>,
        schema: &ObjectSchema,
        records: &mut [Record],
    ) -> Result<()> {
        let pk = &schema.primary_key;
        let integer = schema
            .primary_key_field()
            .map(objectql_query_ast::Field::storage_type)
            .transpose()?
            == Some(StorageType::Integer);
        let missing = records
            .iter()
            .filter(|r| r.get(pk).is_none_or(Value::is_null))
            .count();
        if !integer || missing == 0 {
            return Ok(());
        }
        let coll = self.coll(schema.table())?;
        let counters = self.coll(COUNTER_COLLECTION)?;
        let n = i64::try_from(missing).map_err(|_| Error::plan("too many records"))?;
        let key = doc! { "_id": schema.table() };
        let top = |d: Option<Document>| -> i64 {
            d.and_then(|d| match d.get("_id") {
                Some(Bson::Int64(i)) => Some(*i),
                Some(Bson::Int32(i)) => Some(i64::from(*i)),
                _ => None,
            })
            .unwrap_or(0)
        };
        let last = match session {
            None => {
                let max = coll
                    .find_one(doc! {})
                    .sort(doc! { "_id": -1 })
                    .projection(doc! { "_id": 1 })
                    .await
                    .map_err(|e| from_mongo(e, "reading the largest key"))?;
                counters
                    .update_one(key.clone(), doc! { "$max": { "seq": top(max) } })
                    .upsert(true)
                    .await
                    .map_err(|e| from_mongo(e, "raising a key counter"))?;
                counters
                    .find_one_and_update(key, doc! { "$inc": { "seq": n } })
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .await
                    .map_err(|e| from_mongo(e, "taking keys from a counter"))?
            }
            Some(s) => {
                let mut s = s.lock().await;
                let max = coll
                    .find_one(doc! {})
                    .sort(doc! { "_id": -1 })
                    .projection(doc! { "_id": 1 })
                    .session(&mut *s)
                    .await
                    .map_err(|e| from_mongo(e, "reading the largest key"))?;
                counters
                    .update_one(key.clone(), doc! { "$max": { "seq": top(max) } })
                    .upsert(true)
                    .session(&mut *s)
                    .await
                    .map_err(|e| from_mongo(e, "raising a key counter"))?;
                counters
                    .find_one_and_update(key, doc! { "$inc": { "seq": n } })
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .session(&mut *s)
                    .await
                    .map_err(|e| from_mongo(e, "taking keys from a counter"))?
            }
        };
        let last = match last.as_ref().and_then(|d| d.get("seq")) {
            Some(Bson::Int64(i)) => *i,
            Some(Bson::Int32(i)) => i64::from(*i),
            _ => {
                return Err(Error::driver(
                    DriverErrorKind::Decode,
                    "a key counter is not an integer",
                ));
            }
        };
        let mut next = last - n + 1;
        for r in records.iter_mut() {
            if r.get(pk).is_none_or(Value::is_null) {
                r.insert(pk.clone(), Value::Int(next));
                next += 1;
            }
        }
        Ok(())
    }

    /// Inserts `docs` all or none: in a transaction as they are; outside
    /// one, an ordered `insert_many` whose failure at document k is undone
    /// by deleting the k documents before it.
    async fn insert_docs(
        &self,
        session: Option<&Session>,
        coll: &Collection<Document>,
        docs: Vec<Document>,
    ) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let ids: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
        match session {
            Some(s) => {
                let mut s = s.lock().await;
                coll.insert_many(docs)
                    .ordered(true)
                    .session(&mut *s)
                    .await
                    .map(drop)
                    .map_err(|e| from_mongo(e, "inserting records"))
            }
            None => match coll.insert_many(docs).ordered(true).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let inserted = match e.kind.as_ref() {
                        mongodb::error::ErrorKind::InsertMany(m) => m
                            .write_errors
                            .as_ref()
                            .and_then(|w| w.first())
                            .map_or(0, |w| w.index),
                        _ => ids.len(),
                    };
                    let done: Vec<Bson> = ids.into_iter().take(inserted).collect();
                    if !done.is_empty() {
                        // Undo the documents inserted before the failure.
                        if let Err(undo) = coll.delete_many(doc! { "_id": { "$in": done } }).await {
                            tracing::error!("could not undo a failed insert: {undo}");
                        }
                    }
                    Err(from_mongo(e, "inserting records"))
                }
            },
        }
    }

    /// Claims `schema`'s collection for it, or refuses it with the naming
    /// rules' collision error when another object holds the claim. The
    /// claim is one upsert keyed by the collection name, so of two
    /// processes registering objects with one collection at once, exactly
    /// one wins. A collection the object used under an earlier schema
    /// (its `tableName` changed) is released.
    async fn claim_collection(&self, schema: &ObjectSchema, stored: &[ObjectSchema]) -> Result<()> {
        let claims = self.coll(CLAIM_COLLECTION)?;
        let table = schema.table();
        let mut attempts = 0;
        let claim = loop {
            let r = claims
                .find_one_and_update(
                    doc! { "_id": table },
                    doc! { "$setOnInsert": { "object": &schema.name } },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match r {
                // Two upserts of one new `_id` at once: the loser sees a
                // duplicate key; the document exists now, so ask again.
                Err(e) if attempts == 0 && kind_of(&e) == DriverErrorKind::UniqueViolation => {
                    attempts += 1;
                }
                other => break other.map_err(|e| from_mongo(e, "claiming a collection"))?,
            }
        };
        let holder = claim
            .as_ref()
            .and_then(|d| d.get_str("object").ok())
            .ok_or_else(|| Error::internal("a collection claim without its object"))?;
        if holder != schema.name {
            let mut other = ObjectSchema::new(holder);
            other.table_name = Some(table.to_owned());
            self.caps.names.check_schema(schema, [&other])?;
            return Err(Error::internal(format!(
                "collection `{table}` is claimed by object `{holder}`, yet the naming rules let `{}` share it",
                schema.name
            )));
        }
        if let Some(old) = stored.iter().find(|s| s.name == schema.name)
            && old.table() != table
        {
            claims
                .delete_one(doc! { "_id": old.table(), "object": &schema.name })
                .await
                .map_err(|e| from_mongo(e, "releasing a collection claim"))?;
        }
        Ok(())
    }

    /// Every schema in the schema collection: the objects synced by this
    /// process and by every other one.
    async fn stored_schemas(&self) -> Result<Vec<ObjectSchema>> {
        let docs: Vec<Document> = self
            .coll(SCHEMA_COLLECTION)?
            .find(doc! {})
            .await
            .map_err(|e| from_mongo(e, "reading the stored schemas"))?
            .try_collect()
            .await
            .map_err(|e| from_mongo(e, "reading the stored schemas"))?;
        docs.iter()
            .map(|d| {
                let name = d.get_str("_id").unwrap_or_default();
                let text = d.get_str("schema").map_err(|_| {
                    Error::driver(
                        DriverErrorKind::Decode,
                        format!("the stored schema of `{name}` is not text"),
                    )
                })?;
                objectql_driver::parse_stored_schema(name, text)
            })
            .collect()
    }

    /// Refuses `schema` unless its collection has a unique index for every
    /// key it declares unique (issue 12 §5). `_id` is always unique; the
    /// other unique indexes are partial on purpose (a document without a
    /// value does not collide, as NULLs in SQL), so they count.
    async fn check_unique_keys(&self, schema: &ObjectSchema) -> Result<()> {
        let models: Vec<IndexModel> = self
            .coll(schema.table())?
            .list_indexes()
            .await
            .map_err(|e| from_mongo(e, "listing indexes"))?
            .try_collect()
            .await
            .map_err(|e| from_mongo(e, "listing indexes"))?;
        let mut present = vec![vec!["_id".to_owned()]];
        for m in models {
            if m.options.as_ref().and_then(|o| o.unique) == Some(true) {
                present.push(m.keys.keys().cloned().collect());
            }
        }
        objectql_driver::check_unique_keys(
            schema,
            &present,
            self.caps.names.column_fold,
            Some("_id"),
        )
    }

    async fn ensure_indexes(&self, schema: &ObjectSchema) -> Result<()> {
        let coll = self.coll(schema.table())?;
        let mut models = Vec::new();
        let unique_on = |cols: Vec<(String, StorageType)>, name: String| -> Result<IndexModel> {
            let mut keys = Document::new();
            let mut partial = Document::new();
            for (c, st) in &cols {
                keys.insert(c.clone(), 1);
                // NULLs never collide (as in SQL): only documents whose
                // fields all hold values are in the index.
                partial.insert(c.clone(), doc! { "$type": bson_type_name(*st) });
            }
            Ok(IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name)
                        .unique(true)
                        .partial_filter_expression(partial)
                        .build(),
                )
                .build())
        };
        for (name, f) in &schema.fields {
            if *name == schema.primary_key || !f.unique {
                continue;
            }
            let st = f.storage_type()?;
            models.push(unique_on(
                vec![(f.column().to_owned(), st)],
                format!("{}_key", f.column()),
            )?);
        }
        for (i, idx) in schema.indexes.iter().enumerate() {
            let mut cols = Vec::new();
            for field in &idx.fields {
                let f = schema.get(field).ok_or_else(|| {
                    Error::validation(format!("indexes[{i}]"), format!("unknown field `{field}`"))
                })?;
                let col = if *field == schema.primary_key {
                    "_id"
                } else {
                    f.column()
                };
                cols.push((col.to_owned(), f.storage_type()?));
            }
            let name = format!("{}_{}", schema.table(), idx.fields.join("_"));
            if idx.unique {
                models.push(unique_on(cols, format!("{name}_key"))?);
            } else {
                let mut keys = Document::new();
                for (c, _) in cols {
                    keys.insert(c, 1);
                }
                models.push(
                    IndexModel::builder()
                        .keys(keys)
                        .options(IndexOptions::builder().name(format!("{name}_idx")).build())
                        .build(),
                );
            }
        }
        for (name, f) in &schema.fields {
            if f.index && !f.unique && *name != schema.primary_key {
                models.push(
                    IndexModel::builder()
                        .keys(doc! { f.column(): 1 })
                        .options(
                            IndexOptions::builder()
                                .name(format!("{}_idx", f.column()))
                                .build(),
                        )
                        .build(),
                );
            }
        }
        if !models.is_empty() {
            coll.create_indexes(models).await.map_err(|e| {
                // 85 IndexOptionsConflict, 86 IndexKeySpecsConflict: an index
                // of that name exists with other keys or options.
                let conflict = matches!(e.kind.as_ref(),
                    mongodb::error::ErrorKind::Command(c) if c.code == 85 || c.code == 86);
                if conflict {
                    let message = format!(
                        "collection `{}` of object `{}` holds an index whose name objectql uses, over other keys or with other options: {e}. Drop that index, or change the schema",
                        schema.table(),
                        schema.name
                    );
                    Error::Driver {
                        kind: DriverErrorKind::SchemaMismatch,
                        message,
                        source: Some(Box::new(e)),
                    }
                } else {
                    from_mongo(e, "creating indexes")
                }
            })?;
        }
        Ok(())
    }
}

/// Whether the server runs transactions: start one, read in it, abort it.
async fn probe_transactions(client: &Client, db: &Database) -> bool {
    let Ok(mut session) = client.start_session().await else {
        return false;
    };
    if session.start_transaction().await.is_err() {
        return false;
    }
    let read = db
        .collection::<Document>(SCHEMA_COLLECTION)
        .find_one(doc! {})
        .session(&mut session)
        .await;
    let aborted = session.abort_transaction().await;
    read.is_ok() && aborted.is_ok()
}

/// The `$type` name of a storage type's BSON form (see the codec).
fn bson_type_name(st: StorageType) -> &'static str {
    match st {
        StorageType::Integer | StorageType::DateTime => "long",
        StorageType::Float => "double",
        StorageType::Decimal { .. } => "decimal",
        StorageType::Boolean => "bool",
        StorageType::Date => "date",
        StorageType::Binary => "binData",
        _ => "string",
    }
}

/// `mongodb://user:password@…` without the password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A pipeline's output document as a record of its columns.
fn decode(d: &Document, columns: &[OutputColumn]) -> Result<Record> {
    let mut r = Record::with_capacity(columns.len());
    for c in columns {
        r.insert(c.name.clone(), from_bson(d.get(&c.key), c.storage)?);
    }
    Ok(r)
}

fn set_doc(schema: &ObjectSchema, patch: &Record) -> Result<Document> {
    let mut set = Document::new();
    for (name, key, st) in stored_fields(schema)? {
        if let Some(v) = patch.get(name).filter(|_| *name != schema.primary_key) {
            set.insert(key, to_bson(v, st)?);
        }
    }
    Ok(set)
}

/// Every stored field of `schema`, in schema order: its name, its document
/// key (`_id` for the primary key, else the column name) and storage type.
fn stored_fields(schema: &ObjectSchema) -> Result<Vec<(&str, &str, StorageType)>> {
    let mut out = Vec::with_capacity(schema.fields.len());
    for (name, f) in &schema.fields {
        let st = f.storage_type()?;
        if st == StorageType::Virtual {
            continue;
        }
        let key = if *name == schema.primary_key {
            "_id"
        } else {
            f.column()
        };
        out.push((name.as_str(), key, st));
    }
    Ok(out)
}

/// A patch may name the primary key only with its current value: `_id` is
/// immutable in MongoDB.
fn check_key_unchanged(schema: &ObjectSchema, id: Option<&Value>, patch: &Record) -> Result<()> {
    match (patch.get(&schema.primary_key), id) {
        (Some(new), Some(old)) if new != old => Err(Error::validation(
            format!("record.{}", schema.primary_key),
            "the primary key of a MongoDB document cannot be changed",
        )),
        (Some(_), None) => Err(Error::validation(
            format!("record.{}", schema.primary_key),
            "the primary key of a MongoDB document cannot be changed",
        )),
        _ => Ok(()),
    }
}

fn pk_bson(schema: &ObjectSchema, id: &Value) -> Result<Bson> {
    let st = schema
        .primary_key_field()
        .map(objectql_query_ast::Field::storage_type)
        .transpose()?
        .unwrap_or(StorageType::Text);
    to_bson(id, st)
}

macro_rules! with_session {
    ($self:ident, $tx:expr, $op:expr, |$s:ident| $with:expr) => {
        match $self.session($tx)? {
            None => $op.await,
            Some(sess) => {
                let mut guard = sess.lock().await;
                let $s = &mut *guard;
                $with.await
            }
        }
    };
}

#[async_trait]
impl Driver for MongoDriver {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Accepted when the pipeline compiler compiles it, or when it is a
    /// join `$lookup` cannot express (right and full joins, conditions
    /// other than one equality), which this driver evaluates itself over
    /// the fetched collections.
    fn accepts(&self, catalog: &objectql_query_ast::Catalog, query: &Query) -> Result<()> {
        match MongoCompiler::new(catalog).find(query) {
            Ok(_) => Ok(()),
            Err(Error::Unsupported { .. }) if !query.joins.is_empty() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn classify(&self, schema: &ObjectSchema, condition: &Condition) -> Pushdown {
        MongoCompiler::classify(schema, condition)
    }

    async fn health_check(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(|e| from_mongo(e, "checking health"))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.client.clone().shutdown().immediate(true).await;
        Ok(())
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        schema.check()?;
        self.caps.check_schema(schema, NAME)?;
        check_schema(schema)?;
        // Objects synced by other processes share the database: their
        // collections count for collisions as much as this engine's.
        let stored = self.stored_schemas().await?;
        self.caps.names.check_schema(schema, &stored)?;
        // Two processes registering objects with one collection at the same
        // moment both pass the check above; the claim decides, atomically,
        // which object the collection belongs to.
        self.claim_collection(schema, &stored).await?;
        let names = self
            .db
            .list_collection_names()
            .await
            .map_err(|e| from_mongo(e, "listing collections"))?;
        if !names.iter().any(|n| n == schema.table())
            && let Err(e) = self.db.create_collection(schema.table()).await
        {
            // Created meanwhile by another process: fine.
            let exists =
                matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 48);
            if !exists {
                return Err(from_mongo(e, "creating a collection"));
            }
        }
        self.ensure_indexes(schema).await?;
        let text = serde_json::to_string(schema)
            .map_err(|e| Error::internal(format!("a schema did not serialize: {e}")))?;
        self.coll(SCHEMA_COLLECTION)?
            .update_one(
                doc! { "_id": &schema.name },
                doc! { "$set": { "schema": text } },
            )
            .upsert(true)
            .await
            .map_err(|e| from_mongo(e, "storing a schema"))?;
        self.check_unique_keys(schema).await
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        // The object's collection is the one its stored schema names (its
        // `tableName`), not one named after the object, which may be
        // another object's.
        let stored = self.stored_schemas().await?;
        if let Some(table) = self.caps.names.table_to_drop(object, &stored) {
            self.coll(&table)?
                .drop()
                .await
                .map_err(|e| from_mongo(e, "dropping a collection"))?;
        }
        self.coll(SCHEMA_COLLECTION)?
            .delete_one(doc! { "_id": object })
            .await
            .map_err(|e| from_mongo(e, "forgetting a schema"))?;
        self.coll(COUNTER_COLLECTION)?
            .delete_one(doc! { "_id": object })
            .await
            .map_err(|e| from_mongo(e, "dropping a key counter"))?;
        self.coll(CLAIM_COLLECTION)?
            .delete_many(doc! { "object": object })
            .await
            .map_err(|e| from_mongo(e, "releasing a collection claim"))?;
        Ok(())
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        let stored = self
            .coll(SCHEMA_COLLECTION)?
            .find_one(doc! { "_id": object })
            .await
            .map_err(|e| from_mongo(e, "reading a stored schema"))?;
        let Some(d) = stored else {
            return Ok(None);
        };
        let text = d.get_str("schema").map_err(|_| {
            Error::driver(
                DriverErrorKind::Decode,
                format!("the stored schema of `{object}` is not text"),
            )
        })?;
        objectql_driver::parse_stored_schema(object, text).map(Some)
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        let compiler = MongoCompiler::new(cx.catalog);
        let p = match compiler.find(query) {
            Ok(p) => p,
            // Right and full joins, and join conditions `$lookup` cannot
            // express: the join runs here over the fetched collections.
            Err(Error::Unsupported { .. }) if !query.joins.is_empty() => {
                return Ok(rows_to_stream(self.find_joined(cx, query).await?));
            }
            Err(e) => return Err(e),
        };
        if p.empty {
            return Ok(rows_to_stream(Vec::new()));
        }
        if let Some(row) = &p.empty_input {
            let rows = self.run_pipeline(cx, &p).await?;
            return Ok(rows_to_stream(if rows.is_empty() {
                empty_input_rows(query, row)?
            } else {
                rows
            }));
        }
        if cx.tx.is_some() || cx.timeout.is_some() {
            return Ok(rows_to_stream(self.run_pipeline(cx, &p).await?));
        }
        // Outside a transaction: stream the cursor as batches arrive.
        let coll = self.coll(&p.collection)?;
        let cursor = coll
            .aggregate(p.stages)
            .await
            .map_err(|e| from_mongo(e, "running a pipeline"))?;
        let columns = p.columns;
        Ok(Box::pin(cursor.map(move |d| {
            let d = d.map_err(|e| from_mongo(e, "reading a pipeline's results"))?;
            decode(&d, &columns)
        })))
    }

    /// `estimatedDocumentCount`: the collection's metadata, not a scan.
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let coll = self.coll(cx.schema(object)?.table())?;
        self.limited(cx, async {
            coll.estimated_document_count()
                .await
                .map(Some)
                .map_err(|e| from_mongo(e, "estimating the collection's documents"))
        })
        .await
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        let compiler = MongoCompiler::new(cx.catalog);
        let f = compiler.filter(object, filter)?;
        let coll = self.coll(cx.schema(object)?.table())?;
        self.limited(cx, async {
            with_session!(self, cx.tx, coll.count_documents(f.clone()), |s| coll
                .count_documents(f.clone())
                .session(s))
            .map_err(|e| from_mongo(e, "counting"))
        })
        .await
    }

    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        let compiler = MongoCompiler::new(cx.catalog);
        match compiler.distinct(object, field, filter) {
            Ok(p) => Ok(self
                .run_pipeline(cx, &p)
                .await?
                .into_iter()
                .filter_map(|mut r| r.shift_remove("v"))
                .collect()),
            Err(Error::Unsupported { .. }) => {
                // Binary and json values: read the field, dedupe here.
                let mut q = Query::new(object);
                q.filter = filter.cloned();
                q.fields = Some(vec![field.to_owned()]);
                let p = compiler.find(&q)?;
                let rows = self.run_pipeline(cx, &p).await?;
                let columns = Columns::new(vec![field.to_owned()]);
                let dense: Vec<Vec<Value>> = rows
                    .into_iter()
                    .map(|mut r| vec![r.shift_remove(field).unwrap_or(Value::Null)])
                    .collect();
                eval::distinct_values(&columns, dense.iter().map(Vec::as_slice), field, None)
            }
            Err(e) => Err(e),
        }
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        let step = |operation: &str, detail: String| ExplainStep {
            location: "driver:mongodb".into(),
            operation: operation.into(),
            detail,
        };
        let compiled = MongoCompiler::new(cx.catalog).find(query);
        if !query.joins.is_empty() && matches!(compiled, Err(Error::Unsupported { .. })) {
            let mut steps = vec![step(
                "scan",
                format!(
                    "`{}` (whole collection)",
                    query.object.as_deref().unwrap_or_default()
                ),
            )];
            for j in &query.joins {
                steps.push(step(
                    "join",
                    format!(
                        "{} join `{}` as `{}`, evaluated in the driver over the whole collection",
                        j.join_type.name(),
                        j.object,
                        j.alias
                    ),
                ));
            }
            return Ok(steps);
        }
        let p = compiled?;
        let stages: Vec<serde_json::Value> = p
            .stages
            .iter()
            .map(|d| objectql_planner::mongo::codec::to_json(&Bson::Document(d.clone())))
            .collect();
        let mut steps = vec![step(
            "pipeline",
            format!(
                "db.{}.aggregate({})",
                p.collection,
                serde_json::Value::Array(stages)
            ),
        )];
        if p.empty_input.is_some() {
            steps.push(step(
                "empty_input",
                "no documents: the aggregate's empty-input row (count 0, others NULL)".into(),
            ));
        }
        Ok(steps)
    }

    async fn insert(
        &self,
        cx: Cx<'_>,
        object: &str,
        mut records: Vec<Record>,
    ) -> Result<Vec<Record>> {
        let schema = cx.schema(object)?;
        let session = self.session(cx.tx)?;
        let coll = self.coll(schema.table())?;
        self.limited(cx, async {
            self.assign_keys(session.as_ref(), schema, &mut records)
                .await?;
            let docs = records
                .iter()
                .map(|r| Self::encode(schema, r))
                .collect::<Result<Vec<_>>>()?;
            self.insert_docs(session.as_ref(), &coll, docs.clone())
                .await?;
            docs.iter().map(|d| Self::decode_full(schema, d)).collect()
        })
        .await
    }

    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        let schema = cx.schema(object)?;
        check_key_unchanged(schema, Some(id), &patch)?;
        let coll = self.coll(schema.table())?;
        let filter = doc! { "_id": pk_bson(schema, id)? };
        let set = set_doc(schema, &patch)?;
        let found = self
            .limited(cx, async {
                if set.is_empty() {
                    return with_session!(self, cx.tx, coll.find_one(filter.clone()), |s| coll
                        .find_one(filter.clone())
                        .session(s))
                    .map_err(|e| from_mongo(e, "reading a record"));
                }
                let update = doc! { "$set": set.clone() };
                with_session!(
                    self,
                    cx.tx,
                    coll.find_one_and_update(filter.clone(), update.clone())
                        .return_document(ReturnDocument::After),
                    |s| coll
                        .find_one_and_update(filter.clone(), update.clone())
                        .return_document(ReturnDocument::After)
                        .session(s)
                )
                .map_err(|e| from_mongo(e, "updating a record"))
            })
            .await?;
        found.map(|d| Self::decode_full(schema, &d)).transpose()
    }

    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        let schema = cx.schema(object)?;
        check_key_unchanged(schema, None, &patch)?;
        let f = MongoCompiler::new(cx.catalog).filter(object, Some(filter))?;
        let set = set_doc(schema, &patch)?;
        let coll = self.coll(schema.table())?;
        if set.is_empty() {
            return self.count(cx, object, Some(filter)).await;
        }
        let update = doc! { "$set": set };
        self.limited(cx, async {
            with_session!(
                self,
                cx.tx,
                coll.update_many(f.clone(), update.clone()),
                |s| coll.update_many(f.clone(), update.clone()).session(s)
            )
            .map(|r| r.matched_count)
            .map_err(|e| from_mongo(e, "updating records"))
        })
        .await
    }

    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        mut records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        let schema = cx.schema(object)?;
        let coll = self.coll(schema.table())?;
        let session = self.session(cx.tx)?;
        self.limited(cx, async {
            let mut out = Vec::with_capacity(records.len());
            // Keys are assigned only to records that end up inserted; an
            // integer key is taken up front for those without one.
            self.assign_keys(session.as_ref(), schema, &mut records)
                .await?;
            let fields = stored_fields(schema)?;
            for r in &records {
                let mut key = Document::new();
                let mut set = Document::new();
                let mut on_insert = Document::new();
                for &(name, col, st) in &fields {
                    if conflict.fields.iter().any(|f| f == name) {
                        let v = r.get(name).unwrap_or(&Value::Null);
                        key.insert(col, doc! { "$eq": to_bson(v, st)? });
                    }
                    let Some(v) = r.get(name) else { continue };
                    let target = if conflict.update_fields.iter().any(|f| f == name) {
                        &mut set
                    } else {
                        &mut on_insert
                    };
                    target.insert(col, to_bson(v, st)?);
                }
                if key.is_empty() {
                    return Err(Error::plan("an upsert needs conflict fields"));
                }
                let mut update = Document::new();
                if !set.is_empty() {
                    update.insert("$set", set);
                }
                if !on_insert.is_empty() {
                    update.insert("$setOnInsert", on_insert);
                }
                let d = match &session {
                    None => {
                        coll.find_one_and_update(key, update)
                            .upsert(true)
                            .return_document(ReturnDocument::After)
                            .await
                    }
                    Some(s) => {
                        let mut s = s.lock().await;
                        coll.find_one_and_update(key, update)
                            .upsert(true)
                            .return_document(ReturnDocument::After)
                            .session(&mut *s)
                            .await
                    }
                }
                .map_err(|e| from_mongo(e, "upserting a record"))?
                .ok_or_else(|| {
                    Error::driver(DriverErrorKind::Other, "an upsert returned no document")
                })?;
                out.push(Self::decode_full(schema, &d)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        let schema = cx.schema(object)?;
        let coll = self.coll(schema.table())?;
        let filter = doc! { "_id": pk_bson(schema, id)? };
        self.limited(cx, async {
            with_session!(self, cx.tx, coll.delete_one(filter.clone()), |s| coll
                .delete_one(filter.clone())
                .session(s))
            .map(|r| r.deleted_count > 0)
            .map_err(|e| from_mongo(e, "deleting a record"))
        })
        .await
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        let schema = cx.schema(object)?;
        let f = MongoCompiler::new(cx.catalog).filter(object, Some(filter))?;
        let coll = self.coll(schema.table())?;
        self.limited(cx, async {
            with_session!(self, cx.tx, coll.delete_many(f.clone()), |s| coll
                .delete_many(f.clone())
                .session(s))
            .map(|r| r.deleted_count)
            .map_err(|e| from_mongo(e, "deleting records"))
        })
        .await
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        if !self.caps.has(Feature::Transactions) {
            return Err(Error::unsupported("transactions", NAME));
        }
        if !self.caps.serves(isolation) {
            // MongoDB transactions are snapshot isolation.
            return Err(Error::unsupported(
                format!("isolation level {}", isolation.as_str()),
                NAME,
            ));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let mut session = self
            .client
            .start_session()
            .await
            .map_err(|e| from_mongo(e, "starting a session"))?;
        session
            .start_transaction()
            .await
            .map_err(|e| from_mongo(e, "starting a transaction"))?;
        let id = self.next_tx.fetch_add(1, Ordering::Relaxed);
        self.txs
            .lock()
            .map_err(|_| Error::internal("transaction table poisoned"))?
            .insert(id, Arc::new(tokio::sync::Mutex::new(session)));
        Ok(TxId(id))
    }

    async fn commit(&self, tx: TxId) -> Result<()> {
        let s = self.take(tx)?;
        // In a task of its own: a caller cut off mid-commit cannot leave the
        // transaction open on the server (the client marks it committed
        // before it sends `commitTransaction`).
        let db = self.db.clone();
        let task = tokio::spawn(async move {
            let mut guard = s.lock().await;
            let result = guard
                .commit_transaction()
                .await
                .map_err(|e| from_mongo(e, "committing"));
            if result.is_err() {
                drop(guard);
                end_transaction(&db, &s).await;
            }
            result
        });
        task.await
            .map_err(|e| Error::internal(format!("the commit task failed: {e}")))?
    }

    async fn rollback(&self, tx: TxId) -> Result<()> {
        let s = self.take(tx)?;
        let db = self.db.clone();
        tokio::spawn(async move { end_transaction(&db, &s).await })
            .await
            .map_err(|e| Error::internal(format!("the rollback task failed: {e}")))
    }

    fn abandon(&self, tx: TxId) {
        if let Ok(s) = self.take(tx)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let db = self.db.clone();
            handle.spawn(async move { end_transaction(&db, &s).await });
        }
    }
}

/// Aborts the transaction of session `s` (one of the driver's open
/// transactions) on the server, whatever the client believes its state is.
///
/// The `mongodb` crate sends `abortTransaction` only for a transaction it
/// saw a reply in: a first command cut off before its reply leaves the
/// client's state `Starting` (abort is then local only), although the
/// server may have begun the transaction and applied the command's writes.
/// Any command in the transaction moves the client to `InProgress` (its
/// outcome does not matter), after which the abort reaches the server.
/// Runs in a task of its own, so that a caller cut off cannot cut the
/// abort short either.
async fn end_transaction(db: &Database, s: &Session) {
    let mut s = s.lock().await;
    let _ = db
        .collection::<Document>(CLAIM_COLLECTION)
        .find_one(doc! {})
        .session(&mut *s)
        .await;
    let _ = s.abort_transaction().await;
}

impl MongoDriver {
    /// Runs `work` within the caller's time limit. A transaction whose call
    /// timed out is ended at once (its later calls fail with
    /// `TransactionClosed`): the cut command may have run on the server,
    /// so the transaction cannot commit what its caller knows.
    async fn limited<T>(
        &self,
        cx: Cx<'_>,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = limited(cx.timeout, work).await;
        if let (Err(e), Some(tx)) = (&result, cx.tx)
            && e.driver_kind() == Some(DriverErrorKind::Timeout)
        {
            self.abandon(tx);
        }
        result
    }

    fn take(&self, tx: TxId) -> Result<Session> {
        self.txs
            .lock()
            .map_err(|_| Error::internal("transaction table poisoned"))?
            .remove(&tx.0)
            .ok_or_else(tx_closed)
    }
}
