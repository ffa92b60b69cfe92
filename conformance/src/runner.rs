//! Runs one case: sets up a namespace, loads fixtures, runs the steps,
//! compares results.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use objectql::ast::Path;
use objectql::{
    Engine, Feature, Filter, IsolationLevel, ObjectSchema, Query, Record, ResolveContext, Session,
    Transaction, Value,
};
use serde_json::Value as Json;

use crate::Harness;
use crate::compare::{json_eq, multiset_eq_by, row_eq};

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// The case needs features the driver does not declare, and the driver
    /// correctly refused with `Unsupported`.
    Unsupported(Vec<String>),
    /// Something did not hold; the message says what.
    Failed(String),
}

impl Outcome {
    /// Whether this outcome is acceptable (passed, or unsupported as declared).
    pub fn is_ok(&self) -> bool {
        !matches!(self, Self::Failed(_))
    }
}

struct CaseSpec<'a> {
    file: &'a Json,
    case: &'a Json,
}

fn get<'a>(j: &'a Json, key: &str) -> Option<&'a Json> {
    j.get(key).filter(|v| !v.is_null())
}

fn context(spec: &CaseSpec<'_>) -> Result<ResolveContext, String> {
    let c = get(spec.case, "context").or_else(|| get(spec.file, "context"));
    let now_text = c
        .and_then(|c| c.get("now"))
        .and_then(Json::as_str)
        .unwrap_or("2026-03-01T12:00:00Z");
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339(now_text)
        .map_err(|e| format!("context.now `{now_text}`: {e}"))?
        .with_timezone(&Utc);
    let mut ctx = ResolveContext::at(now);
    if let Some(c) = c {
        if let Some(tz) = c.get("timezone").and_then(Json::as_str) {
            ctx = ctx.with_timezone(tz.parse().map_err(|e| format!("context.timezone: {e}"))?);
        }
        if let Some(u) = c.get("userId").and_then(Json::as_str) {
            ctx = ctx.with_user(u);
        }
        if let Some(o) = c.get("orgId").and_then(Json::as_str) {
            ctx = ctx.with_org(o);
        }
    }
    Ok(ctx)
}

fn required_features(spec: &CaseSpec<'_>) -> Result<BTreeSet<Feature>, String> {
    let mut out = BTreeSet::new();
    for src in [get(spec.file, "requires"), get(spec.case, "requires")]
        .into_iter()
        .flatten()
    {
        for f in src.as_array().ok_or("`requires` must be an array")? {
            let name = f.as_str().ok_or("`requires` lists feature names")?;
            out.insert(
                Feature::parse(name)
                    .ok_or_else(|| format!("unknown feature `{name}` in `requires`"))?,
            );
        }
    }
    Ok(out)
}

/// A unique namespace for one case run: short, lowercase, identifier-safe.
fn namespace(file: &str, case: &str) -> String {
    use std::hash::{Hash, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        file,
        case,
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    )
        .hash(&mut h);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    stamp.hash(&mut h);
    format!("oql_{:016x}", h.finish())
}

