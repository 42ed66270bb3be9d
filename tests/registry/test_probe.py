"""`Adapter.probe` (one record of a MATCH_ALL page of size 1, the adapter's typed error on
failure) and how registration reports what a probe raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pytest

from adapters.batch import ARROW_SCHEMA
from adapters.idc import IdcAdapter
from adapters.spi import (
    Adapter,
    Capabilities,
    Page,
    PageResult,
    SourceSettings,
    TerminalSourceError,
    TransientSourceError,
    Translation,
)
from hub.registry.store import RegistryError
from hub.registry.validate import probe
from schema.filters import MATCH_ALL, Node


class Recorder(Adapter):
    """Streams endless pages and remembers what it was asked; `fail` is raised instead."""

    capabilities = Capabilities(harvest=True, live_search=True)

    def __init__(self, settings: SourceSettings, fail: BaseException | None = None) -> None:
        super().__init__(settings)
        self.fail = fail
        self.asked: list[tuple[Any, Page | None]] = []
        self.closed = False

    def translate(self, node: Node) -> Translation:
        return Translation({"match_all": node == MATCH_ALL}, None, "everything")

    async def search(self, translation: Translation, page: Page) -> PageResult:
        self.asked.append((translation.native, page))
        stream = self._batches()
        try:
            return PageResult([await anext(stream)])
        finally:
            await stream.aclose()

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        self.asked.append(("harvest", None))
        async for batch in self._batches():
            yield batch

    async def _batches(self) -> AsyncIterator[pa.RecordBatch]:
        try:
            if isinstance(self.fail, Exception) and str(self.fail) == "hang":
                await asyncio.sleep(60)
            if self.fail is not None:
                raise self.fail
            while True:
                yield _one()
        finally:
            self.closed = True


def _one() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{}], schema=ARROW_SCHEMA)


def settings(**extra: Any) -> SourceSettings:
    return SourceSettings(name="rec", adapter="rec", **extra)


def test_default_probe_reads_one_record_of_a_match_all_page_of_one() -> None:
    adapter = Recorder(settings())
    asyncio.run(adapter.probe())
    assert adapter.asked == [({"match_all": True}, Page(size=1))]
    assert adapter.closed  # the stream is closed, not left pending


def test_a_harvest_only_source_is_probed_through_its_harvest() -> None:
    adapter = Recorder(settings())
    adapter.capabilities = Capabilities(harvest=True, live_search=False)
    asyncio.run(adapter.probe())
    assert adapter.asked == [("harvest", None)] and adapter.closed


def test_a_source_that_can_do_nothing_fails_its_probe() -> None:
    adapter = Recorder(settings())
    adapter.capabilities = Capabilities(harvest=False, live_search=False)
    with pytest.raises(TerminalSourceError, match="can neither search nor harvest"):
        asyncio.run(adapter.probe())


def test_the_adapters_typed_error_propagates() -> None:
    adapter = Recorder(settings(), TransientSourceError("rec (GET h/series) answered HTTP 503"))
    with pytest.raises(TransientSourceError, match="HTTP 503"):
        asyncio.run(adapter.probe())


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        (TerminalSourceError("rec refused the credentials (HTTP 401)"), "failed: rec refused"),
        (RuntimeError("plugin bug with tok-123456"), "the adapter raised RuntimeError"),
        (RuntimeError("hang"), "no answer within 0.2 s"),
    ],
)
def test_registration_reports_what_the_probe_raised(fail: Exception, message: str) -> None:
    adapter = Recorder(settings(timeout_s=0.2), fail)
    with pytest.raises(RegistryError, match=message) as caught:
        asyncio.run(probe(adapter))
    assert "tok-123456" not in str(caught.value)


def test_a_leaked_secret_is_scrubbed_from_the_probe_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REC_TOKEN", "tok-abcdef")
    leaky = TerminalSourceError("rec refused Bearer tok-abcdef")
    adapter = Recorder(settings(credentials_env="REC_TOKEN"), leaky)
    with pytest.raises(RegistryError, match=r"refused Bearer \*\*\*"):
        asyncio.run(probe(adapter))


def test_idc_probe_is_cheap_and_passes() -> None:
    adapter = IdcAdapter(SourceSettings(name="idc", adapter="idc"))
    try:
        asyncio.run(asyncio.wait_for(adapter.probe(), timeout=8))
    finally:
        asyncio.run(adapter.aclose())
