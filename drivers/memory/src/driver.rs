//! The memory driver.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use objectql_driver::{
    BatchStream, Capabilities, Conflict, Cx, Driver, ExplainStep, Feature, IsolationLevel,
    PoolStats, RowStream, TxId, rows_to_stream,
};
use objectql_planner::eval::{self, Relation};
use objectql_query_ast::{
    DriverErrorKind, Error, Filter, ObjectSchema, Query, Record, Result, Value,
};

use crate::persist;
use crate::table::Table;

type Tables = HashMap<String, Arc<Table>>;

/// Options of a [`MemoryDriver`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Persist every committed change to this file (written to a temporary
    /// file, synced, then renamed over it — a crash mid-write leaves the
    /// previous state intact). `None` keeps everything in memory.
    pub path: Option<PathBuf>,
}

impl MemoryOptions {
    /// Options persisting to `path`.
    pub fn persistent(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
        }
    }

    /// Options parsed from a `memory://` URL: `memory://` (ephemeral),
    /// `memory:///abs/path.json` or `memory://?path=relative/path.json`.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("memory:")
            .ok_or_else(|| Error::config(format!("`{url}` is not a memory:// URL")))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut path = (!location.is_empty()).then(|| PathBuf::from(location));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("path" | "file", v)) if !v.is_empty() => path = Some(PathBuf::from(v)),
                _ => {
                    return Err(Error::config(format!(
                        "unknown memory:// URL option `{pair}` in `{url}`"
                    )));
                }
            }
        }
        Ok(Self { path })
    }
}

struct Tx {
    /// The snapshot the transaction reads and writes (copy-on-write).
    tables: Tables,
    /// Versions of the tables at `begin`, for conflict detection.
    base: HashMap<String, u64>,
    /// Tables the transaction wrote.
    written: std::collections::HashSet<String>,
    /// Tables the transaction read.
    read: std::collections::HashSet<String>,
}

struct State {
    tables: Tables,
    txs: HashMap<u64, Tx>,
}

/// Inserts of at least this many records run on the blocking pool.
const OFF_THREAD_ROWS: usize = 1_000;

/// The in-memory driver: the reference implementation of the protocol.
///
/// - Every rule of `PROTOCOL.md` is implemented by `objectql_planner::eval`,
///   which this driver runs directly over its rows.
/// - **Transactions** are serializable: a transaction works on a
///   copy-on-write snapshot of the whole store taken at `begin` (so it has
///   repeatable reads and sees its own writes); at commit, if any table it
///   read or wrote was changed by someone else since `begin`, the commit
///   fails with `SerializationFailure` (retry it) and nothing is applied.
///   Conflicts are detected per table, which is conservative.
/// - **Persistence** (optional): after every committed change the whole
///   store is written to a temporary file, synced, and renamed over the data
///   file, so a crash mid-write leaves the previous state.
#[derive(Clone)]
pub struct MemoryDriver {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    caps: Capabilities,
    path: Option<PathBuf>,
    /// The exclusive lock on the store (`<file>.lock`), held while open:
    /// two drivers writing one file lost each other's acknowledged writes.
    lock: Mutex<Option<std::fs::File>>,
    next_tx: AtomicU64,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemoryDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDriver")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryDriver {
    /// An empty, ephemeral store.
    pub fn new() -> Self {
        Self::build(Tables::new(), None)
    }

    /// A store persisted to `options.path` (loaded from it if it exists).
    ///
    /// Loading checks every stored value against the stored schemas.
    ///
    /// The file is locked while the driver is open (until [`Driver::close`]
    /// or drop): a second driver on the same file, in this process or
    /// another, is refused with a configuration error. Temporary files left
    /// by a process killed mid-save are removed.
    pub fn open(options: MemoryOptions) -> Result<Self> {
        let (tables, lock) = match &options.path {
            Some(p) => {
                let lock = persist::lock(p)?;
                persist::remove_stale_temporaries(p);
                (persist::load(p)?, Some(lock))
            }
            None => (Tables::new(), None),
        };
        let driver = Self::build(tables, options.path);
        if let Ok(mut slot) = driver.inner.lock.lock() {
            *slot = lock;
        }
        Ok(driver)
    }

