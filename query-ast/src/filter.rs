//! Filters: the `where` and `having` clauses, in both JSON forms.
//!
//! The object form (`{"age": {"$gt": 18}}`) and the array form
//! (`["age", ">", 18]`) parse to the same [`Filter`]; a filter always
//! serializes to the object form.

use serde_json::{Map, Value as Json, json};

use crate::error::{Path, Result};
use crate::value::{MAX_SAFE_JSON_INTEGER, Value};

/// How deep filters may nest. Deeper input is refused with a validation
/// error rather than risking the stack.
pub const MAX_FILTER_DEPTH: usize = 64;

/// The most conditions (leaves) one filter may hold. Wider filters are
/// refused with a validation error before anything is compiled: a flat
/// `$or` of 100,000 conditions is a denial of service, not a query.
pub const MAX_FILTER_CONDITIONS: usize = 10_000;

/// A boolean condition over the fields of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must hold; the empty `And` is TRUE.
    And(Vec<Filter>),
    /// At least one must hold; the empty `Or` is FALSE.
    Or(Vec<Filter>),
    /// NULL-safe negation: holds when the inner filter is not TRUE (false or
    /// unknown), so `$not` includes rows whose field is NULL.
    Not(Box<Filter>),
    /// A condition on one field.
    Condition(Condition),
}

/// One operator applied to one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The field.
    pub field: String,
    /// The operator and its comparand.
    pub op: Op,
}

/// The right-hand side of a comparison: a value or another field.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A value (after token resolution, a typed value).
    Value(Value),
    /// Another field of the same record (`{"$field": "other"}`), or of a
    /// joined object (`alias.field`).
    Field(String),
}

/// An operator with its comparand.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// `$eq`: equal (never matches NULL).
    Eq(Operand),
    /// `$ne`: not equal, NULL-safe (matches NULL).
    Ne(Operand),
    /// `$gt`.
    Gt(Operand),
    /// `$gte`.
    Gte(Operand),
    /// `$lt`.
    Lt(Operand),
    /// `$lte`.
    Lte(Operand),
    /// `$in`: equal to one of the values.
    In(Vec<Value>),
    /// `$nin`: equal to none of the values, NULL-safe (matches NULL).
    Nin(Vec<Value>),
    /// `$between`: inclusive range.
    Between(Value, Value),
    /// `$contains`: case-sensitive literal substring.
    Contains(String),
    /// `$notContains`: NULL-safe negation of `$contains`.
    NotContains(String),
    /// `$startsWith`: case-sensitive literal prefix.
    StartsWith(String),
    /// `$endsWith`: case-sensitive literal suffix.
    EndsWith(String),
    /// `$icontains`: substring with ASCII-only case folding.
    IContains(String),
    /// `$like`: whole-string pattern (`%`, `_`, backslash escapes), case-sensitive.
    Like(String),
    /// `$ilike`: `$like` with ASCII-only case folding.
    ILike(String),
    /// `$null`: `true` = IS NULL, `false` = IS NOT NULL.
    Null(bool),
    /// `$exists`: field present (on SQL, IS NOT NULL).
    Exists(bool),
}

impl Op {
    /// The operator's object-form name (`$gt`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Eq(_) => "$eq",
            Self::Ne(_) => "$ne",
            Self::Gt(_) => "$gt",
            Self::Gte(_) => "$gte",
            Self::Lt(_) => "$lt",
            Self::Lte(_) => "$lte",
            Self::In(_) => "$in",
            Self::Nin(_) => "$nin",
            Self::Between(..) => "$between",
            Self::Contains(_) => "$contains",
            Self::NotContains(_) => "$notContains",
            Self::StartsWith(_) => "$startsWith",
            Self::EndsWith(_) => "$endsWith",
            Self::IContains(_) => "$icontains",
            Self::Like(_) => "$like",
            Self::ILike(_) => "$ilike",
            Self::Null(_) => "$null",
            Self::Exists(_) => "$exists",
        }
    }
}

impl Filter {
    /// The filter that is always TRUE (`$and: []`).
    pub fn always() -> Self {
        Self::And(Vec::new())
    }

    /// The filter that is always FALSE (`$or: []`).
    pub fn never() -> Self {
        Self::Or(Vec::new())
    }

