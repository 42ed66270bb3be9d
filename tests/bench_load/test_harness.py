"""The load harness itself (bench/load), on the small corpus, for a few seconds each.

The hub runs as a real `imaging-hub serve` process (two workers in the first test),
driven by the real harness over loopback. The harness must report the shape
docs/load-testing.md describes, must count the errors a server really returns (a
rate limit's 429s and GraphQL errors), and must leave no process behind.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from bench.load import proc
from bench.load.driver import Recording, closed_loop
from bench.load.mix import Mix, Vocabulary
from bench.load.procs import FaultSources, free_port
from bench.load.report import dumps, percentile
from bench.load.session import Plan, run

VOCABULARY = Vocabulary(
    {
        "collection": ["tcga_luad", "tcga_brca", "c4kc_kits"],
        "modality": ["CT", "MR", "PT"],
        "body_part": ["CHEST", "BREAST"],
        "sex": ["female", "male"],
        "license": ["CC BY 3.0"],
    },
    (20, 80),
)


def test_a_short_load_reports_throughput_latency_memory_and_cleans_up(
    small_data_dir: Path,
) -> None:
    report = run(Plan(small_data_dir, workers=2, clients=4, seconds=3, warmup_s=1.5))
    results = report["results"]
    assert results["ok"] > 10 and results["ok_qps"] > 3, results
    assert results["error_count"] == 0, results["error_samples"]
    assert results["requests"] == results["ok"]
    latency = results["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert len(results["latency_ms_by_kind"]) >= 3  # a mix, not one question repeated
    assert results["distinct_requests"] > results["requests"] // 2
    assert results["client_cpu_s"] > 0

    memory = report["memory"]
    assert memory["processes"] >= 3  # the uvicorn supervisor and its two workers
    assert len(memory["series_t_s_rss_mib"]) >= 3  # a sample a second
    assert 50 < memory["start_mib"] <= memory["max_mib"]
    assert report["cpu"]["server_s"] > 0 and len(report["cpu"]["server_s_by_pid"]) >= 3

    assert report["cleaned_up"] and len(report["server_pids"]) >= 3
    assert not any(proc.alive(pid) for pid in report["server_pids"])
    assert json.loads(dumps(report)) == json.loads(json.dumps(report))


def test_errors_the_server_returns_are_counted_by_kind(small_data_dir: Path) -> None:
    """A rate limit on (429s) and some questions naming an unknown field (GraphQL errors)."""
    limits = {"rate_limit": True, "requests_per_minute": 600, "burst": 20}
    plan = Plan(
        small_data_dir, clients=4, seconds=2, warmup_s=0.5, invalid_share=0.4, limits=limits
    )
    results = run(plan)["results"]
    errors = results["errors"]
    assert errors.get("http_429", 0) > 0, results
    assert errors.get("graphql", 0) > 0, results
    assert results["ok"] > 0
    assert results["ok"] + results["error_count"] == results["requests"]
    assert any("no_such_field" in m for m in results["error_samples"]["graphql"])
    assert results["latency_ms_all_answers"]["n"] == results["requests"]


def test_an_open_loop_keeps_its_rate(small_data_dir: Path) -> None:
    report = run(Plan(small_data_dir, rate=20, seconds=2, warmup_s=0.5))
    results = report["results"]
    assert 36 <= results["requests"] <= 44, results  # 20/s for 2 s, whatever the latency
    assert results["error_count"] == 0, results["error_samples"]
    assert report["cleaned_up"]


def test_the_mix_is_seeded_and_varied() -> None:
    again = Mix.for_client(VOCABULARY, 9, 0)
    a = [again.new().body() for _ in range(50)]
    same = Mix.for_client(VOCABULARY, 9, 0)
    assert [same.new().body() for _ in range(50)] == a  # the same seed and client: same run
    other = Mix.for_client(VOCABULARY, 9, 1)
    assert [other.new().body() for _ in range(50)] != a
    assert len(set(a)) > 40
    kinds = {again.new().kind for _ in range(200)}
    assert {"browse", "text", "histogram", "counts", "deep", "sorted"} <= kinds


def test_deep_questions_follow_the_end_cursor() -> None:
    mix = Mix.for_client(VOCABULARY, 9, 0)
    request = next(r for r in iter(mix.new, None) if r.kind == "deep")
    page = {"data": {"cohort": {"series": {"pageInfo": {"hasNextPage": True, "endCursor": "c1"}}}}}
    mix.answered(request, page)
    follow = mix.next()
    assert follow.kind == "deep_page" and follow.variables["after"] == "c1"
    assert follow.pages_left == request.pages_left - 1
    last = {"data": {"cohort": {"series": {"pageInfo": {"hasNextPage": False}}}}}
    mix.answered(follow, last)
    assert mix.next().kind != "deep_page"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile([7.0], 99) == 7


def test_fault_sources_fail_for_the_whole_run_and_stop() -> None:
    """The faulty run's `broken` source answers 500 every time (not just twice), `site`
    answers, and the process serving them is gone afterwards."""
    specs = ["site:ok:0", "broken:fail_then_ok:0:1000000000"]
    with FaultSources(specs) as faults:
        assert faults.process is not None
        pid = faults.process.pid
        with httpx.Client(timeout=5) as client:
            statuses = [client.get(faults.urls["broken"] + "/series").status_code for _ in range(5)]
            assert statuses == [500] * 5
            assert client.get(faults.urls["site"] + "/series").status_code == 200
    assert not proc.alive(pid)


def test_timeouts_and_refused_connections_are_errors() -> None:
    """A server that accepts and never answers gives `timeout`s; a port with nothing on
    it gives `connection` errors. Nothing is ever counted as ok."""

    async def drive() -> tuple[Recording, Recording]:
        held: list[asyncio.StreamWriter] = []

        async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # keep the connection open, answer nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mixes = [Mix.for_client(VOCABULARY, 9, i) for i in range(2)]
        async with server:
            hung = await closed_loop("127.0.0.1", port, mixes, 1.0, 0.0, timeout_s=0.3)
        refused = await closed_loop("127.0.0.1", free_port(), mixes, 0.3, 0.0, timeout_s=0.3)
        for writer in held:
            writer.close()
        return hung, refused

    hung, refused = asyncio.run(drive())
    assert {r[3] for r in hung.rows} == {"timeout"} and 4 <= len(hung.rows) <= 10
    assert {r[3] for r in refused.rows} == {"connection"} and refused.rows
    assert "Refused" in refused.samples["connection"][0]