    /// Connects from a `memory://` URL (see [`MemoryOptions::from_url`]).
    pub fn connect(url: &str) -> Result<Self> {
        Self::open(MemoryOptions::from_url(url)?)
    }

    fn build(tables: Tables, path: Option<PathBuf>) -> Self {
        let caps = Capabilities::everything()
            .with(Feature::Transactions)
            .with(Feature::UniqueConstraints)
            .with(Feature::JsonFields)
            .with(Feature::BinaryFields)
            .with(Feature::Vectors);
        let mut caps = caps;
        caps.isolation_levels = vec![
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ];
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    tables,
                    txs: HashMap::new(),
                }),
                caps,
                path,
                lock: Mutex::new(None),
                next_tx: AtomicU64::new(1),
                closed: AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::driver(
                DriverErrorKind::ConnectionLost,
                "the memory driver is closed",
            ));
        }
        self.inner
            .state
            .lock()
            .map_err(|_| Error::internal("memory driver state poisoned by an earlier panic"))
    }

    /// A snapshot of `object` for reading (in `tx` when given).
    fn snapshot(&self, tx: Option<TxId>, object: &str) -> Result<Arc<Table>> {
        let mut state = self.lock()?;
        let tables = match tx {
            Some(id) => {
                let t = tx_mut(&mut state, id)?;
                t.read.insert(object.to_owned());
                &t.tables
            }
            None => &state.tables,
        };
        tables.get(object).cloned().ok_or_else(|| missing(object))
    }

    /// Runs `f` on a mutable `object` table, in `tx` or committed at once.
    fn write<T>(
        &self,
        tx: Option<TxId>,
        object: &str,
        f: impl FnOnce(&mut Table) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.lock()?;
        if let Some(id) = tx {
            let t = tx_mut(&mut state, id)?;
            let table = t.tables.get_mut(object).ok_or_else(|| missing(object))?;
            // Copy-on-write: the first write in a transaction copies the
            // table; every operation is all-or-none on its own.
            let out = f(Arc::make_mut(table))?;
            t.written.insert(object.to_owned());
            Ok(out)
        } else {
            // With a file, the table as it was is kept until the save
            // succeeds: a write that fails to persist is undone, never left
            // visible (to be saved later by someone else's write).
            let before = self
                .inner
                .path
                .as_ref()
                .and_then(|_| state.tables.get(object).cloned());
            let table = state
                .tables
                .get_mut(object)
                .ok_or_else(|| missing(object))?;
            let t = Arc::make_mut(table);
            let out = f(t)?;
            t.version += 1;
            if let Err(e) = self.persist(&state) {
                if let Some(before) = before {
                    state.tables.insert(object.to_owned(), before);
                }
                return Err(e);
            }
            Ok(out)
        }
    }

    fn persist(&self, state: &State) -> Result<()> {
        match &self.inner.path {
            Some(p) => persist::save(p, &state.tables),
            None => Ok(()),
        }
    }

    fn run_query(&self, cx: Cx<'_>, query: &Query) -> Result<Relation> {
        let object = query
            .object
            .as_deref()
            .ok_or_else(|| Error::internal("query without object"))?;
        let table = self.snapshot(cx.tx, object)?;
        if query.joins.is_empty() {
            // A filter that pins the primary key reads only those rows.
            return match table.candidate_slots(query.filter.as_ref()) {
                Some(slots) => eval::execute(
                    &table.columns,
                    slots.iter().filter_map(|&s| table.row(s)),
                    query,
                ),
                None => eval::execute(&table.columns, table.rows(), query),
            };
        }
        let mut rel = Relation {
            columns: table.columns.clone(),
            rows: table.rows().map(<[Value]>::to_vec).collect(),
        };
        for join in &query.joins {
            let other = self.snapshot(cx.tx, &join.object)?;
            let right = Relation {
                columns: other.columns.clone(),
                rows: other.rows().map(<[Value]>::to_vec).collect(),
            };
            rel = eval::join(rel, &right, &join.alias, join.join_type, &join.on)?;
        }
        let mut q = query.clone();
        q.joins.clear();
        eval::execute(&rel.columns, rel.rows.iter().map(Vec::as_slice), &q)
    }
}