fn record_of(j: &Json, path: &Path) -> Result<Record, String> {
    let obj = j
        .as_object()
        .ok_or_else(|| format!("`{path}` must be an object"))?;
    obj.iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                Value::from_json(v, &path.key(k)).map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

fn record_json(r: &Record) -> Json {
    Json::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

enum Handle {
    Session(Session),
    Tx(Transaction),
}

impl Handle {
    fn session(&self) -> &Session {
        match self {
            Self::Session(s) => s,
            Self::Tx(t) => t,
        }
    }
}

/// The isolation levels a case's `begin` steps ask for explicitly.
fn requested_isolation(spec: &CaseSpec<'_>) -> Vec<IsolationLevel> {
    get(spec.case, "steps")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("op").and_then(Json::as_str) == Some("begin"))
        .filter_map(|s| s.get("isolation").and_then(Json::as_str))
        .filter_map(IsolationLevel::parse)
        .collect()
}

/// Runs `case` of `file` against a fresh namespace of `harness`.
pub async fn run_case(
    harness: &dyn Harness,
    file_name: &str,
    file: &Json,
    case_name: &str,
) -> Outcome {
    let Some(case) = file
        .get("cases")
        .and_then(Json::as_array)
        .and_then(|cases| {
            cases
                .iter()
                .find(|c| c.get("name").and_then(Json::as_str) == Some(case_name))
        })
    else {
        return Outcome::Failed(format!("no case `{case_name}` in `{file_name}`"));
    };
    let spec = CaseSpec { file, case };
    let ns = namespace(file_name, case_name);
    let mut datasources: Vec<String> = Vec::new();
    let outcome = run_in(harness, &spec, &ns, &mut datasources).await;
    for ds in &datasources {
        if let Err(e) = harness.cleanup(&format!("{ns}_{ds}")).await
            && outcome.is_ok()
        {
            return Outcome::Failed(format!("cleanup of namespace `{ns}_{ds}` failed: {e}"));
        }
    }
    outcome
}

async fn run_in(
    harness: &dyn Harness,
    spec: &CaseSpec<'_>,
    ns: &str,
    datasources: &mut Vec<String>,
) -> Outcome {
    let features = match required_features(spec) {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("bad case: {e}")),
    };
    let ctx = match context(spec) {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("bad case: {e}")),
    };
    let engine = Engine::new();
    // Connect datasources and register objects.
    let objects = get(spec.file, "objects")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let mut missing: Vec<String> = Vec::new();
    let mut schemas = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let mut schema = match ObjectSchema::from_json(o) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(format!("bad case: objects[{i}]: {e}")),
        };
        if harness.spreads() {
            let mark = crate::SPREAD_MARKS[i % 2];
            schema.datasource = Some(format!("{mark}{}", schema.datasource_name()));
        }
        let ds = schema.datasource_name().to_owned();
        if !datasources.contains(&ds) {
            datasources.push(ds.clone());
            let driver = match harness.connect(&format!("{ns}_{ds}")).await {
                Ok(d) => d,
                Err(e) => {
                    return Outcome::Failed(format!(
                        "harness could not connect namespace `{ns}_{ds}`: {e}"
                    ));
                }
            };
            if missing.is_empty() || harness.spreads() {
                let caps = driver.capabilities();
                missing.extend(
                    features
                        .iter()
                        .filter(|f| !caps.has(**f))
                        .map(|f| f.as_str().to_owned())
                        .filter(|f| !missing.contains(f))
                        .collect::<Vec<_>>(),
                );
                // An isolation level the driver does not serve must be
                // refused too (claims are checked both ways).
                if caps.has(Feature::Transactions) {
                    for level in requested_isolation(spec) {
                        if !caps.serves(level) {
                            missing.push(format!("isolation {}", level.as_str()));
                        }
                    }
                }
            }
            if let Err(e) = engine.add_driver(&ds, driver) {
                return Outcome::Failed(e.to_string());
            }
        }
        schemas.push(schema);
    }
    if harness.spreads() && features.contains(&Feature::ForeignKeys) {
        // The engine refuses a foreign key between datasources (no backend
        // enforces one); the single-driver runs cover these cases.
        missing.push("foreign_keys across datasources".into());
    }
    if harness.spreads() && !missing.is_empty() {
        // Which driver refuses depends on where the spread put each object;
        // the single-driver runs check each driver's claims.
        let _ = engine.close().await;
        return Outcome::Unsupported(missing);
    }
    let result = run_steps(&engine, spec, ctx, schemas).await;
    let _ = engine.close().await;
    match (result, missing.is_empty()) {
        (Ok(()), true) => Outcome::Passed,
        (
            Err(StepError::Mismatch(m) | StepError::Unexpected(m) | StepError::Unsupported(m)),
            true,
        ) => Outcome::Failed(m),
        (Err(StepError::Unsupported(_)), false) => Outcome::Unsupported(missing),
        (Ok(()), false) => Outcome::Failed(format!(
            "the driver does not declare {missing:?}, yet every step succeeded: declare the feature, or refuse it with `Unsupported`"
        )),
        (Err(StepError::Mismatch(m) | StepError::Unexpected(m)), false) => {
            Outcome::Failed(format!(
                "the driver does not declare {missing:?}, so the case must fail with `unsupported`; instead: {m}"
            ))
        }
    }
}

enum StepError {
    /// An expectation did not hold.
    Mismatch(String),
    /// An operation failed unexpectedly.
    Unexpected(String),
    /// An operation failed with `Unsupported` (unexpectedly, unless a feature is missing).
    Unsupported(String),
}

