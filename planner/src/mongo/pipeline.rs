//! Reads: queries → aggregation pipelines.

use bson::{Bson, Document, doc};
use chrono_tz::Tz;
use objectql_query_ast::{
    AggFunction, Aggregation, Cursor, DateGranularity, Error, Filter, JoinType, Op, Operand, Query,
    Record, Result, SortItem, SortOrder, StorageType, Value,
};

use super::filter::{self, Resolve};
use super::{DRIVER, MongoCompiler, ObjectFields, OutputColumn, Pipeline, is_plain_key};
use crate::eval::{Columns, execute};

fn unsupported(what: impl Into<String>) -> Error {
    Error::unsupported(what, DRIVER)
}

/// Field resolution over named outputs (after `$group` / `$project`).
struct OutputFields<'a>(&'a [OutputColumn]);

impl Resolve for OutputFields<'_> {
    fn resolve(&self, field: &str) -> Result<(String, StorageType)> {
        self.0
            .iter()
            .find(|c| c.name == field)
            .map(|c| (c.key.clone(), c.storage))
            .ok_or_else(|| Error::plan(format!("`{field}` is not an output of the query")))
    }
}

/// Field resolution over a base object and the objects joined to it: a
/// joined field `alias.f` lives in the unwound sub-document `__oq_j<i>`.
struct JoinedFields<'s> {
    base: ObjectFields<'s>,
    joins: Vec<(String, ObjectFields<'s>, String)>,
}

impl Resolve for JoinedFields<'_> {
    fn resolve(&self, field: &str) -> Result<(String, StorageType)> {
        if let Some((alias, rest)) = field.split_once('.')
            && let Some((_, fields, prefix)) = self.joins.iter().find(|(a, ..)| a == alias)
        {
            let (path, st) = fields.resolve_field(rest)?;
            return Ok((format!("{prefix}.{path}"), st));
        }
        self.base.resolve_field(field)
    }
}

/// An output: its name, the path it is read from, the key it is written
/// to, its storage type.
struct Out {
    name: String,
    path: String,
    key: String,
    storage: StorageType,
}

impl Out {
    fn column(self) -> OutputColumn {
        OutputColumn {
            name: self.name,
            key: self.key,
            storage: self.storage,
        }
    }
}

fn field_ref(path: &str) -> Bson {
    Bson::String(format!("${path}"))
}

/// `{$in: [{$type: "$p"}, ["missing", "null"]]}`: the field is NULL.
fn is_null_expr(path: &str) -> Document {
    doc! { "$in": [ { "$type": field_ref(path) }, { "$literal": ["missing", "null"] } ] }
}

/// Every field a filter names (conditions and `$field` comparands).
fn fields_of(f: &Filter, out: &mut Vec<String>) {
    match f {
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| fields_of(i, out)),
        Filter::Not(inner) => fields_of(inner, out),
        Filter::Condition(c) => {
            out.push(c.field.clone());
            match &c.op {
                Op::Eq(Operand::Field(o))
                | Op::Ne(Operand::Field(o))
                | Op::Gt(Operand::Field(o))
                | Op::Gte(Operand::Field(o))
                | Op::Lt(Operand::Field(o))
                | Op::Lte(Operand::Field(o)) => out.push(o.clone()),
                _ => {}
            }
        }
    }
}

/// Splits `where` of a join query into the conjuncts on base fields only
/// (run before the joins) and the rest (after them).
fn split_where(q: &Query) -> (Option<Filter>, Option<Filter>) {
    let Some(f) = &q.filter else {
        return (None, None);
    };
    if q.joins.is_empty() {
        return (Some(f.clone()), None);
    }
    let conjuncts: Vec<&Filter> = match f {
        Filter::And(items) => items.iter().collect(),
        other => vec![other],
    };
    let aliases: Vec<&str> = q.joins.iter().map(|j| j.alias.as_str()).collect();
    let (mut early, mut late) = (Vec::new(), Vec::new());
    for c in conjuncts {
        let mut names = Vec::new();
        fields_of(c, &mut names);
        let joined = names
            .iter()
            .any(|n| n.split_once('.').is_some_and(|(a, _)| aliases.contains(&a)));
        if joined {
            late.push(c.clone());
        } else {
            early.push(c.clone());
        }
    }
    let wrap = |mut v: Vec<Filter>| match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(Filter::And(v)),
    };
    (wrap(early), wrap(late))
}

