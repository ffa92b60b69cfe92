//! Validation of queries and records against object schemas.
//!
//! Validation does three things at once: it refuses what is wrong (with the
//! JSON path of the problem), it *types* every comparand (tokens resolved,
//! `"2026-03-01"` on a date field becomes a date), and it *normalizes* the
//! query so every driver sees the same rules:
//!
//! - a date-only bound on a datetime field covers the whole day in the
//!   context's timezone (`$lte: "2026-03-01"` becomes `< 2026-03-02T00:00`);
//! - paged queries get a deterministic tie-breaker appended to the sort (the
//!   primary key; for `distinct` the projected fields; for aggregates the
//!   group keys).
//!
//! Drivers receive only validated queries.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use indexmap::IndexMap;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{DriverErrorKind, Error, Path, Result};
use crate::filter::{Condition, Filter, MAX_FILTER_DEPTH, Op, Operand};
use crate::query::{AggFunction, Query, SortItem};
use crate::schema::{Catalog, ObjectSchema, StorageType};
use crate::tokens::{self, ResolveContext};
use crate::value::{
    MAX_JSON_DEPTH, MAX_SAFE_JSON_INTEGER, Value, canonical_json_numbers, decode_base64,
    json_numbers_canonical, value_json_depth,
};

/// A record: field name → value.
pub type Record = IndexMap<String, Value>;

/// The type of a column a filter or sort can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    storage: StorageType,
}

/// The columns visible to a clause.
struct Scope {
    columns: IndexMap<String, Column>,
    /// Join aliases (for the dotted-key error message).
    aliases: Vec<String>,
    object: String,
}

impl Scope {
    fn of(schema: &ObjectSchema) -> Result<Self> {
        let mut columns = IndexMap::new();
        for (name, f) in &schema.fields {
            columns.insert(
                name.clone(),
                Column {
                    storage: f.storage_type()?,
                },
            );
        }
        Ok(Self {
            columns,
            aliases: Vec::new(),
            object: schema.name.clone(),
        })
    }

    fn add_join(&mut self, alias: &str, schema: &ObjectSchema) -> Result<()> {
        for (name, f) in &schema.fields {
            self.columns.insert(
                format!("{alias}.{name}"),
                Column {
                    storage: f.storage_type()?,
                },
            );
        }
        self.aliases.push(alias.to_owned());
        Ok(())
    }

    fn get(&self, field: &str, path: &Path) -> Result<Column> {
        if let Some(c) = self.columns.get(field) {
            if c.storage == StorageType::Virtual {
                return Err(path.err(format!("field `{field}` is a formula and is not stored")));
            }
            return Ok(*c);
        }
        if let Some((head, _)) = field.split_once('.')
            && !self.aliases.iter().any(|a| a == head)
        {
            return Err(path.err(format!(
                "dotted key `{field}` reaches into a relation; use `expand` or `joins` instead"
            )));
        }
        Err(path.err(format!(
            "unknown field `{field}` on object `{}`",
            self.object
        )))
    }
}

/// Validates `query` against the catalog and resolves its tokens; returns the
/// normalized query that drivers execute.
pub fn validate_query(query: &Query, catalog: &Catalog, ctx: &ResolveContext) -> Result<Query> {
    let object = query
        .object
        .as_deref()
        .ok_or_else(|| Error::validation("object", "the query has no `object`"))?;
    let schema = catalog
        .get(object)
        .ok_or_else(|| Error::validation("object", format!("unknown object `{object}`")))?;
    validate_for(query, schema, catalog, ctx, &Path::empty())
}

