//! Queries whose joins cross datasources (SQLite and memory), against the
//! memory reference holding every object in one datasource.

use futures::TryStreamExt;
use objectql::{Engine, Query, Record, Value};
use serde_json::{Value as Json, json};

/// Three objects: `cust` and `item` share a datasource, `ord` lives in
/// another, so a join chain crosses datasources once or twice.
const OBJECTS: [(&str, &str); 3] = [("cust", "a"), ("ord", "b"), ("item", "a")];

fn schema(name: &str, datasource: &str) -> Json {
    let fields = match name {
        "cust" => json!({
            "name": {"type": "text"},
            "tier": {"type": "text"},
            "score": {"type": "integer"}
        }),
        "ord" => json!({
            "cust_id": {"type": "text"},
            "total": {"type": "integer"},
            "status": {"type": "text"}
        }),
        _ => json!({
            "ord_id": {"type": "text"},
            "qty": {"type": "integer"},
            "sku": {"type": "text"}
        }),
    };
    json!({"name": name, "datasource": datasource, "fields": fields})
}

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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[i]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TIERS: [Option<&str>; 4] = [Some("gold"), Some("silver"), Some("Gold"), None];
const STATUSES: [&str; 3] = ["open", "paid", "void"];
const SKUS: [Option<&str>; 4] = [Some("a-1"), Some("b_2"), Some("a%3"), None];

/// Rows with NULLs, dangling references and duplicate keys.
fn fixtures(rng: &mut Rng) -> Vec<(&'static str, Vec<Record>)> {
    let opt = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    let mut custs = Vec::new();
    for i in 0..24 {
        let mut r = Record::new();
        r.insert("id".into(), Value::from(format!("c{i:02}")));
        r.insert("name".into(), Value::from(format!("n{}", i % 7)));
        r.insert("tier".into(), opt(*rng.pick(&TIERS)));
        let score = if rng.chance(15) {
            Value::Null
        } else {
            Value::Int(i64::try_from(rng.below(50)).unwrap_or(0))
        };
        r.insert("score".into(), score);
        custs.push(r);
    }
    let mut ords = Vec::new();
    for i in 0..60 {
        let mut r = Record::new();
        r.insert("id".into(), Value::from(format!("o{i:02}")));
        let cust = match rng.below(10) {
            0 => Value::Null,
            1 => Value::from("c99"),
            _ => Value::from(format!("c{:02}", rng.below(24))),
        };
        r.insert("cust_id".into(), cust);
        r.insert(
            "total".into(),
            Value::Int(i64::try_from(rng.below(100)).unwrap_or(0)),
        );
        r.insert("status".into(), Value::from(*rng.pick(&STATUSES)));
        ords.push(r);
    }
    let mut items = Vec::new();
    for i in 0..90 {
        let mut r = Record::new();
        r.insert("id".into(), Value::from(format!("i{i:02}")));
        let ord = if rng.chance(8) {
            Value::Null
        } else {
            Value::from(format!("o{:02}", rng.below(64)))
        };
        r.insert("ord_id".into(), ord);
        r.insert(
            "qty".into(),
            Value::Int(i64::try_from(rng.below(9)).unwrap_or(0) - 2),
        );
        r.insert("sku".into(), opt(*rng.pick(&SKUS)));
        items.push(r);
    }
    vec![("cust", custs), ("ord", ords), ("item", items)]
}

/// An engine holding the objects: spread over a SQLite file (`a`) and
/// memory (`b`), or all in one memory datasource (the reference).
async fn engine(spread: bool, dir: &std::path::Path, data: &[(&str, Vec<Record>)]) -> Engine {
    let engine = Engine::new();
    if spread {
        let url = format!("sqlite://{}", dir.join("a.db").display());
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
    for (name, ds) in OBJECTS {
        let ds = if spread { ds } else { "m" };
        engine
            .register_json(&schema(name, ds))
            .await
            .expect("register");
    }
    let db = engine.default_session();
    for (name, rows) in data {
        db.insert_many(name, rows.clone()).await.expect("fixtures");
    }
    engine
}

fn alias_of(object: &str) -> &'static str {
    match object {
        "cust" => "c",
        "ord" => "o",
        _ => "i",
    }
}

