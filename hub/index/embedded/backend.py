"""The embedded index: tantivy on disk plus numpy columns, nothing to install or start.

tantivy answers text (BM25), facets and histograms (its aggregation API) and stores
the documents; the numpy columns (see `columns.py`) give exact distinct counts and
cursor paging. Both belong to one generation directory; a new harvest builds a new
generation and flips `CURRENT`, which every open index notices within a second.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from hub.index.base import CohortQuery, IndexNotReady, LiveAnswer, SourceSnapshotInfo
from hub.index.embedded.build import build_generation
from hub.index.embedded.cohort import EmbeddedCohort
from hub.index.embedded.columns import Rows
from hub.index.embedded.generation import Generation, open_generation
from hub.index.embedded.live import LiveRecords, attach
from hub.index.embedded.memo import DocumentCache, Memo
from hub.index.protocol import IndexStats, Progress
from hub.index.snapshots import Snapshot
from schema.filters import Node, fields_used

log = logging.getLogger(__name__)
MEMO_BYTES = 64 * 1024 * 1024
"""Row selections and rankings remembered per process (see `Memo`); an IDC-wide
selection is 8 MB, a typical one well under 1 MB."""
TEXT_MEMO_BYTES = 32 * 1024 * 1024
"""Rows each searched text matches: few words come back often ("lung", "brain"), and
finding a common one's rows again costs 20-100 ms."""
DOCUMENTS_KEPT = 20_000
"""Stored documents kept per process (see `DocumentCache`): ~30 MB for IDC's."""


class EmbeddedIndex:
    """The default index backend, under `<data_dir>/index`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "index"
        self._lock = threading.Lock()
        self._gen: Generation | None = None
        self._checked = 0.0
        self.live = LiveRecords()
        self.memo = Memo(MEMO_BYTES)
        self.text_memo = Memo(TEXT_MEMO_BYTES)  # not pushed out by large row selections
        self.documents = DocumentCache(DOCUMENTS_KEPT)
        self._sizes: dict[str, int] = {}  # bytes on disk, by generation (never rewritten)

    def generation(self) -> Generation:
        """The current generation, reopened when `CURRENT` has moved (checked once a second)."""
        now = time.monotonic()
        if self._gen is not None and now - self._checked < 1.0:
            return self._gen
        with self._lock:
            self._checked = now
            current = self.root / "CURRENT"
            if not current.is_file():
                raise IndexNotReady("the index has not been built yet; run `imaging-hub harvest`")
            name = current.read_text().strip()
            if self._gen is None or self._gen.name != name:
                gen = open_generation(self.root / name)
                self._gen = attach(gen, self.live) if self.live.table.num_rows else gen
            return self._gen

    def reopen(self, drop_live: Collection[str] = ()) -> None:
        """Read `CURRENT` again on the next question instead of within a second, first
        forgetting the live answers of `drop_live`: after a runtime source change
        (hub/registry/admin.py) the next answer must already reflect it."""
        self.live.drop(drop_live)
        with self._lock:
            self._gen = None
            self._checked = 0.0

    async def publish(
        self,
        snapshots: Sequence[Snapshot],
        priorities: dict[str, int],
        progress: Progress | None = None,
    ) -> list[str]:
        """Build a complete new generation from `snapshots` and switch `CURRENT` to it
        (see `build.py`); the previous one serves until then, and stays if the build
        fails. Every source is indexed again: a generation is built whole."""
        build_generation(self.root, snapshots, priorities, progress)
        self.reopen()
        return [s.source for s in snapshots]

    def stats(self) -> IndexStats:
        """The served generation, its harvested series and its size on disk (walked once
        per generation: a generation is never written again)."""
        gen = self.generation()
        if gen.name not in self._sizes:
            self._sizes = {gen.name: _tree_bytes(gen.files.folder)}
        return IndexStats(gen.name, int(gen.meta.get("rows", 0)), self._sizes[gen.name])

    def add_live(self, source: str, batches: list[Any], ttl_s: float, priority: int = 100) -> None:
        """Merge a live source's answer into the index (kept for `ttl_s` seconds)."""
        self.add_live_many([LiveAnswer(source, batches, ttl_s, priority)])

    def add_live_many(self, answers: list[LiveAnswer]) -> None:
        """Merge several live answers at once: one pass, one new generation value."""
        self.live.upsert(answers)
        gen = self.generation()
        with self._lock:
            self._gen = attach(gen, self.live)

    def harvested_rows(self, gen: Generation, node: Node, compute: Callable[[], Rows]) -> Rows:
        """Rows of the harvested part a filter selects, remembered per generation: live
        answers leave them unchanged unless the filter names a source (live sources mark
        harvested series), so a question prepared while live sources are asked, or asked
        again for its next page, does not evaluate them twice."""
        live = gen.live_version if "source" in fields_used(node) else None
        return self.memo.get(("rows", gen.name, live, repr(node)), compute)

    def prepare(self, query: CohortQuery) -> None:
        """Evaluate the harvested part of a question (see `harvested_rows`), meant to run
        while the live sources are being asked."""
        try:
            cohort = self.cohort(query)
        except IndexNotReady:
            return
        self.harvested_rows(cohort.gen, cohort.node, cohort._harvested_rows)

    def warm_live(self) -> None:
        """Build what merging live answers needs (a sorted copy of the series dictionary,
        ~1 s for IDC) now, instead of during the first live query."""
        try:
            columns = self.generation().base_columns
        except IndexNotReady:
            return
        for name in ("series_uid", "study_uid", "patient_key"):
            columns.lookup(name, [])

    def close(self) -> None:
        """Nothing to release: generations are read-only and live parts live in memory."""

    def ready(self) -> bool:
        try:
            self.generation()
        except (IndexNotReady, OSError, ValueError):
            return False
        return True

    def cohort(self, query: CohortQuery) -> EmbeddedCohort:
        return EmbeddedCohort(self, self.generation(), query)

    def snapshots(self) -> list[SourceSnapshotInfo]:
        try:
            meta = self.generation().meta
        except IndexNotReady:
            return []
        return [
            SourceSnapshotInfo(s["source"], s["series"], s["harvested_at"], s.get("data_version"))
            for s in meta["snapshots"]
        ]


def _tree_bytes(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for file in files:
            try:
                total += os.stat(os.path.join(base, file)).st_size
            except OSError:  # removed by a concurrent clean-up
                continue
    return total