/// Validates a query (which may lack `object`, as inside `expand`) against `schema`.
pub fn validate_for(
    query: &Query,
    schema: &ObjectSchema,
    catalog: &Catalog,
    ctx: &ResolveContext,
    path: &Path,
) -> Result<Query> {
    // Sizes first, without recursion: nothing below (the clone included)
    // may recurse over a filter nobody has measured yet.
    check_sizes(query, path)?;
    let mut q = query.clone();
    q.object = Some(schema.name.clone());
    let mut scope = Scope::of(schema)?;
    if let Some(n) = &query.nearest {
        q.nearest = Some(crate::nearest::validate(n, query, schema, path)?);
    }

    let mut aliases = Vec::new();
    // Each joined object's primary key, as a column of the joined rows.
    let mut joined_keys = Vec::new();
    for (i, join) in q.joins.iter_mut().enumerate() {
        let jp = path.key("joins").index(i);
        let js = catalog.get(&join.object).ok_or_else(|| {
            jp.key("object")
                .err(format!("unknown object `{}`", join.object))
        })?;
        crate::schema::check_name(&join.alias, "join alias", &jp.key("alias"))?;
        if join.alias.contains('.') || join.alias.starts_with('$') {
            return Err(jp
                .key("alias")
                .err("a join alias must not contain `.` or start with `$`"));
        }
        if aliases.contains(&join.alias) || scope.columns.contains_key(&join.alias) {
            return Err(jp
                .key("alias")
                .err(format!("join alias `{}` is already used", join.alias)));
        }
        aliases.push(join.alias.clone());
        joined_keys.push(format!("{}.{}", join.alias, js.primary_key));
        scope.add_join(&join.alias, js)?;
        join.on = typed_filter(&join.on, &scope, ctx, &jp.key("on"), 0)?;
    }

    if let Some(fields) = &q.fields {
        if fields.is_empty() {
            return Err(path.key("fields").err(
                "`fields` is empty: name at least one field, or leave `fields` out to get every field",
            ));
        }
        for (i, f) in fields.iter().enumerate() {
            if !q.is_aggregate() {
                scope.get(f, &path.key("fields").index(i))?;
            }
        }
    }
    if let Some(filter) = &q.filter {
        q.filter = Some(typed_filter(filter, &scope, ctx, &path.key("where"), 0)?);
    }
    if let Some(search) = &q.search
        && let Some(fields) = &search.fields
    {
        for (i, f) in fields.iter().enumerate() {
            let fp = path.key("search").key("fields").index(i);
            match schema.get(f) {
                Some(field) if field.searchable => {}
                Some(_) => return Err(fp.err(format!("field `{f}` is not searchable"))),
                None => return Err(fp.err(format!("unknown field `{f}`"))),
            }
        }
    }

    if q.is_aggregate() {
        validate_aggregate(&mut q, &scope, ctx, path)?;
    } else {
        for (i, s) in q.order_by.iter().enumerate() {
            let c = scope.get(&s.field, &path.key("orderBy").index(i).key("field"))?;
            if !c.storage.is_ordered() {
                return Err(path.key("orderBy").index(i).err(format!(
                    "cannot sort by `{}` ({} values are not ordered)",
                    s.field,
                    c.storage.name()
                )));
            }
        }
        if q.having.is_some() {
            return Err(path
                .key("having")
                .err("`having` needs `groupBy` or `aggregations`"));
        }
        if let (true, Some(fields)) = (q.distinct, &q.fields) {
            for (i, s) in q.order_by.iter().enumerate() {
                if !fields.contains(&s.field) {
                    return Err(path.key("orderBy").index(i).key("field").err(format!(
                        "with `distinct`, sort keys must be projected; `{}` is not in `fields`",
                        s.field
                    )));
                }
            }
        }
    }

    // Every backend counts rows in signed 64 bits (MongoDB refused a larger
    // `$limit` with a planning error).
    for (key, n) in [("limit", q.limit), ("offset", q.offset)] {
        if let Some(n) = n
            && i64::try_from(n).is_err()
        {
            return Err(path.key(key).err(format!("{key} {n} is beyond 2^63 - 1")));
        }
    }
    // A sorted read is deterministic, paged or not: the primary key (and
    // each joined object's, a distinct read's fields, an aggregate's
    // groups) breaks ties, so a
    // paged walk returns exactly the sequence of one unpaged read with the
    // same `orderBy` (ObjectStack v17). Unpaged reads used to return tied
    // rows in backend order.
    let paged = q.limit.is_some() || q.offset.is_some() || q.cursor.is_some();
    if paged || !q.order_by.is_empty() {
        let tie_breakers: Vec<String> = if q.is_aggregate() {
            q.group_by
                .iter()
                .map(|g| g.output_name().to_owned())
                .collect()
        } else if q.distinct {
            q.fields
                .clone()
                .unwrap_or_else(|| scope.columns.keys().cloned().collect())
        } else {
            // With joins, one base row may appear on several rows (and an
            // outer join pads with NULL keys): every object's key together
            // identifies a joined row.
            std::iter::once(schema.primary_key.clone())
                .chain(joined_keys)
                .collect()
        };
        for t in tie_breakers {
            if !q.order_by.iter().any(|s| s.field == t) {
                q.order_by.push(SortItem::asc(t));
            }
        }
    }

    let is_aggregate = q.is_aggregate();
    if let Some(cursor) = &mut q.cursor {
        let cp = path.key("cursor").key("after");
        if is_aggregate {
            return Err(path
                .key("cursor")
                .err("a cursor cannot page an aggregate query"));
        }
        for s in &q.order_by {
            if !cursor.after.contains_key(&s.field) {
                return Err(cp.err(format!("cursor lacks a value for sort key `{}`", s.field)));
            }
        }
        let mut typed = IndexMap::new();
        for (k, v) in &cursor.after {
            let kp = cp.key(k);
            if !q.order_by.iter().any(|s| &s.field == k) {
                return Err(kp.err(format!("`{k}` is not a sort key of this query")));
            }
            let c = scope.get(k, &kp)?;
            typed.insert(k.clone(), coerce(v.clone(), c.storage, &kp)?);
        }
        cursor.after = typed;
    }

    if q.distinct && q.is_aggregate() {
        return Err(path
            .key("distinct")
            .err("`distinct` cannot be combined with aggregations"));
    }

    let mut expand = IndexMap::new();
    for (field, sub) in &q.expand {
        let ep = path.key("expand").key(field);
        let f = schema.get(field).ok_or_else(|| {
            ep.err(format!(
                "unknown field `{field}` on object `{}`",
                schema.name
            ))
        })?;
        let target = f.reference.as_deref().ok_or_else(|| {
            ep.err(format!(
                "field `{field}` is not a lookup (it has no `reference`)"
            ))
        })?;
        let ts = catalog
            .get(target)
            .ok_or_else(|| ep.err(format!("`{field}` references unknown object `{target}`")))?;
        let mut sub_q = validate_for(sub, ts, catalog, ctx, &ep)?;
        sub_q.object = Some(target.to_owned());
        expand.insert(field.clone(), sub_q);
    }
    q.expand = expand;
    Ok(q)
}

fn validate_aggregate(
    q: &mut Query,
    scope: &Scope,
    ctx: &ResolveContext,
    path: &Path,
) -> Result<()> {
    let mut outputs: IndexMap<String, Column> = IndexMap::new();
    for (i, g) in q.group_by.iter_mut().enumerate() {
        let gp = path.key("groupBy").index(i);
        let c = scope.get(&g.field, &gp)?;
        crate::schema::check_name(g.output_name(), "group alias", &gp.key("alias"))?;
        let out = if g.granularity.is_some() {
            if !matches!(c.storage, StorageType::Date | StorageType::DateTime) {
                return Err(gp.err(format!(
                    "`dateGranularity` needs a date or datetime field; `{}` is {}",
                    g.field,
                    c.storage.name()
                )));
            }
            if c.storage == StorageType::DateTime && g.timezone.is_none() {
                g.timezone = Some(ctx.timezone);
            }
            Column {
                storage: StorageType::Text,
            }
        } else {
            c
        };
        if outputs.insert(g.output_name().to_owned(), out).is_some() {
            return Err(gp.err(format!("duplicate output name `{}`", g.output_name())));
        }
    }
    for (i, a) in q.aggregations.iter_mut().enumerate() {
        let ap = path.key("aggregations").index(i);
        crate::schema::check_name(&a.alias, "aggregation alias", &ap.key("alias"))?;
        let input = match &a.field {
            Some(f) => Some(scope.get(f, &ap.key("field"))?),
            None => None,
        };
        let out = match (a.function, input) {
            (AggFunction::Count | AggFunction::CountDistinct, _) => StorageType::Integer,
            (AggFunction::Sum, Some(c)) if c.storage.is_numeric() => match c.storage {
                StorageType::Integer => StorageType::Integer,
                other => other,
            },
            (AggFunction::Avg, Some(c)) if c.storage.is_numeric() => StorageType::Float,
            (AggFunction::Min | AggFunction::Max, Some(c)) if c.storage.is_ordered() => c.storage,
            (AggFunction::StringAgg, Some(c)) if c.storage == StorageType::Text => {
                StorageType::Text
            }
            (AggFunction::ArrayAgg, Some(_)) => StorageType::Json,
            (f, Some(c)) => {
                return Err(ap.key("field").err(format!(
                    "`{}` cannot aggregate {} field `{}`",
                    f.name(),
                    c.storage.name(),
                    a.field.as_deref().unwrap_or_default()
                )));
            }
            (f, None) => return Err(ap.err(format!("`{}` needs a `field`", f.name()))),
        };
        if let Some(filter) = &a.filter {
            a.filter = Some(typed_filter(filter, scope, ctx, &ap.key("filter"), 0)?);
        }
        if outputs
            .insert(a.alias.clone(), Column { storage: out })
            .is_some()
        {
            return Err(ap
                .key("alias")
                .err(format!("duplicate output name `{}`", a.alias)));
        }
    }
    let out_scope = Scope {
        columns: outputs,
        aliases: Vec::new(),
        object: format!("{} (aggregate output)", scope.object),
    };
    if let Some(fields) = &q.fields {
        for (i, f) in fields.iter().enumerate() {
            out_scope.get(f, &path.key("fields").index(i))?;
        }
    }
    for (i, s) in q.order_by.iter().enumerate() {
        out_scope.get(&s.field, &path.key("orderBy").index(i).key("field"))?;
    }
    if let Some(h) = &q.having {
        q.having = Some(typed_filter(h, &out_scope, ctx, &path.key("having"), 0)?);
    }
    Ok(())
}

