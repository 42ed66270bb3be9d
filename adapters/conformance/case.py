"""A conformance case: the adapter under test, how to reach its source, and what to ask.

An author describes their adapter once (`ConformanceCase`); every check then builds fresh
adapters from it (`make`, the adapter factory), runs them in their own event loop (`use`)
against the stand-in source (`serving`: respx routes the author installs), and compares
what they answer with the harvested `Sample`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import pyarrow as pa
import respx

from adapters.http import HttpAdapter
from adapters.spi import Adapter, Page, PageResult, PagingStyle, SourceSettings, Translation
from schema.filters import MATCH_ALL, Node, parse_filter, to_json

T = TypeVar("T")
Routes = Callable[[respx.MockRouter], object]
"""Installs the stand-in source's routes on a respx router (`router.get(...).mock(...)`)."""

SECRET = "imaging-hub-conformance-s3cr3t-7f3a9c"
SECRET_ENV = "IMAGING_HUB_CONFORMANCE_SECRET"


class ConformanceFailure(AssertionError):
    """A conformance check found the adapter breaking the SPI contract; the message says how."""


@dataclass(frozen=True)
class Sample:
    """What the adapter harvested (live-only adapters: its answer to the empty filter)."""

    batches: tuple[pa.RecordBatch, ...]

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        return [row for batch in self.batches for row in batch.to_pylist()]


@dataclass
class ConformanceCase:
    """One adapter under test, with everything the checks need to drive it."""

    adapter_class: type[Adapter]
    """The class the entry point names."""
    settings: Mapping[str, Any]
    """One `[sources.NAME]` table (`name` required; `url` and options as a hub config has them)."""
    filters: Sequence[Any] = ()
    """Guppy filter JSON the author cares about; the kit adds probes built from the sample."""
    routes: Routes | None = None
    """respx routes of a stand-in source; None when the adapter talks to a real server or none."""
    page_size: int | None = None
    """Page size for the paging check; default: about a third of the sample, so it pages."""
    probes: bool = True
    """Also check filters generated from the sample (every field, operator and case variant)."""
    secret_env: str = SECRET_ENV
    """Environment variable the secrets check puts `secret` in (named by `credentials_env`)."""
    secret: str = SECRET
    """A value that must never appear in a message, a log record or a translation."""
    _sample: Sample | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return str(self.settings["name"])

    def make(self, **overrides: Any) -> Adapter:
        """The adapter factory: a fresh adapter for these settings, `overrides` applied."""
        table = {"adapter": "conformance", **self.settings, **overrides}
        return self.adapter_class(SourceSettings.model_validate(table))

    @contextmanager
    def serving(self) -> Iterator[None]:
        """The stand-in source (respx routes) while the block runs; nothing without routes."""
        if self.routes is None:
            yield
            return
        with respx.mock(assert_all_called=False) as router:
            self.routes(router)
            yield

    def use(self, work: Callable[[Adapter], Awaitable[T]], **overrides: Any) -> T:
        """Run `work` on a fresh adapter in an event loop of its own, closing it after."""

        async def run() -> T:
            adapter = self.make(**overrides)
            try:
                return await work(adapter)
            finally:
                await adapter.aclose()

        return asyncio.run(run())

    def speaks_http(self) -> bool:
        """True for HttpAdapter subclasses: the kit can drive their HTTP layer with respx."""
        return issubclass(self.adapter_class, HttpAdapter)

    def nodes(self) -> list[Node]:
        """The author's filters as AST nodes."""
        return [f if not isinstance(f, dict) else parse_filter(f) for f in self.filters]

    def sample(self) -> Sample:
        """The harvested sample, fetched once per case."""
        if self._sample is None:
            with self.serving():
                sample = Sample(tuple(self.use(_everything)))
            if not sample.rows:
                raise ConformanceFailure(
                    f"{self.adapter_class.__name__} harvested nothing: every check compares "
                    "against the sample, so give the stand-in source some records"
                )
            self._sample = sample
        return self._sample


async def _everything(adapter: Adapter) -> list[pa.RecordBatch]:
    if adapter.capabilities.harvest:
        return await collect(adapter.harvest())
    pages = await walk(adapter, adapter.translate(MATCH_ALL), None, max_pages=100_000)
    return [b for page in pages for b in page]


async def collect(stream: AsyncIterator[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """Every batch of a stream."""
    return [batch async for batch in stream]


async def walk(
    adapter: Adapter, translation: Translation, size: int | None, max_pages: int
) -> list[list[pa.RecordBatch]]:
    """The hub's paging loop (hub/federation/fetch.py) without its retries: batches per page.

    Fails when `search` does not answer a `PageResult`, when the page it names next does not
    follow the declared `PagingStyle`, and after `max_pages` pages, so an adapter whose
    paging never ends fails instead of hanging the test run.
    """
    page: Page | None = Page(size=size or adapter.capabilities.max_page_size or 1000)
    pages: list[list[pa.RecordBatch]] = []
    while page is not None:
        if len(pages) >= max_pages:
            raise ConformanceFailure(
                f"paging did not end after {max_pages} pages (last page asked: {page})"
            )
        answer = await adapter.search(translation, page)
        if not isinstance(answer, PageResult):
            raise ConformanceFailure(
                f"search answered {type(answer).__name__}: make it `async def` returning "
                "PageResult(batches, next_page)"
            )
        pages.append(list(answer.batches))
        if answer.next_page is not None:
            check_next(adapter.capabilities.paging, page, answer.next_page)
        page = answer.next_page
    return pages


def check_next(style: PagingStyle, page: Page, after: Page) -> None:
    """Raise when the page `search` named after `page` does not follow the declared style."""
    problem = {
        PagingStyle.NONE: "declares paging NONE yet named a next page",
        PagingStyle.OFFSET: (
            "declares paging OFFSET but the next page does not move forward by offset"
            if after.token is not None or after.offset <= page.offset
            else ""
        ),
        PagingStyle.CURSOR: (
            "declares paging CURSOR but the next page carries no token" if not after.token else ""
        ),
    }[style]
    if problem:
        raise ConformanceFailure(f"the adapter {problem} (asked {page}, next {after})")


def show(node: Node) -> str:
    """A filter as the JSON an author wrote, for failure messages."""
    return json.dumps(to_json(node))
