"""Routing: a question restricted to fast sources, with and without a hanging source.

  python -m bench routing [--runs N] [--data-dir D]

On the full IDC index, beside a live DICOMweb source that answers in ~20 ms (`site`),
the same questions are asked of two hubs in the same run, in turns: one that also has a
live source that never answers (`stuck`, `timeout_s` 1), and one without it. Every
question is restricted to the fast sources (`source IN [idc, site]`, ANDed with one of
several modality/body-part filters), so the hanging source must not be asked: the two
medians should match, and stay under 100 ms. The live answer cache is off, so `site` is
fetched every time. Each round's median is reported, and the median of all answers.
The sources are real HTTP servers in a process of their own (tests/federation/
fault_server.py); the hub is the in-process service, as `python -m bench federation`.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.federation import _hub as federation_hub
from hub.service import Hub

TARGET_MS = 100.0
FAST_DELAY_S = 0.02
"""How long the fast live source takes to answer."""
HANG_TIMEOUT_S = 1.0
"""The hanging source's `timeout_s` (set by `federation_hub`): what a question that asked
it would wait."""
ROUNDS = 3
RESTRICT = {"IN": {"source": ["idc", "site"]}}
FILTERS = [
    {"AND": [RESTRICT, {"=": {"modality": modality}}, {"=": {"body_part": part}}]}
    for modality in ("CT", "MR", "PT")
    for part in ("CHEST", "HEAD", "ABDOMEN")
]


def _hub(data_dir: Path, urls: dict[str, str]) -> Hub:
    """IDC plus live DICOMweb sources, as `python -m bench federation` configures them."""
    return federation_hub(data_dir, urls, hanging={"stuck"} & set(urls))


def _ensure_index(data_dir: Path) -> None:
    """The full IDC index, harvested here when the data directory has none."""
    if (data_dir / "index" / "CURRENT").is_file():
        return
    hub = _hub(data_dir, {})
    asyncio.run(hub.harvest())
    asyncio.run(hub.aclose())


def _ask(hub: Hub, filter_json: Any) -> tuple[float, dict[str, str]]:
    started = time.perf_counter()
    cohort = hub.cohort(filter_json, None)
    cohort.view.counts()
    cohort.view.facets(["modality", "collection", "source"], 20)
    cohort.view.series(50, None, [])
    statuses = {r.source: str(r.status) for r in hub.by_source(cohort)}
    return (time.perf_counter() - started) * 1000, statuses


def bench_routing(data_dir: Path, runs: int) -> dict[str, Any]:
    """`runs` questions per round and hub, `ROUNDS` rounds, the two hubs in turns."""
    _ensure_index(data_dir)
    servers = subprocess.Popen(
        [sys.executable, "-m", "tests.federation.fault_server",
         f"site:ok:{FAST_DELAY_S}", "stuck:hang:0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert servers.stdout is not None
        urls = {name: servers.stdout.readline().strip() for name in ("site", "stuck")}
        hubs = {
            "with_hanging": _hub(data_dir, urls),
            "without": _hub(data_dir, {"site": urls["site"]}),
        }
        try:
            for hub in hubs.values():
                _ask(hub, FILTERS[-1])  # warm-up: connections, imports, caches
            times: dict[str, list[list[float]]] = {k: [] for k in hubs}
            statuses: dict[str, dict[str, str]] = {}
            for _ in range(ROUNDS):
                for key in hubs:
                    times[key].append([])
                for i in range(runs):
                    for key, hub in hubs.items():
                        ms, statuses[key] = _ask(hub, FILTERS[i % len(FILTERS)])
                        times[key][-1].append(ms)
            breaker = hubs["with_hanging"].planner.fetchers["stuck"].breaker
            circuit = {"state": breaker.state, "failures": breaker.failures}
        finally:
            for hub in hubs.values():
                asyncio.run(hub.aclose())
    finally:
        servers.terminate()
        servers.wait(10)
    result = {key: _summary(rounds, statuses[key]) for key, rounds in times.items()}
    with_hanging = result["with_hanging"]["median_ms"]
    return {
        "question": "source IN [idc, site] AND modality AND body_part; counts, 3 facets, 50 series",
        "hanging_timeout_s": HANG_TIMEOUT_S,
        "fast_source_delay_ms": FAST_DELAY_S * 1000,
        **result,
        "stuck_circuit": circuit,
        "target": {f"under_{TARGET_MS:g}ms_with_hanging_source": with_hanging < TARGET_MS},
    }


def _summary(rounds: list[list[float]], statuses: dict[str, str]) -> dict[str, Any]:
    every = [t for r in rounds for t in r]
    return {
        "median_ms": round(statistics.median(every), 1),
        "round_medians_ms": [round(statistics.median(r), 1) for r in rounds],
        "max_ms": round(max(every), 1),
        "runs": len(every),
        "statuses": statuses,
    }