fn typed_filter(
    f: &Filter,
    scope: &Scope,
    ctx: &ResolveContext,
    path: &Path,
    depth: usize,
) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(path.err(format!(
            "filter nests deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    Ok(match f {
        Filter::And(v) => Filter::And(
            v.iter()
                .enumerate()
                .map(|(i, c)| typed_filter(c, scope, ctx, &path.key("$and").index(i), depth + 1))
                .collect::<Result<_>>()?,
        ),
        Filter::Or(v) => Filter::Or(
            v.iter()
                .enumerate()
                .map(|(i, c)| typed_filter(c, scope, ctx, &path.key("$or").index(i), depth + 1))
                .collect::<Result<_>>()?,
        ),
        Filter::Not(inner) => Filter::Not(Box::new(typed_filter(
            inner,
            scope,
            ctx,
            &path.key("$not"),
            depth + 1,
        )?)),
        Filter::Condition(c) => typed_condition(c, scope, ctx, &path.key(&c.field))?,
    })
}

fn typed_condition(
    c: &Condition,
    scope: &Scope,
    ctx: &ResolveContext,
    path: &Path,
) -> Result<Filter> {
    let col = scope.get(&c.field, path)?;
    let st = col.storage;
    let op_path = path.key(c.op.name());
    let value = |v: &Value, p: &Path| -> Result<Value> { typed_value(v, st, ctx, p) };
    let operand = |o: &Operand, ordered: bool| -> Result<Operand> {
        if ordered && !st.is_ordered() {
            return Err(op_path.err(format!("{} field `{}` is not ordered", st.name(), c.field)));
        }
        match o {
            Operand::Value(v) => Ok(Operand::Value(value(v, &op_path)?)),
            Operand::Field(other) => {
                let oc = scope.get(other, &op_path.key("$field"))?;
                let compatible = oc.storage == st || (oc.storage.is_numeric() && st.is_numeric());
                if !compatible {
                    return Err(op_path.err(format!(
                        "cannot compare {} field `{}` with {} field `{other}`",
                        st.name(),
                        c.field,
                        oc.storage.name()
                    )));
                }
                Ok(Operand::Field(other.clone()))
            }
        }
    };
    let text = |s: &String| -> Result<String> {
        if st != StorageType::Text {
            Err(op_path.err(format!(
                "`{}` needs a text field; `{}` is {}",
                c.op.name(),
                c.field,
                st.name()
            )))
        } else if s.is_empty()
            && matches!(
                c.op,
                Op::Contains(_)
                    | Op::NotContains(_)
                    | Op::IContains(_)
                    | Op::StartsWith(_)
                    | Op::EndsWith(_)
            )
        {
            // Every text contains, starts and ends with "": the predicate
            // constrains nothing (or, negated, everything), the same
            // widening as `{field: {}}` (ObjectStack v17 refuses an empty
            // `$icontains`). `$like`/`$ilike` "" match only "" and stay.
            Err(op_path.err(format!(
                "`{}` needs a non-empty comparand: every text contains the empty string",
                c.op.name()
            )))
        } else if let Some(i) = s.find('\0') {
            // No stored text holds NUL (every write refuses it), and
            // backends disagree on what a NUL inside a pattern means: SQLite
            // cut the pattern short there and matched every row.
            Err(op_path.err(format!(
                "the `{}` comparand contains a NUL character (at byte {i}); text never contains NUL",
                c.op.name()
            )))
        } else {
            Ok(s.clone())
        }
    };
    let list = |vs: &[Value]| -> Result<Vec<Value>> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| value(v, &op_path.index(i)))
            .collect()
    };
    let op = match &c.op {
        // `$eq: null` means IS NULL and `$ne: null` IS NOT NULL, however the
        // filter was built (the JSON parser already maps them; a builder's
        // `eq(Value::Null)` matched nothing).
        Op::Eq(Operand::Value(Value::Null)) => Op::Null(true),
        Op::Ne(Operand::Value(Value::Null)) => Op::Null(false),
        Op::Eq(o) => Op::Eq(operand(o, false)?),
        Op::Ne(o) => Op::Ne(operand(o, false)?),
        Op::Gt(o) => Op::Gt(operand(o, true)?),
        Op::Gte(o) => Op::Gte(operand(o, true)?),
        Op::Lt(o) => Op::Lt(operand(o, true)?),
        Op::Lte(o) => Op::Lte(operand(o, true)?),
        Op::In(vs) => Op::In(list(vs)?),
        Op::Nin(vs) => Op::Nin(list(vs)?),
        Op::Between(a, b) => {
            if !st.is_ordered() {
                return Err(op_path.err(format!(
                    "{} field `{}` is not ordered",
                    st.name(),
                    c.field
                )));
            }
            Op::Between(value(a, &op_path.index(0))?, value(b, &op_path.index(1))?)
        }
        Op::Contains(s) => Op::Contains(text(s)?),
        Op::NotContains(s) => Op::NotContains(text(s)?),
        Op::StartsWith(s) => Op::StartsWith(text(s)?),
        Op::EndsWith(s) => Op::EndsWith(text(s)?),
        Op::IContains(s) => Op::IContains(text(s)?),
        Op::Like(s) => Op::Like(text(s)?),
        Op::ILike(s) => Op::ILike(text(s)?),
        Op::Null(b) => Op::Null(*b),
        Op::Exists(b) => Op::Exists(*b),
    };
    let field = c.field.clone();
    if st == StorageType::DateTime {
        return Ok(whole_day_bounds(&field, op, ctx));
    }
    Ok(Filter::cond(field, op))
}

