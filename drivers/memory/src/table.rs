//! One object's rows, with its primary-key and unique indexes.

use std::collections::HashMap;

use objectql_planner::eval::{Columns, FxBuildHasher, Predicate, RowKey, ValueKey};
use objectql_query_ast::{
    DriverErrorKind, Error, Filter, ObjectSchema, Path, Record, Result, StorageType, Value, coerce,
};

/// An index key: the evaluator's hashable value (NULL is never a key, so
/// NULLs never conflict).
pub(crate) type Key = ValueKey<Value>;

type Map<K> = HashMap<K, usize, FxBuildHasher>;

fn key_of(v: &Value) -> Option<Key> {
    (!v.is_null()).then(|| ValueKey(v.clone()))
}

/// A unique constraint over columns, with its index.
#[derive(Debug, Clone)]
pub(crate) struct Unique {
    pub(crate) name: String,
    pub(crate) cols: Vec<usize>,
    pub(crate) index: Map<RowKey<Vec<Value>>>,
}

impl Unique {
    /// The key of `row`, or `None` when any of its values is NULL.
    fn key(&self, row: &[Value]) -> Option<RowKey<Vec<Value>>> {
        self.cols
            .iter()
            .map(|c| row.get(*c).filter(|v| !v.is_null()).cloned())
            .collect::<Option<Vec<_>>>()
            .map(RowKey)
    }
}

/// Rows of one object, stored flat: slot `i` is
/// `cells[i * width .. (i + 1) * width]`, so a scan walks one contiguous
/// allocation. Deleted rows leave a dead slot (its cells cleared) so slot
/// numbers stay stable; `compact` drops dead slots when they outnumber live
/// rows.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) schema: ObjectSchema,
    pub(crate) columns: Columns,
    width: usize,
    cells: Vec<Value>,
    alive: Vec<bool>,
    pub(crate) live: usize,
    pk_col: usize,
    pk: Map<Key>,
    uniques: Vec<Unique>,
    next_int_id: i64,
    /// Bumped on every committed change; transactions use it to detect conflicts.
    pub(crate) version: u64,
}

