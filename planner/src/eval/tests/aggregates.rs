//! Aggregate queries through [`execute`]: functions, groups, buckets, edge cases.

use super::*;

#[test]
fn aggregates_without_group_by_over_all_rows() {
    let (c, rows) = people();
    let q = Query::new("p")
        .aggregate(agg(AggFunction::Count, None, "rows"))
        .aggregate(agg(AggFunction::Count, Some("n"), "cn"))
        .aggregate(agg(AggFunction::CountDistinct, Some("n"), "dn"))
        .aggregate(agg(AggFunction::Sum, Some("n"), "sn"))
        .aggregate(agg(AggFunction::Avg, Some("n"), "an"))
        .aggregate(agg(AggFunction::Min, Some("price"), "minp"))
        .aggregate(agg(AggFunction::Max, Some("team"), "maxt"))
        .aggregate(agg(AggFunction::Sum, Some("price"), "sp"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.columns.names(),
        ["rows", "cn", "dn", "sn", "an", "minp", "maxt", "sp"]
    );
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Int(6),
            Value::Int(4),
            Value::Int(3),
            Value::Int(70),
            Value::Float(17.5),
            Value::Decimal(Decimal::from_str("0.25").unwrap()),
            Value::from("red"),
            Value::Decimal(Decimal::from_str("5.00").unwrap()),
        ]]
    );
}

#[test]
fn aggregates_over_zero_rows() {
    let (c, rows) = people();
    let q = Query::new("p")
        .filter(Filter::never())
        .aggregate(agg(AggFunction::Count, None, "rows"))
        .aggregate(agg(AggFunction::Count, Some("n"), "cn"))
        .aggregate(agg(AggFunction::Sum, Some("n"), "sn"))
        .aggregate(agg(AggFunction::Avg, Some("n"), "an"))
        .aggregate(agg(AggFunction::Min, Some("n"), "mn"))
        .aggregate(agg(AggFunction::ArrayAgg, Some("n"), "arr"))
        .aggregate(agg(AggFunction::StringAgg, Some("team"), "st"));
    let r = run(&c, &rows, &q).unwrap();
    let mut expected = vec![Value::Int(0), Value::Int(0)];
    expected.extend(std::iter::repeat_n(Value::Null, 5));
    assert_eq!(r.rows, vec![expected]);
    // Grouped: no groups at all.
    let q = q.group_by("team");
    assert!(run(&c, &rows, &q).unwrap().rows.is_empty());
}

#[test]
fn sum_avg_min_max_over_only_nulls_are_null() {
    let (c, rows) = people();
    let q = Query::new("p")
        .filter(field("id").eq(6))
        .aggregate(agg(AggFunction::Sum, Some("n"), "s"))
        .aggregate(agg(AggFunction::Avg, Some("n"), "a"))
        .aggregate(agg(AggFunction::Max, Some("n"), "m"))
        .aggregate(agg(AggFunction::Count, Some("n"), "c"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![Value::Null, Value::Null, Value::Null, Value::Int(0)]]
    );
}

#[test]
fn group_by_with_null_group_having_sort_and_fields() {
    let (c, rows) = people();
    let q = Query::new("p")
        .group_by("team")
        .aggregate(agg(AggFunction::Count, None, "cnt"))
        .aggregate(agg(AggFunction::Sum, Some("n"), "total"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["team", "cnt", "total"]);
    assert_eq!(
        r.rows,
        vec![
            vec![Value::from("red"), Value::Int(2), Value::Int(40)],
            vec![Value::from("blue"), Value::Int(2), Value::Int(10)],
            vec![Value::Null, Value::Int(2), Value::Int(20)],
        ]
    );
    let q = q
        .having(field("total").gte(20))
        .asc("team")
        .select(["total", "team"]);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["total", "team"]);
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Int(20), Value::Null],
            vec![Value::Int(40), Value::from("red")]
        ]
    );
}

#[test]
fn integer_sum_overflow_is_a_numeric_overflow_error() {
    let c = columns(&["x"]);
    let rows = vec![vec![Value::Int(i64::MAX)], vec![Value::Int(1)]];
    let q = Query::new("t").aggregate(agg(AggFunction::Sum, Some("x"), "s"));
    let e = run(&c, &rows, &q).unwrap_err();
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::NumericOverflow));
    // avg of the same values is fine (computed wider).
    let q = Query::new("t").aggregate(agg(AggFunction::Avg, Some("x"), "a"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![Value::Float(4_611_686_018_427_387_904.0)]]
    );
}