fn unexpected(what: &str, e: &objectql::Error) -> StepError {
    let msg = format!("{what} failed unexpectedly: {e}");
    if e.category() == "unsupported" {
        StepError::Unsupported(msg)
    } else {
        StepError::Unexpected(msg)
    }
}

async fn run_steps(
    engine: &Engine,
    spec: &CaseSpec<'_>,
    ctx: ResolveContext,
    schemas: Vec<ObjectSchema>,
) -> Result<(), StepError> {
    for s in schemas {
        let name = s.name.clone();
        engine
            .register(s)
            .await
            .map_err(|e| unexpected(&format!("registering `{name}`"), &e))?;
    }
    let mut handle = Handle::Session(engine.session(ctx));
    if let Some(fixtures) = get(spec.file, "fixtures").and_then(Json::as_object) {
        for (object, rows) in fixtures {
            let rows = rows
                .as_array()
                .ok_or_else(|| {
                    StepError::Mismatch(format!("bad case: fixtures.{object} must be an array"))
                })?
                .iter()
                .enumerate()
                .map(|(i, r)| record_of(r, &Path::root("fixtures").key(object).index(i)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StepError::Mismatch(format!("bad case: {e}")))?;
            handle
                .session()
                .insert_many(object, rows)
                .await
                .map_err(|e| unexpected(&format!("loading fixtures of `{object}`"), &e))?;
        }
    }
    if let Some(name) = get(spec.case, "coded").and_then(Json::as_str) {
        return crate::coded::run(name, handle.session())
            .await
            .map_err(StepError::Mismatch);
    }
    let steps: Vec<Json> = match (get(spec.case, "steps"), get(spec.case, "query")) {
        (Some(Json::Array(steps)), None) => steps.clone(),
        (None, Some(q)) => {
            let mut step = serde_json::json!({"op": "find", "query": q});
            if let Some(e) = get(spec.case, "expect") {
                step["expect"] = e.clone();
            }
            vec![step]
        }
        _ => {
            return Err(StepError::Mismatch(
                "bad case: give either `query` + `expect` or `steps`".into(),
            ));
        }
    };
    for (i, step) in steps.iter().enumerate() {
        let op = step.get("op").and_then(Json::as_str).unwrap_or_default();
        let label = format!("step {i} (`{op}`)");
        let expect = get(step, "expect");
        let result = run_step(&mut handle, step, op).await;
        check(&label, engine, step, expect, result)?;
    }
    if let Handle::Tx(tx) = handle {
        tx.rollback()
            .await
            .map_err(|e| unexpected("rolling back the open transaction", &e))?;
    }
    Ok(())
}

/// What a step produced, in JSON form.
enum Produced {
    Rows(Vec<Record>),
    Row(Option<Record>),
    Count(u64),
    Values(Vec<Value>),
    Deleted(bool),
    Nothing,
}

fn query_of(step: &Json) -> Result<Query, objectql::Error> {
    let q = step.get("query").cloned().unwrap_or(Json::Null);
    Query::from_json(&q)
}

fn filter_of(step: &Json) -> Result<Option<Filter>, objectql::Error> {
    get(step, "where")
        .map(|w| Filter::from_json(w, &Path::root("where")))
        .transpose()
}

fn str_arg<'a>(step: &'a Json, key: &str) -> Result<&'a str, objectql::Error> {
    step.get(key).and_then(Json::as_str).ok_or_else(|| {
        objectql::Error::validation(key, format!("bad case: the step needs `{key}`"))
    })
}

fn records_arg(step: &Json) -> Result<Vec<Record>, objectql::Error> {
    let bad = |m: String| objectql::Error::validation("data", m);
    match (get(step, "data"), get(step, "rows")) {
        (Some(d), None) => Ok(vec![record_of(d, &Path::root("data")).map_err(bad)?]),
        (None, Some(Json::Array(rows))) => rows
            .iter()
            .enumerate()
            .map(|(i, r)| record_of(r, &Path::root("rows").index(i)).map_err(bad))
            .collect(),
        _ => Err(bad("bad case: the step needs `data` or `rows`".into())),
    }
}