/// The one equality of a join's `on`: (path in the row so far, path in the
/// joined collection).
fn join_keys(
    r: &dyn Resolve,
    alias: &str,
    joined: &ObjectFields<'_>,
    on: &Filter,
) -> Result<(String, String)> {
    let c = match on {
        Filter::Condition(c) => c,
        Filter::And(items) if items.len() == 1 => match &items[0] {
            Filter::Condition(c) => c,
            _ => return Err(unsupported("a join condition other than one equality")),
        },
        _ => return Err(unsupported("a join condition other than one equality")),
    };
    let Op::Eq(Operand::Field(other)) = &c.op else {
        return Err(unsupported("a join condition other than one equality"));
    };
    let own = |name: &str| {
        name.split_once('.')
            .filter(|(a, _)| *a == alias)
            .map(|(_, f)| f.to_owned())
    };
    let (local, foreign) = match (own(&c.field), own(other)) {
        (None, Some(f)) => (c.field.as_str(), f),
        (Some(f), None) => (other.as_str(), f),
        _ => {
            return Err(unsupported(
                "a join condition that is not between the row and the joined object",
            ));
        }
    };
    let (local_path, local_st) = r.resolve(local)?;
    let (foreign_path, foreign_st) = joined.resolve_field(&foreign)?;
    let keyable = |st: StorageType| !matches!(st, StorageType::Json | StorageType::Binary);
    if !keyable(local_st) || !keyable(foreign_st) {
        return Err(unsupported("joining on json or binary fields"));
    }
    Ok((local_path, foreign_path))
}

pub(super) fn find(c: &MongoCompiler<'_>, q: &Query) -> Result<Pipeline> {
    let object = q
        .object
        .as_deref()
        .ok_or_else(|| Error::plan("the query has no object"))?;
    let schema = c.schema(object)?;
    if q.nearest.is_some() {
        return Err(unsupported("vectors"));
    }
    if q.search.is_some() {
        return Err(unsupported("full_text"));
    }
    let mut fields = JoinedFields {
        base: ObjectFields(schema),
        joins: Vec::new(),
    };
    let mut stages = Vec::new();
    let (early, late) = split_where(q);
    if let Some(f) = &early {
        let m = filter::compile(&fields.base, f)?;
        if !m.is_empty() {
            stages.push(doc! { "$match": m });
        }
    }
    for (i, j) in q.joins.iter().enumerate() {
        let left = match j.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            other => return Err(unsupported(format!("{} joins", other.name()))),
        };
        let js = c.schema(&j.object)?;
        let joined = ObjectFields(js);
        let (local, foreign) = join_keys(&fields, &j.alias, &joined, &j.on)?;
        let prefix = format!("__oq_j{i}");
        stages.push(doc! { "$lookup": {
            "from": js.table(),
            "localField": local.as_str(),
            "foreignField": foreign.as_str(),
            "as": prefix.as_str(),
        } });
        // `$lookup` matches a NULL local key with NULL foreign keys; the
        // protocol's NULL never matches.
        stages.push(doc! { "$addFields": { prefix.as_str(): {
            "$cond": [ is_null_expr(&local), { "$literal": [] }, field_ref(&prefix) ]
        } } });
        stages.push(doc! { "$unwind": {
            "path": field_ref(&prefix),
            "preserveNullAndEmptyArrays": left,
        } });
        fields.joins.push((j.alias.clone(), joined, prefix));
    }
    if let Some(f) = &late {
        stages.push(doc! { "$match": filter::compile(&fields, f)? });
    }
    let joined = !q.joins.is_empty();
    let mut empty_input = None;
    // The outputs after the grouping stage, under their names.
    let outputs: Vec<OutputColumn> = if q.is_aggregate() {
        let (outs, empty) = group(&fields, q, &mut stages)?;
        empty_input = empty;
        outs
    } else if q.distinct {
        let outs = plain_outputs(&fields, q, joined)?;
        let mut id = Document::new();
        let mut project = doc! { "_id": 0 };
        for (i, o) in outs.iter().enumerate() {
            if o.storage == StorageType::Json {
                return Err(unsupported("distinct over json fields"));
            }
            id.insert(
                format!("k{i}"),
                doc! { "$ifNull": [ field_ref(&o.path), Bson::Null ] },
            );
            project.insert(o.key.clone(), field_ref(&format!("_id.k{i}")));
        }
        stages.push(doc! { "$group": { "_id": id } });
        stages.push(doc! { "$project": project });
        outs.into_iter().map(Out::column).collect()
    } else {
        Vec::new()
    };
    let grouped = q.is_aggregate() || q.distinct;

    // From here on, names resolve to fields or to outputs.
    let out_fields = OutputFields(&outputs);
    let resolver: &dyn Resolve = if grouped { &out_fields } else { &fields };
    if let Some(h) = &q.having {
        stages.push(doc! { "$match": filter::compile(&out_fields, h)? });
    }
    if let Some(cursor) = &q.cursor {
        let after = cursor_filter(cursor, &q.order_by)?;
        stages.push(doc! { "$match": filter::compile(resolver, &after)? });
    }
    sort(resolver, &q.order_by, &mut stages)?;
    if let Some(n) = q.offset.filter(|n| *n > 0) {
        stages.push(doc! { "$skip": to_i64(n)? });
    }
    let empty = q.limit == Some(0);
    if let Some(n) = q.limit.filter(|n| *n > 0) {
        stages.push(doc! { "$limit": to_i64(n)? });
    }

    // The final projection.
    let final_outs: Vec<Out> = if grouped {
        let names: Vec<String> = match &q.fields {
            Some(f) if q.is_aggregate() => f.clone(),
            _ => outputs.iter().map(|o| o.name.clone()).collect(),
        };
        names
            .into_iter()
            .map(|n| {
                let (path, storage) = out_fields.resolve(&n)?;
                Ok(Out {
                    name: n,
                    key: path.clone(),
                    path,
                    storage,
                })
            })
            .collect::<Result<_>>()?
    } else {
        plain_outputs(&fields, q, joined)?
    };
    let mut project = doc! { "_id": 0 };
    for o in &final_outs {
        project.insert(o.key.clone(), field_ref(&o.path));
    }
    stages.push(doc! { "$project": project });
    Ok(Pipeline {
        collection: schema.table().to_owned(),
        stages,
        columns: final_outs.into_iter().map(Out::column).collect(),
        empty,
        empty_input,
    })
}