    /// A condition on `field`.
    pub fn cond(field: impl Into<String>, op: Op) -> Self {
        Self::Condition(Condition {
            field: field.into(),
            op,
        })
    }

    /// Both this and `other` (flattening nested `And`s).
    #[must_use]
    pub fn and(mut self, mut other: Filter) -> Self {
        if let Self::And(a) = &mut self {
            if let Self::And(b) = &mut other {
                a.append(b);
            } else {
                a.push(other);
            }
            return self;
        }
        Self::And(vec![self, other])
    }

    /// This or `other`.
    #[must_use]
    pub fn or(mut self, other: Filter) -> Self {
        if let Self::Or(a) = &mut self {
            a.push(other);
            return self;
        }
        Self::Or(vec![self, other])
    }

    /// NULL-safe negation.
    #[must_use]
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Self {
        Self::Not(Box::new(self))
    }

    /// Whether this is the always-TRUE filter.
    pub fn is_always(&self) -> bool {
        matches!(self, Self::And(v) if v.is_empty())
    }

    /// Visits every condition.
    pub fn for_each_condition<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        match self {
            Self::And(v) | Self::Or(v) => v.iter().for_each(|c| c.for_each_condition(f)),
            Self::Not(inner) => inner.for_each_condition(f),
            Self::Condition(c) => f(c),
        }
    }

    /// The same filter with every column it names (condition fields and
    /// `$field` operands) renamed by `rename`.
    pub fn renamed(&self, rename: &dyn Fn(&str) -> String) -> Filter {
        match self {
            Self::And(items) => Self::And(items.iter().map(|i| i.renamed(rename)).collect()),
            Self::Or(items) => Self::Or(items.iter().map(|i| i.renamed(rename)).collect()),
            Self::Not(inner) => Self::Not(Box::new(inner.renamed(rename))),
            Self::Condition(c) => {
                let field = |o: &Operand| match o {
                    Operand::Field(f) => Operand::Field(rename(f)),
                    Operand::Value(v) => Operand::Value(v.clone()),
                };
                let op = match &c.op {
                    Op::Eq(o) => Op::Eq(field(o)),
                    Op::Ne(o) => Op::Ne(field(o)),
                    Op::Gt(o) => Op::Gt(field(o)),
                    Op::Gte(o) => Op::Gte(field(o)),
                    Op::Lt(o) => Op::Lt(field(o)),
                    Op::Lte(o) => Op::Lte(field(o)),
                    other => other.clone(),
                };
                Self::Condition(Condition {
                    field: rename(&c.field),
                    op,
                })
            }
        }
    }

    /// Parses either JSON form.
    ///
    /// `path` is the path of the filter itself (`where`), used in errors.
    pub fn from_json(json: &Json, path: &Path) -> Result<Self> {
        parse(json, path, 0)
    }

    /// The canonical object form.
    pub fn to_json(&self) -> Json {
        match self {
            Self::And(v) => json!({ "$and": v.iter().map(Self::to_json).collect::<Vec<_>>() }),
            Self::Or(v) => json!({ "$or": v.iter().map(Self::to_json).collect::<Vec<_>>() }),
            Self::Not(inner) => json!({ "$not": inner.to_json() }),
            Self::Condition(c) => {
                let rhs = match &c.op {
                    Op::Eq(Operand::Value(v)) if is_shorthand_value(v) => v.to_json(),
                    op => {
                        let comparand = match op {
                            Op::Eq(o)
                            | Op::Ne(o)
                            | Op::Gt(o)
                            | Op::Gte(o)
                            | Op::Lt(o)
                            | Op::Lte(o) => operand_json(o),
                            Op::In(v) | Op::Nin(v) => {
                                Json::Array(v.iter().map(Value::to_json).collect())
                            }
                            Op::Between(a, b) => json!([a.to_json(), b.to_json()]),
                            Op::Contains(s)
                            | Op::NotContains(s)
                            | Op::StartsWith(s)
                            | Op::EndsWith(s)
                            | Op::IContains(s)
                            | Op::Like(s)
                            | Op::ILike(s) => Json::String(s.clone()),
                            Op::Null(b) | Op::Exists(b) => Json::Bool(*b),
                        };
                        let mut m = Map::new();
                        m.insert(op.name().to_owned(), comparand);
                        Json::Object(m)
                    }
                };
                let mut m = Map::new();
                m.insert(c.field.clone(), rhs);
                Json::Object(m)
            }
        }
    }
}

