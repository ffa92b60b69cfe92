//! The query: what to read, how to filter, sort, page, aggregate and expand.

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

#[cfg(test)]
use crate::error::Error;
use crate::error::{Path, Result};
use crate::filter::Filter;
use crate::nearest::Nearest;
use crate::value::Value;

/// How deep `expand` may nest.
pub const MAX_EXPAND_DEPTH: usize = 3;

/// A backend-neutral query (PROTOCOL.md §Query).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Query {
    /// Target object. Required at the engine level; absent inside `expand`.
    pub object: Option<String>,
    /// Projection; `None` = all fields.
    pub fields: Option<Vec<String>>,
    /// The `where` clause.
    pub filter: Option<Filter>,
    /// Full-text search.
    pub search: Option<SearchSpec>,
    /// Sort keys, in priority order.
    pub order_by: Vec<SortItem>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Skip this many rows.
    pub offset: Option<u64>,
    /// Keyset pagination: rows strictly after this position.
    pub cursor: Option<Cursor>,
    /// Aggregations (with or without `group_by`).
    pub aggregations: Vec<Aggregation>,
    /// Grouping keys.
    pub group_by: Vec<GroupBy>,
    /// Filter over group keys and aggregation aliases.
    pub having: Option<Filter>,
    /// Distinct rows of the projection.
    pub distinct: bool,
    /// Related records to load, by lookup field.
    pub expand: IndexMap<String, Query>,
    /// Joins.
    pub joins: Vec<Join>,
    /// Nearest-neighbour search over a vector field (ext; see [`Nearest`]).
    pub nearest: Option<Nearest>,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Where NULLs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullsOrder {
    /// Before every value.
    First,
    /// After every value.
    Last,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortItem {
    /// The field (or group key / aggregation alias in aggregate queries).
    pub field: String,
    /// Direction.
    pub order: SortOrder,
    /// Explicit NULL placement; default: NULL is the smallest value.
    pub nulls: Option<NullsOrder>,
}

impl SortItem {
    /// Ascending on `field`.
    pub fn asc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            order: SortOrder::Asc,
            nulls: None,
        }
    }

    /// Descending on `field`.
    pub fn desc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            order: SortOrder::Desc,
            nulls: None,
        }
    }

    /// Whether NULLs come first under this item (NULL is the smallest value
    /// unless `nulls` says otherwise).
    pub fn nulls_first(&self) -> bool {
        match self.nulls {
            Some(NullsOrder::First) => true,
            Some(NullsOrder::Last) => false,
            None => self.order == SortOrder::Asc,
        }
    }
}

/// A keyset position: the sort-key (and primary-key) values of the last row seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Field → value of the last row seen.
    pub after: IndexMap<String, Value>,
}

impl Cursor {
    /// Encodes the cursor as an opaque token (base64 of its JSON).
    pub fn to_token(&self) -> String {
        use base64::Engine as _;
        let map: Map<String, Json> = self
            .after
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Json::Object(map).to_string())
    }

    /// Decodes an opaque token made by [`Cursor::to_token`].
    pub fn from_token(token: &str, path: &Path) -> Result<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| path.err("cursor token is not valid base64"))?;
        let json: Json =
            serde_json::from_slice(&bytes).map_err(|_| path.err("cursor token is not valid"))?;
        Self::from_after(&json, path)
    }

    fn from_after(json: &Json, path: &Path) -> Result<Self> {
        let Json::Object(m) = json else {
            return Err(path.err("cursor `after` must be an object of field → value"));
        };
        let after = m
            .iter()
            .map(|(k, v)| Ok((k.clone(), Value::from_json(v, &path.key(k))?)))
            .collect::<Result<_>>()?;
        Ok(Self { after })
    }
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AggFunction {
    /// `count` (rows, or non-null values of a field).
    Count,
    /// `sum`.
    Sum,
    /// `avg` (floating point).
    Avg,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `count_distinct` (NULLs ignored).
    CountDistinct,
    /// `array_agg` (ext).
    ArrayAgg,
    /// `string_agg` (ext).
    StringAgg,
}