/// Resolves tokens and coerces a comparand to the field's storage type.
fn typed_value(v: &Value, st: StorageType, ctx: &ResolveContext, p: &Path) -> Result<Value> {
    let v = match v {
        Value::String(s) => tokens::resolve(s, ctx, p)?.unwrap_or_else(|| v.clone()),
        other => other.clone(),
    };
    if let Value::Int(i) = v
        && !(-MAX_SAFE_JSON_INTEGER..=MAX_SAFE_JSON_INTEGER).contains(&i)
        && st != StorageType::Integer
    {
        return Err(p.err(format!("integer {i} is beyond ±2^53")));
    }
    match (st, v) {
        // A date (literal or token) stays a date on datetime fields: the
        // caller turns it into whole-day bounds.
        (StorageType::DateTime, Value::Date(d)) => {
            let v = Value::Date(d);
            check_calendar(&v, p)?;
            Ok(v)
        }
        (StorageType::DateTime, Value::String(s)) if is_date_only(&s) => {
            let v = Value::Date(parse_date(&s, p)?);
            check_calendar(&v, p)?;
            Ok(v)
        }
        (StorageType::Date, Value::DateTime(t)) => {
            Ok(Value::Date(t.with_timezone(&ctx.timezone).date_naive()))
        }
        (_, v) => coerce(v, st, p),
    }
}

fn is_date_only(s: &str) -> bool {
    s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') && s.as_bytes().get(7) == Some(&b'-')
}

/// Rewrites comparisons of a datetime field with a date into whole-day ranges
/// (in the context's timezone).
///
/// A day whose bounds cross the calendar's edges (9999-12-31 ends at
/// 10000-01-01; in a timezone east of UTC 0001-01-01 starts in year 0) is
/// clamped to the calendar, which no stored value leaves: `< next day`
/// becomes `<= last instant`, `>= next day` becomes `> last instant`, and a
/// start before the first instant becomes the first instant. Every bound
/// then stays encodable on every backend (MariaDB inverted the comparison
/// with 10000-01-01; SQLite refused it).
fn whole_day_bounds(field: &str, op: Op, ctx: &ResolveContext) -> Filter {
    let start = |d: NaiveDate| Value::DateTime(ctx.day_start(d).max(first_instant()));
    // The next day's start, or None when it lies past the calendar.
    let next = |d: NaiveDate| {
        d.succ_opt()
            .map(|n| ctx.day_start(n))
            .filter(|t| *t <= last_instant())
    };
    let before_next = |f: &str, d: NaiveDate| match next(d) {
        Some(t) => Filter::cond(f, Op::Lt(Operand::Value(Value::DateTime(t)))),
        None => Filter::cond(f, Op::Lte(Operand::Value(Value::DateTime(last_instant())))),
    };
    let from_next = |f: &str, d: NaiveDate| match next(d) {
        Some(t) => Filter::cond(f, Op::Gte(Operand::Value(Value::DateTime(t)))),
        None => Filter::cond(f, Op::Gt(Operand::Value(Value::DateTime(last_instant())))),
    };
    let day = |f: &str, d: NaiveDate| {
        Filter::And(vec![
            Filter::cond(f, Op::Gte(Operand::Value(start(d)))),
            before_next(f, d),
        ])
    };
    let as_date = |o: &Operand| match o {
        Operand::Value(Value::Date(d)) => Some(*d),
        _ => None,
    };
    let f = field;
    match op {
        Op::Eq(o) if as_date(&o).is_some() => as_date(&o).map_or_else(Filter::never, |d| day(f, d)),
        Op::Ne(o) if as_date(&o).is_some() => {
            as_date(&o).map_or_else(Filter::always, |d| day(f, d).not())
        }
        Op::Gt(o) if as_date(&o).is_some() => {
            as_date(&o).map_or_else(Filter::never, |d| from_next(f, d))
        }
        Op::Gte(o) if as_date(&o).is_some() => Filter::cond(
            f,
            Op::Gte(Operand::Value(as_date(&o).map_or(Value::Null, start))),
        ),
        Op::Lt(o) if as_date(&o).is_some() => Filter::cond(
            f,
            Op::Lt(Operand::Value(as_date(&o).map_or(Value::Null, start))),
        ),
        Op::Lte(o) if as_date(&o).is_some() => {
            as_date(&o).map_or_else(Filter::never, |d| before_next(f, d))
        }
        Op::Between(a, b) if matches!(a, Value::Date(_)) || matches!(b, Value::Date(_)) => {
            let low = match a {
                Value::Date(d) => Filter::cond(f, Op::Gte(Operand::Value(start(d)))),
                other => Filter::cond(f, Op::Gte(Operand::Value(other))),
            };
            let high = match b {
                Value::Date(d) => before_next(f, d),
                other => Filter::cond(f, Op::Lte(Operand::Value(other))),
            };
            Filter::And(vec![low, high])
        }
        // A NULL entry of `$in`/`$nin` never matches (and never excludes):
        // it is dropped, never turned into `$eq: null`, which a second
        // validation (a query cut across datasources is validated again
        // per datasource) would read as IS NULL.
        Op::In(vs) if vs.iter().any(|v| matches!(v, Value::Date(_))) => Filter::Or(
            vs.into_iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::Date(d) => day(f, d),
                    other => Filter::cond(f, Op::Eq(Operand::Value(other))),
                })
                .collect(),
        ),
        Op::Nin(vs) if vs.iter().any(|v| matches!(v, Value::Date(_))) => Filter::Or(
            vs.into_iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::Date(d) => day(f, d),
                    other => Filter::cond(f, Op::Eq(Operand::Value(other))),
                })
                .collect(),
        )
        .not(),
        op => Filter::cond(f, op),
    }
}

fn parse_date(s: &str, p: &Path) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| p.err(format!("`{s}` is not a date (YYYY-MM-DD)")))
}

/// Parses an ISO-8601 instant. Without an offset it is taken as UTC.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Coerces an untyped value to `st`; refuses what does not fit exactly.
pub fn coerce(v: Value, st: StorageType, p: &Path) -> Result<Value> {
    let v = coerce_any_year(v, st, p)?;
    check_calendar(&v, p)?;
    Ok(v)
}

