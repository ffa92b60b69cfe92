#!/usr/bin/env python3
"""A MongoDB wire-protocol server for the MongoDB driver's tests.

It runs mongoeco's ``AsyncMongoEcoProxyServer`` (PyPI ``mongoeco[wire]``,
pinned to 4.11.0, Apache-2.0; Python 3.13+) with an in-memory engine, and
fixes what keeps the official Rust ``mongodb`` 3.x driver from working
against it:

  (a) Int64 options. The driver sends every integer as BSON Int64. mongoeco's
      wire decoder (``mongoeco.wire.bson_bridge.decode_wire_value``) turns an
      Int64 into its ``BsonInt64`` wrapper, which is not a Python ``int``, and
      the ~190 ``isinstance(x, int)`` checks spread over the command parsers,
      the stage / expression / query / update operators then reject it
      ("sort directions must be 1 or -1", "$limit requires a non-negative
      integer", "$size necesita un entero no negativo", ...).
      Relaxing each of those checks is not feasible, and turning every Int64
      into an ``int`` would make stored data lose its type (``{x: Int64(5)}``
      must come back as Int64, and so must ``$set``/``$inc`` operands,
      upsert seeds, and literal values in ``$addFields``/``$literal``/
      ``$cond`` ...). So the decoded command is normalised structurally,
      before mongoeco validates it (``_CompatExecutor._build_request_context``):
      an Int64 (or an integral double) becomes a plain ``int`` only where
      MongoDB reads it as a *parameter* — command options (skip, limit,
      batchSize, maxTimeMS, the command value itself, cursor ids, write and
      read concerns, collation), sort / hint / index key specifications,
      projection flags, stage arguments ($skip, $limit, $sample, $bucketAuto,
      $densify, window bounds ...), the integer arguments of query operators
      ($size, $mod, $type, $bits*), update modifiers ($push $slice/$position/
      $sort, $pop) and expression operators ($arrayElemAt index, $slice,
      $round/$trunc place, $substr*, $indexOf*, $range, $dateAdd amount,
      $dateTrunc binSize, n of $firstN/$topN..., sortBy ...). Documents,
      filter values, update operands and expression literals are left as they
      are. A parameter position that is not listed stays an Int64 and mongoeco
      reports an error (never a silent change of type); add it to the tables.
  (b) Error codes. mongoeco's replies to failures often carry only ``errmsg``,
      which the Rust driver reports as an invalid response. Every ``ok: 0``
      reply gets ``ok: 0.0, errmsg, code, codeName`` — mongoeco's own code when
      it has one, else one inferred from the message and exception type (see
      ``_classify``) — and every ``writeErrors`` entry an ``index`` and a
      ``code`` (11000 for duplicate keys). A write conflict gets code 112 and
      the TransientTransactionError label.
  (c) Cursor ids. ``cursor.id`` in every reply (find, aggregate, getMore,
      listCollections, listIndexes, ...) is sent as BSON Int64 (the driver
      reads it with ``get_i64``). A getMore on an unknown cursor fails with
      CursorNotFound (43) instead of returning an empty batch.
  (d) Batch inserts. The ``insert`` command inserts one document at a time,
      each with a full-collection unique check (quadratic: 10,000 documents
      never finish). It is replaced by one that hands the batch to
      ``AsyncCollection.insert_many`` (the engine's batch insert), keeping
      MongoDB's semantics: ordered stops at the first error, unordered goes
      on; ``n`` counts inserted documents; errors carry their index. The
      memory engine is subclassed (``FastUniqueMemoryEngine``) so that
      compound unique indexes and unique index builds use set lookups instead
      of comparing every pair of documents, and its change-stream log is kept
      short (it is copied on every write once full).

  (e) Transactions. A failed command aborts its transaction, as in MongoDB
      (mongoeco keeps it open, so a later commit would commit the writes made
      before the failure); see ``_CompatExecutor``.
  (f) Long arithmetic: $inc / $mul on an Int64 field (and $sum of Int64
      values) keep the Int64 type; mongoeco stored an Int32 when the result
      fit in one.
  (g) Transaction conflicts per collection: mongoeco failed every commit
      after *any* write anywhere since the transaction began (one global
      version), so concurrent transactions in different databases aborted
      each other; a commit now conflicts (112, TransientTransactionError)
      only when a collection it wrote changed meanwhile; see
      ``FastUniqueMemoryEngine``.

``hello`` reports a standalone server (no setName) with
logicalSessionTimeoutMinutes 30 and maxWireVersion 20; the Rust driver (3.x)
then uses sessions and allows transactions (it checks only those two), and
mongoeco runs them over the wire.

Usage:
  mongoeco_server.py [PORT] [--port PORT] [--host 127.0.0.1]
                     [--engine memory|sqlite] [--path FILE]

``--engine sqlite`` (mongoeco's SQLite engine, ``--path`` a file, default in
memory) is experimental: Int64 filter values do not match int32 data there,
and unique index builds on large collections take minutes; only the memory
engine passes scripts/mongoeco_selfcheck.py.

Prints ``listening on HOST:PORT`` once it accepts connections and runs until
SIGTERM or SIGINT, then closes cleanly (exit status 0).
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 13):
    sys.exit(f"mongoeco_server.py: Python 3.13+ is needed (mongoeco 4.11); this is {sys.version.split()[0]}")

import argparse
import asyncio
from contextlib import contextmanager
import contextvars
import dataclasses
import re
import signal

from typing import Any

try:
    from bson.int64 import Int64

    from mongoeco._types.indexes import default_index_name, normalize_index_keys
    from mongoeco.api._async._database_admin_write_commands import (
        DatabaseAdminWriteCommandService,
        _write_command_result,
    )
    from mongoeco.api._async._write_command_validation import write_command_acknowledged
    from mongoeco.api._async._write_failures import record_write_failure
    from mongoeco.api._command_bson import command_boolean
    from mongoeco.core import bson_scalars
    from mongoeco.core.bson_scalars import BsonInt32, BsonInt64
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.core.duplicate_keys import index_build_duplicate_error
    from mongoeco.core.server_errors import ErrorScope, error_scope
    from mongoeco.engines.memory import MemoryEngine
    from mongoeco.engines.virtual_indexes import document_in_virtual_index
    from mongoeco.error_catalog import SERVER_CODE_NAMES
    from mongoeco.errors import BulkWriteError, MongoEcoError, OperationFailure, WriteError
    from mongoeco.types import WriteCommandResult, WriteErrorEntry
    from mongoeco.wire._session_identity import wire_session_key
    from mongoeco.wire.executor import WireCommandExecutor
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer
except ImportError as error:  # pragma: no cover - environment problem
    sys.exit(f"mongoeco_server.py: cannot import mongoeco[wire] 4.11 ({error}); pip install 'mongoeco[wire]==4.11.0'")


# --------------------------------------------------------------------------
# (a) Int64 in parameter positions
# --------------------------------------------------------------------------

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _as_int(value: Any) -> Any:
    """An Int64 or an integral double as a plain int; anything else unchanged."""
    if isinstance(value, BsonInt64):
        return value.value
    if isinstance(value, Int64):  # not produced by the decoder; for safety
        return int(value)
    if type(value) is float and value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    return value


def _convert_all(value: Any) -> Any:
    """_as_int on every scalar of a specification (sort, hint, index keys, ...)."""
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _convert_all(value[key])
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _convert_all(item)
        return value
    return _as_int(value)


def _is_operator_document(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(key, str) and key.startswith("$") for key in value)
    )


# Top-level command fields that are integer options (converted when scalar;
# `max`/`min` of find are index-bound documents and stay as they are).
_COMMAND_SCALARS = frozenset(
    {
        "skip", "limit", "batchSize", "maxTimeMS", "maxAwaitTimeMS", "ntoreturn",
        "scale", "slowms", "size", "max", "expireAfterSeconds", "commitQuorum",
        "txnNumber", "conversationId", "w", "wtimeout",
    }
)
# Top-level command fields that are specifications: every number in them is a
# parameter (directions, versions, strengths, timeouts).
_COMMAND_SPECS = frozenset(
    {
        "sort", "hint", "cursor", "writeConcern", "readConcern", "collation",
        "indexes", "index", "cursors", "timeseries", "clusteredIndex",
        "changeStreamPreAndPostImages", "indexOptionDefaults",
    }
)

# Expression operators: positions (array form) / fields (document form) that
# are integer parameters. Everything else in an expression is a value.
_EXPRESSION_POSITIONS = {
    "$arrayElemAt": {1},
    "$slice": {1, 2},
    "$round": {1},
    "$trunc": {1},
    "$substr": {1, 2},
    "$substrCP": {1, 2},
    "$substrBytes": {1, 2},
    "$indexOfArray": {2, 3},
    "$indexOfBytes": {2, 3},
    "$indexOfCP": {2, 3},
    "$range": {0, 1, 2},
}
_DATE_PARTS = {
    "year", "month", "day", "hour", "minute", "second", "millisecond",
    "isoWeekYear", "isoWeek", "isoDayOfWeek",
}
_EXPRESSION_FIELDS = {
    "$dateAdd": {"amount"},
    "$dateSubtract": {"amount"},
    "$dateTrunc": {"binSize"},
    "$dateFromParts": _DATE_PARTS,
    "$firstN": {"n"},
    "$lastN": {"n"},
    "$maxN": {"n"},
    "$minN": {"n"},
    "$topN": {"n", "sortBy"},
    "$bottomN": {"n", "sortBy"},
    "$top": {"sortBy"},
    "$bottom": {"sortBy"},
    "$sortArray": {"sortBy"},
    "$filter": {"limit"},
    "$shift": {"by"},
    "$expMovingAvg": {"N"},
    "$convert": {"to"},
}
_SPEC_PARAMETERS = frozenset({"sortBy", "to"})


def _parameter(name: str, value: Any) -> Any:
    if name in _SPEC_PARAMETERS:
        return _convert_all(value)
    converted = _as_int(value)
    if converted is not value:
        return converted
    return _expression(value)


def _expression_operator(operator: str, argument: Any) -> Any:
    if operator == "$literal":
        return argument
    positions = _EXPRESSION_POSITIONS.get(operator)
    if positions is not None and isinstance(argument, list):
        for index, item in enumerate(argument):
            argument[index] = _parameter("", item) if index in positions else _expression(item)
        return argument
    fields = _EXPRESSION_FIELDS.get(operator)
    if fields is not None and isinstance(argument, dict):
        for key in list(argument):
            item = argument[key]
            argument[key] = _parameter(key, item) if key in fields else _expression(item)
        return argument
    return _expression(argument)


def _expression(value: Any) -> Any:
    if isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _expression(item)
        return value
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, argument),) = value.items()
            if isinstance(key, str) and key.startswith("$"):
                value[key] = _expression_operator(key, argument)
                return value
        for key in list(value):
            value[key] = _expression(value[key])
        return value
    return value  # a literal value: its type is kept


def _query(filter_spec: Any) -> Any:
    if not isinstance(filter_spec, dict):
        return filter_spec
    for key in list(filter_spec):
        value = filter_spec[key]
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            for item in value:
                _query(item)
        elif key == "$expr":
            filter_spec[key] = _expression(value)
        elif key == "$jsonSchema":
            _json_schema(value)
        elif isinstance(key, str) and key.startswith("$"):
            continue  # $where, $comment, $text, $sampleRate
        else:
            filter_spec[key] = _field_condition(value)
    return filter_spec


def _field_condition(value: Any) -> Any:
    if not _is_operator_document(value):
        return value  # an equality value: data
    for operator in list(value):
        argument = value[operator]
        if operator in ("$size", "$maxDistance", "$minDistance"):
            value[operator] = _as_int(argument)
        elif operator in ("$mod", "$type", "$bitsAllSet", "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear"):
            value[operator] = _convert_all(argument)
        elif operator == "$elemMatch":
            value[operator] = _element_condition(argument)
        elif operator == "$not":
            value[operator] = _field_condition(argument)
        elif operator == "$all" and isinstance(argument, list):
            for index, item in enumerate(argument):
                if isinstance(item, dict) and "$elemMatch" in item:
                    argument[index] = _field_condition(item)
        # $eq, $gt, $in, ...: comparison values are data
    return value


_LOGICAL_QUERY_OPERATORS = frozenset({"$and", "$or", "$nor", "$expr", "$where", "$text", "$jsonSchema", "$comment"})


def _element_condition(value: Any) -> Any:
    if _is_operator_document(value) and not (set(value) & _LOGICAL_QUERY_OPERATORS):
        return _field_condition(value)
    return _query(value)


_SCHEMA_COUNTS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"})


def _json_schema(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _json_schema(item)
        return
    if not isinstance(schema, dict):
        return
    for key in list(schema):
        value = schema[key]
        if key in _SCHEMA_COUNTS:
            schema[key] = _as_int(value)
        elif key in ("properties", "patternProperties", "dependencies") and isinstance(value, dict):
            for item in value.values():
                _json_schema(item)
        elif key in ("items", "additionalItems", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            _json_schema(value)


def _update(update: Any) -> Any:
    if isinstance(update, list):
        return _pipeline(update)
    if not isinstance(update, dict) or not any(isinstance(key, str) and key.startswith("$") for key in update):
        return update  # a replacement document: data
    for operator, fields in update.items():
        if not isinstance(fields, dict):
            continue
        if operator in ("$push", "$addToSet"):
            for value in fields.values():
                if isinstance(value, dict) and "$each" in value:
                    for modifier in ("$slice", "$position"):
                        if modifier in value:
                            value[modifier] = _as_int(value[modifier])
                    if "$sort" in value:
                        value["$sort"] = _convert_all(value["$sort"])
        elif operator in ("$pop", "$unset"):
            for field in list(fields):
                fields[field] = _as_int(fields[field])
        elif operator == "$pull":
            for field in list(fields):
                if isinstance(fields[field], dict):
                    fields[field] = _element_condition(fields[field])
        # $set, $setOnInsert, $inc, $mul, $min, $max, $bit, $pullAll: operands are data
    return update


def _projection(spec: Any) -> Any:
    """find / findAndModify projections."""
    if not isinstance(spec, dict):
        return spec
    for key in list(spec):
        value = spec[key]
        if isinstance(value, dict):
            if "$slice" in value:
                value["$slice"] = _convert_all(value["$slice"])
            elif "$elemMatch" in value:
                value["$elemMatch"] = _element_condition(value["$elemMatch"])
            elif "$meta" in value:
                pass
            elif any(isinstance(k, str) and k.startswith("$") for k in value):
                spec[key] = _expression(value)
            else:
                _projection(value)
        else:
            spec[key] = _as_int(value)
    return spec


def _project_stage(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    for key in list(spec):
        value = spec[key]
        if isinstance(value, dict) and not any(isinstance(k, str) and k.startswith("$") for k in value):
            _project_stage(value)  # a nested projection
        elif isinstance(value, (dict, list, str)):
            spec[key] = _expression(value)
        else:
            spec[key] = _as_int(value)  # 0/1/true/false inclusion flags
    return spec


def _expressions_of(spec: Any, keys: tuple[str, ...] | None = None) -> None:
    if not isinstance(spec, dict):
        return
    for key in list(spec):
        if keys is None or key in keys:
            spec[key] = _expression(spec[key])


def _window_output(output: Any) -> None:
    if not isinstance(output, dict):
        return
    for field_spec in output.values():
        if not isinstance(field_spec, dict):
            continue
        for key in list(field_spec):
            if key == "window":
                field_spec[key] = _convert_all(field_spec[key])
            elif isinstance(key, str) and key.startswith("$"):
                field_spec[key] = _expression_operator(key, field_spec[key])


def _stage(stage: Any) -> None:  # noqa: PLR0912 - one branch per stage
    if not isinstance(stage, dict) or len(stage) != 1:
        return
    ((name, spec),) = stage.items()
    if name in ("$skip", "$limit"):
        stage[name] = _as_int(spec)
    elif name in ("$sort", "$sample"):
        stage[name] = _convert_all(spec)
    elif name == "$match":
        _query(spec)
    elif name == "$project":
        _project_stage(spec)
    elif name in ("$addFields", "$set", "$group"):
        _expressions_of(spec)
    elif name in ("$replaceWith", "$redact", "$sortByCount"):
        stage[name] = _expression(spec)
    elif name == "$replaceRoot":
        _expressions_of(spec, ("newRoot",))
    elif name in ("$bucket", "$bucketAuto") and isinstance(spec, dict):
        _expressions_of(spec, ("groupBy",))
        _expressions_of(spec.get("output"))
        if "buckets" in spec:
            spec["buckets"] = _as_int(spec["buckets"])
    elif name == "$lookup" and isinstance(spec, dict):
        _expressions_of(spec.get("let"))
        _pipeline(spec.get("pipeline"))
    elif name == "$unionWith" and isinstance(spec, dict):
        _pipeline(spec.get("pipeline"))
    elif name == "$facet" and isinstance(spec, dict):
        for pipeline in spec.values():
            _pipeline(pipeline)
    elif name == "$setWindowFields" and isinstance(spec, dict):
        _expressions_of(spec, ("partitionBy",))
        if "sortBy" in spec:
            spec["sortBy"] = _convert_all(spec["sortBy"])
        _window_output(spec.get("output"))
    elif name == "$densify" and isinstance(spec, dict):
        if "range" in spec:
            spec["range"] = _convert_all(spec["range"])
    elif name == "$fill" and isinstance(spec, dict):
        _expressions_of(spec, ("partitionBy",))
        if "sortBy" in spec:
            spec["sortBy"] = _convert_all(spec["sortBy"])
        output = spec.get("output")
        if isinstance(output, dict):
            for field_spec in output.values():
                _expressions_of(field_spec, ("value",))
    elif name == "$graphLookup" and isinstance(spec, dict):
        if "maxDepth" in spec:
            spec["maxDepth"] = _as_int(spec["maxDepth"])
        _query(spec.get("restrictSearchWithMatch"))
    elif name == "$geoNear" and isinstance(spec, dict):
        for key in ("maxDistance", "minDistance"):
            if key in spec:
                spec[key] = _as_int(spec[key])
        _query(spec.get("query"))
    elif name == "$merge" and isinstance(spec, dict):
        _expressions_of(spec.get("let"))
        if isinstance(spec.get("whenMatched"), list):
            _pipeline(spec["whenMatched"])
    # $unset, $unwind, $count, $out, $documents, $collStats, ...: nothing numeric


def _pipeline(pipeline: Any) -> Any:
    if isinstance(pipeline, list):
        for stage in pipeline:
            _stage(stage)
    return pipeline


def _write_statement(statement: Any) -> None:
    if not isinstance(statement, dict):
        return
    for key in list(statement):
        value = statement[key]
        if key == "q":
            _query(value)
        elif key == "u":
            statement[key] = _update(value)
        elif key == "arrayFilters" and isinstance(value, list):
            for item in value:
                _query(item)
        elif key in ("hint", "collation", "sort"):
            statement[key] = _convert_all(value)
        elif key == "limit":
            statement[key] = _as_int(value)


def normalize_command(body: dict[str, Any]) -> dict[str, Any]:
    """Int64 → int in the parameter positions of a decoded command (see (a))."""
    if not isinstance(body, dict) or not body:
        return body
    keys = list(body)
    command_name = keys[0]
    if command_name == "explain" and isinstance(body[command_name], dict):
        normalize_command(body[command_name])
    else:
        body[command_name] = _as_int(body[command_name])  # {ping: 1}, {getMore: <id>}
    for key in keys[1:]:
        value = body[key]
        if key in _COMMAND_SCALARS:
            body[key] = _as_int(value)
        elif key in _COMMAND_SPECS:
            body[key] = _convert_all(value)
        elif key in ("filter", "query", "validator"):
            _query(value)
        elif key == "pipeline":
            _pipeline(value)
        elif key in ("projection", "fields"):
            _projection(value)
        elif key == "update" and command_name == "findAndModify":
            body[key] = _update(value)
        elif key in ("updates", "deletes") and isinstance(value, list):
            for statement in value:
                _write_statement(statement)
        elif key == "arrayFilters" and isinstance(value, list):
            for item in value:
                _query(item)
        # documents, let, min/max bounds, comment, ...: data
    return body


# --------------------------------------------------------------------------
# (b) error codes, (c) cursor ids
# --------------------------------------------------------------------------

_CODE_NAMES = {
    **SERVER_CODE_NAMES,
    1: "InternalError",
    2: "BadValue",
    9: "FailedToParse",
    13: "Unauthorized",
    14: "TypeMismatch",
    18: "AuthenticationFailed",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    43: "CursorNotFound",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    52: "DollarPrefixedFieldName",
    53: "InvalidIdField",
    59: "CommandNotFound",
    66: "ImmutableField",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    112: "WriteConflict",
    115: "CommandNotSupported",
    121: "DocumentValidationFailure",
    168: "InvalidPipelineOperator",
    238: "NotImplemented",
    251: "NoSuchTransaction",
    11000: "DuplicateKey",
}


def _code_name(code: int) -> str:
    return _CODE_NAMES.get(code, f"Location{code}")


# (pattern, code, error labels); the first match wins. Only used when mongoeco
# gave no code.
_MESSAGE_CODES: list[tuple[re.Pattern[str], int, tuple[str, ...]]] = [
    (re.compile(r"duplicate key|E11000"), 11000, ()),
    (re.compile(r"write conflict", re.I), 112, ("TransientTransactionError",)),
    (re.compile(r"transaction command requires an active session|no such transaction|transaction .*not (active|in progress)", re.I), 251, ("TransientTransactionError",)),
    (re.compile(r"already exists", re.I), 48, ()),
    (re.compile(r"collection '.*' does not exist|ns not found|namespace .*not found", re.I), 26, ()),
    (re.compile(r"index not found", re.I), 27, ()),
    (re.compile(r"cursor id .* not found", re.I), 43, ()),
    (re.compile(r"unsupported aggregation stage|unrecognized pipeline stage", re.I), 40324, ()),
    (re.compile(r"unacknowledged write concern|unsupported \S+ options?\b|unknown option|unrecognized option", re.I), 72, ()),
    (re.compile(r"must be (a|an) (integer|string|document|dict|bool|boolean|list|array|number|double)\b", re.I), 14, ()),
    (re.compile(r"^wire \S+ (requires|must)|missing required field", re.I), 9, ()),
]
_UNSUPPORTED_COMMAND = re.compile(r"^unsupported wire command: (.+)$")


def _classify(error: BaseException | None, message: str) -> tuple[int, tuple[str, ...], str]:
    """(code, error labels, message) for a failure mongoeco gave no code."""
    match = _UNSUPPORTED_COMMAND.match(message)
    if match:
        return 59, (), f"no such command: '{match.group(1)}'"
    for pattern, code, labels in _MESSAGE_CODES:
        if pattern.search(message):
            return code, labels, message
    if isinstance(error, TypeError):
        return 14, (), message  # TypeMismatch: a field of the wrong BSON type
    if isinstance(error, NotImplementedError):
        return 238, (), message
    if error is None or isinstance(error, (ValueError, MongoEcoError, KeyError, IndexError)):
        return 2, (), message  # BadValue
    return 1, (), message  # InternalError: an unexpected exception in mongoeco


def _valid_code(code: Any) -> bool:
    return isinstance(code, int) and not isinstance(code, bool) and code != 0


def _fix_error_reply(result: dict[str, Any], error: BaseException | None) -> None:
    message = result.get("errmsg")
    if not isinstance(message, str) or not message:
        message = result.get("$err") if isinstance(result.get("$err"), str) else (str(error) if error else "")
        message = message or "command failed"
    labels: tuple[str, ...] = ()
    code = result.get("code")
    if _valid_code(code):
        code = int(code)
        if code == 112:
            labels = ("TransientTransactionError",)
    else:
        code, labels, message = _classify(error, message)
    result["ok"] = 0.0
    result["errmsg"] = message
    result["code"] = code
    if not isinstance(result.get("codeName"), str) or not result["codeName"]:
        result["codeName"] = _code_name(code)
    if labels:
        existing = result.get("errorLabels")
        merged = list(existing) if isinstance(existing, list) else []
        merged += [label for label in labels if label not in merged]
        result["errorLabels"] = merged


def _fix_write_errors(errors: Any) -> None:
    if not isinstance(errors, list):
        return
    for position, entry in enumerate(errors):
        if not isinstance(entry, dict):
            continue
        message = entry.get("errmsg")
        if not isinstance(message, str):
            message = entry["errmsg"] = str(message) if message is not None else "write failed"
        if not _valid_code(entry.get("code")):
            entry["code"] = _classify(None, message)[0]
        if not isinstance(entry.get("index"), int):
            entry["index"] = position
        entry.pop("op", None)  # not part of a server's write error


def fix_reply(result: Any, error: BaseException | None = None) -> None:
    """Give a reply the fields and types the Rust driver requires ((b), (c))."""
    if not isinstance(result, dict):
        return
    ok = result.get("ok")
    failed = error is not None or (ok is not None and not ok)
    if failed:
        _fix_error_reply(result, error)
    cursor = result.get("cursor")
    if isinstance(cursor, dict) and "id" in cursor:
        cursor_id = cursor["id"]
        if isinstance(cursor_id, BsonInt64):
            cursor_id = cursor_id.value
        if isinstance(cursor_id, int) and not isinstance(cursor_id, bool):
            cursor["id"] = Int64(cursor_id)
    _fix_write_errors(result.get("writeErrors"))
    concern_error = result.get("writeConcernError")
    if isinstance(concern_error, dict) and not _valid_code(concern_error.get("code")):
        concern_error["code"] = 64  # WriteConcernFailed
        concern_error.setdefault("codeName", "WriteConcernFailed")


# Transactions. mongoeco runs them (snapshot reads, atomic commit, abort, a
# write conflict detected at commit), but a failed command does not abort its
# transaction (a later commit would commit the writes before the failure), a
# transaction whose commit failed stays open, and startTransaction on a session
# whose previous transaction was never ended continues that one. MongoDB
# aborts in all three cases; so does the executor below. The commands of a
# transaction aborted by an error then fail with NoSuchTransaction (251, label
# TransientTransactionError) until the session starts a new one.
_TRANSACTION_END = frozenset({"commitTransaction", "abortTransaction"})


class _CompatExecutor(WireCommandExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._aborted: dict[str, object] = {}  # session key -> txnNumber aborted by an error

    def _build_request_context(self, body, **kwargs):
        body = normalize_command(body)
        if body.get("startTransaction") is True and body.get("lsid") is not None:
            previous = self._session_store._sessions.get(wire_session_key(body["lsid"]))
            if previous is not None and previous.session.active and previous.session.transaction_active:
                previous.session.abort_transaction()  # a new transaction ends the last one
        return super()._build_request_context(body, **kwargs)

    async def execute_prepared(self, context):
        body = context.raw_body
        if body.get("lsid") is None or body.get("autocommit") is not False:
            return await super().execute_prepared(context)
        key = wire_session_key(body["lsid"])
        txn_number = body.get("txnNumber")
        if body.get("startTransaction") is True:
            self._aborted.pop(key, None)
        elif key in self._aborted and self._aborted[key] == txn_number:
            raise OperationFailure(
                f"Transaction with {{ txnNumber: {txn_number} }} has been aborted.",
                code=251,
                error_labels=("TransientTransactionError",),
            )
        try:
            result = await super().execute_prepared(context)
        except Exception:
            if context.command_name != "abortTransaction":
                self._abort(context, key, txn_number)
            raise
        if context.command_name not in _TRANSACTION_END and isinstance(result, dict) and result.get("writeErrors"):
            self._abort(context, key, txn_number)
        return result

    def _abort(self, context, key: str, txn_number: object) -> None:
        session = context.session
        if session is not None and session.active and session.transaction_active:
            try:
                session.abort_transaction()
            except Exception:  # noqa: BLE001 - the transaction is gone either way
                pass
        self._aborted[key] = txn_number


class CompatMongoEcoServer(AsyncMongoEcoProxyServer):
    """mongoeco's proxy server with the fixes above."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = _CompatExecutor(
            self._client,
            self._cursor_store,
            self._session_store,
            surface=self._surface,
            auth=self._auth,
        )
        # The handlers keep the store they were given; patch its instance.
        store = self._cursor_store
        get_more = store.get_more

        def get_more_or_not_found(command_document, **kwargs):
            cursor_id = command_document.get("getMore")
            if isinstance(cursor_id, int) and not isinstance(cursor_id, bool) and cursor_id not in store._state:
                raise OperationFailure(f"cursor id {cursor_id} not found", code=43)
            return get_more(command_document, **kwargs)

        store.get_more = get_more_or_not_found

    def _wire_failure(self, error, header, state):
        try:
            super()._wire_failure(error, header, state)
        finally:
            if isinstance(state.result, dict):
                fix_reply(state.result, error)

    def _render_wire_result(self, header, request_id, state):
        if state.outcome == "completed":
            fix_reply(state.result)
        return super()._render_wire_result(header, request_id, state)


