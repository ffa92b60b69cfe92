//! Every rule that lowers a QueryAST filter or sort onto DataFusion, run
//! lowered and not lowered on the same data (feature `federation`).
//!
//! Two objects live in different datasources (`l` in SQLite, `r` in
//! memory), so a query joining them runs on DataFusion. A full join keeps
//! every `where` conjunct above the join (no group's rows are preserved),
//! so each generated condition runs in DataFusion, lowered, rather than in
//! a driver. Every query runs three ways and must answer the same, in the
//! same order: on DataFusion, in the reference evaluator over the same
//! spread datasources (the NoREC oracle), and on the memory reference
//! holding both objects in one datasource. The values are hostile: case
//! and accent variants, LIKE metacharacters, backslashes, newlines,
//! trailing spaces, emoji, integers beyond 2^53, calendar edges.

use objectql::{Engine, Query, Record, Value};
use serde_json::{Value as Json, json};

/// A small deterministic generator (64-bit LCG), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const TEXTS: &[&str] = &[
    "",
    "a",
    "A",
    "a ",
    " a",
    "abc",
    "ABC",
    "aBc",
    "%",
    "_",
    "\\",
    "a%b",
    "a_b",
    "a\\b",
    "\\%",
    "café",
    "CAFÉ",
    "Café",
    "line\nbreak",
    "tab\there",
    "😀",
    "z",
    "zz",
    "ä",
    "Ä",
    "b",
];
const INTS: &[i64] = &[
    i64::MIN,
    -9_007_199_254_740_993,
    -1,
    0,
    1,
    2,
    7,
    9_007_199_254_740_993,
    i64::MAX,
];
const FLOATS: &[f64] = &[
    -1.5,
    0.0,
    0.1,
    1.0,
    2.5,
    7.0,
    1e300,
    -1e-300,
    9_007_199_254_740_992.0,
];
const DECIMALS: &[&str] = &[
    "-1.500",
    "0.000",
    "0.001",
    "1.000",
    "2.500",
    "7.000",
    "123456789.123",
];
const DATES: &[&str] = &[
    "1970-01-01",
    "2000-02-29",
    "2024-03-01",
    "2024-12-31",
    "9999-12-31",
];
const DATETIMES: &[&str] = &[
    "2024-03-01T00:00:00Z",
    "2024-03-01T23:59:59.999999Z",
    "1969-12-31T23:59:59.999999Z",
    "2000-02-29T12:00:00.5Z",
    "2024-03-02T00:00:00Z",
];
const TIMES: &[&str] = &["00:00:00", "23:59:59.999999", "12:30:00", "12:30:00.5"];
const PATTERNS: &[&str] = &[
    "a%", "%b", "%\\%%", "a_b", "_", "%", "café", "CAF%", "a\\_b", "%\n%", "%a ", "_%_", "%é",
];
const KEYS: &[Option<&str>] = &[Some("k0"), Some("k1"), Some("k2"), Some("k3"), None];

fn schemas() -> [Json; 2] {
    [
        json!({"name": "l", "datasource": "a", "fields": {
            "k": {"type": "text"}, "t": {"type": "text"}, "t2": {"type": "text"},
            "i": {"type": "integer"}, "i2": {"type": "integer"}, "f": {"type": "float"},
            "d": {"type": "decimal", "precision": 12, "scale": 3}, "b": {"type": "boolean"},
            "dt": {"type": "date"}, "ts": {"type": "datetime"}, "tm": {"type": "time"}
        }}),
        json!({"name": "r", "datasource": "b", "fields": {
            "k": {"type": "text"}, "t": {"type": "text"}, "i": {"type": "integer"},
            "f": {"type": "float"}
        }}),
    ]
}

fn maybe(null: bool, v: Json) -> Json {
    if null { Json::Null } else { v }
}