/// The first instant of the calendar every driver stores: 0001-01-01T00:00:00Z.
pub fn first_instant() -> DateTime<Utc> {
    FIRST_DAY.and_time(NaiveTime::MIN).and_utc()
}

/// The last instant of the calendar every driver stores:
/// 9999-12-31T23:59:59.999999Z (datetimes keep microseconds).
pub fn last_instant() -> DateTime<Utc> {
    LAST_DAY
        .and_hms_micro_opt(23, 59, 59, 999_999)
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
}

/// The calendar's first day, 0001-01-01.
const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// The calendar's last day, 9999-12-31.
const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A written datetime or time cut to whole
/// microseconds; a leap second becomes :59.999999, as the SQL drivers
/// wrote it. Comparands are not cut: a filter on a finer instant is refused,
/// since cutting it would change what `$lt`/`$gte`/`$eq` match.
fn truncate_to_micros(v: Value) -> Value {
    let cut = |nanos: u32| nanos.min(999_999_999) / 1_000 * 1_000;
    match v {
        Value::DateTime(t) if !whole_micros(t.nanosecond()) => {
            Value::DateTime(t.with_nanosecond(cut(t.nanosecond())).unwrap_or(t))
        }
        Value::Time(t) if !whole_micros(t.nanosecond()) => {
            Value::Time(t.with_nanosecond(cut(t.nanosecond())).unwrap_or(t))
        }
        v => v,
    }
}

/// Whether a nanosecond field is a whole number of microseconds and no leap
/// second (chrono's nanosecond ≥ 10^9).
fn whole_micros(nanos: u32) -> bool {
    nanos < 1_000_000_000 && nanos.is_multiple_of(1_000)
}

/// Dates and datetimes lie in 0001-01-01 ..= 9999-12-31 (UTC): the range
/// every backend stores and compares (issue 12 §3). Datetimes and times
/// hold whole microseconds: memory kept nanoseconds that every other
/// driver truncated, so equality filters disagreed; a leap second was
/// written as :59.999999.
fn check_calendar(v: &Value, p: &Path) -> Result<()> {
    let (in_range, micros) = match v {
        Value::Date(d) => ((FIRST_DAY..=LAST_DAY).contains(d), true),
        Value::DateTime(t) => (
            (first_instant()..=last_instant()).contains(t),
            whole_micros(t.nanosecond()),
        ),
        Value::Time(t) => (true, whole_micros(t.nanosecond())),
        _ => (true, true),
    };
    if !in_range {
        Err(p.err(format!(
            "{v} is outside the calendar (0001-01-01 to 9999-12-31)"
        )))
    } else if !micros {
        Err(p.err(format!(
            "{v} is more precise than a microsecond (or a leap second); datetimes and times keep whole microseconds"
        )))
    } else {
        Ok(())
    }
}

fn coerce_any_year(v: Value, st: StorageType, p: &Path) -> Result<Value> {
    let mismatch = |v: &Value| {
        p.err(format!(
            "expected a {} value, found {}",
            st.name(),
            v.type_name()
        ))
    };
    Ok(match (st, v) {
        (_, Value::Null) => Value::Null,
        (StorageType::Virtual, _) => return Err(p.err("formula fields are not stored")),
        (StorageType::Text, Value::String(s)) => {
            if s.contains('\0') {
                return Err(p.err("text contains a NUL character"));
            }
            Value::String(s)
        }
        (StorageType::Text, Value::Uuid(u)) => Value::String(u.to_string()),
        (StorageType::Integer, Value::Int(i)) => Value::Int(i),
        (StorageType::Integer, Value::Float(f)) => Value::Int(
            float_to_i64(f)
                .ok_or_else(|| p.err(format!("{f} is not an integer in the 64-bit range")))?,
        ),
        (StorageType::Integer, Value::Decimal(d)) if d.fract().is_zero() => Value::Int(
            d.to_i64()
                .ok_or_else(|| p.err(format!("{d} is beyond 64 bits")))?,
        ),
        (StorageType::Integer, Value::String(s)) => Value::Int(
            s.parse::<i64>()
                .map_err(|_| p.err(format!("`{s}` is not a 64-bit integer")))?,
        ),
        (StorageType::Float, Value::Float(f)) => Value::Float(finite(f, p)?),
        (StorageType::Float, Value::Int(i)) => Value::Float(int_to_f64(i).ok_or_else(|| {
            p.err(format!(
                "integer {i} cannot be represented exactly as a float"
            ))
        })?),
        (StorageType::Float, Value::Decimal(d)) => Value::Float(
            d.to_f64()
                .ok_or_else(|| p.err(format!("{d} is not representable as a float")))?,
        ),
        (
            StorageType::Decimal { precision, scale },
            v @ (Value::Int(_) | Value::Float(_) | Value::Decimal(_) | Value::String(_)),
        ) => {
            let d = match v {
                Value::Int(i) => Decimal::from(i),
                Value::Float(f) => {
                    let f = finite(f, p)?;
                    Decimal::from_str(&f.to_string())
                        .or_else(|_| Decimal::from_scientific(&format!("{f:e}")))
                        .map_err(|_| p.err(format!("{f} does not fit a decimal")))?
                }
                Value::Decimal(d) => d,
                Value::String(s) => Decimal::from_str(s.trim())
                    .or_else(|_| Decimal::from_scientific(s.trim()))
                    .map_err(|_| p.err(format!("`{s}` is not a decimal number")))?,
                other => return Err(mismatch(&other)),
            };
            Value::Decimal(fit_decimal(d, precision, scale, p)?)
        }
        (StorageType::Boolean, Value::Bool(b)) => Value::Bool(b),
        (StorageType::Date, Value::Date(d)) => Value::Date(d),
        (StorageType::Date, Value::String(s)) => Value::Date(parse_date(&s, p)?),
        (StorageType::DateTime, Value::DateTime(t)) => Value::DateTime(t),
        (StorageType::DateTime, Value::Date(d)) => {
            Value::DateTime(d.and_time(NaiveTime::MIN).and_utc())
        }
        (StorageType::DateTime, Value::String(s)) => {
            if is_date_only(&s) {
                Value::DateTime(parse_date(&s, p)?.and_time(NaiveTime::MIN).and_utc())
            } else {
                Value::DateTime(
                    parse_datetime(&s)
                        .ok_or_else(|| p.err(format!("`{s}` is not an ISO-8601 datetime")))?,
                )
            }
        }
        (StorageType::Time, Value::Time(t)) => Value::Time(t),
        (StorageType::Time, Value::String(s)) => Value::Time(
            NaiveTime::parse_from_str(&s, "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(&s, "%H:%M"))
                .map_err(|_| p.err(format!("`{s}` is not a time (HH:MM:SS)")))?,
        ),
        (StorageType::Json, v) if value_json_depth(&v, MAX_JSON_DEPTH) > MAX_JSON_DEPTH => {
            return Err(p.err(format!(
                "JSON nests more than {MAX_JSON_DEPTH} arrays or objects deep"
            )));
        }
        (StorageType::Json, v) => {
            if let Value::Float(f) = v {
                finite(f, p)?;
            }
            let mut j = match v {
                Value::Json(j) => *j,
                v => v.to_json(),
            };
            canonical_json_numbers(&mut j).map_err(|m| p.err(m))?;
            Value::json(j)
        }
        (StorageType::Vector { dimensions }, Value::Array(items)) => {
            if u32::try_from(items.len()).ok() != Some(dimensions) {
                return Err(p.err(format!(
                    "expected a vector of {dimensions} numbers, found {}",
                    items.len()
                )));
            }
            Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| vector_component(x, &p.index(i)))
                    .collect::<Result<_>>()?,
            )
        }
        (StorageType::Binary, Value::Bytes(b)) => Value::Bytes(b),
        (StorageType::Binary, Value::String(s)) => Value::Bytes(
            decode_base64(&s).ok_or_else(|| p.err("binary values are base64 strings"))?,
        ),
        (_, v) => return Err(mismatch(&v)),
    })
}