impl AggFunction {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::CountDistinct => "count_distinct",
            Self::ArrayAgg => "array_agg",
            Self::StringAgg => "string_agg",
        }
    }

    fn parse(s: &str, path: &Path) -> Result<Self> {
        Ok(match s {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "count_distinct" => Self::CountDistinct,
            "array_agg" => Self::ArrayAgg,
            "string_agg" => Self::StringAgg,
            other => return Err(path.err(format!("unknown aggregate function `{other}`"))),
        })
    }
}

/// One aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    /// The function.
    pub function: AggFunction,
    /// The field; `None` only for `count` (count rows).
    pub field: Option<String>,
    /// The output name.
    pub alias: String,
    /// Aggregate distinct values only.
    pub distinct: bool,
    /// Only rows matching this filter are aggregated (SQL `FILTER (WHERE …)`).
    pub filter: Option<Filter>,
    /// Separator for `string_agg` (default `,`).
    pub separator: Option<String>,
}

impl Aggregation {
    /// `function(field) AS alias`.
    pub fn new(function: AggFunction, field: Option<&str>, alias: impl Into<String>) -> Self {
        Self {
            function,
            field: field.map(str::to_owned),
            alias: alias.into(),
            distinct: false,
            filter: None,
            separator: None,
        }
    }
}

