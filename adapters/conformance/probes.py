"""Probe filters built from a harvested sample: every field, every operator, real values.

Authors list the filters they thought of; probes cover the ones they did not: equality
and set tests on the commonest values, their negations (which also match missing values),
a case variant of each string (the classic pushdown bug: a source that matches `ct` to
`CT`), missing/present tests, ranges around the median, a word search per text field, and
an AND and an OR across fields.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from schema.evaluate import tokenize
from schema.filters import RANGE_OPS, And, Compare, In, IsMissing, Node, Or, Search, Value
from schema.record import FIELDS, FieldKind


def field_values(rows: Sequence[Mapping[str, Any]], name: str) -> list[Value]:
    """The canonical values of `name` in the rows (`source` counts every holder)."""
    out: list[Value] = []
    for row in rows:
        if name == "source":
            out.extend(row.get("sources") or [row.get("source")])
            continue
        value = row.get(name)
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, str | int | dt.date) and not isinstance(value, bool):
            out.append(value)
    return [v for v in out if v is not None]


def commonest(values: Sequence[Value]) -> list[Value]:
    """Distinct values, commonest first (ties in a stable order)."""
    counts = Counter(values)
    return sorted(counts, key=lambda v: (-counts[v], str(v)))


def probe_filters(rows: Sequence[Mapping[str, Any]]) -> list[Node]:
    """Leaf filters over every canonical field, plus an AND and an OR across two fields."""
    probes: list[Node] = []
    equalities: list[Node] = []
    for name, spec in FIELDS.items():
        probes += [IsMissing(name, True), IsMissing(name, False)]
        values = field_values(rows, name)
        ranked = commonest(values)
        if not ranked:
            continue
        first, second = ranked[0], ranked[min(1, len(ranked) - 1)]
        equal = Compare("=", name, first)
        equalities.append(equal)
        probes += [
            equal,
            Compare("!=", name, first),
            In(name, tuple(dict.fromkeys([first, second]))),
            In(name, (first,), negated=True),
        ]
        if isinstance(first, str):
            variant = first.lower() if first.lower() != first else first.upper()
            if variant != first:
                probes.append(Compare("=", name, variant))
        if spec.kind in (FieldKind.INTEGER, FieldKind.DATE):
            middle = sorted(values)[len(values) // 2]
            probes += [Compare(op, name, middle) for op in RANGE_OPS]
        if spec.kind is FieldKind.TEXT and isinstance(first, str):
            words = tokenize(first)
            if words:
                probes.append(Search(words[0], (name,)))
    if len(equalities) >= 2:
        pair = (equalities[1], equalities[-1])  # `collection` and a late field, when present
        probes += [And(pair), Or(pair)]
    return probes