/// One component of a vector value: a number, rounded to float32.
fn vector_component(x: Value, p: &Path) -> Result<Value> {
    match coerce(x, StorageType::Float, p)? {
        Value::Float(f) => Ok(Value::Float(crate::nearest::f32_component(f, p)?)),
        other => Err(p.err(format!(
            "a vector component must be a number, found {}",
            other.type_name()
        ))),
    }
}

fn finite(f: f64, p: &Path) -> Result<f64> {
    if f.is_finite() {
        // -0.0 + 0.0 is +0.0: negative zero is stored as zero on every
        // driver (three backends dropped the sign, so all do).
        Ok(f + 0.0)
    } else {
        Err(p.err(format!(
            "{f} is refused: NaN and infinities cannot be stored"
        )))
    }
}

/// Converts a float to i64 when it is integral and in range.
fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 as f64 is exact; the range check keeps the cast lossless.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        Some(f as i64)
    } else {
        None
    }
}

/// Converts an i64 to f64 when the conversion is exact (|i| ≤ 2^53).
pub fn int_to_f64(i: i64) -> Option<f64> {
    if (-MAX_SAFE_JSON_INTEGER..=MAX_SAFE_JSON_INTEGER).contains(&i) {
        #[allow(clippy::cast_precision_loss)]
        Some(i as f64)
    } else {
        None
    }
}

fn fit_decimal(d: Decimal, precision: u32, scale: u32, p: &Path) -> Result<Decimal> {
    let mut r = d.normalize();
    if r.scale() > scale {
        return Err(p.err(format!("{d} has more than {scale} digits after the point")));
    }
    r.rescale(scale);
    let digits = r.mantissa().unsigned_abs().to_string().len();
    let int_digits = digits.saturating_sub(scale as usize);
    if int_digits > (precision - scale.min(precision)) as usize {
        return Err(p.err(format!("{d} does not fit decimal({precision}, {scale})")));
    }
    Ok(r)
}

/// What a record is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// A new record: defaults applied, required fields checked, a text primary
    /// key generated (UUIDv7) when absent.
    Insert,
    /// A partial update: only the given fields are checked; the primary key
    /// cannot change.
    Update,
}

/// Validates and types a record for a write.
pub fn validate_record(
    record: Record,
    schema: &ObjectSchema,
    mode: WriteMode,
    path: &Path,
) -> Result<Record> {
    let mut out = Record::with_capacity(schema.fields.len());
    for (k, v) in record {
        let field = schema.get(&k).ok_or_else(|| {
            path.key(&k)
                .err(format!("unknown field `{k}` on object `{}`", schema.name))
        })?;
        let st = field.storage_type()?;
        if mode == WriteMode::Update && k == schema.primary_key {
            return Err(path.key(&k).err("the primary key cannot be updated"));
        }
        // The common case — a value already of its storage type — needs no
        // conversion (and no path, which is only built for errors).
        let v = if already_typed(&v, st) {
            v
        } else {
            // Stored datetimes and times keep whole microseconds on every
            // backend: a finer written value (`Utc::now()` has nanoseconds)
            // is cut here, so memory stores what the others store.
            let p = path.key(&k);
            let v = truncate_to_micros(coerce_any_year(v, st, &p)?);
            check_calendar(&v, &p)?;
            v
        };
        if let (Some(max), Value::String(s)) = (field.max_length, &v)
            && s.chars().count() > max as usize
        {
            return Err(Error::driver(
                DriverErrorKind::CheckViolation,
                format!("`{}.{k}` is longer than {max} characters", schema.name),
            ));
        }
        if v.is_null() && field.required {
            return Err(not_null(schema, &k));
        }
        out.insert(k, v);
    }
    if mode == WriteMode::Insert {
        for (name, field) in &schema.fields {
            if out.contains_key(name) {
                continue;
            }
            let st = field.storage_type()?;
            if st == StorageType::Virtual {
                continue;
            }
            if let Some(d) = schema.default_of(field)? {
                out.insert(name.clone(), coerce(d, st, &path.key(name))?);
            } else if *name == schema.primary_key {
                if st == StorageType::Text {
                    out.insert(
                        name.clone(),
                        Value::String(uuid::Uuid::now_v7().to_string()),
                    );
                }
                // Integer keys are assigned by the driver.
            } else if field.required {
                return Err(not_null(schema, name));
            }
        }
    }
    Ok(out)
}

