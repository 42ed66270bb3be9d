"""A fetch never raises: whatever the plugin adapter raises becomes that source's status.

The installed `buggy` plugin adapter (tests/plugins/buggy_adapter), driven through
`SourceFetcher` directly: a bug in `search`, in working out the next page or a pydantic
ValidationError
is a terminal `error` with a generic message (records already sent are dropped) and a
failure for the breaker; a typed `AdapterError` keeps its message; cancellation is the one
thing that propagates.
"""

from __future__ import annotations

import asyncio

import pytest
from buggy_adapter import INTERNAL_DETAIL, BuggyAdapter

from adapters.spi import Page, PageResult, SourceSettings, TerminalSourceError, Translation
from hub.federation.fetch import FetchResult, SourceFetcher
from hub.federation.status import SourceState
from hub.observability.context import REQUEST_ID
from schema.filters import MATCH_ALL


class PagedBuggy(BuggyAdapter):
    """The plugin, paged: page one arrives, then its continuation or page two breaks."""

    async def search(self, translation: Translation, page: Page) -> PageResult:
        if page.offset and self._fails_in("second-page"):
            SourceSettings.model_validate({"name": INTERNAL_DETAIL})  # a ValidationError
        if page.offset and self._fails_in("typed"):
            raise TerminalSourceError(f"{self.name}: the server refused page two")
        batch = self._batch()
        return PageResult([batch], self._after(page, batch.num_rows))

    def _after(self, page: Page, sent: int) -> Page | None:
        if self._fails_in("next_page"):
            raise IndexError(f"cursor beyond {INTERNAL_DETAIL}")
        return Page(size=page.size, offset=page.offset + sent) if not page.offset else None


def fetch(
    fail_in: str, adapter: type[BuggyAdapter] = PagedBuggy
) -> tuple[SourceFetcher, list[FetchResult]]:
    settings = SourceSettings(name="buggy", adapter="buggy", mode="live", fail_in=fail_in)
    fetcher = SourceFetcher(adapter(settings))

    async def run() -> list[FetchResult]:
        REQUEST_ID.set("req-42")
        return [await fetcher.fetch(fetcher.adapter.translate(MATCH_ALL), 5.0) for _ in range(3)]

    return fetcher, asyncio.run(run())


@pytest.mark.parametrize("fail_in", ["search", "next_page", "second-page"])
def test_a_bug_is_a_generic_error_counted_by_the_breaker(fail_in: str) -> None:
    adapter = BuggyAdapter if fail_in == "search" else PagedBuggy
    fetcher, results = fetch(fail_in, adapter)
    for result in results:
        assert result.status is SourceState.ERROR and result.count == 0
        assert result.message == (
            "buggy: internal error in its adapter (request id req-42); see the server log"
        )
    assert fetcher.breaker.state == "open"


def test_a_typed_failure_keeps_its_message_and_what_arrived() -> None:
    _, results = fetch("typed")
    assert {r.status for r in results} == {SourceState.PARTIAL}
    assert results[0].message == "buggy: the server refused page two"
    assert results[0].count == 3


def test_the_healthy_plugin_answers() -> None:
    fetcher, results = fetch("none")
    assert [r.status for r in results] == [SourceState.OK] * 3 and results[0].count == 6
    assert fetcher.breaker.state == "closed"


def test_cancellation_still_propagates() -> None:
    class Hanging(BuggyAdapter):
        async def search(self, translation: Translation, page: Page) -> PageResult:
            await asyncio.sleep(60)
            return PageResult([self._batch()])

    fetcher = SourceFetcher(Hanging(SourceSettings(name="h", adapter="buggy", mode="live")))

    async def run() -> None:
        task = asyncio.create_task(fetcher.fetch(fetcher.adapter.translate(MATCH_ALL), 30.0))
        await asyncio.sleep(0.1)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