/// How `from` joins `to` (both directions of the two references).
fn join_on(from: &str, from_prefix: &str, to: &str) -> Option<Json> {
    let to_alias = alias_of(to);
    let (l, r) = match (from, to) {
        ("ord", "cust") => (format!("{from_prefix}cust_id"), format!("{to_alias}.id")),
        ("cust", "ord") => (format!("{from_prefix}id"), format!("{to_alias}.cust_id")),
        ("item", "ord") => (format!("{from_prefix}ord_id"), format!("{to_alias}.id")),
        ("ord", "item") => (format!("{from_prefix}id"), format!("{to_alias}.ord_id")),
        _ => return None,
    };
    Some(json!({ l: {"$field": r} }))
}

/// A condition on one column of `object` (named with `prefix`).
fn condition(rng: &mut Rng, object: &str, prefix: &str) -> Json {
    let f = |name: &str| format!("{prefix}{name}");
    match (object, rng.below(6)) {
        ("cust", 0) => json!({ f("tier"): {"$ne": "gold"} }),
        ("cust", 1) => json!({ f("score"): {"$gte": rng.below(50)} }),
        ("cust", 2) => json!({ f("tier"): {"$in": ["silver", "Gold"]} }),
        ("cust", 3) => json!({ f("score"): null }),
        ("cust", _) => json!({"$not": { f("name"): {"$startsWith": "n1"} }}),
        ("ord", 0) => json!({ f("status"): "paid" }),
        ("ord", 1) => json!({ f("total"): {"$lt": rng.below(100)} }),
        ("ord", 2) => json!({ f("status"): {"$nin": ["void"]} }),
        ("ord", 3) => json!({ f("cust_id"): {"$ne": null} }),
        ("ord", _) => json!({"$or": [{ f("total"): {"$gt": 80} }, { f("status"): "open" }]}),
        (_, 0) => json!({ f("sku"): {"$contains": "_"} }),
        (_, 1) => json!({ f("qty"): {"$between": [0, 3]} }),
        (_, 2) => json!({ f("sku"): {"$ne": "a-1"} }),
        (_, 3) => json!({ f("sku"): {"$like": "a\\%%"} }),
        (_, _) => json!({ f("qty"): {"$lte": 0} }),
    }
}

/// A query joining two or three of the objects, with filters on every
/// side, and a sort with paging or an aggregation.
fn query(rng: &mut Rng) -> Json {
    let base = *rng.pick(&["cust", "ord", "item"]);
    let mut chain: Vec<(&str, String)> = vec![(base, String::new())];
    let mut joins = Vec::new();
    let types = ["inner", "left", "right", "full"];
    let wanted = 1 + rng.below(2);
    for _ in 0..wanted {
        // Join an object not yet in the chain to one that is.
        let candidates: Vec<(usize, &str)> = chain
            .iter()
            .enumerate()
            .flat_map(|(k, (o, _))| {
                ["cust", "ord", "item"]
                    .into_iter()
                    .filter(|t| !chain.iter().any(|(c, _)| c == t))
                    .filter(move |t| join_on(o, "", t).is_some())
                    .map(move |t| (k, t))
            })
            .collect();
        if candidates.is_empty() {
            break;
        }
        let (k, to) = *rng.pick(&candidates);
        let (from, prefix) = chain[k].clone();
        let mut on = join_on(from, &prefix, to).expect("joinable");
        if rng.chance(20) {
            on = json!({"$and": [on, condition(rng, to, &format!("{}.", alias_of(to)))]});
        }
        joins.push(json!({
            "type": rng.pick(&types), "object": to, "alias": alias_of(to), "on": on
        }));
        chain.push((to, format!("{}.", alias_of(to))));
    }
    let mut conds = Vec::new();
    for (object, prefix) in &chain {
        if rng.chance(45) {
            conds.push(condition(rng, object, prefix));
        }
    }
    if chain.len() > 1 && rng.chance(20) {
        // A disjunction across datasources.
        let (a, pa) = &chain[0];
        let (b, pb) = &chain[1];
        conds.push(json!({"$or": [condition(rng, a, pa), condition(rng, b, pb)]}));
    }
    let mut q = json!({"object": base, "joins": joins});
    if !conds.is_empty() {
        q["where"] = json!({ "$and": conds });
    }
    if rng.chance(30) {
        let (object, prefix) = rng.pick(&chain).clone();
        let key = match object {
            "cust" => "tier",
            "ord" => "status",
            _ => "sku",
        };
        q["groupBy"] = json!([format!("{prefix}{key}")]);
        q["aggregations"] = json!([
            {"function": "count", "alias": "n"},
            {"function": "sum", "field": format!("{}total", chain.iter().find(|(o, _)| *o == "ord").map_or("", |(_, p)| p.as_str())), "alias": "s"}
        ]);
        if chain.iter().all(|(o, _)| *o != "ord") {
            q["aggregations"] = json!([{"function": "count", "alias": "n"}]);
        }
    } else {
        // A total order: the sort key, then every object's primary key.
        let (object, prefix) = rng.pick(&chain).clone();
        let key = match object {
            "cust" => "score",
            "ord" => "total",
            _ => "qty",
        };
        let mut order =
            vec![json!({"field": format!("{prefix}{key}"), "order": rng.pick(&["asc", "desc"])})];
        for (_, p) in &chain {
            order.push(json!({"field": format!("{p}id")}));
        }
        q["orderBy"] = json!(order);
        if rng.chance(50) {
            q["limit"] = json!(1 + rng.below(15));
        }
        if rng.chance(30) {
            q["offset"] = json!(rng.below(10));
        }
    }
    q
}