/// Whether `coerce(v, st)` would return `v` unchanged.
fn already_typed(v: &Value, st: StorageType) -> bool {
    match (st, v) {
        (StorageType::Virtual, _) => false,
        (_, Value::Null)
        | (StorageType::Integer, Value::Int(_))
        | (StorageType::Boolean, Value::Bool(_))
        | (StorageType::Binary, Value::Bytes(_)) => true,
        (StorageType::Time, Value::Time(t)) => whole_micros(t.nanosecond()),
        (StorageType::Date, Value::Date(d)) => (FIRST_DAY..=LAST_DAY).contains(d),
        (StorageType::DateTime, Value::DateTime(t)) => {
            (first_instant()..=last_instant()).contains(t) && whole_micros(t.nanosecond())
        }
        (StorageType::Json, Value::Json(j)) => {
            value_json_depth(v, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH && json_numbers_canonical(j)
        }
        (StorageType::Text, Value::String(s)) => !s.contains('\0'),
        (StorageType::Float, Value::Float(f)) => {
            f.is_finite() && f.to_bits() != (-0.0f64).to_bits()
        }
        _ => false,
    }
}

fn not_null(schema: &ObjectSchema, field: &str) -> Error {
    Error::driver(
        DriverErrorKind::NotNullViolation,
        format!("`{}.{field}` is required", schema.name),
    )
}

/// Checks every filter of `query` and of its `expand` sub-queries (how
/// deep they nest, how many conditions they hold) and how deep `expand`
/// nests, all without recursion, so a query built 10,000 levels deep is a
/// validation error, never a stack overflow.
fn check_sizes(query: &Query, path: &Path) -> Result<()> {
    let mut pending: Vec<(&Query, Path, usize)> = vec![(query, path.clone(), 0)];
    while let Some((q, p, depth)) = pending.pop() {
        if depth > crate::query::MAX_EXPAND_DEPTH {
            return Err(p.err(format!(
                "`expand` nests deeper than {} levels",
                crate::query::MAX_EXPAND_DEPTH
            )));
        }
        if let Some(f) = &q.filter {
            f.check_size(&p.key("where"))?;
        }
        if let Some(f) = &q.having {
            f.check_size(&p.key("having"))?;
        }
        for (i, a) in q.aggregations.iter().enumerate() {
            if let Some(f) = &a.filter {
                f.check_size(&p.key("aggregations").index(i).key("filter"))?;
            }
        }
        for (i, j) in q.joins.iter().enumerate() {
            j.on.check_size(&p.key("joins").index(i).key("on"))?;
        }
        for (field, sub) in &q.expand {
            pending.push((sub, p.key("expand").key(field), depth + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Field;
    use crate::value::json_depth;
    use chrono::TimeZone;
    use serde_json::json;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.insert(
            ObjectSchema::new("task")
                .field(Field::new("title", "text").required())
                .field(Field::new("n", "number"))
                .field(Field::new("due", "datetime"))
                .field(Field::new("day", "date"))
                .field(Field::new("price", "currency").decimal(10, 2))
                .field(Field::new("owner", "lookup").reference("user")),
        )
        .unwrap();
        c.insert(ObjectSchema::new("user").field(Field::new("name", "text")))
            .unwrap();
        c
    }

    #[allow(clippy::needless_pass_by_value)]
    fn v(j: serde_json::Value) -> Result<Query> {
        let ctx = ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        validate_query(&Query::from_json(&j)?, &catalog(), &ctx)
    }

    /// A builder query whose `expand` nests 100,000 deep is refused with a
    /// validation error and dropped in constant stack (issue 12 §7).
    #[test]
    fn expand_nested_100k_deep_is_refused_and_dropped() {
        let mut q = Query::new("user");
        for _ in 0..100_000 {
            q = Query::new("user").expand("owner", q);
        }
        let q = Query::new("task").expand("owner", q);
        let ctx = ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let e = validate_query(&q, &catalog(), &ctx).unwrap_err();
        assert_eq!(e.category(), "validation", "{e}");
        assert!(e.to_string().contains("expand"), "{e}");
        drop(q);
    }

    #[test]
    fn date_only_bound_covers_the_whole_day() {
        let q = v(json!({"object": "task", "where": {"due": {"$lte": "2026-03-01"}}})).unwrap();
        let expected = Filter::cond(
            "due",
            Op::Lt(Operand::Value(Value::DateTime(
                Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(),
            ))),
        );
        assert_eq!(q.filter, Some(expected));
    }

    #[test]
    fn date_lists_on_datetimes_drop_null_entries_and_validate_again_unchanged() {
        // A query cut across datasources is validated again per
        // datasource: `$eq: null` would then become IS NULL.
        let ctx = ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        for op in ["$in", "$nin"] {
            let q =
                v(json!({"object": "task", "where": {"due": {op: ["2026-03-01", null]}}})).unwrap();
            let text = q.filter.as_ref().unwrap().to_json().to_string();
            assert!(!text.contains("null"), "{op}: {text}");
            let again = validate_query(&q, &catalog(), &ctx).unwrap();
            assert_eq!(again.filter, q.filter, "{op}");
        }
    }

    #[test]
    fn whole_day_bounds_stay_inside_the_calendar() {
        // 9999-12-31 ends past the calendar: `<= last instant`, not
        // `< 10000-01-01` (MariaDB inverted that; SQLite refused it).
        let q = v(json!({"object": "task", "where": {"due": {"$lte": "9999-12-31"}}})).unwrap();
        assert_eq!(
            q.filter,
            Some(Filter::cond(
                "due",
                Op::Lte(Operand::Value(Value::DateTime(last_instant())))
            ))
        );
        let q = v(json!({"object": "task", "where": {"due": {"$gt": "9999-12-31"}}})).unwrap();
        assert_eq!(
            q.filter,
            Some(Filter::cond(
                "due",
                Op::Gt(Operand::Value(Value::DateTime(last_instant())))
            ))
        );
        // 0001-01-01 in Tokyo starts in year 0: clamped to the first instant.
        let ctx = ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap())
            .with_timezone(chrono_tz::Asia::Tokyo);
        let q =
            Query::from_json(&json!({"object": "task", "where": {"due": {"$gte": "0001-01-01"}}}))
                .unwrap();
        let q = validate_query(&q, &catalog(), &ctx).unwrap();
        assert_eq!(
            q.filter,
            Some(Filter::cond(
                "due",
                Op::Gte(Operand::Value(Value::DateTime(first_instant())))
            ))
        );
    }

    #[test]
    fn dates_outside_the_calendar_are_refused() {
        let e = v(json!({"object": "task", "where": {"due": {"$gt": "0000-12-31"}}})).unwrap_err();
        assert_eq!(e.path(), Some("where.due.$gt"));
        assert!(e.to_string().contains("calendar"), "{e}");
        let e = v(json!({"object": "task", "where": {"day": "0000-01-01"}})).unwrap_err();
        assert_eq!(e.path(), Some("where.day.$eq"));
        let past = last_instant() + chrono::Duration::microseconds(1);
        assert!(coerce(Value::DateTime(past), StorageType::DateTime, &Path::empty()).is_err());
        assert!(
            coerce(
                Value::DateTime(last_instant()),
                StorageType::DateTime,
                &Path::empty()
            )
            .is_ok()
        );
        assert!(
            coerce(
                Value::DateTime(first_instant()),
                StorageType::DateTime,
                &Path::empty()
            )
            .is_ok()
        );
    }

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let z = coerce(Value::Float(-0.0), StorageType::Float, &Path::empty()).unwrap();
        assert!(
            matches!(z, Value::Float(f) if f == 0.0 && f.is_sign_positive()),
            "{z:?}"
        );
        let c = catalog();
        let mut r = Record::new();
        r.insert("title".into(), Value::String("a".into()));
        r.insert("n".into(), Value::Float(-0.0));
        let out =
            validate_record(r, c.get("task").unwrap(), WriteMode::Insert, &Path::empty()).unwrap();
        assert!(
            matches!(out.get("n"), Some(Value::Float(f)) if f.is_sign_positive()),
            "{out:?}"
        );
    }

    #[test]
    fn builder_eq_null_means_is_null() {
        let ctx = ResolveContext::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let built = Query::new("task").filter(crate::field("n").eq(Value::Null));
        let q = validate_query(&built, &catalog(), &ctx).unwrap();
        assert_eq!(q.filter, Some(Filter::cond("n", Op::Null(true))));
        let built = Query::new("task").filter(crate::field("n").ne(Value::Null));
        let q = validate_query(&built, &catalog(), &ctx).unwrap();
        assert_eq!(q.filter, Some(Filter::cond("n", Op::Null(false))));
        // The JSON form agrees.
        let q = v(json!({"object": "task", "where": {"n": {"$eq": null}}})).unwrap();
        assert_eq!(q.filter, Some(Filter::cond("n", Op::Null(true))));
    }

    #[test]
    fn sub_microsecond_times_are_refused() {
        let t =
            Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap() + chrono::Duration::nanoseconds(1);
        assert!(coerce(Value::DateTime(t), StorageType::DateTime, &Path::empty()).is_err());
        let t = NaiveTime::from_hms_nano_opt(10, 0, 0, 500).unwrap();
        assert!(coerce(Value::Time(t), StorageType::Time, &Path::empty()).is_err());
        let leap = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_000_000_000).unwrap();
        assert!(coerce(Value::Time(leap), StorageType::Time, &Path::empty()).is_err());
        let ok = NaiveTime::from_hms_micro_opt(10, 0, 0, 1).unwrap();
        assert!(coerce(Value::Time(ok), StorageType::Time, &Path::empty()).is_ok());
        // Written values are cut to whole microseconds instead.
        let c = catalog();
        let mut r = Record::new();
        r.insert("title".into(), Value::String("a".into()));
        let fine = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(1_999);
        r.insert("due".into(), Value::DateTime(fine));
        let out =
            validate_record(r, c.get("task").unwrap(), WriteMode::Insert, &Path::empty()).unwrap();
        assert_eq!(
            out.get("due"),
            Some(&Value::DateTime(
                Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
                    + chrono::Duration::microseconds(1)
            ))
        );
    }

    #[test]
    fn json_nesting_is_limited() {
        let nest = |n: usize| {
            let mut j = json!(1);
            for i in 0..n {
                j = if i % 2 == 0 {
                    json!([j])
                } else {
                    json!({ "k": j })
                };
            }
            j
        };
        let at = coerce(
            Value::json(nest(MAX_JSON_DEPTH)),
            StorageType::Json,
            &Path::root("meta"),
        );
        assert!(at.is_ok(), "{at:?}");
        let e = coerce(
            Value::json(nest(MAX_JSON_DEPTH + 1)),
            StorageType::Json,
            &Path::root("meta"),
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("meta"));
        // Nested arrays from the builder count the same way.
        let mut a = Value::Int(1);
        for _ in 0..=MAX_JSON_DEPTH {
            a = Value::Array(vec![a]);
        }
        assert!(coerce(a, StorageType::Json, &Path::root("meta")).is_err());
        assert_eq!(json_depth(&json!([[], {"a": [[]]}]), 10), 4);
        assert_eq!(json_depth(&json!("x"), 10), 0);
    }

    #[test]
    fn paging_appends_the_primary_key() {
        let q =
            v(json!({"object": "task", "orderBy": [{"field": "n", "order": "desc"}], "limit": 2}))
                .unwrap();
        assert_eq!(q.order_by, vec![SortItem::desc("n"), SortItem::asc("id")]);
    }

    #[test]
    fn errors_name_the_path() {
        let e = v(json!({"object": "task", "where": {"$or": [{"n": 1}, {"nope": {"$gt": 1}}]}}))
            .unwrap_err();
        assert_eq!(e.path(), Some("where.$or[1].nope"));
        let e = v(json!({"object": "task", "where": {"owner.name": "x"}})).unwrap_err();
        assert!(e.to_string().contains("expand"), "{e}");
        let e = v(json!({"object": "task", "where": {"n": {"$gt": "abc"}}})).unwrap_err();
        assert_eq!(e.path(), Some("where.n.$gt"));
        let e = v(json!({"object": "task", "fields": ["title", "zzz"]})).unwrap_err();
        assert_eq!(e.path(), Some("fields[1]"));
    }

    #[test]
    fn decimals_keep_scale_and_refuse_excess() {
        let st = StorageType::Decimal {
            precision: 5,
            scale: 2,
        };
        assert_eq!(
            coerce(Value::String("1.5".into()), st, &Path::empty()).unwrap(),
            Value::Decimal(Decimal::new(150, 2))
        );
        assert!(coerce(Value::String("1.555".into()), st, &Path::empty()).is_err());
        assert!(coerce(Value::Int(1000), st, &Path::empty()).is_err());
        assert!(coerce(Value::Float(f64::NAN), StorageType::Float, &Path::empty()).is_err());
    }

    #[test]
    fn records_get_defaults_ids_and_required_checks() {
        let c = catalog();
        let s = c.get("task").unwrap();
        let mut r = Record::new();
        r.insert("title".into(), Value::String("a".into()));
        let out = validate_record(r, s, WriteMode::Insert, &Path::empty()).unwrap();
        assert!(matches!(out.get("id"), Some(Value::String(id)) if id.len() == 36));
        let e = validate_record(Record::new(), s, WriteMode::Insert, &Path::empty()).unwrap_err();
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::NotNullViolation));
    }
}
