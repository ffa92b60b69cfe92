//! `count` and `distinct` go through the same plan-time decision as `find`
//! (`Driver::accepts`): a filter whose conditions SQLite takes one by one
//! but refuses together (past its bind limit) is answered by a plain scan
//! and the filter run locally, never by an error or a wrong count.

use objectql::{Engine, Filter, Op, Query, Record, Value};

/// Three `$in` lists of 12,000 values: each under half of SQLite's 32,766
/// bind parameters (so each condition classifies as pushable), 36,000
/// together (so the compiled statement is refused).
fn wide_filter() -> Filter {
    let list = |offset: i64| -> Vec<Value> {
        (0..12_000_i64)
            .map(|n| Value::Int(offset + n * 3))
            .collect()
    };
    Filter::Or(vec![
        Filter::cond("n", Op::In(list(0))),
        Filter::cond("n", Op::In(list(1))),
        Filter::cond("k", Op::In(vec![Value::from("x")])),
        Filter::cond("n", Op::In(list(2).into_iter().skip(40).collect())),
    ])
}

#[tokio::test]
async fn count_and_distinct_past_the_bind_limit_answer_like_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lite = Engine::new();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    lite.add_datasource("default", &url).await.expect("sqlite");
    let mem = Engine::new();
    mem.add_datasource("default", "memory://")
        .await
        .expect("memory");
    let schema = serde_json::json!({"name": "p", "fields": {
        "n": {"type": "integer"}, "k": {"type": "text"}
    }});
    let mut rows = Vec::new();
    for i in 0..200_i64 {
        let mut r = Record::new();
        r.insert("id".into(), Value::from(format!("p{i:03}")));
        // 0..=119 and beyond the lists (36,000..): some match, some not.
        let n = if i < 120 { i } else { 36_000 + i };
        r.insert("n".into(), Value::Int(n));
        r.insert(
            "k".into(),
            Value::from(["x", "y", "z"][usize::try_from(i % 3).unwrap()]),
        );
        rows.push(r);
    }
    for e in [&lite, &mem] {
        e.register_json(&schema).await.expect("register");
        e.default_session()
            .insert_many("p", rows.clone())
            .await
            .expect("rows");
    }
    let (l, m) = (lite.default_session(), mem.default_session());

    // The refusal is real: the whole filter is not pushed to SQLite.
    let q = Query::new("p").filter(wide_filter());
    let plan = l.explain(&q).await.expect("explain");
    assert!(
        plan.iter()
            .any(|s| s.location == "local" && s.operation == "filter"),
        "the filter should run locally: {plan:?}"
    );

    let want = m
        .count("p", Some(wide_filter()))
        .await
        .expect("memory count");
    let got = l
        .count("p", Some(wide_filter()))
        .await
        .expect("sqlite count");
    // Below 120, `n % 3` of 0 or 1 (80 rows; the third list skips 2, 5, …,
    // 119); from 120 on, the 27 rows with `k = x`.
    assert_eq!(got, want);
    assert_eq!(want, 107);

    let want = m
        .distinct("p", "k", Some(wide_filter()))
        .await
        .expect("memory distinct");
    let got = l
        .distinct("p", "k", Some(wide_filter()))
        .await
        .expect("sqlite distinct");
    assert_eq!(got, want);
    assert_eq!(want, vec![Value::from("x"), Value::from("y")]);
}