fn to_i64(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::plan(format!("{n} is beyond MongoDB's int64 range")))
}

/// The projected fields, or every stored field of the base object and of
/// each joined object (`alias.field`). Written to positional keys `c<i>`
/// in a join query (`alias.field` is not a plain key), else to their names.
fn plain_outputs(fields: &JoinedFields<'_>, q: &Query, joined: bool) -> Result<Vec<Out>> {
    let stored = |s: &objectql_query_ast::ObjectSchema| -> Vec<String> {
        s.fields
            .iter()
            .filter(|(_, f)| f.storage_type().is_ok_and(|st| st != StorageType::Virtual))
            .map(|(n, _)| n.clone())
            .collect()
    };
    let names: Vec<String> = if let Some(f) = &q.fields {
        f.clone()
    } else {
        let mut names = stored(fields.base.0);
        for (alias, js, _) in &fields.joins {
            names.extend(stored(js.0).into_iter().map(|n| format!("{alias}.{n}")));
        }
        names
    };
    let pk = &fields.base.0.primary_key;
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let (path, storage) = fields.resolve(&name)?;
            let key = if joined {
                format!("c{i}")
            } else if is_plain_key(&name)
                || name == *pk && !name.starts_with('$') && !name.contains('.') && !name.is_empty()
            {
                name.clone()
            } else {
                return Err(unsupported(format!("output name `{name}`")));
            };
            Ok(Out {
                name,
                path,
                key,
                storage,
            })
        })
        .collect()
}

