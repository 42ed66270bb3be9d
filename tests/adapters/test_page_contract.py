"""The paging contract between an adapter and the hub's loop: each page names the next.

`search` answers a `PageResult`; the hub (hub/federation/fetch.py) asks for the page it
names, asks for the same page again when fetching it failed, and resumes from there. These
drive the real `SourceFetcher` with a scripted adapter, so they fail if the loop stops
following `next_page`, loses the page it was on, or accepts anything but a `PageResult`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import adapters.sdk as sdk
from hub.federation.fetch import RetryPolicy, SourceFetcher
from hub.federation.status import SourceState

UIDS = [f"1.2.{i}" for i in range(7)]


class Scripted(sdk.Adapter):
    """Seven series behind an opaque cursor (`"c<offset>"`), three per page; the pages in
    `fail_once` answer HTTP 503 the first time they are asked."""

    capabilities = sdk.Capabilities(
        harvest=False, live_search=True, paging=sdk.PagingStyle.CURSOR, max_page_size=3
    )

    def __init__(self, settings: sdk.SourceSettings, fail_once: set[str | None]) -> None:
        super().__init__(settings)
        self.fail_once = set(fail_once)
        self.asked: list[str | None] = []

    def translate(self, node: sdk.Node) -> sdk.Translation:
        return sdk.Translation({}, None if node == sdk.MATCH_ALL else node, "everything")

    async def search(self, translation: sdk.Translation, page: sdk.Page) -> sdk.PageResult:
        self.asked.append(page.token)
        if page.token in self.fail_once:
            self.fail_once.discard(page.token)
            raise sdk.TransientSourceError("scripted (GET h/series) answered HTTP 503")
        start = int((page.token or "c0")[1:])
        uids = UIDS[start : start + page.size]
        batch = sdk.to_batch(
            sdk.SeriesRecord(source=self.name, collection="c", patient_id="p", study_uid="1.2",
                             series_uid=u, sources=[self.name]) for u in uids
        )  # fmt: skip
        token = f"c{start + page.size}" if start + page.size < len(UIDS) else None
        return sdk.PageResult([batch], page.next_cursor(token))


def fetch(adapter: sdk.Adapter) -> Any:
    fetcher = SourceFetcher(adapter, RetryPolicy(attempts=3, initial_s=0.001, max_s=0.002))
    return asyncio.run(fetcher.fetch(adapter.translate(sdk.MATCH_ALL), deadline_s=5))


def uids(result: Any) -> list[str]:
    return [r["series_uid"] for b in result.batches for r in b.to_pylist()]


def test_the_hub_follows_the_page_each_answer_names() -> None:
    adapter = Scripted(sdk.SourceSettings(name="scripted", adapter="scripted"), set())
    result = fetch(adapter)
    assert result.status is SourceState.OK and uids(result) == UIDS
    assert adapter.asked == [None, "c3", "c6"]


def test_a_failed_page_is_asked_again_and_the_walk_resumes_from_it() -> None:
    adapter = Scripted(sdk.SourceSettings(name="scripted", adapter="scripted"), {"c3"})
    result = fetch(adapter)
    assert result.status is SourceState.OK and uids(result) == UIDS  # nothing twice, no gap
    assert adapter.asked == [None, "c3", "c3", "c6"] and result.retries == 1


class OldStyle(Scripted):
    """A search that answers its batches alone (a list, not a PageResult)."""

    async def search(self, translation: sdk.Translation, page: sdk.Page) -> Any:  # type: ignore[override]
        return [sdk.to_batch([])]


def test_a_search_that_answers_no_page_result_is_an_error_not_a_crash() -> None:
    result = fetch(OldStyle(sdk.SourceSettings(name="old", adapter="old"), set()))
    assert result.status is SourceState.ERROR
    assert "not a PageResult" in result.message


@pytest.mark.parametrize("size", [1, 3, 7, 50])
def test_walk_pages_reads_every_page_once(size: int) -> None:
    async def walk() -> list[str]:
        adapter = Scripted(sdk.SourceSettings(name="scripted", adapter="scripted"), set())
        translation = adapter.translate(sdk.MATCH_ALL)
        return [r["series_uid"] async for b in sdk.walk_pages(adapter, translation, size)
                for r in b.to_pylist()]  # fmt: skip

    assert asyncio.run(walk()) == UIDS
