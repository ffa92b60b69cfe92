//! 1,000 generated SQL queries (joins of two or three objects, filters on
//! every side, aggregates, sorts with paging) over the same data in four
//! layouts:
//!
//! - `whole`: every object in one SQLite datasource, so whole subtrees
//!   (joins, filters, grouping, sort, paging) go to SQLite as one query;
//! - `spread`: `cust` and `item` in SQLite, `ord` in memory, so DataFusion
//!   joins across datasources and pushes what each side can run;
//! - `paired`: `ord` and `item` in SQLite, `cust` in memory, so inner
//!   joins are regrouped for `ord ⋈ item` to go to SQLite whole;
//! - the reference: every object in memory with pushdown off, so DataFusion
//!   alone answers, with SQL's own meaning.
//!
//! Every answer must equal the reference's (pushdown on vs off: NoREC),
//! and the generated queries must really be pushed: a minimum share of
//! them must run as one driver query in `whole`.

use std::fmt::Write as _;
use std::sync::Arc;

use objectql_driver::Driver;
use objectql_federation::Federation;
use objectql_query_ast::{Catalog, ObjectSchema, Record, Value};

use super::common;

fn schema(name: &str, datasource: &str) -> ObjectSchema {
    let fields = match name {
        "cust" => serde_json::json!({
            "name": {"type": "text"},
            "tier": {"type": "text"},
            "score": {"type": "integer"},
            "weight": {"type": "number"}
        }),
        "ord" => serde_json::json!({
            "cust_id": {"type": "text"},
            "total": {"type": "integer"},
            "status": {"type": "text"}
        }),
        _ => serde_json::json!({
            "ord_id": {"type": "text"},
            "qty": {"type": "integer"},
            "sku": {"type": "text"}
        }),
    };
    ObjectSchema::from_json(
        &serde_json::json!({"name": name, "datasource": datasource, "fields": fields}),
    )
    .expect("schema")
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
    fn int(&mut self, n: u64) -> Value {
        Value::Int(i64::try_from(self.below(n)).unwrap_or(0))
    }
}

/// Rows with NULLs, dangling references, duplicate keys, case and
/// trailing-space variants.
fn fixtures(rng: &mut Rng) -> Vec<(&'static str, Vec<Record>)> {
    let text = |v: Option<&str>| v.map_or(Value::Null, Value::from);
    let mut custs = Vec::new();
    for i in 0..24 {
        let mut r = Record::new();
        r.insert("id".into(), Value::from(format!("c{i:02}")));
        r.insert("name".into(), Value::from(format!("n{}", i % 7)));
        let tier = *rng.pick(&[
            Some("gold"),
            Some("silver"),
            Some("Gold"),
            Some("gold "),
            None,
        ]);
        r.insert("tier".into(), text(tier));
        let score = if rng.chance(15) {
            Value::Null
        } else {
            rng.int(50)
        };
        r.insert("score".into(), score);
        let weight = if rng.chance(10) {
            Value::Null
        } else {
            Value::Float(f64::from(u32::try_from(rng.below(40)).unwrap_or(0)) / 8.0)
        };
        r.insert("weight".into(), weight);
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
        r.insert("total".into(), rng.int(100));
        r.insert(
            "status".into(),
            Value::from(*rng.pick(&["open", "paid", "void"])),
        );
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
        let sku = *rng.pick(&[Some("a-1"), Some("b_2"), Some("a%3"), None]);
        r.insert("sku".into(), text(sku));
        items.push(r);
    }
    vec![("cust", custs), ("ord", ords), ("item", items)]
}

/// Where an object lives: its datasource's name and driver.
type Place<'a> = &'a dyn Fn(&str) -> (&'static str, Arc<dyn Driver>);

/// A federation over the objects, each on the driver `place` gives it.
async fn federation(data: &[(&str, Vec<Record>)], place: Place<'_>) -> Federation {
    let mut catalog = Catalog::new();
    for (name, _) in data {
        let (ds, _) = place(name);
        catalog.insert(schema(name, ds)).expect("catalog");
    }
    let mut fed = Federation::new(Arc::new(catalog.clone()));
    for (name, rows) in data {
        let (ds, driver) = place(name);
        common::load(&driver, &catalog, name, rows.clone()).await;
        fed = fed.datasource(ds, driver);
    }
    fed
}

fn alias(object: &str) -> &'static str {
    match object {
        "cust" => "c",
        "ord" => "o",
        _ => "i",
    }
}

/// How `from` joins `to` (both directions of the two references).
fn join_on(from: &str, to: &str) -> Option<String> {
    let (f, t) = (alias(from), alias(to));
    Some(match (from, to) {
        ("ord", "cust") => format!("{f}.cust_id = {t}.id"),
        ("cust", "ord") => format!("{f}.id = {t}.cust_id"),
        ("item", "ord") => format!("{f}.ord_id = {t}.id"),
        ("ord", "item") => format!("{f}.id = {t}.ord_id"),
        _ => return None,
    })
}

