"""The cohort filter: Guppy-compatible JSON parsed into a small typed AST.

Existing Gen3 clients can reuse their filters (`{"AND": [{"IN": {"modality": ["CT"]}}]}`).
Every backend (DuckDB SQL, tantivy, numpy columns, Elasticsearch) compiles this AST,
never the raw JSON, so a value reaches a query engine only as a typed constant.
Errors name the JSON path of the offending part, e.g. `$.AND[1].IN.modality`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from schema.errors import CallerError
from schema.quoting import quote, step
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

MAX_DEPTH = 12
MAX_NODES = 500
MAX_VALUES = 1000
MAX_STRING = 1000

Value: TypeAlias = str | int | dt.date
CompareOp = Literal["=", "!=", ">", ">=", "<", "<="]
RANGE_OPS: tuple[CompareOp, ...] = (">", ">=", "<", "<=")


class FilterError(CallerError):
    """A filter a person got wrong; `path` says where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Compare:
    """`field op value`; `!=` also matches records where the field is missing."""

    op: CompareOp
    field: str
    value: Value


@dataclass(frozen=True)
class In:
    """`IN` (any of the values) or, negated, `EXCLUDES` (none of them, missing included)."""

    field: str
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsMissing:
    """`missing=True` selects records without a value for the field."""

    field: str
    missing: bool = True


@dataclass(frozen=True)
class Search:
    """Every word of `keyword` must occur in at least one of `fields` (text fields)."""

    keyword: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node: TypeAlias = Compare | In | IsMissing | Search | And | Or
MATCH_ALL: Node = And(())


def parse_filter(data: Any) -> Node:
    """Parse Guppy-style filter JSON; None or {} means every record."""
    if data is None or data == {}:
        return MATCH_ALL
    counter = [0]
    return _parse(data, "$", 1, counter)


def _parse(data: Any, path: str, depth: int, counter: list[int]) -> Node:
    if depth > MAX_DEPTH:
        raise FilterError(path, f"filter is nested deeper than {MAX_DEPTH} levels")
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise FilterError(path, f"filter has more than {MAX_NODES} conditions")
    if not isinstance(data, dict) or len(data) != 1:
        raise FilterError(path, 'expected an object with exactly one operator, e.g. {"=": {...}}')
    op, body = next(iter(data.items()))
    here = f"{path}{step(op)}"
    if op in ("AND", "OR"):
        if not isinstance(body, list):
            raise FilterError(here, f"{op} takes a list of conditions")
        if op == "OR" and not body:
            raise FilterError(here, "OR needs at least one condition")
        children = tuple(
            _parse(child, f"{here}[{i}]", depth + 1, counter) for i, child in enumerate(body)
        )
        return And(children) if op == "AND" else Or(children)
    if op == "search":
        return _parse_search(body, here)
    if op not in ("=", "!=", "IN", "EXCLUDES", "is_missing", *RANGE_OPS):
        known = "=, !=, IN, EXCLUDES, >, >=, <, <=, AND, OR, search, is_missing"
        raise FilterError(path, f"unknown operator {quote(op)}; known operators: {known}")
    if not isinstance(body, dict) or len(body) != 1:
        raise FilterError(
            here, 'expected an object with exactly one field, e.g. {"modality": "CT"}'
        )
    field, raw = next(iter(body.items()))
    field_path = f"{here}{step(field)}"
    kind = _field_kind(field, here)
    if op == "is_missing":
        if not isinstance(raw, bool):
            raise FilterError(field_path, "is_missing takes true or false")
        return IsMissing(field, raw)
    if op in ("IN", "EXCLUDES"):
        if not isinstance(raw, list) or not raw:
            raise FilterError(field_path, f"{op} takes a non-empty list of values")
        if len(raw) > MAX_VALUES:
            raise FilterError(field_path, f"{op} takes at most {MAX_VALUES} values")
        values = tuple(_value(v, kind, f"{field_path}[{i}]") for i, v in enumerate(raw))
        return In(field, values, negated=op == "EXCLUDES")
    if op in RANGE_OPS and kind not in (FieldKind.INTEGER, FieldKind.DATE):
        raise FilterError(
            field_path, f"{op} needs a numeric or date field; {quote(field)} is {kind.value}"
        )
    return Compare(op, field, _value(raw, kind, field_path))


