"""Node loss: closed-loop clients ask the cohort question while a node is SIGKILLed.

`clients` threads ask the question back to back through the hub's HTTP GraphQL for
`seconds`. At `kill_at_s` one node gets SIGKILL; at `restart_at_s` it is started again
and the time until the cluster is green is measured. A question fails when the HTTP
answer is not 200, carries GraphQL errors, or its counts differ from the answer
before the kill; one answered with a source status other than ok is "degraded".
`/readyz` and the cluster's health are polled throughout to show what the hub noticed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load.procs import HubServer
from bench.load.report import latency
from bench.scale.cluster import Cluster
from bench.scale.plan import Plan
from bench.scale.serve import ask, question_body

POLL_S = 0.5


@dataclass
class Timeline:
    questions: list[tuple[float, float, str]] = field(default_factory=list)
    """(seconds since start, latency ms, outcome: ok, degraded or the failure)"""
    readyz: list[tuple[float, int]] = field(default_factory=list)
    health: list[tuple[float, str]] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def bench_node_loss(server: HubServer, cluster: Cluster, plan: Plan, node: int) -> dict[str, Any]:
    if cluster.kill is None or cluster.restart is None:
        return {"skipped": "the cluster was given (HUB_TEST_ELASTICSEARCH_URL): no node to kill"}
    body = question_body()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        expected = ask(client, body)[1]["counts"]
    line = Timeline()
    stop = threading.Event()
    start = time.perf_counter()

    def now() -> float:
        return time.perf_counter() - start

    def asker() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                t = now()
                outcome, ms = _one(client, body, expected)
                with line.lock:
                    line.questions.append((t, ms, outcome))

    def poller() -> None:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while not stop.wait(POLL_S):
                try:
                    code = client.get("/readyz").status_code
                except httpx.HTTPError:
                    code = 0
                line.readyz.append((now(), code))
                line.health.append((now(), str(cluster.health(timeout_s=1).get("status"))))

    threads = [threading.Thread(target=asker, daemon=True) for _ in range(plan.load_clients)]
    threads.append(threading.Thread(target=poller, daemon=True))
    for thread in threads:
        thread.start()
    try:
        _sleep_until(start, plan.kill_at_s)
        cluster.kill(node)
        line.events["killed"] = now()
        print(f"    node {node} SIGKILLed at {now():.1f} s", flush=True)
        _sleep_until(start, plan.restart_at_s)
        cluster.restart(node)
        line.events["restarted"] = now()
        print(f"    node {node} restarted at {now():.1f} s", flush=True)
        cluster.wait_status("green", timeout_s=600)
        line.events["green"] = now()
        print(f"    green again at {now():.1f} s", flush=True)
        _sleep_until(start, plan.load_seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return _report(line, plan, node)


def _one(client: httpx.Client, body: dict[str, Any], expected: Any) -> tuple[str, float]:
    t = time.perf_counter()
    try:
        answer = client.post("/graphql", json=body)
        ms = (time.perf_counter() - t) * 1000
        if answer.status_code != 200:
            return f"HTTP {answer.status_code}", ms
        payload = answer.json()
        if payload.get("errors"):
            return f"GraphQL error: {str(payload['errors'])[:120]}", ms
        cohort = payload["data"]["cohort"]
        if cohort["counts"] != expected:
            return f"wrong counts {cohort['counts']}", ms
        statuses = {s["status"] for s in cohort["bySource"]}
        return ("ok" if statuses <= {"ok"} else "degraded: " + ",".join(sorted(statuses))), ms
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}", (time.perf_counter() - t) * 1000


def _sleep_until(start: float, at_s: float) -> None:
    time.sleep(max(0.0, at_s - (time.perf_counter() - start)))


def _report(line: Timeline, plan: Plan, node: int) -> dict[str, Any]:
    killed, restarted = line.events["killed"], line.events["restarted"]
    phases = {
        "before": (0.0, killed),
        "during": (killed, restarted),
        "after": (restarted, float("inf")),
    }
    out: dict[str, Any] = {
        "clients": plan.load_clients,
        "seconds": round(max(plan.load_seconds, line.events["green"]), 1),
        "node_killed": node,
        "killed_at_s": round(killed, 1),
        "restarted_at_s": round(restarted, 1),
        "green_after_restart_s": round(line.events["green"] - restarted, 1),
        "questions": len(line.questions),
        "failed": sum(
            1 for _, _, o in line.questions if o not in ("ok",) and not o.startswith("degraded")
        ),
        "degraded": sum(1 for _, _, o in line.questions if o.startswith("degraded")),
        "failures": sorted({o for _, _, o in line.questions if o != "ok"})[:10],
        "target_failed": 0,
    }
    for name, (lo, hi) in phases.items():
        times = [ms for t, ms, o in line.questions if lo <= t < hi and o == "ok"]
        stats = latency(times)
        out[name] = {k: stats.get(k) for k in ("n", "p50", "p99")}
    out["readyz"] = _changes(line.readyz)
    out["health"] = _changes(line.health)
    return out


def _changes(samples: list[tuple[float, Any]]) -> list[str]:
    """`value from t s` each time the polled value changed."""
    changes, last = [], object()
    for t, value in samples:
        if value != last:
            changes.append(f"{value} from {t:.1f} s")
            last = value
    return changes