fn rows_json(rows: &[Record]) -> Vec<Json> {
    rows.iter()
        .map(|r| Json::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()))
        .collect()
}

fn sorted(mut rows: Vec<Json>) -> Vec<Json> {
    rows.sort_by_key(Json::to_string);
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_generated_joins_across_datasources_match_the_memory_reference() {
    let seed = std::env::var("OBJECTQL_ACROSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b1e_c7d1);
    let mut rng = Rng(seed);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    // The same spread, sending no join keys: narrowing must change nothing.
    let dir_off = tempfile::tempdir().expect("tempdir");
    let unreduced = engine(true, dir_off.path(), &data).await;
    unreduced.set_join_key_limit(0);
    let (on, one) = (spread.default_session(), reference.default_session());
    let off = unreduced.default_session();
    let mut nonempty = 0;
    let mut narrowed = 0;
    for n in 0..1000 {
        let text = query(&mut rng);
        let q = Query::from_json(&text).expect("generated query parses");
        let want = one.find(&q).await;
        let got = on.find(&q).await;
        // Groups without an `orderBy` come in no particular order.
        let unordered = |rows: Vec<Json>| {
            if q.is_aggregate() && q.order_by.is_empty() {
                sorted(rows)
            } else {
                rows
            }
        };
        match (&got, off.find(&q).await) {
            (Ok(g), Ok(o)) => assert_eq!(
                unordered(rows_json(g)),
                unordered(rows_json(&o)),
                "query {n} (seed {seed}) with and without join keys: {text}"
            ),
            (Err(g), Err(o)) => assert_eq!(g.category(), o.category(), "query {n}: {text}"),
            (g, o) => panic!(
                "query {n} (seed {seed}): {text}
keys sent: {g:?}
no keys: {o:?}"
            ),
        }
        let (want, got) = match (want, got) {
            (Ok(w), Ok(g)) => (rows_json(&w), rows_json(&g)),
            (Err(w), Err(g)) => {
                assert_eq!(
                    w.category(),
                    g.category(),
                    "query {n} (seed {seed}): {text}"
                );
                continue;
            }
            (w, g) => panic!("query {n} (seed {seed}): {text}\nreference: {w:?}\nspread: {g:?}"),
        };
        if !want.is_empty() {
            nonempty += 1;
        }
        assert_eq!(
            unordered(got),
            unordered(want),
            "query {n} (seed {seed}): {text}"
        );
        let plan = on.explain(&q).await.expect("explain");
        if plan.iter().any(|st| st.detail.contains("narrowed by")) {
            narrowed += 1;
        }
    }
    println!(
        "{nonempty} of 1000 generated queries returned rows; {narrowed} narrowed a side by keys"
    );
    assert!(
        nonempty > 600,
        "only {nonempty} queries returned rows: the generator does not discriminate"
    );
    assert!(
        narrowed > 200,
        "only {narrowed} queries sent keys to a joined side"
    );
}

#[tokio::test]
async fn every_read_api_serves_a_join_across_datasources() {
    let mut rng = Rng(7);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    let (on, one) = (spread.default_session(), reference.default_session());
    let q = Query::from_json(&json!({
        "object": "ord",
        "fields": ["id", "total", "c.name", "c.tier"],
        "where": {"status": {"$ne": "void"}, "c.score": {"$gte": 10}},
        "joins": [{"type": "inner", "object": "cust", "alias": "c", "on": {"cust_id": {"$field": "c.id"}}}],
        "orderBy": [{"field": "c.name"}, {"field": "id", "order": "desc"}]
    }))
    .expect("query");
    let want = one.find(&q).await.expect("reference");
    assert!(want.len() > 5, "the fixture joins: {}", want.len());
    assert_eq!(on.find(&q).await.expect("find"), want);
    let streamed: Vec<Record> = on
        .find_stream(&q)
        .await
        .expect("stream")
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(streamed, want);

    let batches: Vec<_> = on
        .find_arrow(&q)
        .await
        .expect("arrow")
        .try_collect()
        .await
        .expect("batches");
    let arrow_rows = batches.iter().fold(0, |n, b| n + b.num_rows());
    assert_eq!(arrow_rows, want.len());
    let names: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "total", "c.name", "c.tier"]);

    let first = on.find_one(&q).await.expect("find_one");
    assert_eq!(first.as_ref(), want.first());

    let agg = Query::from_json(&json!({
        "object": "ord",
        "joins": [{"type": "left", "object": "cust", "alias": "c", "on": {"cust_id": {"$field": "c.id"}}}],
        "groupBy": ["c.tier"],
        "aggregations": [{"function": "count", "alias": "n"}, {"function": "sum", "field": "total", "alias": "s"}],
        "having": {"n": {"$gt": 1}},
        "orderBy": [{"field": "c.tier"}]
    }))
    .expect("aggregate");
    assert_eq!(
        on.aggregate(&agg).await.expect("aggregate"),
        one.aggregate(&agg).await.expect("reference aggregate")
    );

    // Expand on top of a cross-datasource join.
    let expanded = Query::from_json(&json!({
        "object": "item",
        "fields": ["id", "ord_id", "o.total"],
        "joins": [{"type": "inner", "object": "ord", "alias": "o", "on": {"ord_id": {"$field": "o.id"}}}],
        "orderBy": [{"field": "id"}],
        "limit": 5
    }))
    .expect("query");
    assert_eq!(
        on.find(&expanded).await.expect("find"),
        one.find(&expanded).await.expect("reference")
    );

    // EXPLAIN names both datasources, the narrowing and the local join.
    let plan = on.explain(&q).await.expect("explain");
    let text: Vec<String> = plan
        .iter()
        .map(|st| format!("{} {} {}", st.location, st.operation, st.detail))
        .collect();
    let text = text.join("\n");
    assert!(
        text.contains("datasource `b`") && text.contains("datasource `a`"),
        "{text}"
    );
    assert!(text.contains("narrowed by the left side's keys"), "{text}");
    // The join runs on DataFusion with the `federation` feature, in the
    // reference evaluator without it.
    let join = if cfg!(feature = "federation") {
        "HashJoinExec: mode=CollectLeft, join_type=Inner"
    } else {
        "local join inner join `cust` as `c`"
    };
    assert!(text.contains(join), "{text}");
    assert!(text.contains("driver:sqlite"), "{text}");
}