/// Values that `{field: value}` can carry without ambiguity.
fn is_shorthand_value(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Json(_) | Value::Array(_))
}

fn operand_json(o: &Operand) -> Json {
    match o {
        Operand::Value(v) => v.to_json(),
        Operand::Field(f) => json!({ "$field": f }),
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let json = Json::deserialize(d)?;
        Self::from_json(&json, &Path::root("where")).map_err(serde::de::Error::custom)
    }
}

fn parse(json: &Json, path: &Path, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(path.err(format!(
            "filter nests deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    match json {
        Json::Object(map) => parse_object(map, path, depth),
        Json::Array(items) => parse_array(items, path, depth),
        Json::Null => Ok(Filter::always()),
        other => Err(path.err(format!(
            "a filter must be an object or an array, found {}",
            json_type(other)
        ))),
    }
}

fn parse_object(map: &Map<String, Json>, path: &Path, depth: usize) -> Result<Filter> {
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        let p = path.key(key);
        let part = match key.as_str() {
            "$and" | "$or" => {
                let Json::Array(items) = value else {
                    return Err(p.err(format!("`{key}` takes an array of filters")));
                };
                let children = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse(item, &p.index(i), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                if key == "$and" {
                    Filter::And(children)
                } else {
                    Filter::Or(children)
                }
            }
            "$not" => Filter::Not(Box::new(parse(value, &p, depth + 1)?)),
            "$where" => return Err(p.err("`$where` is never accepted (it would run code)")),
            "$regex" => return Err(regex_error(&p, map.contains_key("$options"))),
            "$options" if map.contains_key("$regex") => {
                return Err(regex_error(&path.key("$regex"), true));
            }
            "$options" => return Err(options_error(&p)),
            k if k.starts_with('$') => {
                return Err(p.err(format!("unknown logical operator `{k}`")));
            }
            field => parse_field(field, value, &p)?,
        };
        parts.push(part);
    }
    Ok(if parts.len() == 1 {
        parts.pop().unwrap_or_else(Filter::always)
    } else {
        Filter::And(parts)
    })
}

const REGEX_INSTEAD: &str = "use `$contains`, `$startsWith`, `$endsWith`, `$icontains` or `$like`";

/// `$regex` is refused; `with_options`: it came with `$options`, and the
/// message says both are.
fn regex_error(p: &Path, with_options: bool) -> crate::Error {
    if with_options {
        p.err(format!(
            "`$regex` and `$options` are not supported: {REGEX_INSTEAD}"
        ))
    } else {
        p.err(format!("`$regex` is not supported: {REGEX_INSTEAD}"))
    }
}

/// `$options` sent without `$regex`.
fn options_error(p: &Path) -> crate::Error {
    p.err(format!(
        "`$options` is not supported (it modifies `$regex`, which is not supported either): {REGEX_INSTEAD}"
    ))
}

fn check_filter_field(field: &str, p: &Path) -> Result<()> {
    if field.is_empty() {
        return Err(p.err("empty field name"));
    }
    Ok(())
}

fn parse_field(field: &str, value: &Json, p: &Path) -> Result<Filter> {
    check_filter_field(field, p)?;
    match value {
        Json::Object(ops) if ops.contains_key("$field") && ops.len() == 1 => {
            Ok(Filter::cond(field, Op::Eq(parse_operand(value, p)?)))
        }
        Json::Object(ops) => {
            if ops.is_empty() {
                return Err(p.err("empty operator object `{}`: give at least one operator"));
            }
            if ops.contains_key("$regex") && ops.contains_key("$options") {
                return Err(regex_error(&p.key("$regex"), true));
            }
            let mut conds = Vec::with_capacity(ops.len());
            for (op, comparand) in ops {
                if !op.starts_with('$') {
                    return Err(p.err(format!(
                        "a comparand cannot be an object (found key `{op}`); to compare with a document use an operator"
                    )));
                }
                let op_path = p.key(op);
                conds.push(Filter::cond(field, parse_op(op, comparand, &op_path)?));
            }
            Ok(if conds.len() == 1 {
                conds.pop().unwrap_or_else(Filter::always)
            } else {
                Filter::And(conds)
            })
        }
        Json::Null => Ok(Filter::cond(field, Op::Null(true))),
        Json::Array(_) => Err(p.err(
            "an array is not a comparand here: use `{\"$in\": [...]}` to match one of several values",
        )),
        scalar => Ok(Filter::cond(field, Op::Eq(Operand::Value(scalar_value(scalar, p)?)))),
    }
}

/// Parses one operator (object-form name) with its comparand.
/// What the comparand slot of an operator takes, for error messages.
fn accepts(op: &str) -> &'static str {
    match op {
        "$eq" | "$ne" => {
            "a string, number, boolean, null or date (an ISO-8601 string), or `{\"$field\": name}`"
        }
        "$gt" | "$gte" | "$lt" | "$lte" => {
            "a string, number, boolean or date (an ISO-8601 string), or `{\"$field\": name}`"
        }
        "$in" | "$nin" => "an array of strings, numbers, booleans, nulls or dates",
        "$between" => "an array of two bounds `[min, max]`: strings, numbers, booleans or dates",
        "$null" | "$exists" => "true or false",
        _ => "a string",
    }
}

/// Checks the JSON shape of `op`'s comparand before it is parsed, so a
/// wrong shape names the operator and what it takes: "`$gt` takes a
/// string, number, boolean or date …; got an object".
fn check_shape(op: &str, c: &Json, p: &Path) -> Result<()> {
    let field_ref = matches!(c, Json::Object(m) if m.len() == 1 && m.contains_key("$field"));
    let ok = match op {
        "$eq" | "$ne" => !matches!(c, Json::Array(_) | Json::Object(_)) || field_ref,
        "$gt" | "$gte" | "$lt" | "$lte" => {
            matches!(c, Json::Bool(_) | Json::Number(_) | Json::String(_)) || field_ref
        }
        "$in" | "$nin" | "$between" => matches!(c, Json::Array(_)),
        "$null" | "$exists" => matches!(c, Json::Bool(_)),
        "$contains" | "$notContains" | "$notcontains" | "$startsWith" | "$startswith"
        | "$endsWith" | "$endswith" | "$icontains" | "$like" | "$ilike" => {
            matches!(c, Json::String(_))
        }
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let mut message = format!("`{op}` takes {}; got {}", accepts(op), json_type(c));
    if c.is_null() && matches!(op, "$gt" | "$gte" | "$lt" | "$lte") {
        message.push_str(" (nothing is greater or smaller than null: use `$null`)");
    }
    Err(p.err(message))
}

fn parse_op(op: &str, c: &Json, p: &Path) -> Result<Op> {
    check_shape(op, c, p)?;
    Ok(match op {
        "$eq" => match parse_operand(c, p)? {
            Operand::Value(Value::Null) => Op::Null(true),
            o => Op::Eq(o),
        },
        "$ne" => match parse_operand(c, p)? {
            Operand::Value(Value::Null) => Op::Null(false),
            o => Op::Ne(o),
        },
        "$gt" => Op::Gt(parse_operand(c, p)?),
        "$gte" => Op::Gte(parse_operand(c, p)?),
        "$lt" => Op::Lt(parse_operand(c, p)?),
        "$lte" => Op::Lte(parse_operand(c, p)?),
        "$in" => Op::In(parse_list(op, c, p)?),
        "$nin" => Op::Nin(parse_list(op, c, p)?),
        "$between" => {
            let list = parse_list(op, c, p)?;
            let [low, high]: [Value; 2] = list
                .try_into()
                .map_err(|_| p.err("`$between` takes exactly two bounds `[min, max]`"))?;
            if low.is_null() || high.is_null() {
                return Err(p.err("`$between` bounds cannot be null"));
            }
            Op::Between(low, high)
        }
        "$contains" => Op::Contains(parse_text(c, p)?),
        "$notContains" | "$notcontains" => Op::NotContains(parse_text(c, p)?),
        "$startsWith" | "$startswith" => Op::StartsWith(parse_text(c, p)?),
        "$endsWith" | "$endswith" => Op::EndsWith(parse_text(c, p)?),
        "$icontains" => Op::IContains(parse_text(c, p)?),
        "$like" => Op::Like(parse_text(c, p)?),
        "$ilike" => Op::ILike(parse_text(c, p)?),
        "$null" => Op::Null(parse_bool(c, p)?),
        "$exists" => Op::Exists(parse_bool(c, p)?),
        "$regex" => return Err(regex_error(p, false)),
        "$options" => return Err(options_error(p)),
        "$where" => return Err(p.err("`$where` is never accepted (it would run code)")),
        other => return Err(p.err(format!("unknown operator `{other}`"))),
    })
}

fn parse_bool(c: &Json, p: &Path) -> Result<bool> {
    c.as_bool()
        .ok_or_else(|| p.err(format!("expected true or false, found {}", json_type(c))))
}

fn parse_text(c: &Json, p: &Path) -> Result<String> {
    match c {
        Json::String(s) => Ok(s.clone()),
        other => Err(p.err(format!("expected a string, found {}", json_type(other)))),
    }
}

fn parse_operand(c: &Json, p: &Path) -> Result<Operand> {
    if let Json::Object(m) = c
        && let (1, Some(f)) = (m.len(), m.get("$field"))
    {
        return match f {
            Json::String(name) if !name.is_empty() => Ok(Operand::Field(name.clone())),
            _ => Err(p.key("$field").err("`$field` takes a field name")),
        };
    }
    Ok(Operand::Value(scalar_value(c, p)?))
}

fn parse_list(op: &str, c: &Json, p: &Path) -> Result<Vec<Value>> {
    let Json::Array(items) = c else {
        return Err(p.err(format!(
            "`{op}` takes {}; got {}",
            accepts(op),
            json_type(c)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = p.index(i);
            match item {
                Json::Object(m) if m.contains_key("$field") => {
                    Err(ip.err("`$field` references are not allowed in a list"))
                }
                Json::Object(_) | Json::Array(_) => Err(ip.err(format!(
                    "`{op}` takes {}; got {} in the list",
                    accepts(op),
                    json_type(item)
                ))),
                _ => scalar_value(item, &ip),
            }
        })
        .collect()
}

/// A scalar comparand: null, boolean, number (integers within ±2^53), string.
fn scalar_value(c: &Json, p: &Path) -> Result<Value> {
    match c {
        Json::Object(_) => Err(p.err("a comparand cannot be an object")),
        Json::Array(_) => Err(p.err("a comparand cannot be an array here")),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                if !(-MAX_SAFE_JSON_INTEGER..=MAX_SAFE_JSON_INTEGER).contains(&i) {
                    return Err(p.err(format!(
                        "integer {i} is beyond ±2^53 and cannot be carried exactly in JSON; pass it as a string"
                    )));
                }
                Ok(Value::Int(i))
            } else if n.is_u64() {
                Err(p.err(format!(
                    "integer {n} is beyond ±2^53 and cannot be carried exactly in JSON"
                )))
            } else {
                Value::from_json(c, p)
            }
        }
        other => Value::from_json(other, p),
    }
}

fn json_type(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn parse_array(items: &[Json], path: &Path, depth: usize) -> Result<Filter> {
    if let Some(Json::String(head)) = items.first() {
        let lower = head.to_ascii_lowercase();
        let children = |start: usize| -> Result<Vec<Filter>> {
            items[start..]
                .iter()
                .enumerate()
                .map(|(i, item)| parse(item, &path.index(i + start), depth + 1))
                .collect()
        };
        match lower.as_str() {
            "and" => return Ok(Filter::And(children(1)?)),
            "or" => return Ok(Filter::Or(children(1)?)),
            "not" => {
                let mut c = children(1)?;
                return if c.len() == 1 {
                    Ok(Filter::Not(Box::new(c.remove(0))))
                } else {
                    Err(path.err("`not` takes exactly one filter"))
                };
            }
            _ => return parse_triplet(items, path),
        }
    }
    // A list of filters with no keyword: implicit AND.
    let children = items
        .iter()
        .enumerate()
        .map(|(i, item)| parse(item, &path.index(i), depth + 1))
        .collect::<Result<Vec<_>>>()?;
    Ok(Filter::And(children))
}

fn parse_triplet(items: &[Json], path: &Path) -> Result<Filter> {
    let field = items.first().and_then(Json::as_str).unwrap_or_default();
    check_filter_field(field, &path.index(0))?;
    let Some(op) = items.get(1).and_then(Json::as_str) else {
        return Err(path
            .index(1)
            .err("expected an operator string in `[field, op, value]`"));
    };
    let vp = path.index(2);
    let value = items.get(2);
    if items.len() > 3 {
        return Err(path.err("a comparison has the form `[field, operator, value]`"));
    }
    let need = |v: Option<&Json>| -> Result<Json> {
        v.cloned().ok_or_else(|| {
            path.err(format!(
                "operator `{op}` needs a value: `[field, \"{op}\", value]`"
            ))
        })
    };
    let lower = op.to_ascii_lowercase();
    let null_op = |is_null: bool| -> Result<Op> {
        match value {
            None => Ok(Op::Null(is_null)),
            Some(Json::Bool(b)) => Ok(Op::Null(if *b { is_null } else { !is_null })),
            Some(other) => Err(vp.err(format!(
                "`{op}` takes no value or a boolean, found {}",
                json_type(other)
            ))),
        }
    };
    let canonical = match lower.as_str() {
        "=" | "==" | "equals" | "eq" => "$eq",
        "!=" | "<>" | "not_equals" | "ne" => "$ne",
        ">" | "gt" | "greater_than" | "after" => "$gt",
        ">=" | "gte" | "greater_than_or_equal" => "$gte",
        "<" | "lt" | "less_than" | "before" => "$lt",
        "<=" | "lte" | "less_than_or_equal" => "$lte",
        "in" => "$in",
        "nin" | "not_in" => "$nin",
        "contains" => "$contains",
        "notcontains" | "not_contains" => "$notContains",
        "icontains" => "$icontains",
        "like" => "$like",
        "ilike" => "$ilike",
        "startswith" | "starts_with" => "$startsWith",
        "endswith" | "ends_with" => "$endsWith",
        "between" => "$between",
        "is_null" | "isnull" | "is_empty" => {
            return Ok(Filter::cond(field, null_op(true)?));
        }
        "is_not_null" | "is_not_empty" => {
            return Ok(Filter::cond(field, null_op(false)?));
        }
        "exists" => "$exists",
        "regex" => return Err(regex_error(&path.index(1), false)),
        _ => return Err(path.index(1).err(format!("unknown operator `{op}`"))),
    };
    let v = need(value)?;
    Ok(Filter::cond(field, parse_op(canonical, &v, &vp)?))
}

/// Dropping a filter takes constant stack, however deep it nests: a
/// builder filter 10,000 levels deep once aborted the process when it was
/// dropped (each level is a recursive call of the compiler's drop glue).
/// Children are moved onto a heap stack and dropped one by one, each
/// already emptied of its own children.
impl Drop for Filter {
    fn drop(&mut self) {
        let mut pending: Vec<Filter> = match self {
            Filter::And(v) | Filter::Or(v) if v.iter().any(Filter::has_children) => {
                std::mem::take(v)
            }
            Filter::Not(inner) if inner.has_children() => {
                vec![std::mem::replace(&mut **inner, Filter::And(Vec::new()))]
            }
            _ => return,
        };
        while let Some(mut f) = pending.pop() {
            match &mut f {
                Filter::And(v) | Filter::Or(v) => pending.append(v),
                Filter::Not(inner) => {
                    pending.push(std::mem::replace(&mut **inner, Filter::And(Vec::new())));
                }
                Filter::Condition(_) => {}
            }
            // `f` is dropped here with no children left.
        }
    }
}

impl Filter {
    /// Checks, without recursion (so at any depth), that this filter nests
    /// at most [`MAX_FILTER_DEPTH`] levels and holds at most
    /// [`MAX_FILTER_CONDITIONS`] conditions; the error is at `path`.
    pub fn check_size(&self, path: &Path) -> Result<()> {
        let mut conditions = 0usize;
        let mut pending: Vec<(&Filter, usize)> = vec![(self, 0)];
        while let Some((f, depth)) = pending.pop() {
            if depth > MAX_FILTER_DEPTH {
                return Err(path.err(format!(
                    "filter nests deeper than {MAX_FILTER_DEPTH} levels"
                )));
            }
            match f {
                Filter::And(v) | Filter::Or(v) => pending.extend(v.iter().map(|c| (c, depth + 1))),
                Filter::Not(inner) => pending.push((inner, depth + 1)),
                Filter::Condition(_) => {
                    conditions += 1;
                    if conditions > MAX_FILTER_CONDITIONS {
                        return Err(path.err(format!(
                            "filter holds more than {MAX_FILTER_CONDITIONS} conditions"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    fn has_children(&self) -> bool {
        match self {
            Filter::And(v) | Filter::Or(v) => !v.is_empty(),
            Filter::Not(_) => true,
            Filter::Condition(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)]
    fn p(j: Json) -> Result<Filter> {
        Filter::from_json(&j, &Path::root("where"))
    }

    #[test]
    fn array_and_object_forms_agree() {
        let a = p(json!(["and", ["age", ">", 18], ["name", "contains", "a"]])).unwrap();
        let o = p(json!({"$and": [{"age": {"$gt": 18}}, {"name": {"$contains": "a"}}]})).unwrap();
        assert_eq!(a, o);
    }

    #[test]
    fn errors_carry_paths() {
        let e = p(json!({"$or": [{"a": 1}, {"age": {"$gt": {"x": 1}}}]})).unwrap_err();
        assert_eq!(e.path(), Some("where.$or[1].age.$gt"));
        // Wrong shapes name the operator and what it takes.
        for (filter, needle) in [
            (
                json!({"a": {"$gt": {"x": 1}}}),
                "`$gt` takes a string, number, boolean or date",
            ),
            (json!({"a": {"$gt": null}}), "use `$null`"),
            (
                json!({"a": {"$eq": [1]}}),
                "`$eq` takes a string, number, boolean, null or date",
            ),
            (json!({"a": {"$in": 3}}), "`$in` takes an array of strings"),
            (
                json!({"a": {"$in": [{"x": 1}]}}),
                "got an object in the list",
            ),
            (
                json!({"a": {"$contains": 3}}),
                "`$contains` takes a string; got a number",
            ),
            (
                json!({"a": {"$null": "yes"}}),
                "`$null` takes true or false; got a string",
            ),
            (
                json!({"a": {"$between": {"min": 1}}}),
                "`$between` takes an array of two bounds",
            ),
        ] {
            let e = p(filter.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{filter}: {e}");
            assert!(e.contains("got"), "{filter}: {e}");
        }
        // `$regex` with `$options` names both; `$options` alone names itself.
        for filter in [
            json!({"a": {"$regex": "x", "$options": "i"}}),
            json!({"$regex": "x", "$options": "i"}),
        ] {
            let e = p(filter.clone()).unwrap_err().to_string();
            assert!(e.contains("`$regex` and `$options`"), "{filter}: {e}");
        }
        for filter in [json!({"a": {"$options": "i"}}), json!({"$options": "i"})] {
            let e = p(filter.clone()).unwrap_err().to_string();
            assert!(e.contains("`$options` is not supported"), "{filter}: {e}");
        }
        let e = p(json!({"a": {"$regex": "x"}})).unwrap_err();
        assert!(e.to_string().contains("$like"));
        let e = p(json!({"a": {}})).unwrap_err();
        assert_eq!(e.path(), Some("where.a"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut j = json!({"a": 1});
        for _ in 0..200 {
            j = json!({ "$not": j });
        }
        let e = p(j).unwrap_err();
        assert!(e.to_string().contains("deeper"));
        // 10,000 levels of JSON text stop at the parser's recursion limit.
        let text = format!(
            "{}{{\"a\":1}}{}",
            "{\"$not\":".repeat(10_000),
            "}".repeat(10_000)
        );
        let e = crate::Query::parse(&format!("{{\"object\":\"t\",\"where\":{text}}}")).unwrap_err();
        assert!(matches!(e, crate::Error::Json { .. }), "{e}");
    }

    #[test]
    fn big_integers_refused() {
        let e = p(json!({"a": {"$gt": 9_007_199_254_740_993_i64}})).unwrap_err();
        assert!(e.to_string().contains("2^53"));
    }

    #[test]
    fn canonical_json_round_trips() {
        for j in [
            json!({"a": 1}),
            json!({"a": {"$ne": "x"}}),
            json!({"$and": [{"a": {"$gt": 1}}, {"b": {"$in": [1, 2]}}]}),
            json!({"$not": {"a": {"$null": true}}}),
            json!({"a": {"$gte": {"$field": "b"}}}),
        ] {
            assert_eq!(p(j.clone()).unwrap().to_json(), j);
        }
    }
}
