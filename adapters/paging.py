"""Paging helpers: the query parameters of a page, and the loop that walks every page.

The hub drives live paging itself: it asks `Adapter.search` for one page, which answers a
`PageResult` holding that page's batches and the page after it, so the hub can retry a
failed page and resume from the last good one. The continuation travels with the page it
belongs to; an adapter decides it from what the source itself said (its row count through
`Page.next_offset`, its continuation token through `Page.next_cursor`), never from the
records it kept after skipping unusable rows.

`harvest()` of a paged source is the same walk with no filter: `walk_pages` is that loop
(without retries; adapters never retry, the hub does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pyarrow as pa

from adapters.spi import Adapter, Page, Translation


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
        answer = await adapter.search(translation, page)
        for batch in answer.batches:
            yield batch
        page = answer.next_page