#[tokio::test]
async fn join_keys_beyond_the_limit_are_not_sent_and_the_answer_is_the_same() {
    let mut rng = Rng(11);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    let q = Query::from_json(&json!({
        "object": "cust",
        "joins": [{"type": "inner", "object": "ord", "alias": "o", "on": {"id": {"$field": "o.cust_id"}}}],
        "orderBy": [{"field": "id"}, {"field": "o.id"}]
    }))
    .expect("query");
    let want = reference
        .default_session()
        .find(&q)
        .await
        .expect("reference");
    spread.set_join_key_limit(3);
    let s = spread.default_session();
    assert_eq!(s.find(&q).await.expect("find"), want);
    let plan = s.explain(&q).await.expect("explain");
    // The plan announces the narrowing; with 24 keys over a limit of 3 the
    // run reads `ord` whole, which the answer above shows changes nothing.
    assert!(plan.iter().any(|st| st.detail.contains("up to 3 keys")));
    spread.set_join_key_limit(0);
    assert_eq!(s.find(&q).await.expect("find"), want);
}

#[tokio::test]
async fn a_cross_datasource_join_inside_a_transaction_reads_its_own_writes() {
    let mut rng = Rng(3);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let db = spread.default_session();
    let tx = db
        .begin("a", objectql::IsolationLevel::default())
        .await
        .expect("begin");
    let mut c = Record::new();
    c.insert("id".into(), Value::from("cnew"));
    c.insert("name".into(), Value::from("fresh"));
    tx.insert("cust", c).await.expect("insert");
    let mut o = Record::new();
    o.insert("id".into(), Value::from("onew"));
    o.insert("cust_id".into(), Value::from("cnew"));
    o.insert("total".into(), Value::Int(5));
    o.insert("status".into(), Value::from("open"));
    // `ord` lives in `b`, outside the transaction.
    db.insert("ord", o).await.expect("insert");
    let q = Query::from_json(&json!({
        "object": "ord",
        "where": {"id": "onew"},
        "joins": [{"type": "inner", "object": "cust", "alias": "c", "on": {"cust_id": {"$field": "c.id"}}}]
    }))
    .expect("query");
    let inside = tx.find(&q).await.expect("inside");
    assert_eq!(inside.len(), 1, "the transaction sees its own customer");
    assert_eq!(inside[0].get("c.name"), Some(&Value::from("fresh")));
    let outside = db.find(&q).await.expect("outside");
    assert!(
        outside.is_empty(),
        "others do not see the uncommitted customer"
    );
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_foreign_key_into_another_datasource_is_refused() {
    let engine = Engine::new();
    engine.add_datasource("x", "memory://").await.expect("x");
    engine.add_datasource("y", "memory://").await.expect("y");
    let team = json!({"name": "team", "datasource": "x", "fields": {"name": {"type": "text"}}});
    let member = |ds: &str, behavior: Option<&str>| {
        let mut field = json!({"type": "lookup", "reference": "team"});
        if let Some(b) = behavior {
            field["deleteBehavior"] = json!(b);
        }
        json!({"name": "member", "datasource": ds, "fields": {"team": field}})
    };
    engine.register_json(&team).await.expect("team");
    let e = engine
        .register_json(&member("y", Some("cascade")))
        .await
        .expect_err("a cascade into another datasource cannot be enforced");
    assert_eq!(e.category(), "unsupported", "{e}");
    assert!(e.to_string().contains("`member.team`"), "{e}");
    // Without a deleteBehavior the reference is plain data: allowed, and
    // `expand` follows it across datasources.
    engine
        .register_json(&member("y", None))
        .await
        .expect("a plain reference across datasources");
}

/// A join on one datasource whose shape the driver refuses at plan time
/// (SQLite's compiler refuses a join alias equal to the base table's name)
/// is cut into one query per object and joined locally, and answers what
/// the memory reference answers; the join the driver takes stays with the
/// base object.
#[tokio::test]
async fn a_join_shape_the_driver_refuses_runs_as_one_query_per_object() {
    let mut rng = Rng(5);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    // `cust` and `item` both live in SQLite (`a`).
    let q = Query::from_json(&json!({
        "object": "item",
        "fields": ["id", "qty", "cust.name"],
        "where": {"qty": {"$gt": 0}},
        "joins": [{"type": "left", "object": "cust", "alias": "item",
                   "on": {"ord_id": {"$field": "item.id"}}},
                  {"type": "left", "object": "cust", "alias": "cust",
                   "on": {"sku": {"$field": "cust.id"}}}],
        "orderBy": [{"field": "id"}]
    }))
    .expect("query");
    let want = reference
        .default_session()
        .find(&q)
        .await
        .expect("reference");
    assert!(want.len() > 10, "{want:?}");
    let s = spread.default_session();
    assert_eq!(s.find(&q).await.expect("find"), want);
    let streamed: Vec<Record> = s
        .find_stream(&q)
        .await
        .expect("stream")
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(streamed, want);
    let plan = s.explain(&q).await.expect("explain");
    let queries = plan
        .iter()
        .filter(|st| st.operation == "datasource query")
        .count();
    assert_eq!(queries, 3, "one query per object: {plan:?}");
    // Without the refused alias, both joins go to SQLite in one query.
    let fine = Query::from_json(&json!({
        "object": "item",
        "fields": ["id", "qty", "cust.name"],
        "where": {"qty": {"$gt": 0}},
        "joins": [{"type": "left", "object": "cust", "alias": "other",
                   "on": {"ord_id": {"$field": "other.id"}}},
                  {"type": "left", "object": "cust", "alias": "cust",
                   "on": {"sku": {"$field": "cust.id"}}}],
        "orderBy": [{"field": "id"}]
    }))
    .expect("query");
    let plan = s.explain(&fine).await.expect("explain");
    assert!(
        plan.iter().all(|st| st.operation != "datasource query"),
        "{plan:?}"
    );
    assert_eq!(
        s.find(&fine).await.expect("find"),
        reference
            .default_session()
            .find(&fine)
            .await
            .expect("reference")
    );
}

/// Arrow output of a join on one datasource carries the joined columns
/// (they were dropped, or refused when projected).
#[tokio::test]
async fn arrow_output_of_a_join_on_one_datasource_carries_the_joined_columns() {
    let mut rng = Rng(8);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let s = spread.default_session();
    for fields in [Some(json!(["id", "c.name"])), None] {
        // `item` and `cust` share SQLite: one driver query.
        let mut q = json!({
            "object": "item",
            "joins": [{"type": "inner", "object": "cust", "alias": "c",
                       "on": {"qty": {"$field": "c.score"}}}],
            "orderBy": [{"field": "id"}, {"field": "c.id"}]
        });
        if let Some(f) = &fields {
            q["fields"] = f.clone();
        }
        let q = Query::from_json(&q).expect("query");
        let rows = s.find(&q).await.expect("find");
        assert!(!rows.is_empty());
        let batches: Vec<arrow_array::RecordBatch> = s
            .find_arrow(&q)
            .await
            .expect("arrow")
            .try_collect()
            .await
            .expect("batches");
        let n: usize = batches.iter().map(arrow_array::RecordBatch::num_rows).sum();
        assert_eq!(n, rows.len());
        let schema = batches[0].schema();
        assert!(schema.field_with_name("c.name").is_ok(), "{schema:?}");
        let names = batches[0]
            .column_by_name("c.name")
            .expect("c.name")
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("text")
            .value(0)
            .to_owned();
        assert_eq!(Some(&Value::from(names)), rows[0].get("c.name"));
    }
}

/// A query cut into groups inside a transaction on another datasource than
/// its base object: the decision of what the base's driver joins is made
/// on that datasource's driver, outside the transaction, like the reads.
#[tokio::test]
async fn a_cut_query_in_a_transaction_on_another_datasource_runs() {
    let mut rng = Rng(13);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    // `item` and `cust` on `a` (one driver query), `ord` on `b`.
    let q = Query::from_json(&json!({
        "object": "item",
        "joins": [{"type": "inner", "object": "cust", "alias": "c", "on": {"qty": {"$field": "c.score"}}},
                  {"type": "left", "object": "ord", "alias": "o", "on": {"ord_id": {"$field": "o.id"}}}],
        "orderBy": [{"field": "id"}, {"field": "c.id"}]
    }))
    .expect("query");
    let want = reference
        .default_session()
        .find(&q)
        .await
        .expect("reference");
    assert!(!want.is_empty());
    let db = spread.default_session();
    let tx = db
        .begin("b", objectql::IsolationLevel::default())
        .await
        .expect("begin");
    assert_eq!(tx.find(&q).await.expect("find in the transaction"), want);
    assert!(!tx.explain(&q).await.expect("explain").is_empty());
    tx.rollback().await.expect("rollback");
}

/// `explain_analyze` runs the query and reports, exactly, the rows each
/// datasource shipped and the rows returned: on DataFusion (in its tree,
/// under each scan, with the join keys the scan was sent), in the
/// reference evaluator (a step after each datasource query), and for a
/// query on one datasource. The figures are the ones the data implies.
#[tokio::test]
async fn explain_analyze_reports_the_rows_each_datasource_shipped() {
    let mut rng = Rng(5);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let spread = engine(true, dir.path(), &data).await;
    let reference = engine(false, dir.path(), &data).await;
    let one = reference.default_session();
    let q = Query::from_json(&json!({
        "object": "cust",
        "joins": [{"type": "inner", "object": "ord", "alias": "o", "on": {"id": {"$field": "o.cust_id"}}}],
        "where": {"tier": "gold"},
        "orderBy": [{"field": "id"}, {"field": "o.id"}]
    }))
    .expect("query");
    // What the data implies: the gold customers, their orders, the rows.
    let gold = one
        .find(&Query::from_json(&json!({"object": "cust", "where": {"tier": "gold"}})).expect("q"))
        .await
        .expect("gold");
    let ids: Vec<Value> = gold.iter().map(|r| r["id"].clone()).collect();
    let orders = one
        .find(
            &Query::from_json(&json!({"object": "ord", "where": {"cust_id": {"$in": ids.iter().map(Value::to_json).collect::<Vec<_>>()}}}))
                .expect("q"),
        )
        .await
        .expect("orders");
    let returned = one.find(&q).await.expect("reference").len();
    assert!(
        gold.len() > 1 && !orders.is_empty() && returned > 0,
        "the fixtures discriminate"
    );
    let ord_total = data
        .iter()
        .find(|(n, _)| *n == "ord")
        .map_or(0, |(_, r)| r.len());
    assert!(orders.len() < ord_total, "the keys narrow `ord`");

    let s = spread.default_session();
    // On DataFusion (with the `federation` feature): the tree's scans.
    #[cfg(feature = "federation")]
    {
        let steps = s.explain_analyze(&q).await.expect("explain analyze");
        let tree = &steps
            .iter()
            .find(|st| st.location == "datafusion")
            .expect("a DataFusion step")
            .detail;
        let shipped = |scan: &str| -> usize {
            let lines: Vec<&str> = tree
                .lines()
                .skip_while(|l| !l.contains(scan))
                .take(4)
                .collect();
            lines
                .iter()
                .find_map(|l| l.trim().strip_prefix("rows shipped: "))
                .unwrap_or_else(|| panic!("no rows shipped under {scan}:\n{tree}"))
                .parse()
                .expect("a count")
        };
        assert_eq!(shipped("driver:sqlite a.cust"), gold.len(), "{tree}");
        assert_eq!(shipped("driver:memory b.ord"), orders.len(), "{tree}");
        assert!(tree.contains("join keys sent"), "{tree}");
        let last = steps.last().expect("steps");
        assert_eq!(
            (last.operation.as_str(), last.detail.clone()),
            ("rows returned", returned.to_string())
        );
        spread.set_joins_on_datafusion(false);
    }

    // In the reference evaluator: a step after each datasource query.
    let steps = s.explain_analyze(&q).await.expect("explain analyze");
    let counts: Vec<String> = steps
        .iter()
        .filter(|st| st.operation == "rows shipped")
        .map(|st| st.detail.clone())
        .collect();
    assert_eq!(
        counts,
        [gold.len().to_string(), orders.len().to_string()],
        "{steps:?}"
    );
    assert_eq!(steps.last().expect("steps").detail, returned.to_string());

    // One datasource: the driver's rows.
    let single =
        Query::from_json(&json!({"object": "cust", "where": {"tier": "gold"}})).expect("q");
    let steps = s.explain_analyze(&single).await.expect("explain analyze");
    let counts: Vec<&str> = steps
        .iter()
        .filter(|st| st.operation == "rows shipped" || st.operation == "rows returned")
        .map(|st| st.detail.as_str())
        .collect();
    assert_eq!(
        counts,
        [gold.len().to_string(), gold.len().to_string()],
        "{steps:?}"
    );
}
