"""What every index backend does, completely: the one interface the hub talks to.

The embedded index (`hub/index/embedded/`) and the Elasticsearch/OpenSearch one
(`hub/index/elastic/`) implement `IndexBackend` and `CohortView` in full, so nothing
outside `hub/index/` knows which one it has (`hub/index/open.py` is the one place that
chooses). A cohort's fast paths (every record for an export, a window of series or of
studies for QIDO) have a default here, built on `series` paging, that a backend
replaces when it has a faster way; the answers are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hub.index.base import (
    MAX_PAGE,
    Bucket,
    CohortQuery,
    Counts,
    Facet,
    LiveAnswer,
    SeriesPage,
    SortKey,
    SourceSnapshotInfo,
)
from hub.index.snapshots import Snapshot
from schema.record import RECORD_COLUMNS

Record = dict[str, Any]
"""One series for an export: the canonical columns plus `sources` and `locations`."""
CHUNK_ROWS = 1_000
"""Records per chunk: ~3 MB of Python objects (~2.7 KB a record) and ~1 MB of NDJSON.
Larger chunks are no faster; they only raise the peak once a cohort is dense enough
to fill them."""
Progress = Callable[[int], Any]
"""progress(series_indexed_since_last_call)."""


@dataclass(frozen=True)
class IndexStats:
    """What the metrics collector reports of the index being served."""

    generation: str | None
    """What is served: the embedded generation's name, the cluster's served indices."""
    series: int
    """Series documents served (harvested ones; live answers come and go)."""
    bytes: int | None
    """Bytes of what is served: on disk, or in the cluster's store (primaries)."""


class CohortView(Protocol):
    """One cohort question, evaluated lazily; parts computed once are shared.

    A backend's cohort subclasses this protocol to inherit the fast paths' defaults."""

    def counts(self) -> Counts: ...
    def facets(self, fields: list[str], size: int) -> list[Facet]: ...
    def histogram(self, field: str, interval: float) -> list[Bucket]: ...
    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage: ...
    def by_source(self) -> dict[str, int]: ...

    def record_chunks(
        self,
        limit: int | None = None,
        chunk_rows: int = CHUNK_ROWS,
        columns: list[str] | None = None,
    ) -> Iterator[list[Record]]:
        """Every record in browse order, a chunk at a time, at most `limit`; memory stays
        flat in the cohort's size. `columns` (with `row`) may narrow what is read, so
        records may lack other keys. Default: cursor paging through `series`, a page a
        chunk (whole records)."""
        left = limit if limit is not None else -1
        after: str | None = None
        while left != 0:
            first = MAX_PAGE if left < 0 else min(MAX_PAGE, left)
            page = self.series(first, after, [])
            records = [record_of(doc) for doc in page.nodes]
            more, after = page.has_next and bool(records), page.end_cursor
            del page  # one page at a time
            if records:
                left = left - len(records) if left > 0 else left
                yield records
            del records
            if not more:
                return

    def series_window(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Series `offset`..`offset+limit` in browse order, and how many match in all."""
        docs: list[dict[str, Any]] = []
        skip, after, total = offset, None, 0
        while len(docs) < limit:
            page = self.series(MAX_PAGE, after, [])
            total = page.total
            docs += page.nodes[skip:]
            skip = max(0, skip - len(page.nodes))
            if not page.has_next or not page.nodes:
                break
            after = page.end_cursor
        return docs[:limit], total or self.counts().series

    def study_window(self, offset: int, limit: int) -> tuple[list[str], int]:
        """Distinct studies `offset`..`offset+limit` of the series, in browse order (a
        study's place is its first series'), and how many studies in all."""
        seen: dict[str, None] = {}
        for doc in all_series(self):
            seen.setdefault(doc["study_uid"])
            if len(seen) >= offset + limit:
                break
        return list(seen)[offset : offset + limit], self.counts().studies


class LiveIndex(Protocol):
    """What the live-source planner needs of an index backend."""

    def add_live_many(self, answers: list[LiveAnswer]) -> None:
        """Merge live answers, so the next cohort over the index includes them."""

    def prepare(self, query: CohortQuery) -> None:
        """Start on the harvested part of `query` while live sources are asked (may do
        nothing)."""


class IndexBackend(LiveIndex, Protocol):
    """An index backend, all of it: serving, publishing harvests, live answers, stats."""

    def ready(self) -> bool:
        """Something harvested is served (an empty harvest counts)."""

    def cohort(self, query: CohortQuery) -> CohortView: ...

    def snapshots(self) -> list[SourceSnapshotInfo]:
        """What the index holds of each source (empty before the first harvest)."""

    async def publish(
        self,
        snapshots: Sequence[Snapshot],
        priorities: dict[str, int],
        progress: Progress | None = None,
    ) -> list[str]:
        """Bring the index in line with `snapshots` (the sources not among them leave it),
        de-duplicating shared series by `priorities`; the next question sees the result.
        Returns the sources (re)indexed. What was served keeps answering until the new
        state is complete, and stays if this fails."""

    def reopen(self, drop_live: Collection[str] = ()) -> None:
        """After a runtime source change: forget the live answers of `drop_live` now and
        look again at what is published on the next question."""

    def warm_live(self) -> None:
        """Build now what merging the first live answer would need (may do nothing)."""

    def stats(self) -> IndexStats:
        """What is served, for `/metrics` (raises if the index cannot be reached)."""

    def close(self) -> None:
        """Release clients and threads; the backend is not used after."""


def record_of(doc: dict[str, Any]) -> Record:
    """A series as `series` shows it, as an export record (`locations` from its own
    download URL when the backend gave none)."""
    record = {name: doc.get(name) for name in RECORD_COLUMNS}
    record["sources"] = list(doc.get("sources") or ([doc["source"]] if doc.get("source") else []))
    locations = doc.get("locations")
    if locations is None and record["download_url"] is not None:
        locations = [{"source": record["source"], "url": record["download_url"]}]
    record["locations"] = locations or []
    return record


def all_series(view: CohortView) -> Iterator[dict[str, Any]]:
    """Every series of a cohort in browse order, a page at a time."""
    after: str | None = None
    while True:
        page = view.series(MAX_PAGE, after, [])
        yield from page.nodes
        if not page.has_next or not page.nodes:
            return
        after = page.end_cursor
