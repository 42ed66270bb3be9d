"""What one caller may learn from one cohort question.

`open_cohort` asks the index up to two questions: the cohort over every series (whose
counts are released through `hub.security.suppression`) and, when some series may be
hidden from this caller, the cohort over the series they may see as records. The second
is the only source of record-level output (series pages, exports, QIDO), so a consumer
that reads `Cohort.view` can never see a hidden series. `Disclosure` releases the counts,
facets, histograms and per-source counts of the first, cell by cell, for either index
backend: it only reads `CohortView` answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.index.base import (
    MAX_FACET_SIZE,
    Bucket,
    CohortQuery,
    Counts,
    Facet,
    QueryError,
    SeriesPage,
    SortKey,
    check_facets,
    check_histogram_field,
    check_page,
)
from hub.index.protocol import CohortView
from hub.security.access import AccessPlan, SourceAccess
from hub.security.suppression import (
    Cell,
    Part,
    ReleasedBucket,
    ReleasedCounts,
    ReleasedFacet,
    release,
    release_counts,
    release_facet,
    release_histogram,
    release_per_source,
)
from schema.filters import Node
from schema.record import FIELDS, SeriesRecord

if TYPE_CHECKING:
    from hub.index.protocol import IndexBackend
    from hub.source_info import SourceInfo


ALWAYS_PRESENT = frozenset(
    name for name, spec in SeriesRecord.model_fields.items() if spec.annotation is str
)
"""Fields every record has (`sex` defaults to "unknown"): their `missing` is zero by
construction, so it is released as exactly 0 and never triggers complementary
suppression (a zero that holds whatever the data says discloses nothing)."""


class EmptyView(CohortView):
    """The record-level view of a caller who sees no source as records: no series, and
    the same argument checks as a real view, so a mistake is reported the same way."""

    def counts(self) -> Counts:
        return Counts(0, 0, 0)

    def facets(self, fields: list[str], size: int) -> list[Facet]:
        check_facets(fields, size)
        return [Facet(name, [], 0) for name in fields]

    def histogram(self, field: str, interval: float) -> list[Bucket]:
        check_histogram_field(field, interval)
        return []

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        check_page(first)
        return SeriesPage(0, [], [], False, None)

    def by_source(self) -> dict[str, int]:
        return {}


@dataclass
class Disclosure:
    """The released answers of one cohort for one caller (computed lazily, once)."""

    full: CohortView
    """Every series the question selects: counted, never listed."""
    records: CohortView
    """The series the caller may see as records (`full` itself when none can be hidden)."""
    plan: AccessPlan
    node: Node
    """The filter that was counted."""
    k: int
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def restricted(self) -> bool:
        """Whether counts of this cohort may include hidden series (then all of them are
        released through suppression and rounding)."""
        return self.full is not self.records and self.plan.restricted_scope(self.node)

    @property
    def access(self) -> tuple[SourceAccess, ...]:
        return self.plan.sources

    def _once(self, key: Any, compute: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def counts(self) -> ReleasedCounts:
        def compute() -> ReleasedCounts:
            full = self.full.counts()
            visible = self.records.counts() if self.restricted else full
            return release_counts(full, visible, self.restricted, self.k)

        result: ReleasedCounts = self._once("counts", compute)
        return result

    def facets(self, fields: list[str], size: int) -> list[ReleasedFacet]:
        check_facets(fields, size)
        self._facets_at_once([n for n in fields if self._plain(n)], size)
        return [self._facet(name, size) for name in fields]

    def _plain(self, name: str) -> bool:
        """Whether `name`'s facet is the full view's own, released as it is."""
        return not self.restricted and not (name == "source" and self.plan.restricted)

    def _facets_at_once(self, names: list[str], size: int) -> None:
        """Ask the full view for every plain facet not yet known in one call (one
        search on a cluster, instead of one per field)."""
        wanted = [n for n in dict.fromkeys(names) if ("facet", n, size) not in self._memo]
        if len(wanted) < 2:
            return
        for facet in self.full.facets(wanted, size):
            self._memo[("facet", facet.field, size)] = self._released_plain(facet, size)

    def _released_plain(self, facet: Facet, size: int) -> ReleasedFacet:
        return release_facet(
            facet, facet, _never, size, self.k, additive=False, missing_restricted=False
        )

    def _facet(self, name: str, size: int) -> ReleasedFacet:
        def compute() -> ReleasedFacet:
            per_source = name == "source"
            if self._plain(name):
                (facet,) = self.full.facets([name], size)
                return self._released_plain(facet, size)
            (full,) = self.full.facets([name], MAX_FACET_SIZE)
            (visible,) = self.records.facets([name], MAX_FACET_SIZE)
            if per_source:  # see `by_source`: a counts-only source's own series only
                seen = {b.key: b.count for b in visible.buckets}
                own = [Bucket(b.key, self._held(b.key, b.count, seen)) for b in full.buckets]
                held = Facet(name, own, 0)
                visible = Facet(name, [b for b in visible.buckets if self._sees(b.key)], 0)
                return release_facet(
                    held,
                    visible,
                    self._hides,
                    size,
                    self.k,
                    additive=False,
                    missing_restricted=False,
                )
            return release_facet(
                full,
                visible,
                _always,
                size,
                self.k,
                additive=not FIELDS[name].multi_valued,
                missing_restricted=name not in ALWAYS_PRESENT,
            )

        result: ReleasedFacet = self._once(("facet", name, size), compute)
        return result

    def histogram(self, field: str, interval: float) -> list[ReleasedBucket]:
        def compute() -> list[ReleasedBucket]:
            full = self._bins(self.full, field, interval)
            if not self.restricted:
                return [ReleasedBucket(b.key, b.count) for b in full]
            visible = self._bins(self.records, field, interval)
            return release_histogram(full, visible, True, self.k)

        check_histogram_field(field, interval)
        result: list[ReleasedBucket] = self._once(("histogram", field, interval), compute)
        return result

    def _bins(self, view: CohortView, field: str, interval: float) -> list[Bucket]:
        try:
            return view.histogram(field, interval)
        except QueryError:
            if not self.plan.restricted:
                raise
            # The backends' message names the field's range over the whole index, hidden
            # series included, and extreme values are the most identifying ones.
            raise QueryError(
                f"interval {interval} gives too many histogram buckets over {field}; "
                "use a larger interval"
            ) from None

    def by_source(self, names: Sequence[str]) -> dict[str, Cell]:
        """Series per repository. A counts-only source counts only the series no visible
        source holds (its hidden series, suppressed or rounded): the visible series it
        also holds are shown without it (`AccessPlan.scrub`) and are not selected by
        `source` conditions naming it (`AccessPlan.as_seen`), so they are not counted
        for it either. Counting them would let padding a cell with them walk its
        rounded count across a multiple of k."""

        def compute() -> dict[str, Cell]:
            full = self.full.by_source()
            seen = full if self.records is self.full else self.records.by_source()
            held = {name: self._held(name, n, seen) for name, n in full.items()}
            visible = {name: n for name, n in full.items() if self._sees(name)}
            return release_per_source(names, held, visible, self._hides, self.k)

        result: dict[str, Cell] = self._once(("by_source", tuple(names)), compute)
        return result

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        """A page of the series this caller may see, each record scrubbed."""
        page = self.records.series(first, after, sort)
        if self.plan.restricted:
            page = dataclasses.replace(page, nodes=[self.plan.scrub(n) for n in page.nodes])
        return page

    def _held(self, source: str, count: int, seen: dict[str, int]) -> int:
        """`source`'s count as this caller's world has it: all of it for a visible
        source, only the series no visible source holds for a counts-only one."""
        return count if self._sees(source) else max(0, count - seen.get(source, 0))

    def _sees(self, source: str) -> bool:
        return source in self.plan.visible

    def _hides(self, source: str) -> bool:
        return source not in self.plan.visible


def _never(_key: str) -> bool:
    return False


def _always(_key: str) -> bool:
    return True


def open_cohort(
    index: IndexBackend, query: CohortQuery, plan: AccessPlan, k: int
) -> tuple[CohortView, Disclosure]:
    """The caller's record-level view of `query`, and the disclosure of its counts."""
    counted = plan.counts_query(query)
    full = index.cohort(counted)
    wanted = plan.records_query(query)
    records: CohortView
    if wanted == counted:
        records = full
    elif wanted is None:
        records = EmptyView()
    else:
        records = index.cohort(wanted)
    return records, Disclosure(full, records, plan, counted.filter, k)


def release_sources(infos: list[SourceInfo], plan: AccessPlan, k: int) -> list[SourceInfo]:
    """The `sources` listing for one caller: a counts-only source's size in the index is
    a count like any other (rounded, or suppressed when small)."""
    out = []
    for info in infos:
        if info.name in plan.visible or info.series is None:
            out.append(info)
            continue
        cell = release(Part(info.series, 0, True), k)
        shown = f"fewer than {k}" if cell.value is None else f"at least {cell.value:,}"
        message = f"{shown} series in the index (counts only)"
        out.append(dataclasses.replace(info, series=cell.value, message=message))
    return out