/// Date bucket sizes for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateGranularity {
    /// `YYYY-MM-DD`.
    Day,
    /// `YYYY-Www` (ISO week).
    Week,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-Qn`.
    Quarter,
    /// `YYYY`.
    Year,
}

impl DateGranularity {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }
}

/// One grouping key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBy {
    /// The field.
    pub field: String,
    /// Bucket a date/datetime field.
    pub granularity: Option<DateGranularity>,
    /// The output name (default: the field name).
    pub alias: Option<String>,
    /// The timezone in which datetime buckets are computed (ext). Validation
    /// fills it from the session's context; UTC when neither gives one.
    pub timezone: Option<chrono_tz::Tz>,
}

impl GroupBy {
    /// The output column name.
    pub fn output_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.field)
    }
}

/// Join type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinType {
    /// Inner join.
    #[default]
    Inner,
    /// Left outer join.
    Left,
    /// Right outer join.
    Right,
    /// Full outer join.
    Full,
}

impl JoinType {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inner => "inner",
            Self::Left => "left",
            Self::Right => "right",
            Self::Full => "full",
        }
    }
}

/// A join with another object (ext).
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    /// Join type.
    pub join_type: JoinType,
    /// The joined object.
    pub object: String,
    /// Its alias; fields of the join are referred to as `alias.field`.
    pub alias: String,
    /// The join condition, with `$field` references.
    pub on: Filter,
}

/// Full-text search options.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// The query string.
    pub query: String,
    /// Searchable fields to search (default: all searchable fields).
    pub fields: Option<Vec<String>>,
    /// Fuzzy term matching.
    pub fuzzy: bool,
    /// How terms combine.
    pub operator: Option<String>,
    /// Per-field boosts.
    pub boost: IndexMap<String, f64>,
    /// Drop hits scoring below this.
    pub min_score: Option<f64>,
    /// Analyzer language.
    pub language: Option<String>,
    /// Return highlighted snippets.
    pub highlight: bool,
}

/// Dropping a query takes constant stack, however deep its `expand`
/// sub-queries nest (a builder can nest them past any parse limit; the
/// validator refuses such a query, and the caller then drops it): nested
/// queries are moved onto a heap stack and dropped one by one, each
/// already emptied of its own.
impl Drop for Query {
    fn drop(&mut self) {
        if self.expand.values().all(|q| q.expand.is_empty()) {
            return;
        }
        let mut pending: Vec<Query> = std::mem::take(&mut self.expand).into_values().collect();
        while let Some(mut q) = pending.pop() {
            pending.extend(std::mem::take(&mut q.expand).into_values());
        }
    }
}

impl Query {
    /// A query over `object`.
    pub fn new(object: impl Into<String>) -> Self {
        let mut q = Self::default();
        q.object = Some(object.into());
        q
    }

    /// Whether this is an aggregate query (aggregations or groupBy).
    pub fn is_aggregate(&self) -> bool {
        !self.aggregations.is_empty() || !self.group_by.is_empty()
    }

    /// Parses JSON text (PROTOCOL.md wire format).
    pub fn parse(text: &str) -> Result<Self> {
        let json: Json = serde_json::from_str(text)?;
        Self::from_json(&json)
    }

    /// Parses a JSON value.
    pub fn from_json(json: &Json) -> Result<Self> {
        parse_query(json, &Path::empty(), 0)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        if let Some(o) = &self.object {
            m.insert("object".into(), json!(o));
        }
        if let Some(f) = &self.fields {
            m.insert("fields".into(), json!(f));
        }
        if let Some(f) = &self.filter {
            m.insert("where".into(), f.to_json());
        }
        if let Some(s) = &self.search {
            m.insert("search".into(), search_json(s));
        }
        if !self.order_by.is_empty() {
            let items: Vec<Json> = self
                .order_by
                .iter()
                .map(|s| {
                    let mut o = Map::new();
                    o.insert("field".into(), json!(s.field));
                    o.insert("order".into(), json!(s.order));
                    if let Some(n) = s.nulls {
                        o.insert("nulls".into(), json!(n));
                    }
                    Json::Object(o)
                })
                .collect();
            m.insert("orderBy".into(), Json::Array(items));
        }
        if let Some(l) = self.limit {
            m.insert("limit".into(), json!(l));
        }
        if let Some(o) = self.offset {
            m.insert("offset".into(), json!(o));
        }
        if let Some(c) = &self.cursor {
            let after: Map<String, Json> = c
                .after
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            m.insert("cursor".into(), json!({ "after": after }));
        }
        if !self.aggregations.is_empty() {
            let items = self
                .aggregations
                .iter()
                .map(|a| {
                    let mut o = Map::new();
                    o.insert("function".into(), json!(a.function.name()));
                    if let Some(f) = &a.field {
                        o.insert("field".into(), json!(f));
                    }
                    o.insert("alias".into(), json!(a.alias));
                    if a.distinct {
                        o.insert("distinct".into(), json!(true));
                    }
                    if let Some(f) = &a.filter {
                        o.insert("filter".into(), f.to_json());
                    }
                    if let Some(s) = &a.separator {
                        o.insert("separator".into(), json!(s));
                    }
                    Json::Object(o)
                })
                .collect();
            m.insert("aggregations".into(), Json::Array(items));
        }
        if !self.group_by.is_empty() {
            let items = self
                .group_by
                .iter()
                .map(|g| {
                    if let (None, None, None) = (&g.granularity, &g.alias, &g.timezone) {
                        json!(g.field)
                    } else {
                        let mut o = Map::new();
                        o.insert("field".into(), json!(g.field));
                        if let Some(d) = g.granularity {
                            o.insert("dateGranularity".into(), json!(d.name()));
                        }
                        if let Some(a) = &g.alias {
                            o.insert("alias".into(), json!(a));
                        }
                        if let Some(tz) = &g.timezone {
                            o.insert("timezone".into(), json!(tz.name()));
                        }
                        Json::Object(o)
                    }
                })
                .collect();
            m.insert("groupBy".into(), Json::Array(items));
        }
        if let Some(h) = &self.having {
            m.insert("having".into(), h.to_json());
        }
        if self.distinct {
            m.insert("distinct".into(), json!(true));
        }
        if !self.expand.is_empty() {
            let e: Map<String, Json> = self
                .expand
                .iter()
                .map(|(k, q)| (k.clone(), q.to_json()))
                .collect();
            m.insert("expand".into(), Json::Object(e));
        }
        if !self.joins.is_empty() {
            let items = self
                .joins
                .iter()
                .map(|j| {
                    json!({"type": j.join_type.name(), "object": j.object, "alias": j.alias, "on": j.on.to_json()})
                })
                .collect();
            m.insert("joins".into(), Json::Array(items));
        }
        if let Some(n) = &self.nearest {
            m.insert("nearest".into(), n.to_json());
        }
        Json::Object(m)
    }
}

fn search_json(s: &SearchSpec) -> Json {
    let mut o = Map::new();
    o.insert("query".into(), json!(s.query));
    if let Some(f) = &s.fields {
        o.insert("fields".into(), json!(f));
    }
    if s.fuzzy {
        o.insert("fuzzy".into(), json!(true));
    }
    if let Some(op) = &s.operator {
        o.insert("operator".into(), json!(op));
    }
    if !s.boost.is_empty() {
        o.insert("boost".into(), json!(s.boost));
    }
    if let Some(m) = s.min_score {
        o.insert("minScore".into(), json!(m));
    }
    if let Some(l) = &s.language {
        o.insert("language".into(), json!(l));
    }
    if s.highlight {
        o.insert("highlight".into(), json!(true));
    }
    Json::Object(o)
}

impl serde::Serialize for Query {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Query {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let json = Json::deserialize(d)?;
        Self::from_json(&json).map_err(serde::de::Error::custom)
    }
}

fn parse_query(json: &Json, path: &Path, expand_depth: usize) -> Result<Query> {
    let Json::Object(map) = json else {
        return Err(path.err("a query must be a JSON object"));
    };
    let mut q = Query::default();
    let mut search_fields: Option<Vec<String>> = None;
    for (key, value) in map {
        let p = path.key(key);
        match key.as_str() {
            "object" => q.object = Some(string(value, &p)?),
            "fields" => q.fields = Some(string_list(value, &p)?),
            "where" | "filters" => {
                if q.filter.is_some() {
                    return Err(p.err("both `where` and `filters` given; use one"));
                }
                q.filter = Some(Filter::from_json(value, &p)?);
            }
            "search" => q.search = Some(parse_search(value, &p)?),
            "searchFields" => search_fields = Some(string_list(value, &p)?),
            "orderBy" | "sort" => q.order_by = parse_order_by(value, &p)?,
            "limit" | "top" => {
                if q.limit.is_some() {
                    return Err(p.err("both `limit` and `top` given; use one"));
                }
                q.limit = Some(non_negative(value, &p)?);
            }
            "offset" | "skip" => q.offset = Some(non_negative(value, &p)?),
            "cursor" => q.cursor = Some(parse_cursor(value, &p)?),
            "aggregations" => q.aggregations = parse_aggregations(value, &p)?,
            "groupBy" => q.group_by = parse_group_by(value, &p)?,
            "having" => q.having = Some(Filter::from_json(value, &p)?),
            "distinct" => {
                q.distinct = value
                    .as_bool()
                    .ok_or_else(|| p.err("`distinct` must be true or false"))?;
            }
            "expand" => {
                let Json::Object(e) = value else {
                    return Err(p.err("`expand` must be an object of lookupField → query"));
                };
                if expand_depth >= MAX_EXPAND_DEPTH {
                    return Err(p.err(format!(
                        "`expand` nests deeper than {MAX_EXPAND_DEPTH} levels"
                    )));
                }
                for (field, sub) in e {
                    let sp = p.key(field);
                    let sub_q = match sub {
                        Json::Bool(true) => Query::default(),
                        Json::Object(_) => parse_query(sub, &sp, expand_depth + 1)?,
                        _ => return Err(sp.err("an expand entry must be a query object or `true`")),
                    };
                    if sub_q.object.is_some() {
                        return Err(sp.key("object").err(
                            "an expanded query takes its object from the lookup field's reference",
                        ));
                    }
                    q.expand.insert(field.clone(), sub_q);
                }
            }
            "joins" => q.joins = parse_joins(value, &p)?,
            "nearest" => q.nearest = Some(Nearest::from_json(value, &p)?),
            other => return Err(p.err(format!("unknown query key `{other}`"))),
        }
    }
    if let Some(fields) = search_fields {
        match &mut q.search {
            Some(s) if s.fields.is_none() => s.fields = Some(fields),
            Some(_) => {
                return Err(path
                    .key("searchFields")
                    .err("give `searchFields` or `search.fields`, not both"));
            }
            None => {
                return Err(path
                    .key("searchFields")
                    .err("`searchFields` without `search`"));
            }
        }
    }
    Ok(q)
}

fn string(v: &Json, p: &Path) -> Result<String> {
    match v {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(p.err("expected a non-empty string")),
    }
}

fn string_list(v: &Json, p: &Path) -> Result<Vec<String>> {
    let Json::Array(items) = v else {
        return Err(p.err("expected an array of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, s)| string(s, &p.index(i)))
        .collect()
}

fn non_negative(v: &Json, p: &Path) -> Result<u64> {
    match v {
        Json::Number(n) => n
            .as_u64()
            .ok_or_else(|| p.err(format!("expected a non-negative integer, found {n}"))),
        _ => Err(p.err("expected a non-negative integer")),
    }
}

fn parse_order_by(v: &Json, p: &Path) -> Result<Vec<SortItem>> {
    let items = match v {
        Json::Array(items) => items.clone(),
        Json::String(_) | Json::Object(_) => vec![v.clone()],
        _ => return Err(p.err("`orderBy` must be an array of sort items")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = p.index(i);
            match item {
                Json::String(s) => {
                    let (field, order) = match s.strip_prefix('-') {
                        Some(f) => (f, SortOrder::Desc),
                        None => (s.as_str(), SortOrder::Asc),
                    };
                    Ok(SortItem {
                        field: string(&json!(field), &ip)?,
                        order,
                        nulls: None,
                    })
                }
                Json::Object(o) => {
                    let mut field = None;
                    let mut order = SortOrder::Asc;
                    let mut nulls = None;
                    for (k, val) in o {
                        let kp = ip.key(k);
                        match k.as_str() {
                            "field" => field = Some(string(val, &kp)?),
                            "order" | "direction" => {
                                order = match val.as_str().map(str::to_ascii_lowercase).as_deref() {
                                    Some("asc") => SortOrder::Asc,
                                    Some("desc") => SortOrder::Desc,
                                    _ => return Err(kp.err("`order` must be `asc` or `desc`")),
                                }
                            }
                            "nulls" => {
                                nulls = match val.as_str() {
                                    Some("first") => Some(NullsOrder::First),
                                    Some("last") => Some(NullsOrder::Last),
                                    _ => return Err(kp.err("`nulls` must be `first` or `last`")),
                                }
                            }
                            other => return Err(kp.err(format!("unknown sort key `{other}`"))),
                        }
                    }
                    let field = field.ok_or_else(|| ip.err("sort item needs `field`"))?;
                    Ok(SortItem {
                        field,
                        order,
                        nulls,
                    })
                }
                _ => Err(ip.err("a sort item is `{field, order}` or a field name")),
            }
        })
        .collect()
}

fn parse_cursor(v: &Json, p: &Path) -> Result<Cursor> {
    match v {
        Json::String(token) => Cursor::from_token(token, p),
        Json::Object(o) => {
            if o.len() != 1 || !o.contains_key("after") {
                return Err(p.err("cursor must be `{\"after\": {field: value}}` or a token"));
            }
            Cursor::from_after(&o["after"], &p.key("after"))
        }
        _ => Err(p.err("cursor must be `{\"after\": {field: value}}` or a token")),
    }
}