fn missing(object: &str) -> Error {
    Error::config(format!(
        "object `{object}` has no storage in this memory datasource (sync its schema first)"
    ))
}

fn tx_mut(state: &mut State, id: TxId) -> Result<&mut Tx> {
    state.txs.get_mut(&id.0).ok_or_else(|| {
        Error::driver(
            DriverErrorKind::TransactionClosed,
            format!("transaction {} is not open", id.0),
        )
    })
}

/// Converts an evaluated relation into records.
pub(crate) fn relation_records(rel: Relation) -> Vec<Record> {
    let names = rel.columns.names().to_vec();
    rel.rows
        .into_iter()
        .map(|row| names.iter().cloned().zip(row).collect())
        .collect()
}

fn upsert_all(t: &mut Table, records: &[Record], conflict: &Conflict) -> Result<Vec<Record>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let key: Vec<Filter> = conflict
            .fields
            .iter()
            .map(|f| match r.get(f) {
                Some(v) if !v.is_null() => Ok(objectql_query_ast::field(f.as_str()).eq(v.clone())),
                _ => Err(Error::validation(
                    format!("data.{f}"),
                    format!("upsert needs a value for conflict field `{f}`"),
                )),
            })
            .collect::<Result<_>>()?;
        let slots = t.matching_slots(Some(&Filter::And(key)))?;
        if slots.is_empty() {
            out.extend(t.insert(vec![r.clone()])?);
        } else {
            let patch: Record = r
                .iter()
                .filter(|(k, _)| conflict.update_fields.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.extend(t.update_slots(&slots, &patch)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl Driver for MemoryDriver {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn health_check(&self) -> Result<()> {
        self.lock().map(drop)
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            total: 1,
            idle: 1,
            active: 0,
            waiting: 0,
        }
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        // Releases the file for the next driver.
        if let Ok(mut lock) = self.inner.lock.lock() {
            lock.take();
        }
        Ok(())
    }

    async fn sync_schema(&self, schema: &ObjectSchema) -> Result<()> {
        schema.check()?;
        self.inner.caps.check_schema(schema, self.name())?;
        let mut state = self.lock()?;
        let table = match state.tables.get(&schema.name) {
            Some(existing) if existing.schema == *schema => return Ok(()),
            Some(existing) => existing.migrate(schema.clone())?,
            None => Table::new(schema.clone())?,
        };
        let before = state.tables.insert(schema.name.clone(), Arc::new(table));
        self.persist(&state).inspect_err(|_| {
            match before {
                Some(t) => state.tables.insert(schema.name.clone(), t),
                None => state.tables.remove(&schema.name),
            };
        })
    }

    async fn drop_object(&self, object: &str) -> Result<()> {
        let mut state = self.lock()?;
        if let Some(before) = state.tables.remove(object) {
            self.persist(&state).inspect_err(|_| {
                state.tables.insert(object.to_owned(), before);
            })?;
        }
        Ok(())
    }

    async fn introspect(&self, object: &str) -> Result<Option<ObjectSchema>> {
        Ok(self.lock()?.tables.get(object).map(|t| t.schema.clone()))
    }

    async fn find(&self, cx: Cx<'_>, query: &Query) -> Result<RowStream> {
        let rel = self.run_query(cx, query)?;
        Ok(rows_to_stream(relation_records(rel)))
    }

    async fn find_arrow(&self, cx: Cx<'_>, query: &Query) -> Result<BatchStream> {
        let schema = objectql_driver::joined_schema(cx.catalog, query)?;
        let rows = relation_records(self.run_query(cx, query)?);
        let batch = objectql_driver::records_to_batch(&schema, query, &rows)?;
        Ok(Box::pin(futures::stream::iter([Ok(batch)])))
    }

    async fn count(&self, cx: Cx<'_>, object: &str, filter: Option<&Filter>) -> Result<u64> {
        let table = self.snapshot(cx.tx, object)?;
        eval::count(&table.columns, table.rows(), filter)
    }

    /// Exact: the table's count of live rows (kept, not counted).
    async fn estimated_rows(&self, cx: Cx<'_>, object: &str) -> Result<Option<u64>> {
        let table = self.snapshot(cx.tx, object)?;
        Ok(Some(table.live as u64))
    }

    async fn distinct(
        &self,
        cx: Cx<'_>,
        object: &str,
        field: &str,
        filter: Option<&Filter>,
    ) -> Result<Vec<Value>> {
        let table = self.snapshot(cx.tx, object)?;
        eval::distinct_values(&table.columns, table.rows(), field, filter)
    }

    async fn explain(&self, cx: Cx<'_>, query: &Query) -> Result<Vec<ExplainStep>> {
        let object = query.object.as_deref().unwrap_or_default();
        let table = self.snapshot(cx.tx, object)?;
        let step = |operation: &str, detail: String| ExplainStep {
            location: "driver:memory".into(),
            operation: operation.into(),
            detail,
        };
        let mut steps = vec![step("scan", format!("`{object}` ({} rows)", table.live))];
        for j in &query.joins {
            steps.push(step(
                "join",
                format!(
                    "{} join `{}` as `{}` on {}",
                    j.join_type.name(),
                    j.object,
                    j.alias,
                    j.on.to_json()
                ),
            ));
        }
        if let Some(f) = &query.filter {
            steps.push(step("filter", f.to_json().to_string()));
        }
        if let Some(n) = &query.nearest {
            steps.push(step(
                "nearest",
                format!(
                    "exact {} top {} by `{}` (brute force)",
                    n.effective_metric().name(),
                    n.k,
                    n.field
                ),
            ));
        }
        if query.is_aggregate() {
            steps.push(step(
                "aggregate",
                format!(
                    "{} keys, {} aggregations",
                    query.group_by.len(),
                    query.aggregations.len()
                ),
            ));
        }
        if !query.order_by.is_empty() {
            let keys: Vec<String> = query
                .order_by
                .iter()
                .map(|s| format!("{} {:?}", s.field, s.order))
                .collect();
            steps.push(step("sort", keys.join(", ")));
        }
        if query.limit.is_some() || query.offset.is_some() || query.cursor.is_some() {
            steps.push(step(
                "page",
                format!(
                    "limit {:?} offset {:?} cursor {}",
                    query.limit,
                    query.offset,
                    query.cursor.is_some()
                ),
            ));
        }
        Ok(steps)
    }

    async fn insert(&self, cx: Cx<'_>, object: &str, records: Vec<Record>) -> Result<Vec<Record>> {
        // A big batch, or any write that saves a file, runs on the
        // runtime's blocking pool, so it never holds a worker that other
        // tasks wait for (a 50,000-row insert held one for its whole
        // duration). It stays one all-or-none write under the store's lock,
        // and it completes even if the caller stops waiting.
        if (records.len() >= OFF_THREAD_ROWS || self.inner.path.is_some())
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (this, tx, object) = (self.clone(), cx.tx, object.to_owned());
            return rt
                .spawn_blocking(move || this.write(tx, &object, |t| t.insert(records)))
                .await
                .map_err(|e| Error::internal(format!("an insert's blocking task failed: {e}")))?;
        }
        self.write(cx.tx, object, |t| t.insert(records))
    }

    async fn update(
        &self,
        cx: Cx<'_>,
        object: &str,
        id: &Value,
        patch: Record,
    ) -> Result<Option<Record>> {
        self.write(cx.tx, object, |t| match t.slot_of(id) {
            Some(slot) => Ok(t.update_slots(&[slot], &patch)?.into_iter().next()),
            None => Ok(None),
        })
    }

    async fn update_many(
        &self,
        cx: Cx<'_>,
        object: &str,
        filter: &Filter,
        patch: Record,
    ) -> Result<u64> {
        self.write(cx.tx, object, |t| {
            let slots = t.matching_slots(Some(filter))?;
            Ok(t.update_slots(&slots, &patch)?.len() as u64)
        })
    }

    async fn upsert(
        &self,
        cx: Cx<'_>,
        object: &str,
        records: Vec<Record>,
        conflict: &Conflict,
    ) -> Result<Vec<Record>> {
        self.write(cx.tx, object, |t| {
            // Several records: keep a copy to restore, so the upsert is all-or-none.
            let backup = (records.len() > 1).then(|| t.clone());
            let result = upsert_all(t, &records, conflict);
            if let (Err(_), Some(b)) = (&result, backup) {
                *t = b;
            }
            result
        })
    }

    async fn delete(&self, cx: Cx<'_>, object: &str, id: &Value) -> Result<bool> {
        self.write(cx.tx, object, |t| {
            Ok(t.slot_of(id).is_some_and(|s| t.delete_slots(&[s]) == 1))
        })
    }

    async fn delete_many(&self, cx: Cx<'_>, object: &str, filter: &Filter) -> Result<u64> {
        self.write(cx.tx, object, |t| {
            let slots = t.matching_slots(Some(filter))?;
            Ok(t.delete_slots(&slots))
        })
    }

    async fn begin(&self, isolation: IsolationLevel) -> Result<TxId> {
        let _ = isolation; // Every level is served by serializable snapshots.
        let mut state = self.lock()?;
        let id = self.inner.next_tx.fetch_add(1, Ordering::Relaxed);
        let tables = state.tables.clone();
        let base = tables.iter().map(|(k, t)| (k.clone(), t.version)).collect();
        state.txs.insert(
            id,
            Tx {
                tables,
                base,
                written: std::collections::HashSet::new(),
                read: std::collections::HashSet::new(),
            },
        );
        Ok(TxId(id))
    }

    async fn commit(&self, tx: TxId) -> Result<()> {
        let mut state = self.lock()?;
        let t = state.txs.remove(&tx.0).ok_or_else(|| {
            Error::driver(
                DriverErrorKind::TransactionClosed,
                format!("transaction {} is not open", tx.0),
            )
        })?;
        if t.written.is_empty() {
            return Ok(());
        }
        for name in t.read.iter().chain(&t.written) {
            let now = state.tables.get(name).map(|x| x.version);
            if now != t.base.get(name).copied() {
                return Err(Error::driver(
                    DriverErrorKind::SerializationFailure,
                    format!("`{name}` changed since the transaction began; retry the transaction"),
                ));
            }
        }
        let mut tables = t.tables;
        let mut before = Vec::new();
        for name in &t.written {
            if let Some(mut table) = tables.remove(name) {
                Arc::make_mut(&mut table).version += 1;
                before.push((name.clone(), state.tables.insert(name.clone(), table)));
            }
        }
        // A commit that fails to persist is undone: the transaction is
        // rolled back, not applied in memory only.
        self.persist(&state).inspect_err(|_| {
            for (name, table) in before {
                match table {
                    Some(t) => state.tables.insert(name, t),
                    None => state.tables.remove(&name),
                };
            }
        })
    }

    async fn rollback(&self, tx: TxId) -> Result<()> {
        let mut state = self.lock()?;
        state.txs.remove(&tx.0).map(drop).ok_or_else(|| {
            Error::driver(
                DriverErrorKind::TransactionClosed,
                format!("transaction {} is not open", tx.0),
            )
        })
    }

    fn abandon(&self, tx: TxId) {
        if let Ok(mut state) = self.inner.state.lock() {
            state.txs.remove(&tx.0);
        }
    }
}