#[test]
fn decimal_sum_overflow_is_a_numeric_overflow_error() {
    let c = columns(&["x"]);
    let rows = vec![
        vec![Value::Decimal(Decimal::MAX)],
        vec![Value::Decimal(Decimal::ONE)],
    ];
    let q = Query::new("t").aggregate(agg(AggFunction::Sum, Some("x"), "s"));
    assert_eq!(
        run(&c, &rows, &q).unwrap_err().category(),
        "numeric_overflow"
    );
}

#[test]
fn avg_is_float_and_precise_for_integers_and_decimals() {
    let c = columns(&["i", "d", "f"]);
    let d = |s: &str| Value::Decimal(Decimal::from_str(s).unwrap());
    let rows = vec![
        vec![Value::Int(1), d("0.1"), Value::Float(0.5)],
        vec![Value::Int(2), d("0.2"), Value::Float(1.0)],
    ];
    let q = Query::new("t")
        .aggregate(agg(AggFunction::Avg, Some("i"), "ai"))
        .aggregate(agg(AggFunction::Avg, Some("d"), "ad"))
        .aggregate(agg(AggFunction::Avg, Some("f"), "af"))
        .aggregate(agg(AggFunction::Sum, Some("f"), "sf"));
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Float(1.5),
            Value::Float(0.15),
            Value::Float(0.75),
            Value::Float(1.5)
        ]]
    );
}

#[test]
fn array_agg_keeps_nulls_in_input_order_and_string_agg_skips_them() {
    let (c, rows) = people();
    let mut sa = agg(AggFunction::StringAgg, Some("team"), "teams");
    sa.separator = Some(" | ".into());
    let q = Query::new("p")
        .aggregate(agg(AggFunction::ArrayAgg, Some("n"), "ns"))
        .aggregate(sa);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            Value::json(json!([10, null, 30, 20, 10, null])),
            Value::from("red | blue | red | blue"),
        ]]
    );
    let q = Query::new("p").aggregate(agg(AggFunction::StringAgg, Some("team"), "t"));
    assert_eq!(
        run(&c, &rows, &q).unwrap().rows,
        vec![vec![Value::from("red,blue,red,blue")]]
    );
}

#[test]
fn distinct_and_filtered_aggregations() {
    let (c, rows) = people();
    let mut ds = agg(AggFunction::Sum, Some("n"), "ds");
    ds.distinct = true;
    let mut da = agg(AggFunction::ArrayAgg, Some("team"), "da");
    da.distinct = true;
    let mut fc = agg(AggFunction::Count, None, "fc");
    fc.filter = Some(field("team").eq("red"));
    let mut fs = agg(AggFunction::Sum, Some("n"), "fs");
    fs.filter = Some(field("team").ne("red"));
    let q = Query::new("p")
        .aggregate(ds)
        .aggregate(da)
        .aggregate(fc)
        .aggregate(fs);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Int(60),
            Value::json(json!(["red", "blue"])),
            Value::Int(2),
            Value::Int(30)
        ]]
    );
}

fn bucket_rows() -> (Columns, Vec<Vec<Value>>) {
    let date = |y, m, d| Value::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap());
    let at = |y, m, d, h| Value::DateTime(Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap());
    let rows = vec![
        vec![date(2021, 1, 1), at(2020, 12, 31, 23)],
        vec![date(2020, 12, 28), at(2021, 1, 3, 12)],
        vec![date(2024, 12, 30), at(2025, 1, 1, 0)],
        vec![Value::Null, Value::Null],
        vec![date(2026, 3, 1), at(2026, 3, 1, 10)],
    ];
    (columns(&["d", "t"]), rows)
}