fn parse_aggregations(v: &Json, p: &Path) -> Result<Vec<Aggregation>> {
    let Json::Array(items) = v else {
        return Err(p.err("`aggregations` must be an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = p.index(i);
            let Json::Object(o) = item else {
                return Err(ip.err("an aggregation is `{function, field?, alias}`"));
            };
            let mut function = None;
            let mut field = None;
            let mut alias = None;
            let mut distinct = false;
            let mut filter = None;
            let mut separator = None;
            for (k, val) in o {
                let kp = ip.key(k);
                match k.as_str() {
                    "function" => function = Some(AggFunction::parse(&string(val, &kp)?, &kp)?),
                    "field" => field = Some(string(val, &kp)?),
                    "alias" => alias = Some(string(val, &kp)?),
                    "distinct" => {
                        distinct = val.as_bool().ok_or_else(|| kp.err("expected a boolean"))?;
                    }
                    "filter" => filter = Some(Filter::from_json(val, &kp)?),
                    "separator" => {
                        separator = Some(
                            val.as_str()
                                .ok_or_else(|| kp.err("expected a string"))?
                                .to_owned(),
                        );
                    }
                    other => return Err(kp.err(format!("unknown aggregation key `{other}`"))),
                }
            }
            let function = function.ok_or_else(|| ip.err("aggregation needs `function`"))?;
            if field.is_none() && function != AggFunction::Count {
                return Err(ip.err(format!("`{}` needs a `field`", function.name())));
            }
            let alias = alias.unwrap_or_else(|| match &field {
                Some(f) => format!("{}_{f}", function.name()),
                None => function.name().to_owned(),
            });
            Ok(Aggregation {
                function,
                field,
                alias,
                distinct,
                filter,
                separator,
            })
        })
        .collect()
}

fn parse_group_by(v: &Json, p: &Path) -> Result<Vec<GroupBy>> {
    let Json::Array(items) = v else {
        return Err(p.err("`groupBy` must be an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = p.index(i);
            match item {
                Json::String(_) => Ok(GroupBy {
                    field: string(item, &ip)?,
                    granularity: None,
                    alias: None,
                    timezone: None,
                }),
                Json::Object(o) => {
                    let mut g = GroupBy {
                        field: String::new(),
                        granularity: None,
                        alias: None,
                        timezone: None,
                    };
                    for (k, val) in o {
                        let kp = ip.key(k);
                        match k.as_str() {
                            "field" => g.field = string(val, &kp)?,
                            "alias" => g.alias = Some(string(val, &kp)?),
                            "timezone" => {
                                let name = string(val, &kp)?;
                                g.timezone = Some(
                                    name.parse()
                                        .map_err(|_| kp.err(format!("unknown timezone `{name}`")))?,
                                );
                            }
                            "dateGranularity" => {
                                g.granularity = Some(match val.as_str() {
                                    Some("day") => DateGranularity::Day,
                                    Some("week") => DateGranularity::Week,
                                    Some("month") => DateGranularity::Month,
                                    Some("quarter") => DateGranularity::Quarter,
                                    Some("year") => DateGranularity::Year,
                                    _ => {
                                        return Err(kp.err(
                                            "`dateGranularity` is one of day, week, month, quarter, year",
                                        ));
                                    }
                                });
                            }
                            other => return Err(kp.err(format!("unknown groupBy key `{other}`"))),
                        }
                    }
                    if g.field.is_empty() {
                        return Err(ip.err("groupBy item needs `field`"));
                    }
                    Ok(g)
                }
                _ => Err(ip.err("a groupBy item is a field name or `{field, dateGranularity, alias}`")),
            }
        })
        .collect()
}

fn parse_joins(v: &Json, p: &Path) -> Result<Vec<Join>> {
    let Json::Array(items) = v else {
        return Err(p.err("`joins` must be an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let ip = p.index(i);
            let Json::Object(o) = item else {
                return Err(ip.err("a join is `{type, object, alias, on}`"));
            };
            let mut join_type = JoinType::Inner;
            let mut object = None;
            let mut alias = None;
            let mut on = None;
            for (k, val) in o {
                let kp = ip.key(k);
                match k.as_str() {
                    "type" => {
                        join_type = match val.as_str() {
                            Some("inner") => JoinType::Inner,
                            Some("left") => JoinType::Left,
                            Some("right") => JoinType::Right,
                            Some("full") => JoinType::Full,
                            _ => return Err(kp.err("join `type` is inner, left, right or full")),
                        }
                    }
                    "object" => object = Some(string(val, &kp)?),
                    "alias" => alias = Some(string(val, &kp)?),
                    "on" => on = Some(Filter::from_json(val, &kp)?),
                    other => return Err(kp.err(format!("unknown join key `{other}`"))),
                }
            }
            let object = object.ok_or_else(|| ip.err("join needs `object`"))?;
            let alias = alias.unwrap_or_else(|| object.clone());
            let on = on.ok_or_else(|| ip.err("join needs `on`"))?;
            Ok(Join {
                join_type,
                object,
                alias,
                on,
            })
        })
        .collect()
}

fn parse_search(v: &Json, p: &Path) -> Result<SearchSpec> {
    let mut spec = SearchSpec {
        query: String::new(),
        fields: None,
        fuzzy: false,
        operator: None,
        boost: IndexMap::new(),
        min_score: None,
        language: None,
        highlight: false,
    };
    match v {
        Json::String(q) => spec.query.clone_from(q),
        Json::Object(entries) => {
            for (k, val) in entries {
                let kp = p.key(k);
                match k.as_str() {
                    "query" => {
                        val.as_str()
                            .ok_or_else(|| kp.err("expected a string"))?
                            .clone_into(&mut spec.query);
                    }
                    "fields" => spec.fields = Some(string_list(val, &kp)?),
                    "fuzzy" => {
                        spec.fuzzy = val.as_bool().ok_or_else(|| kp.err("expected a boolean"))?;
                    }
                    "operator" => {
                        spec.operator = Some(match val.as_str() {
                            Some(o @ ("and" | "or")) => o.to_owned(),
                            _ => return Err(kp.err("`operator` is `and` or `or`")),
                        });
                    }
                    "boost" => {
                        let Json::Object(boosts) = val else {
                            return Err(kp.err("`boost` maps field → number"));
                        };
                        for (f, n) in boosts {
                            let weight = n
                                .as_f64()
                                .ok_or_else(|| kp.key(f).err("expected a number"))?;
                            spec.boost.insert(f.clone(), weight);
                        }
                    }
                    "minScore" => {
                        spec.min_score =
                            Some(val.as_f64().ok_or_else(|| kp.err("expected a number"))?);
                    }
                    "language" => spec.language = Some(string(val, &kp)?),
                    "highlight" => {
                        spec.highlight =
                            val.as_bool().ok_or_else(|| kp.err("expected a boolean"))?;
                    }
                    other => return Err(kp.err(format!("unknown search key `{other}`"))),
                }
            }
        }
        _ => return Err(p.err("`search` is a string or a search spec object")),
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_query_round_trips() {
        let j = json!({
            "object": "task",
            "fields": ["id", "title"],
            "where": {"$and": [{"status": "open"}, {"priority": {"$gte": 2}}]},
            "orderBy": [{"field": "due", "order": "desc", "nulls": "last"}],
            "limit": 10,
            "offset": 20,
            "aggregations": [{"function": "count", "alias": "n"}],
            "groupBy": ["status", {"field": "due", "dateGranularity": "month", "alias": "m"}],
            "having": {"n": {"$gt": 1}},
            "expand": {"owner": {"fields": ["name"]}}
        });
        let q = Query::from_json(&j).unwrap();
        assert_eq!(q.to_json(), j);
    }

    #[test]
    fn bad_limits_are_refused_with_paths() {
        for bad in [
            json!({"limit": -1}),
            json!({"limit": 1.5}),
            json!({"limit": "3"}),
        ] {
            let e = Query::from_json(&bad).unwrap_err();
            assert_eq!(e.path(), Some("limit"), "{bad}");
        }
        let e = Query::parse("{\"object\": ").unwrap_err();
        assert!(matches!(e, Error::Json { .. }));
    }

    #[test]
    fn cursor_tokens_round_trip() {
        let mut after = IndexMap::new();
        after.insert("n".to_owned(), Value::Int(3));
        after.insert("id".to_owned(), Value::String("x".into()));
        let c = Cursor { after };
        let back = Cursor::from_token(&c.to_token(), &Path::root("cursor")).unwrap();
        assert_eq!(back, c);
    }
}