# --------------------------------------------------------------------------
# (d) insert through the collection's batch insert
# --------------------------------------------------------------------------


async def _command_insert(self, spec, *, session=None):
    """The `insert` command, one `insert_many` per run of valid documents.

    Mirrors mongoeco's own command_insert (argument checks, write concern,
    command-scoped failures) but hands the documents to
    AsyncCollection.insert_many — the engine's batch insert, which checks
    unique indexes once per batch — instead of insert_one per document.
    Documents that fail preparation (not a document, not BSON) are reported
    at their index exactly as insert_one would fail them; they are checked
    before anything is written, so a failure never leaves a half-done batch
    unaccounted for.
    """
    admin = self._admin
    collection_name = admin._require_collection_name(spec.get("insert"), "insert")
    documents = admin._normalize_insert_documents(spec.get("documents"))
    ordered = admin._normalize_ordered_from_command(spec.get("ordered"))
    bypass = command_boolean(
        spec.get("bypassDocumentValidation", False), "bypassDocumentValidation", numeric=True
    )
    acknowledged = write_command_acknowledged(spec, dialect=admin._mongodb_dialect.key)
    collection = admin._database.get_collection(collection_name)

    write_errors: list[WriteErrorEntry] = []
    command_failure = None
    inserted = 0

    def prepare_failure(document) -> Exception | None:
        try:
            collection._require_document(document)
            DocumentCodec.to_internal(document)  # the BSON boundary insert_one applies
        except (WriteError, OperationFailure, TypeError, ValueError) as exc:
            return exc
        return None

    async def insert_run(run: list[tuple[int, dict]]) -> bool:
        """Insert (index, document) pairs; False when an ordered insert must stop."""
        nonlocal inserted
        if not run:
            return True
        try:
            result = await collection.insert_many(
                [document for _, document in run],
                ordered=ordered,
                bypass_document_validation=bypass,
                session=session,
            )
        except BulkWriteError as exc:
            details = exc.details or {}
            inserted += int(details.get("nInserted", 0))
            for entry in details.get("writeErrors", []):
                entry = dict(entry)
                position = entry.pop("index", 0)
                entry.pop("op", None)
                write_errors.append(
                    WriteErrorEntry(
                        index=run[position][0],
                        code=entry.pop("code", None),
                        errmsg=str(entry.pop("errmsg", "write failed")),
                        details=entry or None,
                    )
                )
            return not ordered
        inserted += len(result.inserted_ids)
        return True

    run: list[tuple[int, dict]] = []
    for index, document in enumerate(documents):
        failure = prepare_failure(document)
        if failure is None:
            run.append((index, document))
            continue
        if ordered:
            if not await insert_run(run):
                break
            run = []
        command_failure = record_write_failure(
            write_errors, failure, index=index, first_failure=command_failure
        )
        if ordered:
            break
    else:
        await insert_run(run)
    if command_failure is not None and error_scope(command_failure) is ErrorScope.COMMAND:
        raise command_failure
    write_errors.sort(key=lambda entry: entry.index)
    return _write_command_result(
        WriteCommandResult(count=inserted, write_errors=write_errors or None),
        acknowledged=acknowledged,
    )


