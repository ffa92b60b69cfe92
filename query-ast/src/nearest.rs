//! Nearest-neighbour (vector) queries: the `nearest` clause of a query (ext);
//! see [`Nearest`] for the wire format and the semantics.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::error::{Path, Result};
use crate::query::Query;
use crate::schema::{ObjectSchema, StorageType, check_field_name};

/// The largest `k` a nearest query may ask for.
pub const MAX_NEAREST_K: u64 = 10_000;

/// The default name of the distance column.
pub const DEFAULT_DISTANCE_AS: &str = "_distance";

/// How the distance between two vectors is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VectorMetric {
    /// `1 − cos(a, b)`.
    #[default]
    Cosine,
    /// The Euclidean distance `‖a − b‖`.
    L2,
}

impl VectorMetric {
    /// The wire name (`cosine`, `l2`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::L2 => "l2",
        }
    }

    fn parse(v: &Json, p: &Path) -> Result<Self> {
        match v.as_str() {
            Some("cosine") => Ok(Self::Cosine),
            Some("l2") => Ok(Self::L2),
            _ => Err(p.err("`metric` is `cosine` or `l2`")),
        }
    }
}

/// The `nearest` clause (ext): the `k` rows closest to a query vector.
///
/// ```json
/// {"object": "doc",
///  "where": {"lang": "en"},
///  "fields": ["title"],
///  "nearest": {"field": "embedding", "vector": [0.5, 0.25, 1], "k": 10,
///              "metric": "cosine", "approximate": false, "distanceAs": "_distance"}}
/// ```
///
/// | key | meaning |
/// |---|---|
/// | `field` | a `vector` field of the object |
/// | `vector` | the query vector: as many finite numbers as the field has `dimensions` |
/// | `k` | how many rows at most: 1 ≤ k ≤ [`MAX_NEAREST_K`] |
/// | `metric` | `cosine` or `l2`; absent = the field's `metric` (default `cosine`) |
/// | `approximate` | allow an approximate index to answer (default `false`) |
/// | `distanceAs` | the name of the distance column (default `_distance`) |
///
/// # Semantics
///
/// - The result is the `k` rows matching `where` with the smallest distance
///   to the query vector, in ascending order of distance; rows at the same
///   distance are ordered by primary key, ascending. Fewer rows come back
///   when fewer rows qualify.
/// - Rows whose vector is NULL have no distance and are excluded. So are, for
///   `cosine`, rows whose vector is the zero vector: the cosine of a zero
///   vector is undefined (libSQL's `vector_distance_cos` answers NULL), and a
///   zero *query* vector is refused with `cosine`.
/// - Every row carries its distance as an extra float field named by
///   `distanceAs`, also when `fields` projects other fields. `distanceAs`
///   must be a plain name (no `.`, not starting with `$`) and not a field of
///   the object.
/// - `cosine` distance is `1 − a·b / (‖a‖ ‖b‖)` (0 for the same direction, up
///   to 2 for opposite ones); `l2` is the Euclidean distance `‖a − b‖`.
/// - Vector components have float32 precision everywhere: validation rounds
///   every component of a stored vector and of the query vector to the
///   nearest float32 (and turns `-0` into `0`), and refuses values beyond
///   float32's finite range. A backend computing distances in float32
///   (libSQL) and one computing them in float64 (the memory driver, the
///   reference) agree to about 1e-7 relative; the conformance suite compares
///   distances with a relative tolerance of 1e-6. Vectors of extreme
///   magnitude — whose squared norms, or their product, overflow or
///   underflow float32, libSQL's arithmetic — are outside this
///   specification; embeddings (normalized, or of modest magnitude) are far
///   from those limits.
/// - `approximate: true` lets a driver answer from an approximate index (it
///   may then return fewer or other rows than the exact answer, still with
///   exact distances and in the same order); without such an index the
///   answer is exact. `false` always gives the exact answer.
/// - A nearest query combines with `where`, `fields` and `expand` only: `k`
///   is its limit and the distance its order, so `limit`, `offset`, `cursor`,
///   `orderBy`, `aggregations`, `groupBy`, `having`, `distinct`, `joins` and
///   `search` are refused. A driver without the `vectors` feature refuses a
///   nearest query with `Unsupported`.
///
/// A `vector` field may declare the `metric` (`cosine`, the default, or
/// `l2`) that its index (`index: true`) is built for.
///
/// ```
/// use objectql_query_ast::{Nearest, Query, VectorMetric, field};
///
/// let q = Query::new("doc")
///     .filter(field("lang").eq("en"))
///     .nearest(Nearest::new("embedding", [0.5, 0.25, 1.0], 10).metric(VectorMetric::L2));
/// assert_eq!(q.nearest.as_ref().map(|n| n.k), Some(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Nearest {
    /// The vector field.
    pub field: String,
    /// The query vector (float32 precision once validated).
    pub vector: Vec<f64>,
    /// How many rows at most.
    pub k: u64,
    /// The metric; validation fills it from the field when absent.
    pub metric: Option<VectorMetric>,
    /// Whether an approximate index may answer.
    pub approximate: bool,
    /// The name of the distance column.
    pub distance_as: String,
    /// The field that orders rows at the same distance: the primary key,
    /// filled by validation (not part of the wire format). `None`: the input
    /// order.
    pub tie_breaker: Option<String>,
}

