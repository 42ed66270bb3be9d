"""Load and soak of the running hub, over loopback, on the full IDC index.

  python -m bench load              32 clients for 60 s of mixed cohort questions
  python -m bench load --faulty     the same with live sources: healthy only, then with
                                    one that hangs and one that answers 500, same run
  python -m bench soak              open loop at 75 questions/s for 10 minutes

The hub is started as `imaging-hub serve --workers N` in a process group of its own,
with the per-client rate limit off (the generator is one address), and stopped at the
end whatever happened. The machinery is in the other modules of bench/load/;
docs/load-testing.md says what each figure means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.load.procs import FaultSources
from bench.load.session import Plan, run

TARGET_QPS = 150.0
TARGET_P99_MS = 250.0
HANG_TIMEOUT_S = 2.0
"""The hanging source's `timeout_s`: the longest a question can wait for it."""
SOAK_WARMUP_S = 120.0
"""Unmeasured first: each worker's caches (row selections 64 MB, searched texts 32 MB,
20,000 documents) fill to their bounds in the first two minutes at 75 questions/s.
Memory that grows after that is what the soak is for."""
LIVE_CACHE_S = 30.0
"""Live answers are reused this long, so a repeated question does not fetch again."""


def _verdict(report: dict[str, Any]) -> dict[str, Any]:
    results = report["results"]
    p99 = results["latency_ms"].get("p99")
    return {
        "qps_at_least_150": results["ok_qps"] >= TARGET_QPS,
        "p99_under_250ms": p99 is not None and p99 < TARGET_P99_MS,
        "zero_errors": results["error_count"] == 0,
    }


def bench_load(data_dir: Path, workers: int, clients: int, seconds: float, **kw: Any) -> Any:
    """Closed loop: `clients` concurrent clients for `seconds` (after a warm-up)."""
    report = run(Plan(data_dir, workers, clients, seconds, **kw))
    report["target"] = _verdict(report)
    return report


def bench_soak(data_dir: Path, workers: int, minutes: float, rate: float, **kw: Any) -> Any:
    """Open loop at `rate` questions/s for `minutes`; memory flat means growth of the
    last minute's median RSS over the first minute's within 10 %."""
    plan = Plan(data_dir, workers, clients=32, seconds=minutes * 60, rate=rate, **kw)
    report = run(plan)
    growth = report["memory"].get("growth_median_pct")
    heap = report["memory"].get("anon_mib", {}).get("growth_median_pct")
    report["target"] = {
        "rss_growth_within_10pct": growth is not None and growth <= 10.0,
        "anonymous_memory_growth_within_10pct": heap is not None and heap <= 10.0,
        "zero_errors": report["results"]["error_count"] == 0,
    }
    return report


def bench_faulty(data_dir: Path, workers: int, clients: int, seconds: float, **kw: Any) -> Any:
    """Healthy live source only, then the same load with a hanging and a failing source
    added: latency of the answers, each source's statuses, and whether anything queued
    (connections held open to the hanging source, server threads and memory)."""
    specs = ["site:ok:0.05", "stuck:hang:0", "broken:fail_then_ok:0:1000000000"]
    with FaultSources(specs) as faults:
        ports = {name: int(url.split(":")[2].split("/")[0]) for name, url in faults.urls.items()}
        live = {name: _live_table(name, url) for name, url in faults.urls.items()}
        healthy = run(
            Plan(data_dir, workers, clients, seconds, live={"site": live["site"]},
                 watch_ports={"site": ports["site"]}, **kw)
        )  # fmt: skip
        faulty = run(Plan(data_dir, workers, clients, seconds, live=live, watch_ports=ports, **kw))
    deadline_ms = HANG_TIMEOUT_S * 1000
    before, after = healthy["results"], faulty["results"]
    slowest = after["latency_ms_all_answers"].get("max", 0.0)
    return {
        "healthy_only": healthy,
        "with_hanging_and_failing": faulty,
        "comparison": {
            "p50_ms": [before["latency_ms"].get("p50"), after["latency_ms"].get("p50")],
            "p90_ms": [before["latency_ms"].get("p90"), after["latency_ms"].get("p90")],
            "p99_ms": [before["latency_ms"].get("p99"), after["latency_ms"].get("p99")],
            "ok_qps": [before["ok_qps"], after["ok_qps"]],
            "errors": [before["errors"], after["errors"]],
            "hang_timeout_ms": deadline_ms,
            "max_answer_ms_with_faults": slowest,
            "max_answer_ms_healthy_only": before["latency_ms_all_answers"].get("max"),
            "slowest_within_healthy_plus_timeout": slowest
            <= before["latency_ms_all_answers"].get("max", 0.0) + deadline_ms + 1000,
            "open_to_stuck_max": faulty["memory"].get("open_to_stuck_max"),
            "server_threads_max": [
                healthy["memory"].get("threads_max"),
                faulty["memory"].get("threads_max"),
            ],
            "rss_growth_pct": [
                healthy["memory"].get("growth_pct"),
                faulty["memory"].get("growth_pct"),
            ],
        },
    }


def _live_table(name: str, url: str) -> dict[str, Any]:
    return {
        "adapter": "dicomweb",
        "mode": "live",
        "url": url,
        "timeout_s": HANG_TIMEOUT_S if name == "stuck" else 5.0,
        "cache_ttl_s": LIVE_CACHE_S,
        "collection": name,
        "page_size": 100,
    }