DatabaseAdminWriteCommandService.command_insert = _command_insert


# The memory engine's batch insert checks a unique index with a hash lookup
# only when the index has one field and no collation; for a compound unique
# index it compares each new document with every stored one (computing both
# documents' keys each time: 300 documents take ~7 s, 10,000 hours). And an
# index build with unique: true compares every pair of stored documents
# (1,000 documents: ~7 s; 4,000: ~4 min). The engine below keeps mongoeco's
# code and its key functions (`_unique_index_keys`, `document_in_virtual_index`,
# `_unique_key_error`) but looks the keys up in a set:
#   - during one batch insert (a context variable scopes it), the keys of the
#     collection's documents per compound unique index are collected once,
#     each accepted document's keys are added;
#   - an update compares with each stored document's keys, cached per stored
#     payload (a write stores a new payload), instead of recomputing both
#     documents' keys each time (still one comparison per stored document:
#     updating every one of 3,000 documents adds ~3 s, instead of ~10 min);
#   - a new unique index with an ascending/descending key and no collation is
#     built as a non-unique one by mongoeco (validation, index data, TTL) and
#     then checked with a set and marked unique (dropped again on a duplicate,
#     with mongoeco's own "Index build failed: E11000 ..." error).


_BATCH_UNIQUE_KEYS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("batch_unique_keys", default=None)


