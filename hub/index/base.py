"""What every index backend answers: the cohort question, in backend-neutral types.

The embedded tantivy index and the Elasticsearch/OpenSearch one implement the same
`IndexBackend` protocol (`protocol.py`) over these types; the API layer never knows
which one it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schema.errors import CallerError, Transient
from schema.filters import Node
from schema.quoting import quote
from schema.record import FIELDS, FieldKind

MAX_PAGE = 1000
MAX_FACET_SIZE = 1000
MAX_HISTOGRAM_BUCKETS = 10_000


class QueryError(CallerError):
    """A cohort request a person got wrong (bad sort key, bad cursor, bad facet field)."""


class IndexNotReady(Transient, RuntimeError):
    """No harvested generation to serve yet, or the index cannot answer now (a 503: ask
    again later); its message is the hub's own and is shown to the caller. `sources`
    names the sources whose answers could not be read (empty: none harvested yet)."""

    def __init__(self, message: str, sources: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.sources = sources

    def by_source(self) -> list[dict[str, str]]:
        """Each unreadable source's status, as answers report it (`bySource`)."""
        return [{"source": s, "status": "error", "message": str(self)} for s in self.sources]


class IndexFailure(RuntimeError):
    """The index refused what the hub sent it, or gave up publishing: a bug or an
    operator's problem, never the caller's (logged in full, reported generically)."""


@dataclass(frozen=True)
class CohortQuery:
    """A parsed cohort question: filter AST plus optional free text (BM25-ranked)."""

    filter: Node
    text: str | None = None


@dataclass(frozen=True)
class Counts:
    patients: int
    studies: int
    series: int


@dataclass(frozen=True)
class Bucket:
    key: str
    count: int


@dataclass(frozen=True)
class Facet:
    field: str
    buckets: list[Bucket]
    missing: int


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False


@dataclass
class SeriesPage:
    total: int
    nodes: list[dict[str, Any]]
    cursors: list[str]
    has_next: bool
    end_cursor: str | None = None


@dataclass(frozen=True)
class LiveAnswer:
    """What one live source answered to one query, and how long to keep it in the index."""

    source: str
    batches: list[Any]  # pyarrow.RecordBatch, canonical schema (adapters/batch.py)
    ttl_s: float
    priority: int = 100


@dataclass(frozen=True)
class SourceSnapshotInfo:
    """What the index holds of one source."""

    source: str
    series: int
    harvested_at: str | None
    data_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_facet_field(name: str) -> None:
    spec = FIELDS.get(name)
    if spec is None:
        raise QueryError(f"unknown facet field {quote(name)}; known fields: {', '.join(FIELDS)}")


def check_facets(fields: list[str], size: int) -> None:
    """Facets are counted on keyword fields with few enough distinct values."""
    if not 1 <= size <= MAX_FACET_SIZE:
        raise QueryError(f"facet size must be between 1 and {MAX_FACET_SIZE}, got {size}")
    for name in fields:
        check_facet_field(name)
        if not FIELDS[name].facetable:
            raise QueryError(f"{quote(name)} has too many distinct values to facet on")
        if FIELDS[name].kind is not FieldKind.KEYWORD:
            shown = quote(name)
            raise QueryError(f"{shown} is numeric; use histogram(field: {shown}, interval: ...)")


def check_histogram_field(name: str, interval: float) -> None:
    spec = FIELDS.get(name)
    if spec is None or spec.kind not in (FieldKind.INTEGER, FieldKind.DATE):
        numeric = [n for n, s in FIELDS.items() if s.kind in (FieldKind.INTEGER, FieldKind.DATE)]
        raise QueryError(
            f"histogram needs a numeric or date field ({', '.join(numeric)}), got {quote(name)}"
        )
    if not interval > 0 or interval != interval or interval > 1e15:
        raise QueryError(f"histogram interval must be a positive number, got {quote(interval)}")


def check_page(first: int) -> None:
    if first < 0 or first > MAX_PAGE:
        raise QueryError(f"first must be between 0 and {MAX_PAGE}, got {first}")


def check_histogram_buckets(field: str, interval: float, low: float, high: float) -> None:
    """A histogram over `low`..`high` (the field's range over the whole index) must not
    have more than `MAX_HISTOGRAM_BUCKETS` buckets."""
    if (high - low) / interval > MAX_HISTOGRAM_BUCKETS:
        raise QueryError(
            f"interval {interval} would give more than {MAX_HISTOGRAM_BUCKETS:,} buckets "
            f"over {field} (range {low}..{high}); use a larger interval"
        )


def check_sort(sort: list[SortKey]) -> SortKey | None:
    """The one sort key a page may have (None: browse order, or BM25 with free text);
    `score` or a single-valued field."""
    if len(sort) > 1:
        raise QueryError("sorting on more than one field is not supported yet; give one sort key")
    key = sort[0] if sort else None
    if key is not None and key.field != "score":
        spec = FIELDS.get(key.field)
        if spec is None or spec.multi_valued:
            sortable = [n for n, s in FIELDS.items() if not s.multi_valued]
            raise QueryError(
                f"cannot sort on {quote(key.field)}; sortable: score, {', '.join(sortable)}"
            )
    return key
