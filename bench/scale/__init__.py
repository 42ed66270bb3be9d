"""Scale-out: full IDC on a real 3-node OpenSearch cluster, every figure in one command.

    python -m bench scale [--data-dir D] [--only STEPS] [--small] [--nodes 3] [--heap 2g]

Starts the project's local cluster (or uses HUB_TEST_ELASTICSEARCH_URL), then runs, in
order (`--only` picks some; later steps publish the corpus untimed if ingest is not run):

  ingest          the hub's publish of the harvested snapshot beside a raw `_bulk` loader
                  sending the same recorded bodies, same chunks and concurrency (capture.py)
  correctness     the reference cohorts: cluster vs embedded vs DuckDB (correctness.py)
  question        CT AND CHEST over HTTP GraphQL, cluster and embedded hubs (question.py)
  paging          page 1 vs pages 2,000+ by cursor (search_after) (paging.py)
  node-loss       SIGKILL a node under 8 closed-loop clients, restart it (node_loss.py)
  killed-harvest  SIGKILL a re-harvest half-way, then a full one (killed_harvest.py)

`--small` runs the same steps over a few collections with short timings (plan.py).
Nothing of the benchmark stays on the cluster; a cluster started here is stopped.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.load.procs import HubServer
from bench.scale.capture import capture
from bench.scale.cluster import Cluster, cluster
from bench.scale.correctness import compare as compare_cohorts
from bench.scale.correctness import restricted_reference
from bench.scale.data import PRIORITIES, BenchData, prepare
from bench.scale.ingest import compare as compare_ingest
from bench.scale.ingest import hub_ingest, raw_ingest
from bench.scale.killed_harvest import bench_killed_harvest
from bench.scale.node_loss import bench_node_loss
from bench.scale.paging import bench_paging
from bench.scale.plan import FULL, SMALL, SMALL_COLLECTIONS, STEPS, Plan
from bench.scale.question import bench_question
from bench.scale.serve import cluster_server, embedded_server
from bench.scale.settings import elastic_settings, elastic_table
from hub.index.elastic.backend import ElasticIndex
from hub.index.embedded.backend import EmbeddedIndex

__all__ = ["STEPS", "Plan", "bench_scale", "plan_for"]


def plan_for(small: bool, nodes: int | None = None, heap: str | None = None) -> Plan:
    plan = SMALL if small else FULL
    return replace(plan, nodes=nodes or plan.nodes, heap=heap or plan.heap)


def bench_scale(data_dir: Path, only: tuple[str, ...] = STEPS, plan: Plan = FULL) -> dict[str, Any]:
    unknown = set(only) - set(STEPS)
    if unknown:
        raise SystemExit(f"--only: unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        print(
            f"scale: preparing the data ({'small subset' if plan.small else 'full corpus'})",
            flush=True,
        )
        data = prepare(data_dir, work / "data", SMALL_COLLECTIONS if plan.small else None)
        print(f"scale: {data.series:,} series; starting the cluster", flush=True)
        with cluster(work, plan.nodes, plan.heap) as found:
            found.wait_status("green", timeout_s=600)
            elastic = ElasticIndex(elastic_settings(found, plan))
            out: dict[str, Any] = {
                "cluster": found.what,
                **found.facts,
                "series": data.series,
                "plan": plan.as_dict(),
            }
            try:
                _steps(out, found, elastic, plan, data, work, only)
            finally:
                elastic.drop()  # nothing of the benchmark stays on the cluster
                elastic.close()
        return out


def _steps(
    out: dict[str, Any],
    found: Cluster,
    elastic: ElasticIndex,
    plan: Plan,
    data: BenchData,
    work: Path,
    only: tuple[str, ...],
) -> None:
    def step(name: str, run: Callable[[], Any]) -> None:
        if name not in only:
            return
        print(f"scale: {name}", flush=True)
        t = time.perf_counter()
        try:
            out[name] = run()
        except Exception as exc:  # the other figures stand; say what went wrong here
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        summary = str(out[name])
        print(f"scale: {name} done in {time.perf_counter() - t:.0f} s: {summary[:400]}", flush=True)

    def ingest() -> dict[str, Any]:
        print("  recording the hub's bulk bodies", flush=True)
        captured = capture(found, plan, data, work)
        print(
            f"  recorded {captured.docs:,} documents, {captured.size / 2**20:,.0f} MiB", flush=True
        )
        result = compare_ingest(
            lambda: hub_ingest(elastic, data),
            lambda: raw_ingest(found, plan, captured),
            plan.ingest_runs,
            data.series,
        )
        result["documents_sent"] = captured.docs
        result["indices"] = sorted({c.index for c in captured.chunks})
        captured.file.unlink()
        return result

    step("ingest", ingest)
    if "ingest" not in only or "error" in out.get("ingest", {}):
        print("scale: publishing the corpus (untimed)", flush=True)
        asyncio.run(elastic.publish([data.snapshot], PRIORITIES))
    embedded = EmbeddedIndex(data.data_dir)
    step("correctness", lambda: _correctness(elastic, embedded, data, plan))
    with ExitStack() as stack:
        servers: dict[str, HubServer] = {}
        if {"question", "paging", "node-loss"} & set(only):
            table = elastic_table(found, plan)
            servers["cluster"] = stack.enter_context(cluster_server(data.data_dir, table))
            servers["embedded"] = stack.enter_context(embedded_server(data.data_dir))
            for server in servers.values():
                server.wait_ready()
        step("question", lambda: bench_question(servers, plan))
        step("paging", lambda: bench_paging(servers, plan))
        step("node-loss", lambda: bench_node_loss(servers["cluster"], found, plan, node=1))
    if "node-loss" in only and found.kill is not None:
        found.wait_status("green", timeout_s=600)
    step(
        "killed-harvest",
        lambda: bench_killed_harvest(
            elastic, elastic_table(found, plan), data, plan.harvest_kill_at
        ),
    )


def _correctness(
    elastic: ElasticIndex, embedded: EmbeddedIndex, data: BenchData, plan: Plan
) -> dict[str, Any]:
    ref = restricted_reference(data.snapshot.path if plan.small else None)
    try:
        return compare_cohorts(elastic, embedded, ref)
    finally:
        ref.close()
