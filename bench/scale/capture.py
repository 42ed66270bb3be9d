"""The documents the hub sends, recorded once so a raw loader can send exactly them.

A publish under a throwaway prefix runs the hub's own code (corpus, level documents,
chunking) with the bulk request replaced by a recorder: every chunk's NDJSON body goes
to a file (the count checks that follow are told what was recorded), and every index
created is noted with the mappings and settings it got (from the call and from the
index templates). The raw loader then replays those bodies; whatever documents the hub
makes, the baseline sends the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch as Client
from elasticsearch._async.client.indices import IndicesClient

from bench.scale.cluster import Cluster
from bench.scale.data import PRIORITIES, BenchData
from bench.scale.plan import Plan
from bench.scale.settings import CAPTURE_PREFIX, elastic_settings
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.bulk import BulkWriter, Line

GENERATED_SETTINGS = {"uuid", "creation_date", "provided_name", "version", "history_uuid"}
"""Index settings the server makes itself and refuses to be given."""


@dataclass(frozen=True)
class Chunk:
    index: str
    offset: int
    length: int
    docs: int


@dataclass
class Captured:
    """Bodies in `file`, by chunk in the order sent; `creates`: index name -> create kwargs."""

    file: Path
    chunks: list[Chunk] = field(default_factory=list)
    creates: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def docs(self) -> int:
        return sum(c.docs for c in self.chunks)

    @property
    def size(self) -> int:
        return sum(c.length for c in self.chunks)

    def body(self, chunk: Chunk, handle: Any) -> bytes:
        handle.seek(chunk.offset)
        data: bytes = handle.read(chunk.length)
        return data


def capture(cluster: Cluster, plan: Plan, data: BenchData, work: Path) -> Captured:
    captured = Captured(work / "hub-bulk-bodies.ndjson")
    elastic = ElasticIndex(elastic_settings(cluster, plan, CAPTURE_PREFIX))
    try:
        with captured.file.open("wb") as out, _recording(captured, out):
            asyncio.run(elastic.publish([data.snapshot], PRIORITIES))
    finally:
        elastic.drop()
        elastic.close()
    return captured


@contextlib.contextmanager
def _recording(captured: Captured, out: Any) -> Iterator[None]:
    real_send, real_create, real_count = BulkWriter.send, IndicesClient.create, Client.count
    sent: dict[str, int] = {}

    async def send(self: BulkWriter, lines: list[Line], ignore_missing: bool = False) -> int:
        parts: list[str] = []
        for action, doc in lines:
            parts.append(action)
            if doc is not None:
                parts.append(doc)
        body = ("\n".join(parts) + "\n").encode()
        index = self.path.strip("/").removesuffix("_bulk").strip("/")
        captured.chunks.append(Chunk(index, out.tell(), len(body), len(lines)))
        sent[index] = sent.get(index, 0) + len(lines)
        out.write(body)
        return len(lines)

    async def count(self: Client, **kwargs: Any) -> Any:
        """What the index would hold had the recorded bodies been sent (the publish
        checks it)."""
        index = kwargs.get("index")
        if isinstance(index, str) and index in sent:
            return {"count": sent[index]}
        return await real_count(self, **kwargs)

    async def create(self: IndicesClient, **kwargs: Any) -> Any:
        answer = await real_create(self, **kwargs)
        name = str(kwargs.get("index"))
        mapping = (await self.get_mapping(index=name)).body[name]["mappings"]
        settings = (await self.get_settings(index=name)).body[name]["settings"]["index"]
        kept = {k: v for k, v in settings.items() if k not in GENERATED_SETTINGS}
        captured.creates[name] = {"mappings": mapping, "settings": {"index": kept}}
        return answer

    BulkWriter.send = send  # type: ignore[method-assign]
    IndicesClient.create = create  # type: ignore[method-assign]
    Client.count = count  # type: ignore[method-assign]
    try:
        yield
    finally:
        BulkWriter.send = real_send  # type: ignore[method-assign]
        IndicesClient.create = real_create  # type: ignore[method-assign]
        Client.count = real_count  # type: ignore[method-assign]