#[test]
fn date_bucket_labels() {
    let v = Value::Date(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    assert_eq!(date_bucket(&v, DateGranularity::Year), Value::from("2026"));
    assert_eq!(
        date_bucket(&v, DateGranularity::Quarter),
        Value::from("2026-Q1")
    );
    assert_eq!(
        date_bucket(&v, DateGranularity::Month),
        Value::from("2026-03")
    );
    assert_eq!(
        date_bucket(&v, DateGranularity::Week),
        Value::from("2026-W09")
    );
    assert_eq!(
        date_bucket(&v, DateGranularity::Day),
        Value::from("2026-03-01")
    );
    let dec = Value::Date(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
    assert_eq!(
        date_bucket(&dec, DateGranularity::Quarter),
        Value::from("2026-Q4")
    );
    assert_eq!(date_bucket(&Value::Null, DateGranularity::Day), Value::Null);
    assert_eq!(
        date_bucket(&Value::Int(3), DateGranularity::Day),
        Value::Null
    );
}

#[test]
fn iso_week_buckets_use_the_iso_year_at_year_boundaries() {
    let (c, rows) = bucket_rows();
    let q = Query::new("t")
        .group_by_date("d", DateGranularity::Week, "dw")
        .group_by_date("t", DateGranularity::Week, "tw")
        .count_as("n");
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(r.columns.names(), ["dw", "tw", "n"]);
    let s = Value::from;
    assert_eq!(
        r.rows,
        vec![
            vec![s("2020-W53"), s("2020-W53"), Value::Int(2)],
            vec![s("2025-W01"), s("2025-W01"), Value::Int(1)],
            vec![Value::Null, Value::Null, Value::Int(1)],
            vec![s("2026-W09"), s("2026-W09"), Value::Int(1)],
        ]
    );
}

#[test]
fn datetime_buckets_are_utc_and_null_dates_form_a_null_bucket() {
    let (c, rows) = bucket_rows();
    let q = Query::new("t")
        .group_by_date("t", DateGranularity::Year, "y")
        .count_as("n")
        .asc("y");
    let r = run(&c, &rows, &q).unwrap();
    let s = Value::from;
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Null, Value::Int(1)],
            vec![s("2020"), Value::Int(1)],
            vec![s("2021"), Value::Int(1)],
            vec![s("2025"), Value::Int(1)],
            vec![s("2026"), Value::Int(1)],
        ]
    );
}

#[test]
fn datetime_buckets_in_a_timezone() {
    let t = Value::DateTime(Utc.with_ymd_and_hms(2026, 3, 31, 23, 30, 0).unwrap());
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
    let la: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
    assert_eq!(
        date_bucket(&t, DateGranularity::Month),
        Value::from("2026-03")
    );
    assert_eq!(
        date_bucket_in(&t, DateGranularity::Month, Some(tokyo)),
        Value::from("2026-04")
    );
    assert_eq!(
        date_bucket_in(&t, DateGranularity::Quarter, Some(tokyo)),
        Value::from("2026-Q2")
    );
    assert_eq!(
        date_bucket_in(&t, DateGranularity::Day, Some(la)),
        Value::from("2026-03-31")
    );
    let d = Value::Date(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
    assert_eq!(
        date_bucket_in(&d, DateGranularity::Month, Some(tokyo)),
        Value::from("2026-03")
    );
}

#[test]
fn group_by_timezone_buckets_datetimes_in_that_zone() {
    let (c, rows) = bucket_rows();
    let mut q = Query::new("t")
        .group_by_date("t", DateGranularity::Year, "y")
        .count_as("n")
        .asc("y");
    q.group_by[0].timezone = Some("Asia/Tokyo".parse().unwrap());
    let r = run(&c, &rows, &q).unwrap();
    // 2020-12-31T23:00Z is already 2021 in Tokyo.
    let s = Value::from;
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Null, Value::Int(1)],
            vec![s("2021"), Value::Int(2)],
            vec![s("2025"), Value::Int(1)],
            vec![s("2026"), Value::Int(1)],
        ]
    );
}

#[test]
fn grouping_unifies_equal_numbers_across_types() {
    let c = columns(&["k"]);
    let rows = vec![
        vec![Value::Int(1)],
        vec![Value::Float(1.0)],
        vec![Value::Float(1.5)],
    ];
    let r = run(&c, &rows, &Query::new("t").group_by("k").count_as("n")).unwrap();
    assert_eq!(
        r.rows,
        vec![
            vec![Value::Int(1), Value::Int(2)],
            vec![Value::Float(1.5), Value::Int(1)]
        ]
    );
}

#[test]
fn many_groups_and_rows() {
    let c = columns(&["k", "v"]);
    let rows: Vec<Vec<Value>> = (0..20_000)
        .map(|i: i64| vec![Value::from(format!("g{}", i % 997)), Value::Int(i)])
        .collect();
    let q = Query::new("t")
        .group_by("k")
        .aggregate(agg(AggFunction::Count, None, "n"))
        .aggregate(agg(AggFunction::Max, Some("v"), "m"))
        .desc("m")
        .limit(3);
    let r = run(&c, &rows, &q).unwrap();
    assert_eq!(
        col(&r, "m"),
        vec![Value::Int(19_999), Value::Int(19_998), Value::Int(19_997)]
    );
    let total: i64 = run(&c, &rows, &Query::new("t").group_by("k").count_as("n"))
        .unwrap()
        .rows
        .iter()
        .map(|r| r[1].as_i64().unwrap())
        .sum();
    assert_eq!(total, 20_000);
}
