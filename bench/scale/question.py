"""The cohort question over HTTP GraphQL, on the cluster and on the embedded index.

Asked in turns (cluster, embedded, cluster, ...) after a warm-up, so both see the
same machine; p50/p90 of each, and the two answers must be the same.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.load.procs import HubServer
from bench.load.report import latency
from bench.scale.plan import Plan
from bench.scale.serve import ask, question_body, same_answer

TARGET_P50_MS = 150


def bench_question(servers: dict[str, HubServer], plan: Plan) -> dict[str, Any]:
    body = question_body()
    times: dict[str, list[float]] = {name: [] for name in servers}
    answers: dict[str, dict[str, Any]] = {}
    clients = {name: httpx.Client(base_url=s.url, timeout=60) for name, s in servers.items()}
    try:
        for name, client in clients.items():
            for _ in range(plan.question_warmup):
                answers[name] = ask(client, body)[1]
        for run in range(plan.question_runs):
            for name, client in clients.items():
                ms, answers[name] = ask(client, body)
                times[name].append(ms)
            if (run + 1) % 10 == 0:
                print(f"    {run + 1}/{plan.question_runs} runs", flush=True)
    finally:
        for client in clients.values():
            client.close()
    first, *others = answers.values()
    out: dict[str, Any] = {
        "question": "CT AND CHEST: counts, 5 facets, age histogram, first 50 series",
        "runs": plan.question_runs,
        "warmup": plan.question_warmup,
        "counts": first["counts"],
        "same_answer_on_both": all(same_answer(first, o) for o in others),
        "target_p50_ms": TARGET_P50_MS,
    }
    for name, values in times.items():
        stats = latency(values)
        out[name] = {"p50_ms": stats["p50"], "p90_ms": stats["p90"], "max_ms": stats["max"]}
        out[name]["sources"] = answers[name]["bySource"]
    return out
