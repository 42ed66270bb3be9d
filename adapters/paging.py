"""Paging helpers: what a page answered, and the loop that walks every page.

The hub drives live paging itself (`Adapter.search` one page, then `Adapter.next_page`), so
it can retry a failed page and resume from the last good one. Two things trip adapters up:

- `next_page(page, returned)` receives how many canonical records the page yielded, which is
  fewer than the source sent when rows were skipped (no series UID, say); an offset source
  deciding from that stops early and loses records. `Pager.answered` records what the
  source itself said (its row count, its continuation token) so `Pager.next_page` decides
  from that instead.
- `harvest()` of a paged source is the same walk with no filter: `walk_pages` is that loop
  (without retries; adapters never retry, the hub does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pyarrow as pa

from adapters.spi import Adapter, Page, PagingStyle, Translation

_REMEMBERED = 1024  # pages whose answer is kept for next_page; old ones are forgotten


@dataclass(frozen=True)
class _Answer:
    page: Page
    rows: int
    token: str | None


class Pager:
    """Remembers what each page of a live search answered, for `Adapter.next_page`.

    Keyed by the page object the hub passes to both calls (two concurrent searches may use
    equal pages), so call `answered` from `search` and return `next_page` from `next_page`.
    """

    def __init__(self, style: PagingStyle) -> None:
        self.style = style
        self._answers: dict[int, _Answer] = {}

    def answered(self, page: Page, rows: int, token: str | None = None) -> None:
        """Record that the source sent `rows` rows for `page` and, cursor style, `token`."""
        if len(self._answers) >= _REMEMBERED:
            self._answers.clear()
        self._answers[id(page)] = _Answer(page, rows, token or None)

    def next_page(self, page: Page, returned: int) -> Page | None:
        """The page after `page`; None when the source said it was the last."""
        answer = self._answers.pop(id(page), None)
        if answer is not None and answer.page is not page:
            answer = None  # an id reused by another object: we know nothing about this page
        if self.style is PagingStyle.OFFSET:
            rows = answer.rows if answer is not None else returned
            return (
                Page(size=page.size, offset=page.offset + page.size) if rows >= page.size else None
            )
        if self.style is PagingStyle.CURSOR and answer is not None and answer.token:
            return Page(size=page.size, token=answer.token)
        return None


def offset_params(page: Page, limit: str = "limit", offset: str = "offset") -> dict[str, str]:
    """The query parameters of an offset/limit page, under the source's own names."""
    return {limit: str(page.size), offset: str(page.offset)}


async def walk_pages(
    adapter: Adapter, translation: Translation, page_size: int | None = None
) -> AsyncIterator[pa.RecordBatch]:
    """Every page of a translated filter in turn, as the hub walks them but without retries.

    For `harvest()` of a source that can only list page by page:
    `return walk_pages(self, self.translate(MATCH_ALL))`.
    """
    size = page_size or adapter.capabilities.max_page_size or 1000
    page: Page | None = Page(size=size)
    while page is not None:
        returned = 0
        async for batch in adapter.search(translation, page):
            returned += batch.num_rows
            yield batch
        page = adapter.next_page(page, returned)