/// `$sort` (with NULL placement keys where the protocol's placement is not
/// MongoDB's), on resolved paths.
fn sort(r: &dyn Resolve, items: &[SortItem], stages: &mut Vec<Document>) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut helpers = Document::new();
    let mut keys = Document::new();
    for (i, item) in items.iter().enumerate() {
        let (path, st) = r.resolve(&item.field)?;
        if matches!(st, StorageType::Binary | StorageType::Json) {
            return Err(unsupported(format!("sorting on {} values", st.name())));
        }
        if keys.contains_key(&path) {
            continue;
        }
        let asc = item.order == SortOrder::Asc;
        // MongoDB puts NULLs first ascending and last descending.
        if item.nulls_first() != asc {
            let h = format!("__oq_n{i}");
            helpers.insert(h.clone(), is_null_expr(&path));
            keys.insert(h, if item.nulls_first() { -1 } else { 1 });
        }
        keys.insert(path, if asc { 1 } else { -1 });
    }
    if !helpers.is_empty() {
        stages.push(doc! { "$addFields": helpers });
    }
    stages.push(doc! { "$sort": keys });
    Ok(())
}

/// Rows strictly after the cursor position in the sort order, as a filter:
/// an OR over the sort keys — equal on the keys before, after on this one.
fn cursor_filter(cursor: &Cursor, items: &[SortItem]) -> Result<Filter> {
    let position = |field: &str| {
        cursor
            .after
            .get(field)
            .ok_or_else(|| Error::plan(format!("cursor lacks a value for sort key `{field}`")))
    };
    let mut branches = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let v = position(&item.field)?;
        let nulls_first = item.nulls_first();
        if v.is_null() && !nulls_first {
            continue;
        }
        let mut parts = Vec::new();
        for prev in items.iter().take(i) {
            let pv = position(&prev.field)?;
            parts.push(if pv.is_null() {
                Filter::cond(prev.field.clone(), Op::Null(true))
            } else {
                Filter::cond(prev.field.clone(), Op::Eq(Operand::Value(pv.clone())))
            });
        }
        let after = if v.is_null() {
            Filter::cond(item.field.clone(), Op::Null(false))
        } else {
            let o = Operand::Value(v.clone());
            let beyond = if item.order == SortOrder::Desc {
                Filter::cond(item.field.clone(), Op::Lt(o))
            } else {
                Filter::cond(item.field.clone(), Op::Gt(o))
            };
            if nulls_first {
                beyond
            } else {
                Filter::Or(vec![
                    beyond,
                    Filter::cond(item.field.clone(), Op::Null(true)),
                ])
            }
        };
        parts.push(after);
        branches.push(Filter::And(parts));
    }
    Ok(Filter::Or(branches))
}

/// `$group` + `$project` for groupBy and aggregations; returns the named
/// outputs and, without groupBy, the row of an empty input.
fn group(
    fields: &dyn Resolve,
    q: &Query,
    stages: &mut Vec<Document>,
) -> Result<(Vec<OutputColumn>, Option<Record>)> {
    let mut outputs = Vec::new();
    let mut id = Document::new();
    let mut acc = Document::new();
    let mut project = doc! { "_id": 0 };
    let check_name = |name: &str, outputs: &Vec<OutputColumn>| -> Result<()> {
        if !is_plain_key(name)
            || name.starts_with("__oq_")
            || outputs.iter().any(|o: &OutputColumn| o.name == name)
        {
            return Err(unsupported(format!("output name `{name}`")));
        }
        Ok(())
    };
    for (i, g) in q.group_by.iter().enumerate() {
        let (path, st) = fields.resolve(&g.field)?;
        let name = g.output_name().to_owned();
        check_name(&name, &outputs)?;
        let key = format!("k{i}");
        let (expr, out_st) = match g.granularity {
            None => {
                if st == StorageType::Json {
                    return Err(unsupported("grouping by json fields"));
                }
                (
                    Bson::Document(doc! { "$ifNull": [ field_ref(&path), Bson::Null ] }),
                    st,
                )
            }
            Some(gr) => (
                Bson::Document(bucket(&path, st, gr, g.timezone)?),
                StorageType::Text,
            ),
        };
        id.insert(key.clone(), expr);
        project.insert(name.clone(), field_ref(&format!("_id.{key}")));
        outputs.push(OutputColumn {
            key: name.clone(),
            name,
            storage: out_st,
        });
    }
    let mut empty_row = Record::new();
    for (i, a) in q.aggregations.iter().enumerate() {
        check_name(&a.alias, &outputs)?;
        let (value, out_st, empty) = aggregation(fields, a, i, &mut acc)?;
        project.insert(a.alias.clone(), value);
        empty_row.insert(a.alias.clone(), empty);
        outputs.push(OutputColumn {
            name: a.alias.clone(),
            key: a.alias.clone(),
            storage: out_st,
        });
    }
    let mut g = Document::new();
    g.insert(
        "_id",
        if q.group_by.is_empty() {
            Bson::Null
        } else {
            Bson::Document(id)
        },
    );
    g.extend(acc);
    stages.push(doc! { "$group": g });
    stages.push(doc! { "$project": project });
    let empty = q.group_by.is_empty().then_some(empty_row);
    Ok((outputs, empty))
}

