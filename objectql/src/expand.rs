//! `expand`: load related records by lookup field, batched with one `$in`
//! query per lookup field (per level), into whichever datasource the related
//! object lives in.

use std::collections::HashMap;

use objectql_planner::eval::ValueKey;

use objectql_query_ast::{
    Error, Filter, Op, Path, Query, Record, Result, StorageType, Value, coerce,
};

use crate::session::Session;

/// Refuses what `expand` cannot honour (paging inside an expanded query
/// would apply to the whole batch, not per parent row).
pub(crate) fn check(q: &Query) -> Result<()> {
    for (field, sub) in &q.expand {
        let p = Path::root("expand").key(field);
        if sub.limit.is_some() || sub.offset.is_some() || sub.cursor.is_some() {
            return Err(p.err("`limit`, `offset` and `cursor` are not available inside `expand`"));
        }
        if sub.is_aggregate() || sub.distinct || !sub.joins.is_empty() {
            return Err(p.err("an expanded query cannot aggregate, join or use `distinct`"));
        }
        if sub.nearest.is_some() {
            return Err(p
                .key("nearest")
                .err("`nearest` is not available inside `expand` (its `k` would apply to the whole batch, not per parent row)"));
        }
        check(sub)?;
    }
    Ok(())
}

/// A hashable form of an id (`None` for NULL, which points at nothing).
fn id_key(v: &Value) -> Option<ValueKey<Value>> {
    (!v.is_null()).then(|| ValueKey(v.clone()))
}

/// The ids a lookup value points at: one for a single lookup, several for a
/// multi-valued (JSON array) lookup.
fn ids_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Json(j) if j.is_array() => j
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| Value::from_json(j, &Path::empty()).ok())
            .collect(),
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Replaces each expanded lookup field of `rows` with the related record (or
/// NULL when there is none), recursively for nested `expand`.
pub(crate) async fn expand(session: &Session, q: &Query, rows: &mut [Record]) -> Result<()> {
    for (field, sub) in &q.expand {
        let target = sub
            .object
            .as_deref()
            .ok_or_else(|| Error::internal("validated expand without object"))?;
        let schema = session.engine().schema(target)?;
        let pk = schema.primary_key.clone();
        let pk_type = schema
            .primary_key_field()
            .ok_or_else(|| Error::internal("schema without primary key field"))?
            .storage_type()?;
        let mut ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in rows.iter() {
            for id in r.get(field).map(ids_of).unwrap_or_default() {
                // Ids that cannot be keys of the target simply match nothing.
                if let Ok(id) = coerce(id, pk_type, &Path::empty())
                    && let Some(k) = id_key(&id)
                    && seen.insert(k)
                {
                    ids.push(id);
                }
            }
        }
        let mut related: HashMap<ValueKey<Value>, Record> = HashMap::new();
        if !ids.is_empty() {
            let mut sub_q = sub.clone();
            let by_id = Filter::cond(pk.clone(), Op::In(ids));
            sub_q.filter = Some(match sub_q.filter.take() {
                Some(f) => by_id.and(f),
                None => by_id,
            });
            let drop_pk = match &mut sub_q.fields {
                Some(fields) if !fields.contains(&pk) => {
                    fields.push(pk.clone());
                    true
                }
                _ => false,
            };
            let s = session.for_datasource(schema.datasource_name());
            let found = Box::pin(s.find(&sub_q)).await?;
            for mut rec in found {
                let key = rec.get(&pk).and_then(id_key);
                if drop_pk {
                    rec.shift_remove(&pk);
                }
                if let Some(k) = key {
                    related.insert(k, rec);
                }
            }
        }
        let multiple = session
            .engine()
            .schema(q.object.as_deref().unwrap_or_default())?
            .get(field)
            .is_some_and(|f| {
                f.multiple || f.storage_type().is_ok_and(|st| st == StorageType::Json)
            });
        for r in rows.iter_mut() {
            let Some(v) = r.get_mut(field) else { continue };
            let lookup = |id: Value| {
                coerce(id, pk_type, &Path::empty())
                    .ok()
                    .and_then(|id| id_key(&id))
                    .and_then(|k| related.get(&k).cloned())
            };
            *v = if multiple {
                let items: Vec<serde_json::Value> = ids_of(v)
                    .into_iter()
                    .filter_map(lookup)
                    .map(|rec| record_json(&rec))
                    .collect();
                Value::json(serde_json::Value::Array(items))
            } else {
                match ids_of(v).into_iter().next().and_then(lookup) {
                    Some(rec) => Value::json(record_json(&rec)),
                    None => Value::Null,
                }
            };
        }
    }
    Ok(())
}

fn record_json(r: &Record) -> serde_json::Value {
    serde_json::Value::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}
