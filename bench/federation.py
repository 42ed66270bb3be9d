"""Live federation: cohort questions that fan out to live sources, over the full
harvested IDC index.

  python -m bench federation   four live DICOMweb sources answering in ~200 ms each;
                               then the same with one of them hanging

The live sources are real HTTP servers on loopback (tests/federation/fault_server.py)
behind the real DICOMweb adapter, with their answer cache off so every query fetches.
Each query takes the next of several filters, so nothing is answered from a cache. The
baseline, measured in the same run, is a raw concurrent GET to every source (httpx,
nothing decoded): what a fan-out with no hub at all would take.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.service import Hub

FILTERS = [
    {"AND": [{"=": {"modality": modality}}, {"=": {"body_part": part}}]}
    for modality in ("CT", "MR", "PT", "CR", "DX")
    for part in ("CHEST", "HEAD", "ABDOMEN")
]


def _hub(data_dir: Path, urls: dict[str, str], hanging: set[str]) -> Hub:
    sources = {"idc": SourceSettings(name="idc", adapter="idc")}
    for name, url in urls.items():
        sources[name] = SourceSettings(
            name=name,
            adapter="dicomweb",
            mode="live",
            url=url,
            timeout_s=1.0 if name in hanging else 5.0,
            cache_ttl_s=0,
            collection=name,
            page_size=100,
        )
    return Hub(HubConfig(hub=HubSettings(data_dir=data_dir), sources=sources))


def _time(hub: Hub, runs: int) -> tuple[list[float], Any]:
    hub.cohort(FILTERS[-1], None)  # warm-up: clients, imports
    times, cohort = [], None
    for run in range(runs):
        started = time.perf_counter()
        cohort = hub.cohort(FILTERS[run % len(FILTERS)], None)
        cohort.view.counts()
        cohort.view.facets(["modality", "collection", "source"], 20)
        cohort.view.series(50, None, [])
        times.append((time.perf_counter() - started) * 1000)
    return times, cohort


def bench_federation(data_dir: Path, runs: int) -> dict[str, Any]:
    if not (data_dir / "index" / "CURRENT").is_file():
        raise SystemExit(f"no index in {data_dir}; run `python -m bench harvest` first")
    healthy = [f"site{i}:ok:0.2" for i in range(4)]
    with_hang = [*healthy[:3], "stuck:hang:0"]
    return {
        "four_live_200ms": _scenario(data_dir, healthy, runs, expected_ms=200),
        "one_hanging_deadline_1s": _scenario(data_dir, with_hang, max(3, runs // 3), 1000),
    }


def _scenario(data_dir: Path, specs: list[str], runs: int, expected_ms: float) -> dict[str, Any]:
    """Median answer time and per-source status; `expected_ms` is the slowest healthy
    source's answer (or the hanging source's deadline), so the excess is the hub's own.
    The sources run in a process of their own, as real local servers would."""
    servers = subprocess.Popen(
        [sys.executable, "-m", "tests.federation.fault_server", *specs],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert servers.stdout is not None
        urls = {spec.split(":")[0]: servers.stdout.readline().strip() for spec in specs}
        hanging = {s.split(":")[0] for s in specs if ":hang:" in s}
        hub = _hub(data_dir, urls, hanging)
        for fetcher in hub.planner.fetchers.values():
            fetcher.breaker.threshold = 10**9  # measure the deadline, not the breaker
        raw = [] if hanging else asyncio.run(_raw_fan_out(list(urls.values()), runs))
        times, cohort = _time(hub, runs)
        statuses = {r.source: r.status for r in hub.by_source(cohort)}
        asyncio.run(hub.aclose())
    finally:
        servers.terminate()
        servers.wait(10)
    median = statistics.median(times)
    baseline = statistics.median(raw) if raw else expected_ms
    return {
        "median_ms": round(median, 1),
        "baseline": "raw concurrent GET to every source" if raw else "the source deadline",
        "baseline_ms": round(baseline, 1),
        "hub_overhead_ms": round(median - baseline, 1),
        "all_ms": [round(t) for t in times],
        "statuses": statuses,
    }


async def _raw_fan_out(urls: list[str], runs: int) -> list[float]:
    """The same GETs the adapters send, all at once, bodies read and nothing decoded."""
    params = {"limit": "100", "offset": "0"}
    async with httpx.AsyncClient() as client:
        times = []
        for _ in range(runs + 1):
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(client.get(f"{url}/series", params=params) for url in urls)
            )
            times.append((time.perf_counter() - started) * 1000)
            assert all(a.status_code == 200 for a in answers)
    return times[1:]  # the first opened the connections
