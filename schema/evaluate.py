"""Evaluate a filter AST against one canonical record, in plain Python.

The reference semantics every compiled backend must agree with, and how the hub
applies a residual filter to records a source could not filter itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from schema.filters import And, Compare, In, IsMissing, Node, Or, Search, Value

MAX_TOKEN_BYTES = 40
_SPLIT = re.compile(r"[^\w]|_", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Words as the index's default analyser sees them: alphanumeric runs, lower case,
    tokens longer than 40 bytes dropped (tantivy's SimpleTokenizer + RemoveLong + LowerCaser)."""
    return [t.lower() for t in _SPLIT.split(text) if t and len(t.encode()) < MAX_TOKEN_BYTES]


def matches(node: Node, record: Mapping[str, Any]) -> bool:
    """True when the record satisfies the filter."""
    match node:
        case And(children):
            return all(matches(c, record) for c in children)
        case Or(children):
            return any(matches(c, record) for c in children)
        case IsMissing(field, missing):
            return _values(record, field) == [] if missing else _values(record, field) != []
        case In(field, values, negated):
            present = any(v in values for v in _values(record, field))
            return not present if negated else present
        case Compare(op, field, value):
            return _compare(op, _values(record, field), value)
        case Search(keyword, fields):
            words = set()
            for f in fields:
                for v in _values(record, f):
                    words.update(tokenize(str(v)))
            wanted = tokenize(keyword)
            return bool(wanted) and all(w in words for w in wanted)
    raise TypeError(node)


def _values(record: Mapping[str, Any], field: str) -> list[Any]:
    if field == "source":
        sources = record.get("sources") or [record.get("source")]
        return [s for s in sources if s is not None]
    value = record.get(field)
    if value is None:
        return []
    if isinstance(value, dt.datetime):
        value = value.date()
    elif field == "study_date" and isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return [value]


def _compare(op: str, present: list[Any], value: Value) -> bool:
    if op == "=":
        return value in present
    if op == "!=":
        return value not in present
    checks = {
        ">": lambda v: v > value,
        ">=": lambda v: v >= value,
        "<": lambda v: v < value,
        "<=": lambda v: v <= value,
    }
    return any(checks[op](v) for v in present)