def _hashable_unique_index(index) -> bool:
    return bool(index.get("unique")) and len(index["fields"]) > 1 and index.get("collation") is None


class FastUniqueMemoryEngine(MemoryEngine):
    # (g) Transaction conflicts per collection. mongoeco fails a commit when
    # *any* write happened anywhere since the transaction started (one global
    # version), so concurrent transactions in different databases abort each
    # other; MongoDB only conflicts on what a transaction writes. Here every
    # published write records the version at which each collection (or
    # database) it touched changed; a commit conflicts when a collection the
    # transaction wrote changed after it started — a write without a known
    # scope counts as touching everything. Otherwise the commit proceeds and
    # mongoeco merges the transaction's collections onto the current state.
    @contextmanager
    def _publication_scope(self, storage, *, views=None, touched_namespaces=None, touched_databases=None):
        outside_transaction = storage is self._storage
        with super()._publication_scope(
            storage, views=views, touched_namespaces=touched_namespaces, touched_databases=touched_databases
        ):
            yield
        if outside_transaction and not self._publication_stack:
            with self._meta_lock:
                self._oq_record_changes(touched_namespaces, touched_databases)

    def _oq_record_changes(self, namespaces, databases) -> None:
        changed = getattr(self, "_oq_changed", None)
        if changed is None:
            changed = self._oq_changed = {}
        version = self._mvcc_version
        if not namespaces and not databases:
            changed["*"] = version
        for ns in namespaces or ():
            changed[ns] = version
        for db in databases or ():
            changed[("db", db)] = version

    def _commit_session_transaction(self, session):
        with self._meta_lock:
            snapshot = self._mvcc_states.get(session.session_id)
            touched = set(snapshot.touched_namespaces) if snapshot is not None else set()
            databases = set(snapshot.touched_databases) if snapshot is not None else set()
            if snapshot is not None and snapshot.has_writes and snapshot.snapshot_version != self._mvcc_version:
                changed = getattr(self, "_oq_changed", {})
                since = snapshot.snapshot_version

                def after(key) -> bool:
                    return changed.get(key, -1) > since

                conflict = (
                    after("*")
                    or bool(databases)
                    or any(after(ns) or after(("db", ns[0])) for ns in touched)
                )
                if not conflict:
                    snapshot.snapshot_version = self._mvcc_version
            super()._commit_session_transaction(session)
            self._oq_record_changes(touched, databases)

    async def _insert_documents_impl(self, *args, **kwargs):
        token = _BATCH_UNIQUE_KEYS.set({})
        try:
            return await super()._insert_documents_impl(*args, **kwargs)
        finally:
            _BATCH_UNIQUE_KEYS.reset(token)

    def _ensure_unique_indexes(self, db_name, coll_name, candidate, **kwargs):
        indexes_view = kwargs.get("indexes_view")
        indexes = (self._indexes if indexes_view is None else indexes_view).get(db_name, {}).get(coll_name, [])
        hashed = [index for index in indexes if _hashable_unique_index(index)]
        if not hashed:
            return super()._ensure_unique_indexes(db_name, coll_name, candidate, **kwargs)
        others = [index for index in indexes if not _hashable_unique_index(index)]
        super()._ensure_unique_indexes(
            db_name, coll_name, candidate, **{**kwargs, "indexes_view": {db_name: {coll_name: others}}}
        )
        storage_view = kwargs.get("storage_view")
        coll = (self._storage if storage_view is None else storage_view).get(db_name, {}).get(coll_name, {})
        exclude = kwargs.get("exclude_storage_key")
        if exclude is not None and exclude not in coll:
            exclude = self._storage_key(exclude)
        batch = _BATCH_UNIQUE_KEYS.get() if exclude is None else None
        accepted = []
        for index in hashed:
            if not document_in_virtual_index(candidate, index):
                continue
            self._validate_compound_multikey_shape(candidate, index)
            keys = self._unique_index_keys(candidate, index["fields"])
            duplicate: set = set()
            if batch is not None:
                seen = batch.get((id(coll), id(index)))
                if seen is None:
                    seen = batch[(id(coll), id(index))] = set()
                    for data in coll.values():
                        seen.update(self._stored_unique_keys(data, index))
                duplicate = keys & seen
                accepted.append((seen, keys))
            else:  # an update or replacement: one (cached) comparison per stored document
                excluded = coll.get(exclude) if exclude is not None else None
                cache = self._unique_key_cache(index)
                for data in coll.values():
                    entry = cache.get(id(data))
                    stored = entry[1] if entry is not None and entry[0] is data else self._stored_unique_keys(data, index)
                    if stored and data is not excluded and not stored.isdisjoint(keys):
                        duplicate = keys & stored
                        break
            if duplicate:
                duplicate_key = next(iter(duplicate))
                raise self._unique_key_error(
                    f"Duplicate key for unique index '{index['name']}': {index['fields']}={duplicate_key!r}",
                    f"{db_name}.{coll_name}",
                    candidate,
                    index=index,
                    conflict=duplicate_key,
                )
        for seen, keys in accepted:  # the caller stores the candidate next
            seen.update(keys)
        return None

    def _unique_key_cache(self, index) -> dict:
        """id(stored payload) -> (payload, unique keys) for one index record.

        Stored payloads are immutable (a write stores a new one) and the cache
        holds them, so an id is not reused while its entry lives.
        """
        caches = self.__dict__.setdefault("_oq_unique_key_caches", {})
        entry = caches.get(id(index))
        if entry is None or entry[0] is not index:
            if len(caches) >= 1_000:
                caches.clear()
            entry = caches[id(index)] = (index, {})
        return entry[1]

    def _stored_unique_keys(self, data, index) -> frozenset:
        """The unique keys of a stored document (empty when not in the index), cached."""
        cache = self._unique_key_cache(index)
        entry = cache.get(id(data))
        if entry is not None and entry[0] is data:
            return entry[1]
        document = self._borrow_storage_document(data)
        keys = (
            frozenset(self._unique_index_keys(document, index["fields"]))
            if document_in_virtual_index(document, index)
            else frozenset()
        )
        if len(cache) >= 200_000:
            cache.clear()
        cache[id(data)] = (data, keys)
        return keys

    async def create_index(self, db_name, coll_name, keys, *, unique=False, name=None, collation=None, context=None, **kwargs):
        if not (unique and collation is None and self._new_plain_index(db_name, coll_name, keys, name, context)):
            return await super().create_index(
                db_name, coll_name, keys, unique=unique, name=name, collation=collation, context=context, **kwargs
            )
        # Build it as a non-unique index (mongoeco's code: validation, index
        # data, TTL), then check uniqueness with a set and mark it unique —
        # with no await in between, so no write can slip in.
        index_name = await super().create_index(
            db_name, coll_name, keys, unique=False, name=name, collation=None, context=context, **kwargs
        )
        indexes = self._indexes_view(context).get(db_name, {}).get(coll_name, [])
        position, record = next((i, r) for i, r in enumerate(indexes) if r.name == index_name)
        record = dataclasses.replace(record, unique=True)
        coll = self._storage_view(context).get(db_name, {}).get(coll_name, {})
        seen: set = set()
        for data in coll.values():
            document = self._borrow_storage_document(data)
            if not document_in_virtual_index(document, record):
                continue
            document_keys = self._unique_index_keys(document, record.fields)
            duplicate = document_keys & seen
            if duplicate:
                await self.drop_index(db_name, coll_name, index_name, context=context)
                raise index_build_duplicate_error(
                    namespace=f"{db_name}.{coll_name}",
                    index=record,
                    document=document,
                    conflict=next(iter(duplicate)),
                )
            seen |= document_keys
        indexes[position] = record
        return index_name

    def _new_plain_index(self, db_name, coll_name, keys, name, context) -> bool:
        """An ascending/descending key pattern that no existing index has (by key or name)."""
        try:
            normalized = normalize_index_keys(keys)
        except Exception:  # noqa: BLE001 - let mongoeco report it
            return False
        if normalized == [("_id", 1)] or any(
            isinstance(direction, bool) or direction not in (1, -1) for _, direction in normalized
        ):
            return False
        index_name = name or default_index_name(normalized)
        existing = self._indexes_view(context).get(db_name, {}).get(coll_name, [])
        return all(record.name != index_name and record.key != normalized for record in existing)