/// One aggregation: accumulators added to `acc`; returns the projected
/// value, its storage type and its value over no rows.
fn aggregation(
    fields: &dyn Resolve,
    a: &Aggregation,
    i: usize,
    acc: &mut Document,
) -> Result<(Bson, StorageType, Value)> {
    if a.filter.is_some() {
        return Err(unsupported("aggregation filters"));
    }
    let function = match (a.function, a.distinct) {
        (AggFunction::Count, true) => AggFunction::CountDistinct,
        (f, false) | (f @ AggFunction::CountDistinct, true) => f,
        (f, true) => return Err(unsupported(format!("distinct `{}`", f.name()))),
    };
    let field = a.field.as_deref().map(|f| fields.resolve(f)).transpose()?;
    let name = format!("a{i}");
    let count_name = format!("c{i}");
    let value_ref = field_ref(&name);
    let need = || {
        field
            .clone()
            .ok_or_else(|| Error::plan(format!("`{}` needs a field", function.name())))
    };
    let non_null_count = |path: &str| {
        doc! { "$sum": { "$cond": [ is_null_expr(path), 0, 1 ] } }
    };
    Ok(match function {
        AggFunction::Count => match &field {
            None => {
                acc.insert(name, doc! { "$sum": 1 });
                (value_ref, StorageType::Integer, Value::Int(0))
            }
            Some((path, _)) => {
                acc.insert(name, non_null_count(path));
                (value_ref, StorageType::Integer, Value::Int(0))
            }
        },
        AggFunction::CountDistinct => {
            let (path, st) = need()?;
            if st == StorageType::Json {
                return Err(unsupported("count_distinct of json values"));
            }
            acc.insert(name, doc! { "$addToSet": field_ref(&path) });
            let size = doc! { "$size": { "$filter": {
                "input": { "$ifNull": [ value_ref, [] ] },
                "as": "v",
                "cond": { "$ne": [ "$$v", Bson::Null ] },
            } } };
            (Bson::Document(size), StorageType::Integer, Value::Int(0))
        }
        AggFunction::Sum => {
            let (path, st) = need()?;
            let summand = match st {
                // Added as decimal128: an int64 overflow is caught when the
                // result is decoded, not turned into a double.
                StorageType::Integer => Bson::Document(doc! { "$toDecimal": field_ref(&path) }),
                StorageType::Float | StorageType::Decimal { .. } => field_ref(&path),
                other => return Err(unsupported(format!("sum of {} values", other.name()))),
            };
            acc.insert(name, doc! { "$sum": summand });
            acc.insert(count_name.clone(), non_null_count(&path));
            let v = doc! { "$cond": [ { "$eq": [ field_ref(&count_name), 0 ] }, Bson::Null, value_ref ] };
            (Bson::Document(v), st, Value::Null)
        }
        AggFunction::Avg => {
            let (path, st) = need()?;
            if !matches!(st, StorageType::Integer | StorageType::Float) {
                return Err(unsupported(format!("avg of {} values", st.name())));
            }
            acc.insert(name, doc! { "$avg": field_ref(&path) });
            (value_ref, StorageType::Float, Value::Null)
        }
        AggFunction::Min | AggFunction::Max => {
            let (path, st) = need()?;
            if matches!(st, StorageType::Binary | StorageType::Json) {
                return Err(unsupported(format!("min/max of {} values", st.name())));
            }
            let op = if function == AggFunction::Min {
                "$min"
            } else {
                "$max"
            };
            acc.insert(name, doc! { op: field_ref(&path) });
            (value_ref, st, Value::Null)
        }
        other => {
            return Err(unsupported(format!(
                "`{}` (element order is not defined in a $group)",
                other.name()
            )));
        }
    })
}

