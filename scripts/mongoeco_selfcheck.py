#!/usr/bin/env python3
"""Checks a MongoDB server for what the Rust driver's tests rely on.

    mongoeco_selfcheck.py mongodb://127.0.0.1:PORT/?directConnection=true

Written for scripts/mongoeco_server.py (mongoeco with the fixes it applies),
run with pymongo (the mongoeco venv has it). It sends every integer option as
BSON Int64, as the Rust driver does, and checks:

  (a) Int64 accepted in option positions (find, getMore, aggregate stages,
      query / update / expression operators, count, distinct, createIndexes,
      findAndModify, listCollections, listIndexes), while Int64 *data* keeps
      its type;
  (b) every error reply has ok: 0, errmsg, code (int) and codeName, and write
      errors have index and code (11000 for a duplicate key);
  (c) cursor.id is an Int64 in find, aggregate, getMore, listCollections and
      listIndexes replies;
  (d) a 10,000-document insert is quick, ordered / unordered inserts stop or
      go on at a duplicate, unique indexes (also compound ones) are built and
      enforced;
  and that multi-document transactions commit and abort, and that a failed
  command aborts its transaction.

Uses (and drops) the database `oq_selfcheck`. Exit status 0 when every check
passes, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import sys
import time

from bson import Int64, decode
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import OperationFailure

RAW = CodecOptions(document_class=RawBSONDocument)
L = Int64
failures: list[str] = []
checks = 0


def check(name: str, condition: bool, detail: object = "") -> None:
    global checks
    checks += 1
    if not condition:
        failures.append(f"{name}: {detail}")
        print(f"FAIL {name}: {detail}", flush=True)


def raw_command(db, command: dict) -> dict:
    """The reply with BSON types intact (int64 decodes as bson.Int64)."""
    return decode(db.command(command, codec_options=RAW).raw)


def error_details(exc: OperationFailure) -> dict:
    details = exc.details or {}
    return decode(details.raw) if isinstance(details, RawBSONDocument) else dict(details)


def run(name: str, db, command: dict) -> dict | None:
    try:
        return raw_command(db, command)
    except OperationFailure as exc:
        check(name, False, f"command failed: {error_details(exc)}")
        return None


def command_error(db, command: dict) -> dict:
    try:
        return raw_command(db, command)
    except OperationFailure as exc:
        return error_details(exc)


def check_error_shape(name: str, reply: dict, code: int | None = None) -> None:
    ok = reply.get("ok")
    check(f"{name}: ok is 0", ok == 0 and type(ok) is float, reply)
    check(f"{name}: errmsg", isinstance(reply.get("errmsg"), str) and reply["errmsg"], reply)
    check(f"{name}: code is an int32", type(reply.get("code")) is int, reply)
    check(f"{name}: codeName", isinstance(reply.get("codeName"), str) and reply.get("codeName"), reply)
    if code is not None:
        check(f"{name}: code {code}", reply.get("code") == code, reply)


def ids(batch) -> list:
    return [document["_id"] for document in batch]


def check_cursor_id(name: str, reply: dict | None) -> None:
    if reply is None:
        return
    cursor_id = reply.get("cursor", {}).get("id")
    check(f"{name}: cursor.id is Int64", type(cursor_id) is Int64, f"{cursor_id!r} ({type(cursor_id).__name__})")


def main(url: str) -> int:  # noqa: PLR0915 - one linear script
    client = MongoClient(url, serverSelectionTimeoutMS=20_000)
    client.drop_database("oq_selfcheck")
    db = client.oq_selfcheck

    hello = db.command("hello")
    print(f"hello: {dict((k, v) for k, v in hello.items() if k != 'localTime')}")

    # ---- data -----------------------------------------------------------
    db.c.insert_many([{"_id": i, "a": i, "g": i % 3, "arr": [1, 2, 3, 4], "s": f"s{i:02}"} for i in range(10)])

    # ---- (a) Int64 options ----------------------------------------------
    reply = run(
        "find with Int64 options",
        db,
        {
            "find": "c", "filter": {"a": {"$gte": L(0)}}, "limit": L(5), "skip": L(1), "batchSize": L(2),
            "sort": {"a": L(-1)}, "projection": {"a": L(1)}, "maxTimeMS": L(5000),
        },
    )
    if reply:
        check("find: first batch", reply["cursor"]["firstBatch"] == [{"_id": 8, "a": 8}, {"_id": 7, "a": 7}], reply)
        check_cursor_id("find", reply)
        cursor_id = reply["cursor"]["id"]
        more = run("getMore with Int64 batchSize", db, {"getMore": L(cursor_id), "collection": "c", "batchSize": L(2)})
        if more:
            check("getMore: next batch", ids(more["cursor"]["nextBatch"]) == [6, 5], more)
            check_cursor_id("getMore", more)
        last = run("getMore to the end", db, {"getMore": L(cursor_id), "collection": "c", "batchSize": L(10)})
        if last:
            check("getMore: last batch", ids(last["cursor"]["nextBatch"]) == [4] and last["cursor"]["id"] == 0, last)
            check_cursor_id("getMore (exhausted)", last)
    reply = run("find_one shape (singleBatch, limit Int64(1))", db, {"find": "c", "filter": {"_id": L(3)}, "limit": L(1), "singleBatch": True})
    if reply:
        check("find_one: document", ids(reply["cursor"]["firstBatch"]) == [3], reply)
        check_cursor_id("find (finished)", reply)
    reply = run("find with hint and Int64 query operators", db, {
        "find": "c", "filter": {"arr": {"$size": L(4)}, "a": {"$mod": [L(2), L(0)], "$type": L(16)}}, "hint": {"_id": L(1)},
    })
    if reply:
        check("find: $size/$mod/$type", ids(reply["cursor"]["firstBatch"]) == [0, 2, 4, 6, 8], reply)

    db.d.insert_many([{"_id": i, "k": i % 3, "name": f"d{i}"} for i in range(3)])
    pipeline = [
        {"$match": {"a": {"$gte": L(1)}}},
        {"$sort": {"a": L(1)}},
        {"$skip": L(1)},
        {"$limit": L(6)},
        {"$lookup": {"from": "d", "localField": "g", "foreignField": "k", "as": "d"}},
        {"$addFields": {"dn": {"$arrayElemAt": ["$d.name", L(0)]}, "firstTwo": {"$slice": ["$arr", L(2)]},
                        "r": {"$round": [{"$divide": ["$a", 3]}, L(2)]}, "sub": {"$substrCP": ["$s", L(1), L(1)]}}},
        {"$project": {"d": L(0), "arr": L(0)}},
        {"$group": {"_id": "$g", "n": {"$sum": L(1)}, "names": {"$push": "$dn"}, "top": {"$topN": {"n": L(1), "sortBy": {"a": L(-1)}, "output": "$a"}}}},
        {"$sort": {"_id": L(1)}},
    ]
    reply = run("aggregate with Int64 stages", db, {"aggregate": "c", "pipeline": pipeline, "cursor": {"batchSize": L(2)}, "maxTimeMS": L(5000)})
    if reply:
        batch = reply["cursor"]["firstBatch"]
        check("aggregate: first batch", [(d["_id"], d["n"], d["top"]) for d in batch] == [(0, 2, [6]), (1, 2, [7])], batch)
        check_cursor_id("aggregate", reply)
        more = run("aggregate getMore", db, {"getMore": L(reply["cursor"]["id"]), "collection": "c", "batchSize": L(5)})
        if more:
            check("aggregate getMore: rest", [(d["_id"], d["n"]) for d in more["cursor"]["nextBatch"]] == [(2, 2)], more)
            check_cursor_id("aggregate getMore", more)
    reply = run("aggregate $count / $sample", db, {"aggregate": "c", "pipeline": [{"$sample": {"size": L(4)}}, {"$count": "n"}], "cursor": {}})
    if reply:
        check("aggregate: $count", reply["cursor"]["firstBatch"] == [{"n": 4}], reply)
    reply = run("count with Int64 limit/skip", db, {"count": "c", "query": {"a": {"$gt": L(2)}}, "limit": L(3), "skip": L(1)})
    if reply:
        check("count", reply.get("n") == 3, reply)
    reply = run("distinct", db, {"distinct": "c", "key": "g", "query": {"a": {"$lt": L(5)}}})
    if reply:
        check("distinct", sorted(reply.get("values", [])) == [0, 1, 2], reply)
    reply = run("findAndModify with Int64 sort/fields", db, {
        "findAndModify": "c", "query": {"g": L(1)}, "sort": {"a": L(-1)}, "fields": {"a": L(1)},
        "update": {"$inc": {"a": L(100)}}, "new": True,
    })
    if reply:
        check("findAndModify", reply.get("value") == {"_id": 7, "a": 107}, reply)
    reply = run("update with $push $slice/$position and $pop", db, {"update": "c", "updates": [
        {"q": {"_id": L(1)}, "u": {"$push": {"arr": {"$each": [L(9)], "$position": L(0), "$slice": L(3)}}}},
        {"q": {"_id": L(2)}, "u": {"$pop": {"arr": L(-1)}}},
        {"q": {"g": L(0)}, "u": {"$set": {"flag": True}}, "multi": True},
        {"q": {"_id": L(50)}, "u": {"$set": {"up": L(1)}}, "upsert": True},
    ]})
    if reply:
        check("update: counts", reply.get("n") == 7 and reply.get("nModified") == 6 and len(reply.get("upserted", [])) == 1, reply)
        arrays = {d["_id"]: d["arr"] for d in db.c.find({"_id": {"$in": [1, 2]}})}
        check("update: $push/$pop", arrays == {1: [9, 1, 2], 2: [2, 3, 4]}, arrays)
    reply = run("delete with limit", db, {"delete": "c", "deletes": [{"q": {"_id": L(50)}, "limit": L(1)}]})
    if reply:
        check("delete", reply.get("n") == 1, reply)
    reply = run("ping with Int64(1)", db, {"ping": L(1)})
    reply = run("listCollections with Int64", db, {"listCollections": L(1), "cursor": {"batchSize": L(1)}, "nameOnly": True})
    if reply:
        check_cursor_id("listCollections", reply)
    reply = run("createIndexes with Int64 keys", db, {"createIndexes": "c", "indexes": [
        {"key": {"s": L(1)}, "name": "s_unique", "unique": True},
        {"key": {"g": L(1), "a": L(-1)}, "name": "g_a"},
    ]})
    reply = run("listIndexes with Int64 batchSize", db, {"listIndexes": "c", "cursor": {"batchSize": L(1)}})
    if reply:
        check_cursor_id("listIndexes", reply)
        more = run("listIndexes getMore", db, {"getMore": L(reply["cursor"]["id"]), "collection": "c"})
        if more:
            names = [i["name"] for i in reply["cursor"]["firstBatch"] + more["cursor"]["nextBatch"]]
            check("listIndexes: names", sorted(names) == ["_id_", "g_a", "s_unique"], names)

    # Int64 data keeps its type.
    db.t.insert_one({"_id": 1, "x": L(5), "y": 5, "nested": {"z": L(7)}, "list": [L(1), 2]})
    db.t.update_one({"_id": 1}, {"$set": {"w": L(9)}})
    db.t.insert_one({"_id": 3, "n": L(1), "m": L(2)})
    db.t.update_one({"_id": 3}, {"$inc": {"n": L(1)}, "$mul": {"m": 3}})
    db.t.update_one({"_id": 2, "seed": L(3)}, {"$set": {"v": L(4)}}, upsert=True)
    stored = {d["_id"]: d for d in (decode(r.raw) for r in db.get_collection("t", codec_options=RAW).find())}
    one = stored.get(1, {})
    check("Int64 data round-trips", type(one.get("x")) is Int64 and type(one.get("y")) is int
          and type(one.get("nested", {}).get("z")) is Int64 and [type(v) for v in one.get("list", [])] == [Int64, int]
          and type(one.get("w")) is Int64, one)
    three = stored.get(3, {})
    check("$inc / $mul on Int64 data keep Int64", three.get("n") == 2 and type(three.get("n")) is Int64
          and three.get("m") == 6 and type(three.get("m")) is Int64, three)
    two = stored.get(2, {})
    check("Int64 upsert seed and $set keep their type", type(two.get("seed")) is Int64 and type(two.get("v")) is Int64, two)
    reply = run("aggregate Int64 literals", db, {"aggregate": "t", "pipeline": [
        {"$match": {"_id": L(1)}}, {"$addFields": {"lit": L(11), "lit2": {"$literal": L(12)}}}], "cursor": {}})
    if reply:
        document = reply["cursor"]["firstBatch"][0]
        check("Int64 literals in $addFields keep their type", type(document.get("lit")) is Int64 and type(document.get("lit2")) is Int64, document)
    check("$type long finds Int64 data", db.t.count_documents({"x": {"$type": "long"}}) == 1)
    reply = run("$sum of Int64", db, {"aggregate": "t", "pipeline": [{"$group": {"_id": None, "n": {"$sum": L(1)}}}], "cursor": {}})
    if reply:
        total = reply["cursor"]["firstBatch"][0]["n"]
        check("$sum of Int64 is an Int64", total == 3 and type(total) is Int64, repr(total))

    # ---- (b) error replies ----------------------------------------------
    reply = raw_command(db, {"insert": "c", "documents": [{"_id": 100}, {"_id": 1}, {"_id": 101}]})
    errors = reply.get("writeErrors", [])
    check("duplicate _id: write error", len(errors) == 1 and errors[0].get("code") == 11000 and errors[0].get("index") == 1
          and type(errors[0].get("code")) is int and isinstance(errors[0].get("errmsg"), str), reply)
    check("duplicate _id: n (ordered)", reply.get("n") == 1, reply)
    reply = raw_command(db, {"insert": "c", "documents": [{"_id": 200, "s": "s05"}]})
    errors = reply.get("writeErrors", [])
    check("duplicate unique key: write error", len(errors) == 1 and errors[0].get("code") == 11000 and errors[0].get("index") == 0, reply)
    reply = command_error(db, {"findAndModify": "c", "query": {"_id": L(3)}, "update": {"$set": {"s": "s04"}}})
    check_error_shape("findAndModify duplicate key", reply, 11000)
    check_error_shape("unknown command", command_error(db, {"noSuchCommand": 1}), 59)
    check_error_shape("getMore of an unknown cursor", command_error(db, {"getMore": L(987654), "collection": "c"}), 43)
    check_error_shape("create an existing collection", command_error(db, {"create": "c"}), 48)
    check_error_shape("bad sort direction", command_error(db, {"find": "c", "sort": {"a": 2}}))
    check_error_shape("unknown stage", command_error(db, {"aggregate": "c", "pipeline": [{"$nope": {}}], "cursor": {}}))
    check_error_shape("unknown query operator", command_error(db, {"find": "c", "filter": {"a": {"$nope": 1}}}))
    check_error_shape("drop a missing index", command_error(db, {"dropIndexes": "c", "index": "nope_1"}), 27)
    reply = raw_command(db, {"update": "c", "updates": [{"q": {"_id": 0}, "u": {"$inc": {"s": 1}}}]})
    errors = reply.get("writeErrors", [])
    check("update error: code and index", len(errors) == 1 and type(errors[0].get("code")) is int and errors[0].get("index") == 0, reply)

    # ---- (d) inserts ------------------------------------------------------
    started = time.monotonic()
    reply = raw_command(db, {"insert": "big", "documents": [{"i": L(i), "s": "x" * 16} for i in range(10_000)]})
    elapsed = time.monotonic() - started
    print(f"10,000-document insert: {elapsed:.2f} s")
    check("10,000-document insert: n", reply.get("n") == 10_000, reply.get("n"))
    check("10,000-document insert: under 20 s", elapsed < 20, f"{elapsed:.1f} s")
    started = time.monotonic()
    for batch in range(5):
        db.command({"insert": "big", "documents": [{"i": L(10_000 + batch * 2_000 + i)} for i in range(2_000)]})
    elapsed = time.monotonic() - started
    print(f"5 more inserts of 2,000: {elapsed:.2f} s")
    check("5 x 2,000 more: count", db.big.count_documents({}) == 20_000)
    started = time.monotonic()
    run("unique index on 20,000 documents", db, {"createIndexes": "big", "indexes": [{"key": {"i": L(1)}, "name": "i_1", "unique": True}]})
    run("compound unique index on 20,000 documents", db, {"createIndexes": "big", "indexes": [{"key": {"s": L(1), "i": L(1)}, "name": "s_i", "unique": True}]})
    elapsed = time.monotonic() - started
    print(f"two unique index builds on 20,000 documents: {elapsed:.2f} s")
    check("unique index builds: under 20 s", elapsed < 20, f"{elapsed:.1f} s")
    started = time.monotonic()
    reply = raw_command(db, {"insert": "big", "documents": [{"i": L(100_000 + i), "s": "y"} for i in range(5_000)]})
    elapsed = time.monotonic() - started
    print(f"5,000 more with unique and compound unique indexes: {elapsed:.2f} s")
    check("insert with compound unique index: n", reply.get("n") == 5_000, reply.get("n"))
    check("insert with compound unique index: under 20 s", elapsed < 20, f"{elapsed:.1f} s")
    reply = raw_command(db, {"insert": "big", "documents": [{"i": L(-1), "s": "z"}, {"i": L(100_001), "s": "z"}]})
    errors = reply.get("writeErrors", [])
    check("unique index enforced", reply.get("n") == 1 and len(errors) == 1 and errors[0].get("code") == 11000 and errors[0].get("index") == 1, reply)
    reply = command_error(db, {"createIndexes": "big", "indexes": [{"key": {"s": L(1)}, "name": "s_1", "unique": True}]})
    check_error_shape("unique index build over duplicates", reply, 11000)
    names = [index["name"] for index in db.big.list_indexes()]
    check("failed unique index build leaves no index", "s_1" not in names, names)

    for ordered, expect_n, expect_ids in ((True, 2, [1, 2]), (False, 4, [1, 2, 3, 4])):
        db.o.drop()
        reply = raw_command(db, {"insert": "o", "ordered": ordered, "documents": [
            {"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}, {"_id": 2}, {"_id": 4}]})
        errors = reply.get("writeErrors", [])
        name = "ordered" if ordered else "unordered"
        check(f"{name} insert with duplicates: n", reply.get("n") == expect_n, reply)
        check(f"{name} insert with duplicates: errors",
              [(e.get("index"), e.get("code")) for e in errors] == ([(2, 11000)] if ordered else [(2, 11000), (4, 11000)]), errors)
        check(f"{name} insert with duplicates: stored", sorted(ids(db.o.find())) == expect_ids)

    # ---- transactions ---------------------------------------------------
    db.x.insert_one({"_id": 0})
    with client.start_session() as session:
        session.start_transaction()
        db.x.insert_one({"_id": 1}, session=session)
        db.x.insert_many([{"_id": 2}, {"_id": 3}], session=session)
        db.x.update_one({"_id": 0}, {"$set": {"t": 1}}, session=session)
        check("transaction: isolated", sorted(ids(db.x.find())) == [0], list(db.x.find()))
        check("transaction: own writes", sorted(ids(db.x.find({}, session=session))) == [0, 1, 2, 3])
        session.abort_transaction()
    check("transaction: abort", list(db.x.find()) == [{"_id": 0}], list(db.x.find()))
    with client.start_session() as session:
        session.start_transaction()
        db.x.insert_one({"_id": 4}, session=session)
        db.x.delete_one({"_id": 0}, session=session)
        session.commit_transaction()
    check("transaction: commit", sorted(ids(db.x.find())) == [4], list(db.x.find()))
    with client.start_session() as session:
        session.start_transaction()
        db.x.insert_one({"_id": 5}, session=session)
        try:
            db.x.insert_one({"_id": 4}, session=session)
            check("transaction: duplicate key fails", False, "no error")
        except OperationFailure as exc:
            check("transaction: duplicate key fails", exc.code == 11000, exc.details)
        try:
            session.commit_transaction()
            check("transaction: an error aborts it", False, "the commit succeeded")
        except OperationFailure as exc:
            check("transaction: an error aborts it (NoSuchTransaction)", exc.code == 251, exc.details)
    check("transaction: nothing of an aborted transaction", sorted(ids(db.x.find())) == [4], list(db.x.find()))

    client.drop_database("oq_selfcheck")
    client.close()
    print(f"{checks - len(failures)}/{checks} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mongoeco_selfcheck.py MONGODB_URL")
    sys.exit(main(sys.argv[1]))
