"""GET /metrics after real queries against the app: GraphQL, sources, index, harvests.

Live sources are real loopback servers that answer, hang, or answer 500; the figures
read back from /metrics are compared with what the test caused (metric families are
process-wide, so each test uses its own source names or compares before and after).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.snapshots import SnapshotStore
from hub.observability.metrics import MAX_OPERATION_NAMES, OPERATIONS, OperationLabels
from hub.security.audit import AuditSettings
from hub.security.limits import LimitsSettings
from hub.service import Hub
from tests.federation.fault_server import FaultServer
from tests.observability.support import COUNTS, config, live, scrape, serving, value

CT = {"=": {"modality": "CT"}}


def test_graphql_sources_and_index_families_after_real_queries(data_dir: Path) -> None:
    with (
        FaultServer("m_ok", series=30) as ok,
        FaultServer("m_hang", mode="hang") as hang,
        FaultServer("m_flaky", mode="fail_then_ok", failures=2) as flaky,
        FaultServer("m_down", mode="fail_then_ok", failures=10_000) as down,
    ):
        cfg = config(
            data_dir,
            live("m_ok", ok),
            live("m_hang", hang, timeout_s=0.5),
            live("m_flaky", flaky, timeout_s=5.0),
            live("m_down", down, timeout_s=5.0),
        )
        with serving(cfg) as client:
            for _ in range(3):
                body = client.post("/graphql", json={"query": COUNTS, "variables": {"f": None}})
                assert body.status_code == 200 and "errors" not in body.json()
            unnamed = client.post("/graphql", json={"query": "{ sources { name } }"})
            assert unnamed.status_code == 200 and "errors" not in unnamed.json()
            broken = client.post("/graphql", json={"query": "query Broken { cohort { nope } }"})
            assert broken.json()["errors"]
            samples = scrape(client)

    ops = "hub_graphql_requests_total"
    assert value(samples, ops, operation="Counts", field="cohort", outcome="ok") >= 3
    assert value(samples, ops, operation="anonymous", field="sources", outcome="ok") >= 1
    assert value(samples, ops, operation="Broken", field="cohort", outcome="error") >= 1
    duration = "hub_graphql_request_duration_seconds_count"
    assert value(samples, duration, operation="Counts", field="cohort") >= 3
    assert value(samples, "hub_graphql_request_duration_seconds_bucket",
                 operation="Counts", field="cohort", le="+Inf") >= 3  # fmt: skip

    fetches = "hub_source_fetches_total"
    assert value(samples, fetches, source="m_ok", status="ok") == 3
    assert value(samples, "hub_source_series_fetched_total", source="m_ok") == 90
    assert value(samples, fetches, source="m_hang", status="timeout") == 3
    assert value(samples, fetches, source="m_flaky", status="ok") == 3
    assert value(samples, "hub_source_retries_total", source="m_flaky") == 2
    # three failures in a row open m_down's breaker: it is not asked a fourth time
    assert value(samples, fetches, source="m_down", status="error") == 3
    assert value(samples, "hub_source_retries_total", source="m_down") == 9  # 3 × (4 - 1)
    assert value(samples, "hub_source_circuit_state", source="m_down") == 2
    assert value(samples, "hub_source_consecutive_failures", source="m_down") == 3
    assert value(samples, "hub_source_circuit_state", source="m_ok") == 0
    latency = "hub_source_fetch_duration_seconds"
    assert value(samples, f"{latency}_count", source="m_hang") == 3
    assert value(samples, f"{latency}_sum", source="m_hang") >= 1.5  # three 0.5 s deadlines
    assert value(samples, f"{latency}_bucket", source="m_ok", le="10.0") == 3

    snap = SnapshotStore(data_dir).get("idc")
    assert snap is not None
    assert value(samples, "hub_index_series", source="idc") == snap.series
    assert value(samples, "hub_index_last_harvest_timestamp_seconds", source="idc") > 1.6e9
    on_disk = sum(f.stat().st_size for f in (data_dir / "index").rglob("*") if f.is_file())
    assert 0 < value(samples, "hub_index_bytes") <= on_disk

    http = "hub_http_requests_total"
    assert value(samples, http, method="POST", route="/graphql", status="200") >= 5
    assert value(samples, "hub_http_request_duration_seconds_count", route="/graphql") >= 5


def test_metrics_is_neither_rate_limited_nor_audited(data_dir: Path) -> None:
    cfg = config(data_dir)
    cfg.limits = LimitsSettings(burst=2, requests_per_minute=1)
    cfg.audit = AuditSettings(directory=data_dir / "audit")
    with serving(cfg) as client:
        statuses = [client.get("/metrics").status_code for _ in range(6)]
        answers = [client.post("/graphql", json={"query": COUNTS}) for _ in range(4)]
        samples = scrape(client)
    assert statuses == [200] * 6
    assert answers[-1].status_code == 429  # the API paths are limited with these settings
    assert len(answers[-1].headers["x-request-id"]) == 32  # refusals carry an id too
    audited = "".join(p.read_text() for p in (data_dir / "audit").glob("*.jsonl"))
    assert "/graphql" in audited and "/metrics" not in audited
    assert value(samples, "hub_http_requests_total", method="GET", route="/metrics",
                 status="200") >= 6  # fmt: skip
    assert value(samples, "hub_http_requests_total", method="POST", route="/graphql",
                 status="429") >= 1  # fmt: skip


def test_operation_labels_stay_bounded_whatever_clients_send(data_dir: Path) -> None:
    with serving(config(data_dir)) as client:
        for i in range(MAX_OPERATION_NAMES + 40):
            query = f"query Junk{i}x{os.getpid()} {{ __typename }}"
            assert client.post("/graphql", json={"query": query}).status_code == 200
        weird = ["a" * 500, "ümlaut", "x y", "other"]
        for name in weird:
            client.post("/graphql", json={"query": "{ __typename }", "operationName": name})
        client.post("/graphql", json={"query": "query { nosuchfield }"})
        client.post("/graphql", json={"query": "{{{ not graphql"})
        samples = scrape(client)
    operations = {
        dict(labels)["operation"]
        for name, labels in samples
        if name == "hub_graphql_requests_total"
    }
    fields = {dict(labels)["field"] for name, labels in samples if name.startswith("hub_graphql")}
    assert len(operations) <= MAX_OPERATION_NAMES + 3  # + anonymous, invalid, other
    assert {"other", "invalid", "anonymous"} <= operations
    assert not any(len(o) > 64 or not o.isascii() for o in operations)
    assert fields <= OPERATIONS.root_fields | {"__introspection", "other"}
    assert "nosuchfield" not in fields


def test_operation_labels_unit() -> None:
    labels = OperationLabels(max_names=2)
    labels.root_fields = frozenset({"cohort"})
    assert labels.of("query A { cohort { x } }", None) == ("A", "cohort")
    assert labels.of("query B { cohort { x } }", None) == ("B", "cohort")
    assert labels.of("query C { cohort { x } }", None) == ("other", "cohort")  # cap reached
    assert labels.of("query A { cohort { x } }", None) == ("A", "cohort")  # known name
    assert labels.of("{ __schema { types { name } } }", None) == ("anonymous", "__introspection")
    assert labels.of("query A { x } query B { y }", None) == ("invalid", "other")  # ambiguous
    assert labels.of("query A { x } query B { cohort }", "B") == ("B", "cohort")
    assert labels.of("query A { x }", "Z") == ("invalid", "other")
    assert labels.of("{", None) == ("invalid", "other")
    big = "query Q { " + "a " * 10_000 + "}"
    assert labels.of(big, None) == ("invalid", "other")  # past the token limit


def test_harvest_progress_and_outcome_per_source(tmp_path: Path) -> None:
    with (
        FaultServer("h_good", series=30) as good,
        FaultServer("h_bad", mode="fail_then_ok", failures=10_000) as bad,
    ):

        def source(name: str, server: FaultServer) -> SourceSettings:
            return SourceSettings(
                name=name, adapter="dicomweb", mode="harvest", url=server.url, timeout_s=2,
                collection=name, page_size=10,
            )  # fmt: skip

        cfg = HubConfig(
            hub=HubSettings(data_dir=tmp_path / "hub"),
            sources={"h_good": source("h_good", good), "h_bad": source("h_bad", bad)},
        )
        hub = Hub(cfg)
        try:
            failed = None
            try:
                asyncio.run(hub.harvest())
            except Exception as exc:
                failed = exc
            assert failed is not None and "h_bad" in str(failed)
        finally:
            asyncio.run(hub.aclose())
        with serving(cfg) as client:
            samples = scrape(client)
    assert value(samples, "hub_harvests_total", source="h_good", status="ok") == 1
    assert value(samples, "hub_harvests_total", source="h_bad", status="error") == 1
    assert value(samples, "hub_harvest_rows_fetched", source="h_good") == 30
    assert value(samples, "hub_harvest_running", source="h_good") == 0
    assert value(samples, "hub_harvest_last_success_timestamp_seconds", source="h_good") > 1.6e9
    assert value(samples, "hub_harvest_last_success_timestamp_seconds", source="h_bad") == 0
    assert value(samples, "hub_index_series", source="h_good") == 30
    assert ("hub_index_series", frozenset({("source", "h_bad")})) not in samples


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    """Two worker processes count requests; a third renders the sum, as uvicorn
    --workers N does with PROMETHEUS_MULTIPROC_DIR set."""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    worker = textwrap.dedent("""
        from hub.observability import metrics
        for _ in range(5):
            metrics.observe_graphql("Counts", "cohort", 0.02, True)
        metrics.observe_fetch("mp_src", "timeout", 1.0, 2, 0)
        metrics.observe_circuit("mp_src", "open", 3)
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    reader = "from hub.observability import metrics; print(metrics.render().decode())"
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    lines = set(out.splitlines())
    assert (
        'hub_graphql_requests_total{field="cohort",operation="Counts",outcome="ok"} 10.0' in lines
    )
    assert 'hub_source_retries_total{source="mp_src"} 4.0' in lines
    assert (
        'hub_graphql_request_duration_seconds_count{field="cohort",operation="Counts"} 10.0'
        in lines
    )