/// A condition on `object`, in SQL (parenthesised: `IS DISTINCT FROM`
/// binds looser than `OR`).
fn condition(rng: &mut Rng, object: &str) -> String {
    format!("({})", bare_condition(rng, object))
}

fn bare_condition(rng: &mut Rng, object: &str) -> String {
    let a = alias(object);
    let n = rng.below(50);
    match (object, rng.below(7)) {
        ("cust", 0) => format!("{a}.tier <> 'gold'"),
        ("cust", 1) => format!("{a}.score >= {n}"),
        ("cust", 2) => format!("{a}.tier IN ('silver', 'Gold')"),
        ("cust", 3) => format!("{a}.score IS NULL"),
        ("cust", 4) => format!("NOT ({a}.name LIKE 'n1%')"),
        ("cust", 5) => format!("{a}.weight > 1.5"),
        ("cust", _) => format!("{a}.tier IS DISTINCT FROM 'gold'"),
        ("ord", 0) => format!("{a}.status = 'paid'"),
        ("ord", 1) => format!("{a}.total < {}", n * 2),
        ("ord", 2) => format!("{a}.status NOT IN ('void')"),
        ("ord", 3) => format!("{a}.cust_id IS NOT NULL"),
        ("ord", 4) => format!("({a}.total > 80 OR {a}.status = 'open')"),
        ("ord", 5) => format!("{a}.total BETWEEN 10 AND {}", 10 + n),
        ("ord", _) => format!("{a}.cust_id <> 'c03'"),
        (_, 0) => format!("{a}.sku LIKE 'a%'"),
        (_, 1) => format!("{a}.qty BETWEEN 0 AND 3"),
        (_, 2) => format!("{a}.sku <> 'a-1'"),
        (_, 3) => format!("{a}.qty <= 0"),
        (_, 4) => format!("{a}.sku IS DISTINCT FROM 'b_2'"),
        (_, 5) => format!("{a}.ord_id IS NULL"),
        (_, _) => format!("NOT ({a}.qty > 2 AND {a}.sku IS NOT NULL)"),
    }
}

/// An integer column of `object`, and a text one.
fn columns_of(object: &str) -> (&'static str, &'static str) {
    match object {
        "cust" => ("score", "tier"),
        "ord" => ("total", "status"),
        _ => ("qty", "sku"),
    }
}

