"""Shared helpers for the Gen3 tests: fixtures on disk, adapters, the hub's paging loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from adapters.gen3 import Gen3Adapter
from adapters.spi import Page, SourceSettings, Translation

FIXTURES = Path(__file__).parents[1] / "fixtures" / "gen3"
URL = "https://imaging-hub.data-commons.org"
MIDRC_URL = "https://data.midrc.org"
Record = dict[str, Any]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def adapter(preset: str = "bih", **options: Any) -> Gen3Adapter:
    url = MIDRC_URL if preset == "midrc" else URL
    settings = {"name": preset, "adapter": "gen3", "url": url, "preset": preset, **options}
    return Gen3Adapter(SourceSettings.model_validate(settings))


async def _walk(source: Gen3Adapter, translation: Translation, size: int) -> list[Record]:
    """The hub's paging loop (hub/federation/fetch.py), ending the adapter's client."""
    rows: list[Record] = []
    page: Page | None = Page(size=size)
    try:
        while page is not None:
            answer = await source.search(translation, page)
            rows += [r for b in answer.batches for r in b.to_pylist()]
            page = answer.next_page
    finally:
        await source.aclose()
    return rows


def walk(source: Gen3Adapter, node: Any, size: int = 7) -> list[Record]:
    return asyncio.run(_walk(source, source.translate(node), size))


async def _harvest(source: Gen3Adapter) -> list[Record]:
    try:
        return [r async for b in source.harvest() for r in b.to_pylist()]
    finally:
        await source.aclose()