# --------------------------------------------------------------------------
# (f) long arithmetic keeps the long type
# --------------------------------------------------------------------------
# mongoeco types the result of integer arithmetic on BSON numbers by its
# magnitude: {$inc: {n: 1}} on an Int64 field stores an Int32 when the sum
# fits (so do $mul, and $sum of longs). MongoDB keeps a long: int op long and
# long op long give a long. bson_add / bson_multiply / bson_subtract (used by
# $inc, $mul, $add, $sum, ...) build their result in _wrap_numeric_result; the
# wrapper below only turns an Int32 result into an Int64 when an operand is a
# long.

_wrap_numeric_result = bson_scalars._wrap_numeric_result
_numeric_kind = bson_scalars._numeric_template_metadata


def _wrap_numeric_result_keeping_long(left: object, right: object, result: object) -> object:
    value = _wrap_numeric_result(left, right, result)
    if isinstance(value, BsonInt32) and "long" in (_numeric_kind(left)[0], _numeric_kind(right)[0]):
        return BsonInt64(value.value)
    return value


bson_scalars._wrap_numeric_result = _wrap_numeric_result_keeping_long


# --------------------------------------------------------------------------
# launcher
# --------------------------------------------------------------------------


def _engine(kind: str, path: str | None):
    if kind == "memory":
        # The change-stream log is copied on every prune; at its default
        # capacity (10,000) every write past the 10,000th copies 10,000
        # entries. Change streams are not used over this server's wire.
        return FastUniqueMemoryEngine(change_log_max_entries=1_000)
    from mongoeco.engines.sqlite import SQLiteEngine

    return SQLiteEngine(path or ":memory:")


async def _serve(args: argparse.Namespace) -> None:
    server = CompatMongoEcoServer(engine=_engine(args.engine, args.path), host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    address = await server.start()
    print(f"listening on {address.host}:{address.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
    print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mongoeco MongoDB wire-protocol server for tests")
    parser.add_argument("port_arg", nargs="?", type=int, metavar="PORT", help="TCP port (0: any free port)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--path", default=None, help="SQLite database file (--engine sqlite; default in memory)")
    args = parser.parse_args(argv)
    if args.port is None:
        args.port = args.port_arg if args.port_arg is not None else 0
    elif args.port_arg is not None and args.port_arg != args.port:
        parser.error("the port is given twice")
    if args.path and args.engine != "sqlite":
        parser.error("--path needs --engine sqlite")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