async fn run_step(handle: &mut Handle, step: &Json, op: &str) -> Result<Produced, objectql::Error> {
    let s = handle.session();
    Ok(match op {
        "find" => Produced::Rows(s.find(&query_of(step)?).await?),
        "findOne" => Produced::Row(s.find_one(&query_of(step)?).await?),
        "count" => {
            let mut q = query_of(step)?;
            let object = q.object.clone().unwrap_or_default();
            Produced::Count(s.count(&object, q.filter.take()).await?)
        }
        "distinct" => Produced::Values(
            s.distinct(
                str_arg(step, "object")?,
                str_arg(step, "field")?,
                filter_of(step)?,
            )
            .await?,
        ),
        "insert" => Produced::Rows(
            s.insert_many(str_arg(step, "object")?, records_arg(step)?)
                .await?,
        ),
        "update" => {
            let id = Value::from_json(step.get("id").unwrap_or(&Json::Null), &Path::root("id"))?;
            let data = record_of(step.get("data").unwrap_or(&Json::Null), &Path::root("data"))
                .map_err(|m| objectql::Error::validation("data", m))?;
            Produced::Row(Some(s.update(str_arg(step, "object")?, id, data).await?))
        }
        "updateMany" => {
            let data = record_of(step.get("data").unwrap_or(&Json::Null), &Path::root("data"))
                .map_err(|m| objectql::Error::validation("data", m))?;
            Produced::Count(
                s.update_many(
                    str_arg(step, "object")?,
                    filter_of(step)?.unwrap_or_else(Filter::always),
                    data,
                )
                .await?,
            )
        }
        "upsert" => {
            let conflict: Vec<String> = get(step, "conflict")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let conflict: Vec<&str> = conflict.iter().map(String::as_str).collect();
            Produced::Rows(
                s.upsert(str_arg(step, "object")?, records_arg(step)?, &conflict)
                    .await?,
            )
        }
        "delete" => {
            let id = Value::from_json(step.get("id").unwrap_or(&Json::Null), &Path::root("id"))?;
            Produced::Deleted(s.delete(str_arg(step, "object")?, id).await?)
        }
        "deleteMany" => Produced::Count(
            s.delete_many(
                str_arg(step, "object")?,
                filter_of(step)?.unwrap_or_else(Filter::always),
            )
            .await?,
        ),
        "register" => {
            let schema = step.get("schema").ok_or_else(|| {
                objectql::Error::validation("schema", "bad case: the step needs `schema`")
            })?;
            s.engine().register_json(schema).await?;
            Produced::Nothing
        }
        "begin" => {
            let isolation = match step.get("isolation").and_then(Json::as_str) {
                Some(name) => Some(IsolationLevel::parse(name).ok_or_else(|| {
                    objectql::Error::validation(
                        "isolation",
                        format!("unknown isolation level `{name}`"),
                    )
                })?),
                None => None,
            };
            let ds = step
                .get("datasource")
                .and_then(Json::as_str)
                .unwrap_or("default");
            // Unspecified: the strongest level the datasource declares.
            let isolation = match isolation {
                Some(l) => l,
                None => s
                    .engine()
                    .datasource(ds)?
                    .capabilities()
                    .strongest_isolation()
                    .unwrap_or_default(),
            };
            let tx = s.begin(ds, isolation).await?;
            *handle = Handle::Tx(tx);
            Produced::Nothing
        }
        "commit" | "rollback" => {
            let session = handle.session().clone();
            let Handle::Tx(tx) = std::mem::replace(
                handle,
                Handle::Session(session.engine().session(session.context().clone())),
            ) else {
                return Err(objectql::Error::plan(format!(
                    "`{op}` without an open transaction"
                )));
            };
            if op == "commit" {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Produced::Nothing
        }
        other => {
            return Err(objectql::Error::validation(
                "op",
                format!("bad case: unknown step op `{other}`"),
            ));
        }
    })
}

fn primary_key_of(engine: &Engine, step: &Json) -> String {
    let object = step
        .get("query")
        .and_then(|q| q.get("object"))
        .or_else(|| step.get("object"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    engine
        .schema(object)
        .map_or_else(|_| "id".to_owned(), |s| s.primary_key)
}

/// The field holding the distance of a nearest query step, compared with
/// float32 tolerance ([`crate::DISTANCE_TOLERANCE`]).
fn distance_field(step: &Json) -> Option<String> {
    let n = step.get("query")?.get("nearest")?;
    Some(
        n.get("distanceAs")
            .and_then(Json::as_str)
            .unwrap_or(objectql::ast::DEFAULT_DISTANCE_AS)
            .to_owned(),
    )
}

fn check(
    label: &str,
    engine: &Engine,
    step: &Json,
    expect: Option<&Json>,
    result: Result<Produced, objectql::Error>,
) -> Result<(), StepError> {
    let Some(expect) = expect else {
        return result.map(drop).map_err(|e| unexpected(label, &e));
    };
    if let Some(category) = expect.get("error").and_then(Json::as_str) {
        return match result {
            Ok(_) => Err(StepError::Mismatch(format!(
                "{label}: expected error `{category}`, but it succeeded"
            ))),
            Err(e) if e.category() == category => match expect.get("path").and_then(Json::as_str) {
                Some(p) if e.path() != Some(p) => Err(StepError::Mismatch(format!(
                    "{label}: expected error path `{p}`, got {:?} ({e})",
                    e.path()
                ))),
                _ => Ok(()),
            },
            Err(e) => {
                let msg = format!(
                    "{label}: expected error `{category}`, got `{}`: {e}",
                    e.category()
                );
                Err(if e.category() == "unsupported" {
                    StepError::Unsupported(msg)
                } else {
                    StepError::Mismatch(msg)
                })
            }
        };
    }
    let produced = result.map_err(|e| unexpected(label, &e))?;
    let ordered = expect
        .get("ordered")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let mismatch = |what: &str, expected: &Json, actual: &Json| {
        StepError::Mismatch(format!(
            "{label}: {what} differ\n  expected: {expected}\n  actual:   {actual}"
        ))
    };
    let distance = distance_field(step);
    let eq = |a: &Json, b: &Json| row_eq(a, b, distance.as_deref());
    let compare_list = |what: &str, expected: &Json, actual: Vec<Json>| -> Result<(), StepError> {
        let exp = expected.as_array().cloned().unwrap_or_default();
        let ok = if ordered {
            exp.len() == actual.len() && exp.iter().zip(&actual).all(|(a, b)| eq(a, b))
        } else {
            multiset_eq_by(&exp, &actual, eq)
        };
        if ok {
            Ok(())
        } else {
            Err(mismatch(what, expected, &Json::Array(actual)))
        }
    };
    match produced {
        Produced::Rows(rows) => {
            if let Some(ids) = expect.get("ids") {
                let pk = primary_key_of(engine, step);
                let actual = rows
                    .iter()
                    .map(|r| r.get(&pk).map_or(Json::Null, Value::to_json))
                    .collect();
                compare_list("ids", ids, actual)?;
            }
            if let Some(expected) = expect.get("rows") {
                compare_list("rows", expected, rows.iter().map(record_json).collect())?;
            }
            if let Some(n) = expect.get("count").and_then(Json::as_u64)
                && rows.len() as u64 != n
            {
                return Err(mismatch(
                    "row counts",
                    &Json::from(n),
                    &Json::from(rows.len()),
                ));
            }
        }
        Produced::Row(row) => {
            if let Some(expected) = expect.get("row") {
                let actual = row.as_ref().map_or(Json::Null, record_json);
                if !eq(expected, &actual) {
                    return Err(mismatch("row", expected, &actual));
                }
            }
        }
        Produced::Count(n) => {
            if let Some(expected) = expect.get("count")
                && expected.as_u64() != Some(n)
            {
                return Err(mismatch("counts", expected, &Json::from(n)));
            }
        }
        Produced::Values(values) => {
            if let Some(expected) = expect.get("values") {
                let actual: Vec<Json> = values.iter().map(Value::to_json).collect();
                let exp = expected.as_array().cloned().unwrap_or_default();
                if exp.len() != actual.len() || !exp.iter().zip(&actual).all(|(a, b)| json_eq(a, b))
                {
                    return Err(mismatch("values", expected, &Json::Array(actual)));
                }
            }
        }
        Produced::Deleted(d) => {
            if let Some(expected) = expect.get("deleted")
                && expected.as_bool() != Some(d)
            {
                return Err(mismatch("deleted", expected, &Json::Bool(d)));
            }
        }
        Produced::Nothing => {}
    }
    Ok(())
}