/// A date bucket label, as the reference evaluator writes it.
fn bucket(path: &str, st: StorageType, g: DateGranularity, tz: Option<Tz>) -> Result<Document> {
    let (date, timezone) = match st {
        // A date is midnight UTC; it has no timezone.
        StorageType::Date => (field_ref(path), "UTC".to_owned()),
        StorageType::DateTime => {
            // Microseconds → a BSON date: floor to milliseconds exactly
            // (`$mod` keeps the dividend's sign, hence the double `$mod`).
            let us = field_ref(path);
            let rem = doc! { "$mod": [ { "$add": [ { "$mod": [ us.clone(), 1000_i64 ] }, 1000_i64 ] }, 1000_i64 ] };
            let ms = doc! { "$divide": [ { "$subtract": [ us, rem ] }, 1000_i64 ] };
            (
                Bson::Document(doc! { "$toDate": { "$toLong": ms } }),
                tz.map_or_else(|| "UTC".to_owned(), |t| t.name().to_owned()),
            )
        }
        other => {
            return Err(Error::plan(format!(
                "a date bucket needs a date or datetime field, not {}",
                other.name()
            )));
        }
    };
    let format = |f: &str| {
        doc! { "$dateToString": { "date": date.clone(), "format": f, "timezone": timezone.clone() } }
    };
    Ok(match g {
        DateGranularity::Day => format("%Y-%m-%d"),
        DateGranularity::Month => format("%Y-%m"),
        DateGranularity::Year => format("%Y"),
        DateGranularity::Week => format("%G-W%V"),
        DateGranularity::Quarter => {
            let month = doc! { "$month": { "date": date.clone(), "timezone": timezone.clone() } };
            let quarter = doc! { "$arrayElemAt": [
                { "$literal": ["-Q1", "-Q1", "-Q1", "-Q2", "-Q2", "-Q2", "-Q3", "-Q3", "-Q3", "-Q4", "-Q4", "-Q4"] },
                { "$subtract": [ month, 1 ] },
            ] };
            doc! { "$concat": [ format("%Y"), quarter ] }
        }
    })
}

/// The distinct non-null values of one field: `{v: value}` documents, ascending.
pub(super) fn distinct(
    c: &MongoCompiler<'_>,
    object: &str,
    field: &str,
    f: Option<&Filter>,
) -> Result<Pipeline> {
    let schema = c.schema(object)?;
    let fields = ObjectFields(schema);
    let (path, st) = fields.resolve_field(field)?;
    if matches!(st, StorageType::Binary | StorageType::Json) {
        return Err(unsupported(format!("distinct {} values", st.name())));
    }
    let mut stages = Vec::new();
    let mut m = match f {
        Some(f) => filter::compile(&fields, f)?,
        None => Document::new(),
    };
    let not_null = doc! { path.as_str(): { "$ne": Bson::Null } };
    m = if m.is_empty() {
        not_null
    } else {
        doc! { "$and": [ m, not_null ] }
    };
    stages.push(doc! { "$match": m });
    stages.push(doc! { "$group": { "_id": field_ref(&path) } });
    stages.push(doc! { "$sort": { "_id": 1 } });
    stages.push(doc! { "$project": { "_id": 0, "v": "$_id" } });
    Ok(Pipeline {
        collection: schema.table().to_owned(),
        stages,
        columns: vec![OutputColumn {
            name: "v".into(),
            key: "v".into(),
            storage: st,
        }],
        empty: false,
        empty_input: None,
    })
}

/// The rows an aggregate without groupBy returns when `$group` saw no
/// documents: its one empty-input row, through `having`, the cursor and
/// paging, with the reference evaluator.
pub fn empty_input_rows(query: &Query, row: &Record) -> Result<Vec<Record>> {
    let names: Vec<String> = row.keys().cloned().collect();
    let columns = Columns::new(names.clone());
    let values: Vec<Value> = row.values().cloned().collect();
    let mut q = Query::new(query.object.clone().unwrap_or_default());
    q.filter.clone_from(&query.having);
    q.cursor.clone_from(&query.cursor);
    q.order_by.clone_from(&query.order_by);
    q.limit = query.limit;
    q.offset = query.offset;
    q.fields.clone_from(&query.fields);
    let rel = execute(&columns, std::iter::once(values.as_slice()), &q)?;
    let out_names = rel.columns.names().to_vec();
    Ok(rel
        .rows
        .into_iter()
        .map(|r| out_names.iter().cloned().zip(r).collect())
        .collect())
}
