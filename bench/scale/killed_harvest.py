"""Killed harvest: SIGKILL a re-harvest half-way, then let the next full harvest run.

A child process publishes the same snapshot under a newer stamp and prints `sent N`
after every bulk answer; at `harvest_kill_at` of the series it gets SIGKILL (requests
in flight, no cleanup can run). Every reference cohort must then count as before, from
the same served index, with the half-built index unserved; the next harvest (in this
process) must clean it up, and the counts must still be the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

from bench.scale.data import PRIORITIES, BenchData
from hub.index.base import CohortQuery
from hub.index.elastic.backend import SERVED_TTL_S, ElasticIndex
from schema.filters import parse_filter
from tests.hub.test_reference import COHORTS


def cohort_counts(elastic: ElasticIndex) -> dict[str, list[int]]:
    out = {}
    for cid, guppy, _ in COHORTS:
        c = elastic.cohort(CohortQuery(parse_filter(guppy))).counts()
        out[cid] = [c.patients, c.studies, c.series]
    return out


def bench_killed_harvest(
    elastic: ElasticIndex, table: dict[str, Any], data: BenchData, kill_at: float
) -> dict[str, Any]:
    before = cohort_counts(elastic)
    served = _served(elastic)
    target = int(data.series * kill_at)
    cmd = [
        sys.executable, "-m", "bench.scale.child_harvest",
        json.dumps(table), str(data.snapshot.path), str(data.series),
    ]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    sent, t = 0, time.perf_counter()
    for line in child.stdout:
        if line.startswith("sent "):
            sent = int(line.split()[1])
            if sent >= target:
                child.send_signal(signal.SIGKILL)  # mid-bulk: other requests are in flight
                break
    code = child.wait()
    print(f"    re-harvest killed after {sent:,} series, exit {code}", flush=True)
    time.sleep(SERVED_TTL_S * 1.5)  # what is served is looked up again, not remembered
    after_kill = cohort_counts(elastic)
    left = [i for i in _harvest_indices(elastic) if i not in served]
    served_after_kill = _served(elastic)
    print("    the next full harvest", flush=True)
    stamp = dt.datetime.now(dt.UTC).isoformat()
    t2 = time.perf_counter()
    asyncio.run(elastic.publish([replace(data.snapshot, harvested_at=stamp)], PRIORITIES))
    next_s = time.perf_counter() - t2
    time.sleep(SERVED_TTL_S * 1.5)
    after_next = cohort_counts(elastic)
    remaining = _harvest_indices(elastic)
    return {
        "killed_after_series": sent,
        "killed_after_s": round(time.perf_counter() - t - next_s, 1),
        "child_exit_code": code,
        "served_before": served,
        "served_after_kill": served_after_kill,
        "half_built_left_after_kill": left,
        "counts_unchanged_after_kill": after_kill == before,
        "next_harvest_s": round(next_s, 1),
        "indices_after_next_harvest": remaining,
        "half_built_cleaned_up": not set(left) & set(remaining),
        "counts_unchanged_after_next_harvest": after_next == before,
        "changed_cohorts": sorted(
            c for c in before if before[c] != after_kill[c] or before[c] != after_next[c]
        ),
    }


def _served(elastic: ElasticIndex) -> list[str]:
    return sorted(i.name for i in elastic.served().indices)


def _harvest_indices(elastic: ElasticIndex) -> list[str]:
    async def find() -> list[str]:
        client = await elastic.client()
        return sorted(i.name for i in await elastic.layout.indices(client) if i.kind == "harvest")

    return elastic.runner.run(find())