impl Table {
    pub(crate) fn new(schema: ObjectSchema) -> Result<Self> {
        let names: Vec<String> = schema
            .fields
            .iter()
            .filter(|(_, f)| f.storage_type().is_ok_and(|st| st != StorageType::Virtual))
            .map(|(n, _)| n.clone())
            .collect();
        let columns = Columns::new(names);
        let pk_col = columns
            .index_of(&schema.primary_key)
            .ok_or_else(|| Error::internal("primary key column missing"))?;
        let mut uniques = Vec::new();
        for (name, f) in &schema.fields {
            if f.unique
                && *name != schema.primary_key
                && let Some(c) = columns.index_of(name)
            {
                uniques.push(Unique {
                    name: format!("{}.{name}", schema.name),
                    cols: vec![c],
                    index: Map::default(),
                });
            }
        }
        for idx in schema.indexes.iter().filter(|i| i.unique) {
            let cols = idx
                .fields
                .iter()
                .map(|f| {
                    columns
                        .index_of(f)
                        .ok_or_else(|| Error::internal("index column missing"))
                })
                .collect::<Result<Vec<_>>>()?;
            uniques.push(Unique {
                name: idx
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}({})", schema.name, idx.fields.join(", "))),
                cols,
                index: Map::default(),
            });
        }
        Ok(Self {
            schema,
            width: columns.len(),
            columns,
            cells: Vec::new(),
            alive: Vec::new(),
            live: 0,
            pk_col,
            pk: Map::default(),
            uniques,
            next_int_id: 1,
            version: 0,
        })
    }

    /// Live rows, in insertion order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = &[Value]> {
        self.cells
            .chunks_exact(self.width)
            .zip(&self.alive)
            .filter_map(|(row, alive)| alive.then_some(row))
    }

    /// The live row in `slot`.
    pub(crate) fn row(&self, slot: usize) -> Option<&[Value]> {
        if !*self.alive.get(slot)? {
            return None;
        }
        self.cells.get(slot * self.width..(slot + 1) * self.width)
    }

    /// The slots a filter can only match, when it pins the primary key
    /// (`pk = v`, `pk $in [...]`, alone or inside a top-level `$and`); `None`
    /// when every row must be scanned. The filter still runs on these rows.
    pub(crate) fn candidate_slots(&self, filter: Option<&Filter>) -> Option<Vec<usize>> {
        use objectql_query_ast::{Op, Operand};
        let pk = &self.schema.primary_key;
        let conjuncts: Vec<&Filter> = match filter? {
            Filter::And(items) => items.iter().collect(),
            f => vec![f],
        };
        conjuncts.into_iter().find_map(|f| match f {
            Filter::Condition(c) if &c.field == pk => match &c.op {
                Op::Eq(Operand::Value(v)) => Some(self.slot_of(v).into_iter().collect()),
                Op::In(vs) => {
                    let mut slots: Vec<usize> = vs.iter().filter_map(|v| self.slot_of(v)).collect();
                    // In insertion order, without duplicates: what a scan would visit.
                    slots.sort_unstable();
                    slots.dedup();
                    Some(slots)
                }
                _ => None,
            },
            _ => None,
        })
    }

    pub(crate) fn record(&self, row: &[Value]) -> Record {
        self.columns
            .names()
            .iter()
            .cloned()
            .zip(row.iter().cloned())
            .collect()
    }

    fn pk_is_integer(&self) -> bool {
        self.schema
            .primary_key_field()
            .and_then(|f| f.storage_type().ok())
            == Some(StorageType::Integer)
    }

    /// A dense row from a validated record (absent fields are NULL).
    ///
    /// Values are copied on purpose, not moved: copies of a batch are
    /// allocated together, in row order, so a scan reads their strings
    /// nearly sequentially (measured: moving the caller's allocations,
    /// interleaved with its maps, made 1M-row scans 1.4–1.5× slower).
    fn dense(&self, record: &Record) -> Vec<Value> {
        self.columns
            .names()
            .iter()
            .map(|n| record.get(n).cloned().unwrap_or(Value::Null))
            .collect()
    }

    pub(crate) fn slot_of(&self, id: &Value) -> Option<usize> {
        key_of(id).and_then(|k| self.pk.get(&k).copied())
    }

    fn unique_violation(&self, what: &str) -> Error {
        Error::driver(
            DriverErrorKind::UniqueViolation,
            format!(
                "duplicate value for unique key {what} of `{}`",
                self.schema.name
            ),
        )
    }

    /// Checks that `rows` (new rows, each replacing `slot` when given) keep
    /// every unique key unique. Nothing is modified.
    fn check_unique(&self, changes: &[(Option<usize>, &[Value])]) -> Result<()> {
        let replaced: std::collections::HashSet<usize> =
            changes.iter().filter_map(|(s, _)| *s).collect();
        let mut seen_pk = std::collections::HashSet::new();
        for (slot, row) in changes {
            let key = row.get(self.pk_col).and_then(key_of).ok_or_else(|| {
                Error::driver(DriverErrorKind::NotNullViolation, "primary key is null")
            })?;
            if let Some(existing) = self.pk.get(&key)
                && Some(*existing) != *slot
                && !replaced.contains(existing)
            {
                return Err(
                    self.unique_violation(&format!("primary key `{}`", self.schema.primary_key))
                );
            }
            if !seen_pk.insert(key) {
                return Err(
                    self.unique_violation(&format!("primary key `{}`", self.schema.primary_key))
                );
            }
        }
        for u in &self.uniques {
            let mut seen = std::collections::HashSet::new();
            for (slot, row) in changes {
                let Some(key) = u.key(row) else { continue };
                if let Some(existing) = u.index.get(&key)
                    && Some(*existing) != *slot
                    && !replaced.contains(existing)
                {
                    return Err(self.unique_violation(&u.name));
                }
                if !seen.insert(key) {
                    return Err(self.unique_violation(&u.name));
                }
            }
        }
        Ok(())
    }

    fn index_row(&mut self, slot: usize, row: &[Value]) {
        if let Some(k) = row.get(self.pk_col).and_then(key_of) {
            self.pk.insert(k, slot);
        }
        for u in &mut self.uniques {
            if let Some(k) = u.key(row) {
                u.index.insert(k, slot);
            }
        }
    }

    fn unindex_row(&mut self, slot: usize, row: &[Value]) {
        if let Some(k) = row.get(self.pk_col).and_then(key_of)
            && self.pk.get(&k) == Some(&slot)
        {
            self.pk.remove(&k);
        }
        for u in &mut self.uniques {
            if let Some(k) = u.key(row)
                && u.index.get(&k) == Some(&slot)
            {
                u.index.remove(&k);
            }
        }
    }

    /// Inserts validated records, all or none.
    pub(crate) fn insert(&mut self, records: Vec<Record>) -> Result<Vec<Record>> {
        let pk_int = self.pk_is_integer();
        let mut next = self.next_int_id;
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let mut row = self.dense(&r);
            if pk_int {
                match row.get(self.pk_col) {
                    Some(Value::Null) | None => {
                        if let Some(slot) = row.get_mut(self.pk_col) {
                            *slot = Value::Int(next);
                        }
                        next = next.checked_add(1).ok_or_else(|| {
                            Error::driver(
                                DriverErrorKind::NumericOverflow,
                                "integer primary key sequence exhausted",
                            )
                        })?;
                    }
                    Some(Value::Int(i)) if *i >= next => next = i.saturating_add(1),
                    _ => {}
                }
            }
            rows.push(row);
        }
        let changes: Vec<(Option<usize>, &[Value])> =
            rows.iter().map(|r| (None, r.as_slice())).collect();
        self.check_unique(&changes)?;
        self.next_int_id = next;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.record(&row));
            let slot = self.alive.len();
            self.index_row(slot, &row);
            self.cells.extend(row);
            self.alive.push(true);
            self.live += 1;
        }
        Ok(out)
    }

    fn patched(&self, row: &[Value], patch: &Record) -> Vec<Value> {
        let mut new = row.to_vec();
        for (k, v) in patch {
            if let Some(c) = self.columns.index_of(k)
                && let Some(slot) = new.get_mut(c)
            {
                *slot = v.clone();
            }
        }
        new
    }

    /// Applies `patch` to the rows in `slots`, all or none.
    pub(crate) fn update_slots(&mut self, slots: &[usize], patch: &Record) -> Result<Vec<Record>> {
        let mut new_rows = Vec::with_capacity(slots.len());
        for &s in slots {
            let row = self
                .row(s)
                .ok_or_else(|| Error::internal("update of a missing slot"))?;
            new_rows.push((s, self.patched(row, patch)));
        }
        let changes: Vec<(Option<usize>, &[Value])> = new_rows
            .iter()
            .map(|(s, r)| (Some(*s), r.as_slice()))
            .collect();
        self.check_unique(&changes)?;
        let mut out = Vec::with_capacity(new_rows.len());
        for (s, row) in new_rows {
            if let Some(old) = self.row(s).map(<[Value]>::to_vec) {
                self.unindex_row(s, &old);
            }
            self.index_row(s, &row);
            out.push(self.record(&row));
            let range = s * self.width..(s + 1) * self.width;
            if let Some(cells) = self.cells.get_mut(range) {
                for (cell, v) in cells.iter_mut().zip(row) {
                    *cell = v;
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn matching_slots(&self, filter: Option<&Filter>) -> Result<Vec<usize>> {
        let pred = filter
            .map(|f| Predicate::compile(f, &self.columns))
            .transpose()?;
        let candidates: Vec<usize> = match self.candidate_slots(filter) {
            Some(slots) => slots,
            None => (0..self.alive.len()).collect(),
        };
        Ok(candidates
            .into_iter()
            .filter(|&i| {
                self.row(i)
                    .is_some_and(|row| pred.as_ref().is_none_or(|p| p.matches(row)))
            })
            .collect())
    }

    pub(crate) fn delete_slots(&mut self, slots: &[usize]) -> u64 {
        let mut n = 0;
        for &s in slots {
            if let Some(old) = self.row(s).map(<[Value]>::to_vec) {
                self.unindex_row(s, &old);
                if let Some(alive) = self.alive.get_mut(s) {
                    *alive = false;
                }
                if let Some(cells) = self.cells.get_mut(s * self.width..(s + 1) * self.width) {
                    cells.fill(Value::Null);
                }
                self.live -= 1;
                n += 1;
            }
        }
        if self.alive.len() > 64 && self.live < self.alive.len() / 2 {
            self.compact();
        }
        n
    }

    fn compact(&mut self) {
        let mut cells = Vec::with_capacity(self.live * self.width);
        for row in self.rows() {
            cells.extend_from_slice(row);
        }
        self.cells = cells;
        self.alive = vec![true; self.live];
        self.pk.clear();
        for u in &mut self.uniques {
            u.index.clear();
        }
        for i in 0..self.live {
            if let Some(row) = self
                .cells
                .get(i * self.width..(i + 1) * self.width)
                .map(<[Value]>::to_vec)
            {
                self.index_row(i, &row);
            }
        }
    }

    /// Rebuilds this table under a new schema, converting every row; fails
    /// (leaving nothing changed) if a value does not convert or a new unique
    /// key is violated by existing data.
    pub(crate) fn migrate(&self, schema: ObjectSchema) -> Result<Self> {
        let mut next = Self::new(schema)?;
        let mut records = Vec::with_capacity(self.live);
        for row in self.rows() {
            let mut rec = Record::new();
            for name in next.columns.names() {
                let field = next
                    .schema
                    .get(name)
                    .ok_or_else(|| Error::internal("column without field"))?;
                let st = field.storage_type()?;
                let old = self
                    .columns
                    .index_of(name)
                    .and_then(|c| row.get(c))
                    .cloned()
                    .unwrap_or(Value::Null);
                let v = if old.is_null() {
                    next.schema.default_of(field)?.unwrap_or(Value::Null)
                } else {
                    old
                };
                let path = Path::root(&next.schema.name).key(name);
                let v = coerce(v, st, &path).map_err(|e| {
                    Error::plan(format!("schema change of `{path}` would lose data: {e}"))
                })?;
                if v.is_null() && field.required {
                    return Err(Error::plan(format!(
                        "schema change makes `{path}` required, but existing rows have no value"
                    )));
                }
                rec.insert(name.clone(), v);
            }
            records.push(rec);
        }
        next.next_int_id = self.next_int_id;
        next.insert(records)?;
        next.version = self.version + 1;
        Ok(next)
    }
}
