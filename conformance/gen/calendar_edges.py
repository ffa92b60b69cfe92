#!/usr/bin/env python3
"""Generates cases/calendar_edges.json: every comparison operator at the
calendar's edges (0001-01-01 and 9999-12-31) on date, datetime and time
fields (issue 12 §3). The expected ids come from the small reference model
below, not from any driver. Run from the repository root:

    python3 conformance/gen/calendar_edges.py
"""
import json
from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc
ROWS = [
    ("lo", datetime(1, 1, 1, 0, 0, 0, 0, UTC), date(1, 1, 1), time(0, 0, 0)),
    ("lo2", datetime(1, 1, 1, 23, 59, 59, 999999, UTC), date(1, 1, 2), time(0, 0, 0, 1)),
    ("mid", datetime(2026, 3, 1, 12, 0, 0, 0, UTC), date(2026, 3, 1), time(12, 0, 0)),
    ("hi2", datetime(9999, 12, 31, 0, 0, 0, 0, UTC), date(9999, 12, 30), time(23, 59, 59)),
    ("hi", datetime(9999, 12, 31, 23, 59, 59, 999999, UTC), date(9999, 12, 31), time(23, 59, 59, 999999)),
    ("nul", None, None, None),
]
COLUMN = {"at": 1, "d": 2, "tm": 3}


def iso_dt(t):
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"


def iso_d(d):
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def iso_t(t):
    return t.strftime("%H:%M:%S.%f")


def day_range(d, offset_hours):
    """[start, end) of local day d, in UTC, as (datetime|None) — None when the
    instant is outside the representable calendar (before 0001 / after 9999)."""
    off = timedelta(hours=offset_hours)
    def local_midnight(x):
        try:
            return datetime(x.year, x.month, x.day, tzinfo=UTC) - off
        except OverflowError:
            return None
    start = local_midnight(d)
    try:
        nxt = d + timedelta(days=1)
        end = local_midnight(nxt)
    except OverflowError:
        end = None  # past the calendar: every stored instant is before it
    return start, end


def matches(op, v, arg, field, offset=0):
    """Reference semantics. v is the stored value (or None)."""
    first = arg[0] if isinstance(arg, list) else arg
    whole_day = field == "at" and isinstance(first, date) and not isinstance(first, datetime)
    def in_day(x, d):
        s, e = day_range(d, offset)
        lo_ok = s is None or x >= s
        hi_ok = e is None or x < e
        return lo_ok and hi_ok
    def cmp_eq(x, a):
        return in_day(x, a) if whole_day else x == a
    if op == "$ne":
        return v is None or not cmp_eq(v, arg)
    if op == "$nin":
        return v is None or not any(cmp_eq(v, a) for a in arg)
    if v is None:
        return False
    if op == "$eq":
        return cmp_eq(v, arg)
    if op == "$in":
        return any(cmp_eq(v, a) for a in arg)
    if op == "$between":
        a, b = arg
        if whole_day:
            s, _ = day_range(a, offset)
            _, e = day_range(b, offset)
            return (s is None or v >= s) and (e is None or v < e)
        return a <= v <= b
    if whole_day:
        s, e = day_range(arg, offset)
        return {
            "$gt": e is not None and v >= e,
            "$gte": s is None or v >= s,
            "$lt": s is not None and v < s,
            "$lte": e is None or v < e,
        }[op]
    return {"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op]


def enc(field, a):
    if isinstance(a, list):
        return [enc(field, x) for x in a]
    if isinstance(a, datetime):
        return iso_dt(a)
    if isinstance(a, date):
        return iso_d(a)
    return iso_t(a)


cases = []


def case(name, field, op, arg, description, offset=0, tz=None):
    ids = [r[0] for r in ROWS if matches(op, r[COLUMN[field]], arg, field, offset)]
    c = {
        "name": name,
        "description": description,
        "query": {"object": "edge", "where": {field: {op: enc(field, arg)}}},
        "expect": {"ids": ids},
    }
    if tz:
        c["context"] = {"now": "2026-03-01T12:00:00Z", "timezone": tz}
    cases.append(c)


OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
FIRST, LAST = date(1, 1, 1), date(9999, 12, 31)
for label, d in [("first_day", FIRST), ("last_day", LAST)]:
    for op in OPS:
        case(f"datetime_{op[1:]}_{label}", "at", op, d,
             f"`at` {op} the date {iso_d(d)}: whole-day bounds at the calendar's edge")
        case(f"date_{op[1:]}_{label}", "d", op, d, f"`d` {op} {iso_d(d)}")
    case(f"datetime_between_{label}", "at", "$between", [d, d],
         f"`at` $between [{iso_d(d)}, {iso_d(d)}] covers that whole day")
    case(f"datetime_in_{label}", "at", "$in", [d], f"`at` $in [{iso_d(d)}] covers that whole day")
    case(f"datetime_nin_{label}", "at", "$nin", [d], f"`at` $nin [{iso_d(d)}] excludes that day, keeps NULL")
    case(f"date_between_{label}", "d", "$between", [d, d], f"`d` $between [{iso_d(d)}, {iso_d(d)}]")
    case(f"date_nin_{label}", "d", "$nin", [d], f"`d` $nin [{iso_d(d)}] keeps NULL")
case("datetime_between_whole_calendar", "at", "$between", [FIRST, LAST],
     "`at` $between the calendar's first and last day matches every non-null row")

FIRST_T = datetime(1, 1, 1, tzinfo=UTC)
LAST_T = datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)
for label, t in [("first_instant", FIRST_T), ("last_instant", LAST_T)]:
    for op in OPS:
        case(f"datetime_{op[1:]}_{label}", "at", op, t, f"`at` {op} {iso_dt(t)}")