/// One query joining one to three of the objects, with filters, and a
/// sort with paging or a grouping; ordered totally, so every layout must
/// return the same rows in the same order.
fn query(rng: &mut Rng) -> String {
    let objects = ["cust", "ord", "item"];
    let base = *rng.pick(&objects);
    let mut chain = vec![base];
    let mut from = format!("{{{base}}} {}", alias(base));
    let wanted = rng.below(3);
    for _ in 0..wanted {
        let candidates: Vec<(&str, &str)> = chain
            .iter()
            .flat_map(|f| {
                objects
                    .into_iter()
                    .filter(|t| !chain.contains(t))
                    .filter(move |t| join_on(f, t).is_some())
                    .map(move |t| (*f, t))
            })
            .collect();
        if candidates.is_empty() {
            break;
        }
        let (f, t) = *rng.pick(&candidates);
        let mut on = join_on(f, t).unwrap_or_default();
        if rng.chance(20) {
            on = format!("{on} AND {}", condition(rng, t));
        }
        let kind = *rng.pick(&["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]);
        let _ = write!(from, " {kind} {{{t}}} {} ON {on}", alias(t));
        chain.push(t);
    }
    let mut conds = Vec::new();
    for o in &chain {
        if rng.chance(45) {
            conds.push(condition(rng, o));
        }
    }
    if chain.len() > 1 && rng.chance(20) {
        conds.push(format!(
            "({} OR {})",
            condition(rng, chain[0]),
            condition(rng, chain[1])
        ));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    if rng.chance(30) {
        let g = *rng.pick(&chain);
        let (_, text_col) = columns_of(g);
        let key = format!("{}.{}", alias(g), text_col);
        let m = *rng.pick(&chain);
        let measure = format!("{}.{}", alias(m), columns_of(m).0);
        let nulls = *rng.pick(&["NULLS FIRST", "NULLS LAST"]);
        // `HAVING` on counts, sums and the key (pushed with the grouping).
        let having = match rng.below(5) {
            0 => format!(" HAVING COUNT(*) >= {}", rng.below(4)),
            1 => format!(" HAVING SUM({measure}) > {}", rng.below(60)),
            2 => format!(" HAVING {key} IS NOT NULL AND COUNT({measure}) <> 1"),
            3 => format!(
                " HAVING MAX({measure}) < {} OR MIN({measure}) IS NULL",
                rng.below(40)
            ),
            _ => String::new(),
        };
        // Filtered and conditional aggregates, text bounds, distinct counts
        // (pushed as aggregations with a `filter`).
        let c = *rng.pick(&chain);
        let (cond, text) = (
            condition(rng, c),
            format!("{}.{}", alias(c), columns_of(c).1),
        );
        let extra = match rng.below(4) {
            0 => format!(", COUNT(*) FILTER (WHERE {cond}) AS f"),
            1 if rng.chance(50) => format!(
                ", SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) FILTER (WHERE {}) AS f",
                condition(rng, c)
            ),
            1 => format!(", SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS f"),
            2 => format!(", MIN({text}) AS f, COUNT(DISTINCT {text}) AS g"),
            _ => format!(", MAX(CASE WHEN {cond} THEN {measure} END) AS f"),
        };
        format!(
            "SELECT {key} AS k, COUNT(*) AS n, COUNT({measure}) AS cn, SUM({measure}) AS s, \
             MIN({measure}) AS lo, MAX({measure}) AS hi{extra} FROM {from}{filter} GROUP BY {key}{having} \
             ORDER BY k {nulls}, n, cn, s, lo, hi"
        )
    } else {
        let s = *rng.pick(&chain);
        let sort = format!("{}.{}", alias(s), columns_of(s).0);
        let dir = *rng.pick(&["ASC", "DESC", "ASC NULLS FIRST", "DESC NULLS LAST"]);
        let mut select = vec![sort.clone()];
        let mut order = vec![format!("{sort} {dir}")];
        for o in &chain {
            select.push(format!("{0}.id AS {0}_id", alias(o)));
            select.push(format!("{}.{}", alias(o), columns_of(o).1));
            order.push(format!("{}.id", alias(o)));
        }
        let mut q = format!(
            "SELECT {} FROM {from}{filter} ORDER BY {}",
            select.join(", "),
            order.join(", ")
        );
        if rng.chance(50) {
            let _ = write!(q, " LIMIT {}", 1 + rng.below(15));
            if rng.chance(40) {
                let _ = write!(q, " OFFSET {}", rng.below(10));
            }
        }
        q
    }
}

/// `q` with each `{object}` replaced by its table in `layout`.
fn in_layout(q: &str, layout: &dyn Fn(&str) -> &'static str) -> String {
    let mut out = q.to_owned();
    for o in ["cust", "ord", "item"] {
        out = out.replace(&format!("{{{o}}}"), &format!("{}.{o}", layout(o)));
    }
    out
}

/// A federation with `alone` in memory (datasource `b`) and the other
/// objects in one SQLite file named `name` (datasource `a`).
async fn apart(
    data: &[(&str, Vec<Record>)],
    dir: &std::path::Path,
    name: &str,
    alone: &str,
) -> Federation {
    let sqlite = common::sqlite(dir, name).await;
    let memory = common::memory();
    federation(data, &|o| {
        if o == alone {
            ("b", Arc::clone(&memory))
        } else {
            ("a", Arc::clone(&sqlite))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_generated_sql_queries_agree_pushed_whole_spread_and_unpushed() {
    const QUERIES: usize = 1000;
    let mut rng = Rng(20_261_206);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let one_sqlite = common::sqlite(dir.path(), "whole").await;
    let whole = federation(&data, &|_| ("a", Arc::clone(&one_sqlite))).await;
    let spread = apart(&data, dir.path(), "spread", "ord").await;
    // `ord` and `item` together, `cust` apart: a chain `cust ⋈ ord ⋈
    // item` is regrouped so that `ord ⋈ item` goes to SQLite whole.
    let paired = apart(&data, dir.path(), "paired", "cust").await;
    let memory = common::memory();
    let reference = federation(&data, &|_| ("m", Arc::clone(&memory)))
        .await
        .with_pushdown(false);
    let mut pushed_whole = 0;
    let (mut three_inner, mut regrouped) = (0, 0);
    let mut nonempty = 0;
    for n in 0..QUERIES {
        let q = query(&mut rng);
        let want = reference
            .sql_rows(&in_layout(&q, &|_| "m"))
            .await
            .unwrap_or_else(|e| panic!("query {n}: reference: {q}: {e}"));
        nonempty += usize::from(!want.is_empty());
        let whole_sql = in_layout(&q, &|_| "a");
        let got = whole
            .sql_rows(&whole_sql)
            .await
            .unwrap_or_else(|e| panic!("query {n}: whole: {q}: {e}"));
        assert_eq!(got, want, "query {n}, whole: {whole_sql}");
        let plan = whole.explain(&whole_sql, false).await.expect("explain");
        // One driver node (each prints its pushed `query:`), no join in DataFusion.
        if plan.matches("query: ").count() == 1 && !plan.contains("JoinExec") {
            pushed_whole += 1;
        }
        let spread_sql = in_layout(&q, &|o| if o == "ord" { "b" } else { "a" });
        let got = spread
            .sql_rows(&spread_sql)
            .await
            .unwrap_or_else(|e| panic!("query {n}: spread: {q}: {e}"));
        assert_eq!(got, want, "query {n}, spread: {spread_sql}");
        let paired_sql = in_layout(&q, &|o| if o == "cust" { "b" } else { "a" });
        let got = paired
            .sql_rows(&paired_sql)
            .await
            .unwrap_or_else(|e| panic!("query {n}: paired: {q}: {e}"));
        assert_eq!(got, want, "query {n}, paired: {paired_sql}");
        // `cust` joined first, then `ord` and `item` with inner joins only:
        // regrouped, `ord ⋈ item` goes to SQLite as one query.
        if q.starts_with("SELECT")
            && q.contains("FROM {cust}")
            && q.contains("{item}")
            && !["LEFT", "RIGHT", "FULL"].iter().any(|k| q.contains(k))
        {
            let plan = paired.explain(&paired_sql, false).await.expect("explain");
            three_inner += 1;
            if plan
                .lines()
                .any(|l| l.contains("query: ") && l.contains(r#""joins""#))
            {
                regrouped += 1;
            }
        }
        if n % 4 == 0 {
            let got = whole
                .clone()
                .with_pushdown(false)
                .sql_rows(&whole_sql)
                .await
                .unwrap_or_else(|e| panic!("query {n}: whole unpushed: {q}: {e}"));
            assert_eq!(got, want, "query {n}, whole unpushed: {whole_sql}");
        }
    }
    println!(
        "{QUERIES} queries: {nonempty} with rows; {pushed_whole} ran as one SQLite query in \
         `whole`; of {three_inner} inner joins `cust ⋈ ord ⋈ item`, {regrouped} pushed \
         `ord ⋈ item` whole in `paired`"
    );
    assert!(
        three_inner > 0 && regrouped * 10 >= three_inner * 5,
        "inner joins of the three objects must be regrouped: {regrouped}/{three_inner}"
    );
    assert!(
        nonempty * 10 >= QUERIES * 6,
        "the data must make most answers non-empty: {nonempty}/{QUERIES}"
    );
    assert!(
        pushed_whole * 10 >= QUERIES * 7,
        "most queries must be pushed whole: {pushed_whole}/{QUERIES}"
    );
}

/// 80 generated queries on Ballista standalone, spread over two SQLite
/// files (`ord` apart), must give the reference's answer. Ballista 55
/// re-plans joins into shuffled stages; a plan it mis-partitioned once
/// returned a sixteenth of a join's rows without an error.
#[cfg(feature = "ballista")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_queries_on_ballista_agree_with_the_reference() {
    const QUERIES: usize = 80;
    let mut rng = Rng(20_261_207);
    let data = fixtures(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = |name: &str| {
        format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        )
    };
    let (a, b) = (
        common::sqlite(dir.path(), "a").await,
        common::sqlite(dir.path(), "b").await,
    );
    let spread = federation(&data, &|o| {
        if o == "ord" {
            ("b", Arc::clone(&b))
        } else {
            ("a", Arc::clone(&a))
        }
    })
    .await
    .with_url("a", url("a"))
    .with_url("b", url("b"));
    let memory = common::memory();
    let reference = federation(&data, &|_| ("m", Arc::clone(&memory)))
        .await
        .with_pushdown(false);
    let open = |url: String| async move {
        Ok(Arc::new(objectql_driver_sqlite::SqliteDriver::connect(&url).await?) as Arc<dyn Driver>)
    };
    let cluster = spread
        .ballista_standalone(&open)
        .await
        .expect("ballista standalone");
    let mut nonempty = 0;
    for n in 0..QUERIES {
        let q = query(&mut rng);
        let want = reference
            .sql_rows(&in_layout(&q, &|_| "m"))
            .await
            .unwrap_or_else(|e| panic!("query {n}: reference: {q}: {e}"));
        nonempty += usize::from(!want.is_empty());
        let sql = in_layout(&q, &|o| if o == "ord" { "b" } else { "a" });
        let got = cluster
            .sql_rows(&sql)
            .await
            .unwrap_or_else(|e| panic!("query {n}: ballista: {sql}: {e}"));
        assert_eq!(got, want, "query {n}, ballista: {sql}");
    }
    assert!(
        nonempty * 10 >= QUERIES * 6,
        "the data must make most answers non-empty: {nonempty}/{QUERIES}"
    );
    assert!(cluster.codec().scans_decoded() >= QUERIES);
    cluster.close().await.expect("close");
}
