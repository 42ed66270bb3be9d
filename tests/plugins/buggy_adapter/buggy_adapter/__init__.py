"""An adapter with a bug, written as a third party would: against `adapters.sdk` only.

Its source holds a few series. Option `fail_in` says where it breaks: `search` (the
default) raises a plain ValueError, `translate` a KeyError, `harvest` a ValueError after
the first batch, `none` nowhere. Every message quotes `INTERNAL_DETAIL` (a column name and
a file path), which must never reach a caller of the hub.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pyarrow as pa

from adapters.sdk import (
    Adapter,
    Capabilities,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    Translation,
    to_batch,
    validate_batch,
)

INTERNAL_DETAIL = "column 'pt_secret_mrn' of /srv/buggy-repo/private/cohorts.parquet"
SERIES = 3


class BuggyAdapter(Adapter):
    """Three series, searchable live and harvestable; the hub applies the whole filter."""

    capabilities = Capabilities(harvest=True, live_search=True, paging=PagingStyle.NONE)

    def _fails_in(self, step: str) -> bool:
        return str(self.settings.option("fail_in", "search")) == step

    def translate(self, node: Node) -> Translation:
        if self._fails_in("translate"):
            raise KeyError(f"no mapping for {INTERNAL_DETAIL}")
        return Translation(native={"table": "series"}, residual=node, description="every row")

    async def search(self, translation: Translation, page: Page) -> PageResult:
        if self._fails_in("search"):
            raise ValueError(f"cannot read {INTERNAL_DETAIL}")
        return PageResult([self._batch()])

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        yield self._batch()
        if self._fails_in("harvest"):
            raise ValueError(f"lost {INTERNAL_DETAIL} half-way")

    def data_version(self) -> str:
        return "buggy 1"

    def _batch(self) -> pa.RecordBatch:
        records = [
            SeriesRecord(
                source=self.name,
                collection="buggy_collection",
                patient_id=f"BUG-{i}",
                study_uid=f"1.2.826.0.1.3680043.10.999.1.{i}",
                series_uid=f"1.2.826.0.1.3680043.10.999.2.{i}",
                modality="CT",
            )
            for i in range(SERIES)
        ]
        return validate_batch(to_batch(records), self.name)