impl Nearest {
    /// The `k` rows nearest to `vector` by `field`.
    pub fn new<F: Into<f64>>(
        field: impl Into<String>,
        vector: impl IntoIterator<Item = F>,
        k: u64,
    ) -> Self {
        Self {
            field: field.into(),
            vector: vector.into_iter().map(Into::into).collect(),
            k,
            metric: None,
            approximate: false,
            distance_as: DEFAULT_DISTANCE_AS.to_owned(),
            tie_breaker: None,
        }
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: VectorMetric) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Allows an approximate index to answer.
    pub fn approximate(mut self) -> Self {
        self.approximate = true;
        self
    }

    /// Names the distance column.
    pub fn distance_as(mut self, name: impl Into<String>) -> Self {
        self.distance_as = name.into();
        self
    }

    /// The metric in effect (cosine when none is set).
    pub fn effective_metric(&self) -> VectorMetric {
        self.metric.unwrap_or_default()
    }

    /// Parses the JSON form.
    pub(crate) fn from_json(json: &Json, p: &Path) -> Result<Self> {
        let Json::Object(o) = json else {
            return Err(
                p.err("`nearest` is `{field, vector, k, metric?, approximate?, distanceAs?}`")
            );
        };
        let mut n = Self::new(String::new(), Vec::<f64>::new(), 0);
        let (mut has_vector, mut has_k) = (false, false);
        for (key, v) in o {
            let kp = p.key(key);
            match key.as_str() {
                "field" => n.field = non_empty(v, &kp)?,
                "vector" => {
                    n.vector = parse_vector(v, &kp)?;
                    has_vector = true;
                }
                "k" => {
                    n.k = v
                        .as_u64()
                        .ok_or_else(|| kp.err("`k` must be a positive integer"))?;
                    has_k = true;
                }
                "metric" => n.metric = Some(VectorMetric::parse(v, &kp)?),
                "approximate" => {
                    n.approximate = v
                        .as_bool()
                        .ok_or_else(|| kp.err("`approximate` must be true or false"))?;
                }
                "distanceAs" => n.distance_as = non_empty(v, &kp)?,
                other => return Err(kp.err(format!("unknown nearest key `{other}`"))),
            }
        }
        if n.field.is_empty() {
            return Err(p.err("`nearest` needs `field`"));
        }
        if !has_vector {
            return Err(p.err("`nearest` needs `vector`"));
        }
        if !has_k {
            return Err(p.err("`nearest` needs `k`"));
        }
        Ok(n)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Json {
        let mut o = Map::new();
        o.insert("field".into(), json!(self.field));
        o.insert("vector".into(), json!(self.vector));
        o.insert("k".into(), json!(self.k));
        if let Some(m) = self.metric {
            o.insert("metric".into(), json!(m.name()));
        }
        if self.approximate {
            o.insert("approximate".into(), json!(true));
        }
        if self.distance_as != DEFAULT_DISTANCE_AS {
            o.insert("distanceAs".into(), json!(self.distance_as));
        }
        Json::Object(o)
    }
}

fn non_empty(v: &Json, p: &Path) -> Result<String> {
    match v {
        Json::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(p.err("expected a non-empty string")),
    }
}

fn parse_vector(v: &Json, p: &Path) -> Result<Vec<f64>> {
    let Json::Array(items) = v else {
        return Err(p.err("`vector` must be an array of numbers"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .ok_or_else(|| p.index(i).err("expected a number"))
        })
        .collect()
}

/// Rounds a vector component to float32 precision, how every backend stores
/// vectors (`-0` becomes `0`, so the zero vector has one encoding). Refuses
/// NaN and values beyond float32's finite range.
pub(crate) fn f32_component(f: f64, p: &Path) -> Result<f64> {
    // Rounding to the nearest float32 is the point of this cast; a value
    // beyond float32's range becomes infinite and is refused below.
    #[allow(clippy::cast_possible_truncation)]
    let r = f as f32;
    if !r.is_finite() {
        return Err(p.err(format!(
            "{f} is refused: vector components are float32 numbers (at most ±{:e})",
            f32::MAX
        )));
    }
    Ok(if r == 0.0 { 0.0 } else { f64::from(r) })
}

/// The query keys a nearest query cannot be combined with, when present.
fn conflicting_keys(q: &Query) -> Vec<&'static str> {
    let present = [
        ("limit", q.limit.is_some()),
        ("offset", q.offset.is_some()),
        ("cursor", q.cursor.is_some()),
        ("orderBy", !q.order_by.is_empty()),
        ("aggregations", !q.aggregations.is_empty()),
        ("groupBy", !q.group_by.is_empty()),
        ("having", q.having.is_some()),
        ("distinct", q.distinct),
        ("joins", !q.joins.is_empty()),
        ("search", q.search.is_some()),
    ];
    present
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect()
}

/// Validates the `nearest` clause of `q` (at `path.nearest`) against
/// `schema` and normalizes it: components rounded to float32, the metric
/// resolved from the field, the primary key as the tie-breaker.
pub(crate) fn validate(
    n: &Nearest,
    q: &Query,
    schema: &ObjectSchema,
    path: &Path,
) -> Result<Nearest> {
    if let Some(key) = conflicting_keys(q).first() {
        return Err(path.key(key).err(format!(
            "`{key}` cannot be combined with `nearest`: a nearest query takes `where`, `fields` and `expand` only (`k` is its limit, the distance its order)"
        )));
    }
    let np = path.key("nearest");
    let fp = np.key("field");
    let field = schema.get(&n.field).ok_or_else(|| {
        fp.err(format!(
            "unknown field `{}` on object `{}`",
            n.field, schema.name
        ))
    })?;
    let StorageType::Vector { dimensions } = field.storage_type()? else {
        return Err(fp.err(format!(
            "`{}` is a {} field, not a vector field",
            n.field,
            field.storage_type()?.name()
        )));
    };
    let vp = np.key("vector");
    if u32::try_from(n.vector.len()).ok() != Some(dimensions) {
        return Err(vp.err(format!(
            "`{}` has {dimensions} dimensions; the query vector has {} numbers",
            n.field,
            n.vector.len()
        )));
    }
    let vector = n
        .vector
        .iter()
        .enumerate()
        .map(|(i, &x)| f32_component(x, &vp.index(i)))
        .collect::<Result<Vec<f64>>>()?;
    let metric = n.metric.or(field.metric).unwrap_or_default();
    if metric == VectorMetric::Cosine && vector.iter().all(|&x| x == 0.0) {
        return Err(vp.err(
            "the cosine distance to a zero vector is undefined; use a non-zero vector or `metric: \"l2\"`",
        ));
    }
    if n.k == 0 || n.k > MAX_NEAREST_K {
        return Err(np
            .key("k")
            .err(format!("`k` must be between 1 and {MAX_NEAREST_K}")));
    }
    let dp = np.key("distanceAs");
    check_field_name(&n.distance_as, &dp)?;
    if schema.get(&n.distance_as).is_some() {
        return Err(dp.err(format!(
            "`{}` is a field of `{}`; name the distance column something else",
            n.distance_as, schema.name
        )));
    }
    Ok(Nearest {
        vector,
        metric: Some(metric),
        tie_breaker: Some(schema.primary_key.clone()),
        ..n.clone()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::Error;
    use crate::schema::{Catalog, Field};
    use crate::tokens::ResolveContext;
    use crate::validate::{Record, WriteMode, validate_query, validate_record};
    use crate::value::Value;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.insert(
            ObjectSchema::new("doc")
                .field(Field::new("title", "text"))
                .field(Field::vector("embedding", 3))
                .field(Field::vector("small", 2).metric(VectorMetric::L2)),
        )
        .unwrap();
        c
    }

    #[allow(clippy::needless_pass_by_value)]
    fn v(j: Json) -> Result<Query> {
        validate_query(&Query::from_json(&j)?, &catalog(), &ResolveContext::now())
    }

    fn err_path(j: &Json) -> String {
        let e = v(j.clone()).unwrap_err();
        assert!(matches!(e, Error::Validation { .. }), "{j}: {e}");
        e.path().unwrap_or_default().to_owned()
    }

    fn nearest(extra: Json) -> Json {
        let mut n = json!({"field": "embedding", "vector": [0.5, 0.25, 1], "k": 2});
        if let (Json::Object(n), Json::Object(extra)) = (&mut n, extra) {
            n.extend(extra);
        }
        json!({"object": "doc", "nearest": n})
    }

    #[test]
    fn the_wire_form_round_trips_with_defaults() {
        let j = json!({"object": "doc", "where": {"title": "x"}, "fields": ["title"],
            "nearest": {"field": "embedding", "vector": [0.5, 0.25, 1.0], "k": 3, "metric": "l2",
                        "approximate": true, "distanceAs": "d"}});
        let q = Query::from_json(&j).unwrap();
        assert_eq!(q.to_json(), j);
        let n = Query::from_json(&nearest(json!({})))
            .unwrap()
            .nearest
            .take()
            .unwrap();
        assert_eq!(
            (n.metric, n.approximate, n.distance_as.as_str()),
            (None, false, "_distance")
        );
        let built = Query::new("doc").nearest(Nearest::new("embedding", [0.5, 0.25, 1.0], 2));
        assert_eq!(built, Query::from_json(&nearest(json!({}))).unwrap());
    }

    #[test]
    fn malformed_clauses_name_their_path() {
        for (bad, path) in [
            (json!({"object": "doc", "nearest": [1]}), "nearest"),
            (
                json!({"object": "doc", "nearest": {"vector": [1], "k": 1}}),
                "nearest",
            ),
            (
                json!({"object": "doc", "nearest": {"field": "e", "k": 1}}),
                "nearest",
            ),
            (
                json!({"object": "doc", "nearest": {"field": "e", "vector": [1]}}),
                "nearest",
            ),
            (nearest(json!({"vector": [1, "x", 2]})), "nearest.vector[1]"),
            (nearest(json!({"vector": 1})), "nearest.vector"),
            (nearest(json!({"k": -1})), "nearest.k"),
            (nearest(json!({"k": 1.5})), "nearest.k"),
            (nearest(json!({"metric": "dot"})), "nearest.metric"),
            (
                nearest(json!({"approximate": "yes"})),
                "nearest.approximate",
            ),
            (nearest(json!({"distanceAs": ""})), "nearest.distanceAs"),
            (nearest(json!({"limit": 3})), "nearest.limit"),
        ] {
            let e = Query::from_json(&bad).unwrap_err();
            assert_eq!(e.path(), Some(path), "{bad}: {e}");
        }
    }

    #[test]
    fn validation_rounds_to_f32_and_resolves_metric_and_tie_breaker() {
        let mut q = v(nearest(json!({"vector": [0.1, -0.0, 3]}))).unwrap();
        let n = q.nearest.take().unwrap();
        assert_eq!(n.vector, vec![f64::from(0.1_f32), 0.0, 3.0]);
        assert!(n.vector[1].is_sign_positive());
        assert_eq!(n.metric, Some(VectorMetric::Cosine));
        assert_eq!(n.tie_breaker.as_deref(), Some("id"));
        let q =
            v(json!({"object": "doc", "nearest": {"field": "small", "vector": [0, 0], "k": 1}}));
        assert_eq!(
            q.unwrap().nearest.take().unwrap().metric,
            Some(VectorMetric::L2)
        );
        let mut q = v(nearest(json!({"metric": "l2", "vector": [0, 0, 0]}))).unwrap();
        assert_eq!(q.nearest.take().unwrap().metric, Some(VectorMetric::L2));
    }

    #[test]
    fn invalid_nearest_queries_are_typed_errors_with_paths() {
        for (bad, path) in [
            (nearest(json!({"field": "nope"})), "nearest.field"),
            (nearest(json!({"field": "title"})), "nearest.field"),
            (nearest(json!({"vector": [1, 2]})), "nearest.vector"),
            (nearest(json!({"vector": [1, 2, 3, 4]})), "nearest.vector"),
            (
                nearest(json!({"vector": [1, 1e39, 3]})),
                "nearest.vector[1]",
            ),
            (nearest(json!({"vector": [0, 0, 0]})), "nearest.vector"),
            (nearest(json!({"k": 0})), "nearest.k"),
            (nearest(json!({"k": MAX_NEAREST_K + 1})), "nearest.k"),
            (
                nearest(json!({"distanceAs": "title"})),
                "nearest.distanceAs",
            ),
            (nearest(json!({"distanceAs": "id"})), "nearest.distanceAs"),
            (nearest(json!({"distanceAs": "a.b"})), "nearest.distanceAs"),
            (nearest(json!({"distanceAs": "$d"})), "nearest.distanceAs"),
        ] {
            assert_eq!(err_path(&bad), path, "{bad}");
        }
        assert!(v(nearest(json!({"k": MAX_NEAREST_K}))).is_ok());
    }

    #[test]
    fn nearest_combines_with_where_fields_and_expand_only() {
        for (key, value) in [
            ("limit", json!(3)),
            ("offset", json!(1)),
            ("cursor", json!({"after": {"id": "a"}})),
            ("orderBy", json!([{"field": "title"}])),
            ("aggregations", json!([{"function": "count", "alias": "n"}])),
            ("groupBy", json!(["title"])),
            ("having", json!({"n": 1})),
            ("distinct", json!(true)),
            (
                "joins",
                json!([{"object": "doc", "alias": "o", "on": {"id": {"$field": "o.id"}}}]),
            ),
            ("search", json!("hello")),
        ] {
            let mut q = nearest(json!({}));
            q[key] = value;
            let e = v(q).unwrap_err();
            assert_eq!(e.path(), Some(key), "{e}");
            assert!(
                e.to_string().contains("`where`, `fields` and `expand`"),
                "{e}"
            );
        }
        let ok = v(
            json!({"object": "doc", "where": {"title": {"$ne": "x"}}, "fields": ["title"],
                          "nearest": {"field": "embedding", "vector": [1, 0, 0], "k": 1}}),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn stored_vectors_are_rounded_to_f32() {
        let c = catalog();
        let s = c.get("doc").unwrap();
        let record = |e: Json| -> Record {
            Record::from([
                ("id".to_owned(), Value::from("a")),
                (
                    "embedding".to_owned(),
                    Value::from_json(&e, &Path::empty()).unwrap(),
                ),
            ])
        };
        let out = validate_record(
            record(json!([0.1, -0.0, 2])),
            s,
            WriteMode::Insert,
            &Path::empty(),
        )
        .unwrap();
        assert_eq!(
            out.get("embedding"),
            Some(&Value::Array(vec![
                Value::Float(f64::from(0.1_f32)),
                Value::Float(0.0),
                Value::Float(2.0)
            ]))
        );
        for (bad, path) in [
            (json!([1, 2]), "embedding"),
            (json!([1, 3.5e38, 2]), "embedding[1]"),
            (json!([1, null, 2]), "embedding[1]"),
            (json!([1, "x", 2]), "embedding[1]"),
        ] {
            let e = validate_record(record(bad.clone()), s, WriteMode::Insert, &Path::empty())
                .unwrap_err();
            assert_eq!(e.path(), Some(path), "{bad}: {e}");
        }
    }

    #[test]
    fn only_vector_fields_have_a_metric() {
        let e = ObjectSchema::from_json(
            &json!({"name": "t", "fields": {"x": {"type": "text", "metric": "l2"}}}),
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("fields.x.metric"));
        let s = ObjectSchema::from_json(&json!({"name": "t", "fields": {
            "e": {"type": "vector", "dimensions": 2, "metric": "l2", "index": true}}}))
        .unwrap();
        assert_eq!(s.get("e").and_then(|f| f.metric), Some(VectorMetric::L2));
    }
}