fn fixtures(rng: &mut Rng) -> (Vec<Json>, Vec<Json>) {
    let mut ls = Vec::new();
    for n in 0..48 {
        let k = rng.pick(KEYS).map_or(Json::Null, |k| json!(k));
        let row = json!({
            "id": format!("l{n:02}"),
            "k": k,
            "t": maybe(rng.chance(12), json!(rng.pick(TEXTS))),
            "t2": maybe(rng.chance(12), json!(rng.pick(TEXTS))),
            "i": maybe(rng.chance(12), json!(rng.pick(INTS))),
            "i2": maybe(rng.chance(12), json!(rng.pick(INTS))),
            "f": maybe(rng.chance(12), json!(rng.pick(FLOATS))),
            "d": maybe(rng.chance(12), json!(rng.pick(DECIMALS))),
            "b": maybe(rng.chance(12), json!(rng.chance(50))),
            "dt": maybe(rng.chance(12), json!(rng.pick(DATES))),
            "ts": maybe(rng.chance(12), json!(rng.pick(DATETIMES))),
            "tm": maybe(rng.chance(12), json!(rng.pick(TIMES))),
        });
        ls.push(row);
    }
    let mut rs = Vec::new();
    for n in 0..24 {
        let k = rng.pick(KEYS).map_or(Json::Null, |k| json!(k));
        rs.push(json!({
            "id": format!("r{n:02}"),
            "k": k,
            "t": maybe(rng.chance(12), json!(rng.pick(TEXTS))),
            "i": maybe(rng.chance(12), json!(rng.pick(INTS))),
            "f": maybe(rng.chance(12), json!(rng.pick(FLOATS))),
        }));
    }
    (ls, rs)
}

fn record(j: &Json) -> Record {
    j.as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Json::Null => Value::Null,
                Json::Bool(b) => Value::Bool(*b),
                Json::String(s) => Value::from(s.as_str()),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.as_f64().expect("a number")),
                },
                other => panic!("fixture value {other}"),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The kind of a column, for picking operators and comparands.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Int,
    Float,
    Decimal,
    Bool,
    Date,
    DateTime,
    Time,
}

const COLUMNS: &[(&str, Kind)] = &[
    ("t", Kind::Text),
    ("t2", Kind::Text),
    ("r.t", Kind::Text),
    ("k", Kind::Text),
    ("i", Kind::Int),
    ("i2", Kind::Int),
    ("r.i", Kind::Int),
    ("f", Kind::Float),
    ("r.f", Kind::Float),
    ("d", Kind::Decimal),
    ("b", Kind::Bool),
    ("dt", Kind::Date),
    ("ts", Kind::DateTime),
    ("tm", Kind::Time),
];

/// An integer comparand: beyond ±2^53 JSON carries it as a string.
fn int_json(i: i64) -> Json {
    if i.unsigned_abs() > 1 << 53 {
        json!(i.to_string())
    } else {
        json!(i)
    }
}

fn comparand(rng: &mut Rng, kind: Kind) -> Json {
    match kind {
        Kind::Text => json!(rng.pick(TEXTS)),
        Kind::Int => match rng.below(4) {
            0 => json!(2.5),
            1 => json!(-1.0),
            _ => int_json(*rng.pick(INTS)),
        },
        Kind::Float => match rng.below(4) {
            0 => int_json(*rng.pick(INTS)),
            _ => json!(rng.pick(FLOATS)),
        },
        Kind::Decimal => match rng.below(4) {
            0 => json!(rng.pick(&[1, 7, -2])),
            1 => json!(rng.pick(&[2.5, 0.0005])),
            _ => json!(rng.pick(DECIMALS)),
        },
        Kind::Bool => json!(rng.chance(50)),
        Kind::Date => json!(rng.pick(DATES)),
        Kind::DateTime => match rng.below(3) {
            0 => json!(rng.pick(DATES)),
            _ => json!(rng.pick(DATETIMES)),
        },
        Kind::Time => json!(rng.pick(TIMES)),
    }
}

/// Another column to compare with: the same kind, or (sometimes) another.
fn other_column(rng: &mut Rng, kind: Kind, name: &str) -> &'static str {
    let same: Vec<&str> = COLUMNS
        .iter()
        .filter(|(n, k)| *k == kind && *n != name)
        .map(|(n, _)| *n)
        .collect();
    if same.is_empty() || rng.chance(25) {
        rng.pick(COLUMNS).0
    } else {
        same[rng.below(same.len())]
    }
}