def _parse_search(body: Any, path: str) -> Search:
    if not isinstance(body, dict) or not isinstance(body.get("keyword"), str):
        raise FilterError(path, 'search takes {"keyword": "...", "fields": [...]}')
    unknown = set(body) - {"keyword", "fields"}
    if unknown:
        raise FilterError(path, f"search does not take {quote(sorted(unknown))}")
    keyword = body["keyword"].strip()
    if not keyword or len(keyword) > MAX_STRING:
        raise FilterError(f"{path}.keyword", f"keyword must be 1 to {MAX_STRING} characters")
    fields = body.get("fields") or list(TEXT_FIELDS)
    if not isinstance(fields, list):
        raise FilterError(f"{path}.fields", "fields must be a list of text field names")
    for i, field in enumerate(fields):
        if not isinstance(field, str) or FIELDS.get(field) is None:
            raise FilterError(f"{path}.fields[{i}]", f"unknown field {quote(field)}")
        if FIELDS[field].kind is not FieldKind.TEXT:
            raise FilterError(
                f"{path}.fields[{i}]",
                f"{quote(field)} is not a text field; use one of {TEXT_FIELDS}",
            )
    return Search(keyword, tuple(fields))


def _field_kind(field: str, path: str) -> FieldKind:
    spec = FIELDS.get(field)
    if spec is None:
        raise FilterError(
            f"{path}{step(field)}",
            f"unknown field {quote(field)}; known fields: {', '.join(FIELDS)}",
        )
    return spec.kind


def _value(raw: Any, kind: FieldKind, path: str) -> Value:
    if kind is FieldKind.INTEGER:
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or (isinstance(raw, float) and not raw.is_integer())  # also NaN and ±Infinity
        ):
            raise FilterError(path, f"expected a whole number, got {quote(raw)}")
        if abs(raw) > 2**53:
            raise FilterError(path, "number out of range")
        return int(raw)
    if kind is FieldKind.DATE:
        if not isinstance(raw, str):
            raise FilterError(path, f"expected an ISO date 'YYYY-MM-DD', got {quote(raw)}")
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise FilterError(
                path, f"expected an ISO date 'YYYY-MM-DD', got {quote(raw)}"
            ) from None
    if not isinstance(raw, str):
        raise FilterError(path, f"expected a string, got {quote(raw)}")
    if len(raw) > MAX_STRING:
        raise FilterError(path, f"value longer than {MAX_STRING} characters")
    return raw


def to_json(node: Node) -> dict[str, Any]:
    """The Guppy JSON of a node (for explain, residuals and cache keys)."""
    match node:
        case And(children):
            return {"AND": [to_json(c) for c in children]}
        case Or(children):
            return {"OR": [to_json(c) for c in children]}
        case Compare(op, field, value):
            return {op: {field: _json_value(value)}}
        case In(field, values, negated):
            return {"EXCLUDES" if negated else "IN": {field: [_json_value(v) for v in values]}}
        case IsMissing(field, missing):
            return {"is_missing": {field: missing}}
        case Search(keyword, fields):
            return {"search": {"keyword": keyword, "fields": list(fields)}}
    raise TypeError(node)


def _json_value(value: Value) -> str | int:
    return value.isoformat() if isinstance(value, dt.date) else value


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents first."""
    yield node
    if isinstance(node, And | Or):
        for child in node.children:
            yield from walk(child)


def fields_used(node: Node) -> set[str]:
    """Canonical fields a filter refers to."""
    used: set[str] = set()
    for n in walk(node):
        if isinstance(n, Compare | In | IsMissing):
            used.add(n.field)
        elif isinstance(n, Search):
            used.update(n.fields)
    return used
