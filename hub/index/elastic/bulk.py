"""Bulk writes with back-pressure: bounded chunks, bounded requests in flight, 429 retries.

The producer (DuckDB, in a worker thread) makes the next chunk only when one of the
`bulk_max_inflight` request slots is free, so memory stays at a few chunks whatever
the corpus size. A chunk refused as a whole with 429, or the items of a chunk refused
with 429, are sent again after an exponential backoff; any other refusal stops the
ingest with the server's reason (IngestError).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import elastic_transport
import elasticsearch
import pyarrow as pa
from elasticsearch import AsyncElasticsearch

from hub.index.elastic.errors import IngestError, convert
from hub.index.elastic.settings import ElasticSettings

log = logging.getLogger(__name__)
Line = tuple[str, str | None]  # (action, document or None for a delete)
MAX_RETRIES = 8
BACKOFF_S = 0.5
BACKOFF_CAP_S = 30.0
FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason,items.*._id"
NDJSON = {"accept": "application/json", "content-type": "application/x-ndjson"}


class BulkWriter:
    """Sends bulk lines to one index (or to the indices the action lines name)."""

    def __init__(
        self, client: AsyncElasticsearch, settings: ElasticSettings, index: str | None = None
    ) -> None:
        self.client = client
        self.settings = settings
        self.path = f"/{index}/_bulk" if index else "/_bulk"
        self.retries = 0

    async def send(self, lines: list[Line], ignore_missing: bool = False) -> int:
        """Write `lines`; retry 429s; return how many were written.

        `ignore_missing` drops item errors of documents that are not there (404): an
        update or delete of a copy another harvest has already replaced."""
        pending = lines
        for attempt in range(MAX_RETRIES + 1):
            try:
                items = await self._post(pending)
            except (elasticsearch.ApiError, elastic_transport.TransportError) as exc:
                busy = isinstance(exc, elasticsearch.ApiError) and exc.meta.status == 429
                if not busy or attempt == MAX_RETRIES:
                    raise convert(exc, self.settings) from exc
                await self._backoff(attempt, len(pending))
                continue
            refused: list[Line] = []
            for line, item in zip(pending, items, strict=True):
                status = int(item.get("status", 200))
                if status == 429:
                    refused.append(line)
                elif status >= 300 and not (status == 404 and ignore_missing):
                    error = item.get("error") or {}
                    raise IngestError(
                        f"the cluster refused series {item.get('_id')!r}: HTTP {status} "
                        f"{error.get('type')}: {error.get('reason')}"
                    )
            if not refused:
                return len(lines)
            if attempt == MAX_RETRIES:
                break
            await self._backoff(attempt, len(refused))
            pending = refused
        raise IngestError(f"the cluster kept answering 429 after {MAX_RETRIES} retries; try later")

    async def _post(self, lines: list[Line]) -> list[dict[str, Any]]:
        parts: list[str] = []
        for action, doc in lines:
            parts.append(action)
            if doc is not None:
                parts.append(doc)
        body = ("\n".join(parts) + "\n").encode()

        response = await self.client.perform_request(
            "POST", self.path, params={"filter_path": FILTER_PATH}, headers=NDJSON, body=body
        )
        answer: dict[str, Any] = response.body
        items = answer.get("items") or []
        if len(items) != len(lines):
            raise IngestError(f"bulk answer has {len(items)} items for {len(lines)} lines")
        return [next(iter(item.values())) for item in items]

    async def _backoff(self, attempt: int, count: int) -> None:
        self.retries += 1
        delay = min(BACKOFF_S * 2**attempt, BACKOFF_CAP_S)
        log.warning("cluster busy (429) for %d documents; retrying in %.1f s", count, delay)
        await asyncio.sleep(delay)

    async def load(
        self,
        reader: pa.RecordBatchReader,
        inflight: int,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """Stream a reader of (action, doc) rows with at most `inflight` requests out."""
        slots = asyncio.Semaphore(inflight)
        tasks: set[asyncio.Task[int]] = set()
        batches = iter(reader)
        written = 0

        async def one(lines: list[Line]) -> int:
            try:
                done = await self.send(lines)
            finally:
                slots.release()
            if progress is not None:
                progress(done)
            return done

        try:
            while True:
                await slots.acquire()  # back-pressure: no new chunk before a slot is free
                lines = await asyncio.to_thread(_next_lines, batches)
                if lines is None:
                    slots.release()
                    break
                tasks.add(asyncio.create_task(one(lines)))
                written += _collect_finished(tasks)
            for task in asyncio.as_completed(list(tasks)):
                written += await task
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return written


def _next_lines(batches: Iterator[pa.RecordBatch]) -> list[Line] | None:
    for batch in batches:
        if batch.num_rows:
            actions = batch.column("action").to_pylist()
            docs = batch.column("doc").to_pylist()
            return list(zip(actions, docs, strict=True))
    return None


def _collect_finished(tasks: set[asyncio.Task[int]]) -> int:
    """Results of finished tasks (raising the first failure at once)."""
    done = {t for t in tasks if t.done()}
    tasks -= done
    return sum(t.result() for t in done)