fn condition(rng: &mut Rng) -> Json {
    let (name, kind) = *rng.pick(COLUMNS);
    let text = kind == Kind::Text;
    let ops: &[&str] = if text {
        &[
            "$eq",
            "$ne",
            "$gt",
            "$gte",
            "$lt",
            "$lte",
            "$in",
            "$nin",
            "$between",
            "$contains",
            "$notContains",
            "$startsWith",
            "$endsWith",
            "$icontains",
            "$like",
            "$ilike",
            "$null",
            "$exists",
            "$field",
        ]
    } else {
        &[
            "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$between", "$null",
            "$field",
        ]
    };
    let op = *rng.pick(ops);
    let value = match op {
        "$in" | "$nin" => {
            let n = rng.below(4);
            let mut list: Vec<Json> = (0..n).map(|_| comparand(rng, kind)).collect();
            if rng.chance(20) {
                list.push(Json::Null);
            }
            json!(list)
        }
        "$between" => json!([comparand(rng, kind), comparand(rng, kind)]),
        "$contains" | "$notContains" | "$startsWith" | "$endsWith" | "$icontains" => {
            json!(rng.pick(TEXTS))
        }
        "$like" | "$ilike" => json!(rng.pick(PATTERNS)),
        "$null" | "$exists" => json!(rng.chance(50)),
        "$field" => {
            let cmp = *rng.pick(&["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]);
            let other = other_column(rng, kind, name);
            return json!({ name: { cmp: { "$field": other } } });
        }
        _ => comparand(rng, kind),
    };
    json!({ name: { op: value } })
}

fn filter(rng: &mut Rng, depth: usize) -> Json {
    if depth >= 2 || rng.chance(55) {
        return condition(rng);
    }
    let n = rng.below(3) + usize::from(rng.chance(90));
    let items: Vec<Json> = (0..n).map(|_| filter(rng, depth + 1)).collect();
    match rng.below(3) {
        0 => json!({ "$and": items }),
        1 => json!({ "$or": items }),
        _ => json!({ "$not": filter(rng, depth + 1) }),
    }
}

fn query(rng: &mut Rng) -> Json {
    let join_type = *rng.pick(&["full", "full", "full", "left", "inner", "right"]);
    let mut q = json!({
        "object": "l",
        "joins": [{"type": join_type, "object": "r", "alias": "r", "on": {"k": {"$field": "r.k"}}}],
        "where": filter(rng, 0),
    });
    let mut order = Vec::new();
    if rng.chance(60) {
        let (name, _) = *rng.pick(COLUMNS);
        let mut item = json!({"field": name, "order": rng.pick(&["asc", "desc"])});
        if rng.chance(30) {
            item["nulls"] = json!(rng.pick(&["first", "last"]));
        }
        order.push(item);
    }
    // A total order: both primary keys.
    order.push(json!({"field": "id"}));
    order.push(json!({"field": "r.id", "order": rng.pick(&["asc", "desc"])}));
    q["orderBy"] = json!(order);
    if rng.chance(30) {
        q["limit"] = json!(rng.below(12));
    }
    if rng.chance(20) {
        q["offset"] = json!(rng.below(8));
    }
    if rng.chance(30) {
        q["fields"] = json!(["id", "r.id", "t", "r.t", "i", "d", "ts"]);
    }
    if rng.chance(12) {
        // Distinct rows of a projection, sorted by projected columns (the
        // rest of them break ties).
        let fields = ["t", "r.t", "i", "b"];
        q["distinct"] = json!(true);
        q["fields"] = json!(fields);
        q["orderBy"] = json!([{"field": rng.pick(&fields), "order": rng.pick(&["asc", "desc"])}]);
    }
    q
}

async fn engine(spread: bool, dir: &std::path::Path, ls: &[Json], rs: &[Json]) -> Engine {
    let engine = Engine::new();
    if spread {
        let url = format!("sqlite://{}", dir.join("l.db").display());
        engine.add_datasource("a", &url).await.expect("sqlite");
        engine
            .add_datasource("b", "memory://")
            .await
            .expect("memory");
    } else {
        engine
            .add_datasource("m", "memory://")
            .await
            .expect("memory");
    }
    for mut s in schemas() {
        if !spread {
            s["datasource"] = json!("m");
        }
        engine.register_json(&s).await.expect("register");
    }
    let db = engine.default_session();
    db.insert_many("l", ls.iter().map(record).collect())
        .await
        .expect("fixtures of l");
    db.insert_many("r", rs.iter().map(record).collect())
        .await
        .expect("fixtures of r");
    engine
}

/// Fails at the first row where `got` and `want` differ (rows are long).
fn same(got: &[Json], want: &[Json], what: &str) {
    same_by(got, want, |a, b| a == b, what);
}

/// [`same`] with rows compared by `eq`.
fn same_by(got: &[Json], want: &[Json], eq: impl Fn(&Json, &Json) -> bool, what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| match (got.get(i), want.get(i)) {
        (Some(a), Some(b)) => !eq(a, b),
        _ => true,
    }) {
        panic!(
            "{what}\nrow {i} of {} / {}:\n got  {:?}\n want {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

fn rows_json(rows: &[Record]) -> Vec<Json> {
    rows.iter()
        .map(|r| Json::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
        .collect()
}

/// Runs `text` paged on by a keyset cursor at row `at` of its answer
/// `rows` on the three sessions (lowered, evaluated, reference): they must
/// agree, and without paging they must return exactly the rows after `at`.
async fn after_row(
    sessions: &[&objectql::Session; 3],
    text: &Json,
    rows: &[Json],
    at: usize,
    label: &str,
) {
    let mut after = serde_json::Map::new();
    for item in text["orderBy"].as_array().expect("orderBy") {
        let key = item["field"].as_str().expect("field");
        let v = &rows[at][key];
        let v = v.as_i64().map_or_else(|| v.clone(), int_json);
        after.insert(key.to_owned(), v);
    }
    let mut paged = text.clone();
    paged["cursor"] = json!({ "after": after });
    let query = Query::from_json(&paged).expect("cursor query parses");
    let what = format!("{label} after row {at}: {paged}");
    let mut answers = Vec::new();
    for s in sessions {
        answers.push(rows_json(&s.find(&query).await.expect(&what)));
    }
    same(&answers[0], &answers[1], &what);
    same(&answers[0], &answers[2], &what);
    if text.get("limit").is_none() && text.get("offset").is_none() {
        same(&answers[0], &rows[at + 1..], &what);
    }
}

/// The seed (`OBJECTQL_LOWERING_SEED`, else `default`), its generator
/// after the fixtures, and the fixtures loaded three ways: lowered onto
/// DataFusion, in the evaluator over the same spread datasources, and on
/// one memory datasource (the sessions, in that order; keep the
/// directories alive).
async fn three_ways(default: u64) -> (u64, Rng, [tempfile::TempDir; 2], [objectql::Session; 3]) {
    let seed = std::env::var("OBJECTQL_LOWERING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let mut rng = Rng(seed);
    let (ls, rs) = fixtures(&mut rng);
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let lowered = engine(true, dirs[0].path(), &ls, &rs).await;
    let evaluated = engine(true, dirs[1].path(), &ls, &rs).await;
    evaluated.set_joins_on_datafusion(false);
    let reference = engine(false, dirs[0].path(), &ls, &rs).await;
    let sessions = [
        lowered.default_session(),
        evaluated.default_session(),
        reference.default_session(),
    ];
    (seed, rng, dirs, sessions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lowering_rule_answers_like_the_reference_evaluator() {
    let (seed, mut rng, _dirs, [on, off, one]) = three_ways(0x10_3e_7e_d5).await;
    let (mut answered, mut nonempty, mut sampled, mut on_datafusion) = (0, 0, 0, 0);
    let mut cursors = 0;
    for n in 0..1500 {
        let text = query(&mut rng);
        let q = Query::from_json(&text).expect("generated query parses");
        let (got, oracle, want) = (on.find(&q).await, off.find(&q).await, one.find(&q).await);
        let ok = got.is_ok();
        match (got, oracle, want) {
            (Ok(g), Ok(o), Ok(w)) => {
                let (g, o, w) = (rows_json(&g), rows_json(&o), rows_json(&w));
                same(
                    &g,
                    &o,
                    &format!("query {n} (seed {seed}) lowered vs evaluated: {text}"),
                );
                same(
                    &g,
                    &w,
                    &format!("query {n} (seed {seed}) vs the memory reference: {text}"),
                );
                answered += 1;
                if !g.is_empty() {
                    nonempty += 1;
                }
                // A keyset cursor at one of the rows: the rows after it.
                if text.get("fields").is_none() && w.len() >= 2 && rng.chance(40) {
                    let at = rng.below(w.len() - 1);
                    let label = format!("query {n} (seed {seed})");
                    after_row(&[&on, &off, &one], &text, &w, at, &label).await;
                    cursors += 1;
                }
            }
            (Err(g), Err(o), Err(w)) => {
                assert_eq!(g.category(), o.category(), "query {n}: {text}: {g} / {o}");
                assert_eq!(g.category(), w.category(), "query {n}: {text}: {g} / {w}");
            }
            (g, o, w) => panic!(
                "query {n} (seed {seed}): {text}\nlowered: {g:?}\nevaluated: {o:?}\nreference: {w:?}"
            ),
        }
        if n % 25 == 0 && ok {
            sampled += 1;
            let plan = on.explain(&q).await.expect("explain");
            if plan.iter().any(|s| s.location == "datafusion") {
                on_datafusion += 1;
            }
        }
    }
    println!(
        "{answered} of 1500 queries answered ({nonempty} with rows, {cursors} paged on by a cursor); {on_datafusion} of {sampled} explained ran on DataFusion"
    );
    assert!(cursors > 200, "only {cursors} cursor pages");
    assert!(answered > 1000, "only {answered} queries were answered");
    assert!(nonempty > 600, "only {nonempty} queries returned rows");
    assert!(
        sampled >= 30 && on_datafusion == sampled,
        "{on_datafusion} of {sampled} sampled queries ran on DataFusion"
    );
}

/// A grouping key: a column, or a date bucket of one (sometimes in a
/// timezone other than UTC).
fn group_key(rng: &mut Rng, n: usize) -> Json {
    match rng.below(10) {
        0..=4 => json!(rng.pick(&["k", "r.k", "t", "b", "i", "d", "f", "tm", "r.t"])),
        5..=7 => json!({
            "field": rng.pick(&["dt", "ts"]),
            "dateGranularity": rng.pick(&["day", "week", "month", "quarter", "year"]),
            "alias": format!("bucket{n}"),
        }),
        _ => json!({
            "field": "ts",
            "dateGranularity": rng.pick(&["day", "week", "month"]),
            "timezone": rng.pick(&["Asia/Tokyo", "America/New_York", "Pacific/Kiritimati"]),
            "alias": format!("bucket{n}"),
        }),
    }
}

/// One aggregation named `alias`; whether its value is a count (an exact
/// integer the generated `having` and sorts may use).
fn aggregation(rng: &mut Rng, alias: &str) -> (Json, bool) {
    let columns: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let (mut a, counted) = match rng.below(9) {
        0 => (json!({"function": "count"}), true),
        1 => (
            json!({"function": "count", "field": rng.pick(&columns)}),
            true,
        ),
        2 => (
            json!({"function": "count_distinct", "field": rng.pick(&columns)}),
            true,
        ),
        3 | 4 => (
            json!({"function": "sum", "field": rng.pick(&["i", "r.i", "i2", "f", "r.f", "d"])}),
            false,
        ),
        5 | 6 => (
            json!({"function": "avg", "field": rng.pick(&["i", "r.i", "f", "r.f", "d"])}),
            false,
        ),
        _ => (
            json!({"function": rng.pick(&["min", "max"]), "field": rng.pick(&columns)}),
            false,
        ),
    };
    a["alias"] = json!(alias);
    if rng.chance(20) && a["function"] != "count_distinct" {
        a["distinct"] = json!(true);
    }
    if rng.chance(25) {
        a["filter"] = condition(rng);
    }
    (a, counted)
}

fn aggregate_query(rng: &mut Rng) -> (Json, bool) {
    let join_type = *rng.pick(&["full", "left", "inner", "right"]);
    let mut q = json!({
        "object": "l",
        "joins": [{"type": join_type, "object": "r", "alias": "r", "on": {"k": {"$field": "r.k"}}}],
    });
    if rng.chance(50) {
        q["where"] = filter(rng, 1);
    }
    let groups: Vec<Json> = (0..rng.below(3)).map(|n| group_key(rng, n)).collect();
    let outputs: Vec<String> = groups
        .iter()
        .map(|g| match g {
            Json::String(s) => s.clone(),
            g => g["alias"].as_str().expect("alias").to_owned(),
        })
        .collect();
    let mut aggs = Vec::new();
    let mut counts = Vec::new();
    for n in 0..=rng.below(4) {
        let alias = format!("a{n}");
        let (mut a, counted) = aggregation(rng, &alias);
        if counted {
            counts.push(alias);
        }
        // A float sum's last digits depend on the order of addition: its
        // output is compared within a tolerance (see `close`).
        if matches!(a["function"].as_str(), Some("sum" | "avg"))
            && matches!(a["field"].as_str(), Some("f" | "r.f"))
        {
            a["alias"] = json!(format!("x{n}"));
        }
        aggs.push(a);
    }
    if !groups.is_empty() {
        q["groupBy"] = json!(groups);
    }
    q["aggregations"] = json!(aggs);
    if rng.chance(30) {
        let mut having = Vec::new();
        if let Some(c) = counts.first() {
            having.push(json!({ c: { "$gte": rng.below(3) } }));
        }
        if let Some(g) = outputs.first()
            && rng.chance(50)
        {
            having.push(json!({ g: { "$ne": Json::Null } }));
        }
        if !having.is_empty() {
            q["having"] = json!({ "$and": having });
        }
    }
    // Sorted by a count or a group output (never by a float sum, whose
    // last digits depend on the order of addition), then paged.
    let ordered = !outputs.is_empty() && rng.chance(60);
    if ordered {
        let mut order = Vec::new();
        if let Some(c) = counts.first()
            && rng.chance(50)
        {
            order.push(json!({"field": c, "order": rng.pick(&["asc", "desc"])}));
        }
        let mut item = json!({"field": rng.pick(&outputs), "order": rng.pick(&["asc", "desc"])});
        if rng.chance(30) {
            item["nulls"] = json!(rng.pick(&["first", "last"]));
        }
        order.push(item);
        q["orderBy"] = json!(order);
        if rng.chance(50) {
            q["limit"] = json!(rng.below(6));
        }
        if rng.chance(30) {
            q["offset"] = json!(rng.below(4));
        }
    }
    (q, ordered || outputs.is_empty())
}

/// Equal rows, but the sums and averages of floats (columns `x…`) within a
/// relative 1e-9: their last digits depend on the order of addition.
/// Everything else, integer and decimal averages included, is exact.
fn close(a: &Json, b: &Json) -> bool {
    let near = |a: &Json, b: &Json| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    };
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k).is_some_and(|w| {
                        if k.starts_with('x') {
                            near(v, w)
                        } else {
                            v == w
                        }
                    })
                })
        }
        _ => a == b,
    }
}

/// [`same`] with [`close`] values; rows of an unordered answer compared as
/// multisets.
fn same_groups(got: &[Json], want: &[Json], ordered: bool, what: &str) {
    let sorted = |rows: &[Json]| {
        let mut rows = rows.to_vec();
        if !ordered {
            rows.sort_by_key(Json::to_string);
        }
        rows
    };
    same_by(&sorted(got), &sorted(want), close, what);
}

/// Aggregations over rows joined across datasources (group by columns of
/// both sides and date buckets, every aggregate function DataFusion runs,
/// `distinct` and `filter` on them, `having`, sorted and paged groups) on
/// DataFusion, in the reference evaluator over the same datasources, and
/// on the memory reference: the same groups and values, or errors of the
/// same kind (an integer sum beyond 64 bits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregation_answers_like_the_reference_evaluator() {
    let (seed, mut rng, _dirs, sessions) = three_ways(0xa6_6e_6a_7e).await;
    let (mut answered, mut grouped, mut failed, mut sampled, mut on_datafusion) = (0, 0, 0, 0, 0);
    for n in 0..600 {
        let (text, ordered) = aggregate_query(&mut rng);
        let q = Query::from_json(&text).expect("generated query parses");
        let mut answers = Vec::new();
        for s in &sessions {
            answers.push(s.find(&q).await);
        }
        let what = |vs: &str| format!("aggregate query {n} (seed {seed}) {vs}: {text}");
        match (&answers[0], &answers[1], &answers[2]) {
            (Ok(g), Ok(o), Ok(w)) => {
                let (g, o, w) = (rows_json(g), rows_json(o), rows_json(w));
                same_groups(&g, &o, ordered, &what("lowered vs evaluated"));
                same_groups(&g, &w, ordered, &what("vs the memory reference"));
                answered += 1;
                if g.len() > 1 {
                    grouped += 1;
                }
            }
            (Err(g), Err(o), Err(w)) => {
                assert_eq!(g.category(), o.category(), "{}: {g} / {o}", what(""));
                assert_eq!(g.category(), w.category(), "{}: {g} / {w}", what(""));
                failed += 1;
            }
            (g, o, w) => panic!(
                "{}\nlowered: {g:?}\nevaluated: {o:?}\nreference: {w:?}",
                what("")
            ),
        }
        if n % 10 == 0 && answers[0].is_ok() {
            sampled += 1;
            let plan = sessions[0].explain(&q).await.expect("explain");
            if plan.iter().any(|s| s.location == "datafusion") {
                on_datafusion += 1;
            }
        }
    }
    println!(
        "{answered} of 600 aggregate queries answered ({grouped} with several groups), {failed} failed alike; {on_datafusion} of {sampled} explained ran on DataFusion"
    );
    assert!(
        answered > 350,
        "only {answered} aggregate queries were answered"
    );
    assert!(grouped > 200, "only {grouped} answers had several groups");
    assert!(failed > 5, "only {failed} queries overflowed");
    assert!(
        on_datafusion == sampled,
        "{on_datafusion} of {sampled} sampled aggregate queries ran on DataFusion"
    );
}