for label, t in [("midnight", time(0, 0, 0)), ("last_microsecond", time(23, 59, 59, 999999))]:
    for op in OPS:
        case(f"time_{op[1:]}_{label}", "tm", op, t, f"`tm` {op} {iso_t(t)}")
    case(f"time_between_{label}", "tm", "$between", [t, t], f"`tm` $between [{iso_t(t)}, {iso_t(t)}]")

# Context timezones push a day's bounds past the calendar: 9999-12-31 in
# New York ends at 10000-01-01T05:00Z; 0001-01-01 in Tokyo starts at
# 0000-12-31T15:00Z.
for op in ["$eq", "$ne", "$gt", "$lte"]:
    case(f"datetime_{op[1:]}_last_day_new_york", "at", op, LAST,
         f"`at` {op} {iso_d(LAST)} in America/New_York: the day ends past the calendar",
         offset=-5, tz="America/New_York")
    case(f"datetime_{op[1:]}_first_day_tokyo", "at", op, FIRST,
         f"`at` {op} {iso_d(FIRST)} in Asia/Tokyo: the day starts before the calendar",
         offset=9, tz="Asia/Tokyo")

# Writes driven by edge filters change exactly the rows memory changes.
cases.append({
    "name": "delete_after_last_day_deletes_nothing",
    "description": "deleteMany `at` $gt 9999-12-31 deletes nothing (issue 12 §3: MariaDB deleted the whole table)",
    "steps": [
        {"op": "deleteMany", "object": "edge", "where": {"at": {"$gt": "9999-12-31"}}, "expect": {"count": 0}},
        {"op": "deleteMany", "object": "edge", "where": {"at": {"$ne": "9999-12-31"}}, "expect": {"count": 4}},
        {"op": "find", "query": {"object": "edge", "fields": ["id"]}, "expect": {"ids": ["hi2", "hi"]}},
    ],
})
cases.append({
    "name": "edges_sort_and_aggregate",
    "description": "edge values sort and aggregate in calendar order (NULL first ascending: the smallest value)",
    "query": {"object": "edge", "orderBy": [{"field": "at", "order": "asc"}]},
    "expect": {"ids": ["nul", "lo", "lo2", "mid", "hi2", "hi"], "ordered": True},
})
cases.append({
    "name": "edges_min_max",
    "description": "min and max over the edges round-trip exactly, to the microsecond",
    "query": {"object": "edge", "aggregations": [
        {"function": "min", "field": "at", "alias": "a0"},
        {"function": "max", "field": "at", "alias": "a1"},
        {"function": "min", "field": "d", "alias": "d0"},
        {"function": "max", "field": "d", "alias": "d1"},
        {"function": "min", "field": "tm", "alias": "t0"},
        {"function": "max", "field": "tm", "alias": "t1"}]},
    "expect": {"rows": [{"a0": "0001-01-01T00:00:00Z", "a1": "9999-12-31T23:59:59.999999Z",
                         "d0": "0001-01-01", "d1": "9999-12-31",
                         "t0": "00:00:00", "t1": "23:59:59.999999"}]},
})

doc = {
    "description": "Calendar edges (issue 12 §3): every operator at 0001-01-01 and 9999-12-31 on datetime, date and time fields, in UTC and in context timezones whose days cross the calendar's edge. Generated by conformance/gen/calendar_edges.py.",
    "objects": [{"name": "edge", "fields": {"at": {"type": "datetime"}, "d": {"type": "date"}, "tm": {"type": "time"}}}],
    "fixtures": {"edge": [
        ({"id": r[0]} | ({"at": iso_dt(r[1]), "d": iso_d(r[2]), "tm": iso_t(r[3])} if r[1] else {}))
        for r in ROWS
    ]},
    "cases": cases,
}
with open("conformance/cases/calendar_edges.json", "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
print(f"{len(cases)} cases")
