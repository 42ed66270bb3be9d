"""Shared vocabulary of the hub: the canonical record, normalisation and the filter AST.

Depends on pydantic only; adapters and the hub import from here, never the reverse.
"""

from schema.filters import FilterError, Node, parse_filter
from schema.record import FIELDS, FieldKind, FieldSpec, SeriesRecord

__all__ = [
    "FIELDS",
    "FieldKind",
    "FieldSpec",
    "FilterError",
    "Node",
    "SeriesRecord",
    "parse_filter",
]
