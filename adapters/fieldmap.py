"""Field maps: where each canonical field sits in a source's rows, and its normalisation.

Most adapters for a JSON API do the same work per row: find each canonical field under the
source's own key (`patient.sex`, `BodyPartExamined`), apply the DESIGN.md rule for that
field (`F` → `female`, `066Y` → 66, `20190412` → 2019-01-12, `LIDC-IDRI` → `lidc_idri`), and
skip rows that cannot be identified. `FieldMap` declares the first part as data and does the
rest; `canonical_value` is the per-field rule on its own.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from adapters.batch import to_batch, validate_batch
from schema import normalize as norm
from schema.filters import And, Compare, In, Node
from schema.record import FIELDS, FieldKind, SeriesRecord

Getter = str | Callable[[Mapping[str, Any]], Any]
"""A dotted key into a row (`"patient.sex"`), or a function of the row."""

IDENTIFIERS = ("collection", "patient_id", "study_uid", "series_uid")
"""A row without any of these cannot be indexed: it is skipped, never invented."""

_RULES: dict[str, Callable[[Any], Any]] = {
    "sex": lambda v: norm.normalize_sex(_string(v)),
    "age": lambda v: _age(v),
    "modality": lambda v: norm.normalize_code(_string(v)),
    "body_part": lambda v: norm.normalize_code(_string(v)),
    "study_date": lambda v: norm.normalize_date(v if isinstance(v, dt.date) else _string(v)),
    "collection": lambda v: (norm.normalize_collection(s) or None) if (s := _string(v)) else None,
}


def canonical_value(field: str, raw: Any) -> Any:
    """`raw` as the canonical value of `field`, by the normalisation rules of DESIGN.md."""
    if isinstance(raw, list):  # many APIs send one-element lists; take the first real value
        raw = next((v for v in raw if v not in (None, "")), None)
    rule = _RULES.get(field)
    if rule is not None:
        return rule(raw)
    spec = FIELDS.get(field)
    if spec is not None and spec.kind is FieldKind.INTEGER:
        return _count(raw)
    return norm.normalize_text(_string(raw))


@dataclass(frozen=True)
class FieldMap:
    """Canonical field → where its raw value sits in one native row.

    `record` builds a normalised `SeriesRecord` (None when an identifier is missing);
    `batch` builds a validated canonical Arrow batch from many rows.
    """

    fields: Mapping[str, Getter]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(FIELDS) - {"viewer_url", "download_url"})
        if unknown:
            raise ValueError(f"not canonical fields: {unknown}; see schema.record.FIELDS")

    def native(self, field: str) -> str | None:
        """The source's key for `field` (for building requests); None when computed or absent."""
        getter = self.fields.get(field)
        return getter if isinstance(getter, str) else None

    def raw(self, row: Mapping[str, Any], field: str) -> Any:
        """The raw value of `field` in `row`, before normalisation; None when absent."""
        getter = self.fields.get(field)
        if getter is None:
            return None
        if callable(getter):
            return getter(row)
        value: Any = row
        for part in getter.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def record(self, row: Mapping[str, Any], source: str, **fixed: Any) -> SeriesRecord | None:
        """One canonical record; `fixed` sets fields for every row (license, fetched_at)."""
        values = {f: canonical_value(f, self.raw(row, f)) for f in self.fields}
        for url in ("viewer_url", "download_url"):
            if url in values and not str(values[url] or "").startswith(("https://", "http://")):
                values[url] = None
        values.update(fixed)
        if any(not values.get(f) for f in IDENTIFIERS):
            return None
        values.setdefault("fetched_at", dt.datetime.now(dt.UTC))
        return SeriesRecord(source=source, sources=[source], **values)

    def batch(self, rows: Iterable[Mapping[str, Any]], source: str, **fixed: Any) -> pa.RecordBatch:
        """A validated canonical batch of every identifiable row."""
        now = fixed.pop("fetched_at", None) or dt.datetime.now(dt.UTC)
        records = (self.record(r, source, fetched_at=now, **fixed) for r in rows)
        return validate_batch(to_batch(r for r in records if r is not None), source)


def conjuncts(node: Node) -> list[Node]:
    """The top-level AND parts of a filter (a lone condition is one part)."""
    if isinstance(node, And):
        return [c for child in node.children for c in conjuncts(child)]
    return [node]


def one_per_field(pushed: Node) -> tuple[dict[str, Compare | In], list[Node]]:
    """A pushed filter as one condition per field (what a query string can say) plus the rest.

    `?modality=CT` has one slot per parameter: a second condition on the same field, or an
    OR, cannot be sent with the first, so it is returned to be kept in the residual.
    """
    slots: dict[str, Compare | In] = {}
    rest: list[Node] = []
    for part in conjuncts(pushed):
        if isinstance(part, Compare | In) and part.field not in slots:
            slots[part.field] = part
        else:
            rest.append(part)
    return slots, rest


def conjoin(nodes: Iterable[Node | None]) -> Node | None:
    """AND of the given conditions (None ones dropped); None when there are none: no residual."""
    kept = [n for n in nodes if n is not None]
    return None if not kept else kept[0] if len(kept) == 1 else And(tuple(kept))


def _age(value: Any) -> int | None:
    if isinstance(value, float) and math.isfinite(value):
        value = math.floor(value)  # 62.5 years old is 62, as DICOM ages are
    return norm.normalize_age(value if isinstance(value, int) else _string(value))


def _string(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None
