"""Ingest: the hub's publish beside a raw `_bulk` loader sending the same bodies.

Both go to the same cluster in the same run, with the same chunks (the hub's own,
recorded by `capture`), the same number of requests in flight, refreshes off while
loading and one refresh at the end. The raw loader does nothing else: no DuckDB, no
checks, no alias swap, so the ratio is what the hub's ingest costs over the cluster's.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.scale.capture import Captured, Chunk
from bench.scale.cluster import Cluster
from bench.scale.data import PRIORITIES, BenchData
from bench.scale.plan import Plan
from bench.scale.settings import CAPTURE_PREFIX, RAW_PREFIX
from hub.index.elastic.backend import ElasticIndex

NDJSON = {"content-type": "application/x-ndjson"}
RETRY_429 = 8


class Progress:
    """A line every tenth of the total, with the rate so far."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, max(total, 1), 0
        self.started = time.perf_counter()

    def __call__(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if self.done * 10 // self.total != before * 10 // self.total:
            rate = self.done / (time.perf_counter() - self.started)
            print(f"    {self.what}: {self.done:,} documents ({rate:,.0f}/s)", flush=True)


def hub_ingest(elastic: ElasticIndex, data: BenchData) -> float:
    """Seconds for the hub's publish of the snapshot into an empty prefix."""
    elastic.drop()
    t = time.perf_counter()
    asyncio.run(elastic.publish([data.snapshot], PRIORITIES, Progress("hub", data.series)))
    return time.perf_counter() - t


def raw_ingest(cluster: Cluster, plan: Plan, captured: Captured) -> float:
    """Seconds to create the hub's indices under another prefix and bulk the recorded
    bodies into them; the indices are deleted afterwards."""
    return asyncio.run(_raw(cluster, plan, captured))


async def _raw(cluster: Cluster, plan: Plan, captured: Captured) -> float:
    names = {c.index: c.index.replace(CAPTURE_PREFIX, RAW_PREFIX, 1) for c in captured.chunks}
    nodes = itertools.cycle(cluster.urls)
    progress = Progress("raw _bulk", captured.docs)
    async with httpx.AsyncClient(timeout=300) as client:
        for name in names.values():
            await client.delete(f"{cluster.url}/{name}", params={"ignore_unavailable": "true"})
        t = time.perf_counter()
        for original, name in names.items():
            create = captured.creates.get(original, {})
            spec = {k: create[k] for k in ("mappings", "settings") if create.get(k)}
            (await client.put(f"{cluster.url}/{name}", json=spec)).raise_for_status()
        slots = asyncio.Semaphore(plan.bulk_max_inflight)
        with captured.file.open("rb") as handle:

            async def one(chunk: Chunk, body: bytes) -> None:
                try:
                    await _bulk(client, next(nodes), names[chunk.index], body)
                finally:
                    slots.release()
                progress(chunk.docs)

            tasks = []
            for chunk in captured.chunks:
                await slots.acquire()
                body = captured.body(chunk, handle)
                tasks.append(asyncio.create_task(one(chunk, body)))
            await asyncio.gather(*tasks)
        joined = ",".join(names.values())
        settings = {"index": {"refresh_interval": "1s"}}
        (await client.put(f"{cluster.url}/{joined}/_settings", json=settings)).raise_for_status()
        (await client.post(f"{cluster.url}/{joined}/_refresh")).raise_for_status()
        seconds = time.perf_counter() - t
        await client.delete(f"{cluster.url}/{joined}")
    return seconds


async def _bulk(client: httpx.AsyncClient, url: str, index: str, body: bytes) -> None:
    """One chunk; a 429 (whole or per item) is sent again whole after a pause, as any
    loader must; any other refusal is an error."""
    for attempt in range(RETRY_429 + 1):
        answer = await client.post(
            f"{url}/{index}/_bulk",
            content=body,
            headers=NDJSON,
            params={"filter_path": "errors,items.*.status,items.*.error"},
        )
        if answer.status_code != 429:
            answer.raise_for_status()
            result = answer.json()
            if not result.get("errors"):
                return
            statuses = {int(next(iter(i.values()))["status"]) for i in result["items"]}
            if statuses - {200, 201, 429}:
                raise RuntimeError(f"raw bulk refused: {str(result)[:500]}")
        await asyncio.sleep(min(0.5 * 2**attempt, 30))
    raise RuntimeError("raw bulk: still 429 after retries")


def compare(
    hub_runs: Callable[[], float], raw_runs: Callable[[], float], runs: int, series: int
) -> dict[str, Any]:
    """Raw then hub, `runs` times (the hub's load last: later steps query it)."""
    raw_s, hub_s = [], []
    for n in range(runs):
        print(f"  ingest run {n + 1}/{runs}: raw _bulk", flush=True)
        raw_s.append(raw_runs())
        print(f"  ingest run {n + 1}/{runs}: hub publish", flush=True)
        hub_s.append(hub_runs())
    hub, raw = statistics.median(hub_s), statistics.median(raw_s)
    return {
        "series": series,
        "hub_s": round(hub, 1),
        "hub_series_per_s": round(series / hub),
        "raw_bulk_s": round(raw, 1),
        "raw_series_per_s": round(series / raw),
        "ratio_hub_over_raw": round(hub / raw, 2),
        "target_ratio": 1.3,
        "all_hub_s": [round(x, 1) for x in hub_s],
        "all_raw_s": [round(x, 1) for x in raw_s],
    }
