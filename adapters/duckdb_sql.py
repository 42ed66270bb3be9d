"""Compile the filter AST into a parameterised DuckDB `WHERE` clause.

Values never enter the SQL text: every constant becomes a `?` placeholder and
travels in the parameter list, so a hostile value is only ever compared, never run.
Column names come from a fixed map of canonical fields, never from the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schema.filters import And, Compare, In, IsMissing, Node, Or, Search


@dataclass
class SqlFilter:
    """A WHERE clause and its positional parameters."""

    where: str
    params: list[Any] = field(default_factory=list)


def compile_where(node: Node, columns: Mapping[str, str]) -> SqlFilter:
    """SQL for `node`; `columns` maps canonical field names to quoted column expressions."""
    params: list[Any] = []
    return SqlFilter(_sql(node, columns, params), params)


def _sql(node: Node, columns: Mapping[str, str], params: list[Any]) -> str:
    match node:
        case And(children):
            if not children:
                return "TRUE"
            return "(" + " AND ".join(_sql(c, columns, params) for c in children) + ")"
        case Or(children):
            return "(" + " OR ".join(_sql(c, columns, params) for c in children) + ")"
        case IsMissing(name, missing):
            return f"({columns[name]} IS {'' if missing else 'NOT '}NULL)"
        case In(name, values, negated):
            col = columns[name]
            params.extend(values)
            marks = ", ".join("?" for _ in values)
            if negated:
                return f"({col} IS NULL OR {col} NOT IN ({marks}))"
            return f"({col} IN ({marks}))"
        case Compare(op, name, value):
            col = columns[name]
            params.append(value)
            if op == "!=":
                return f"({col} IS NULL OR {col} <> ?)"
            return f"({col} {op} ?)"
        case Search():
            raise ValueError("search is evaluated by the hub, not compiled to SQL")
    raise TypeError(node)
