"""OpenTelemetry: one trace per cohort query, a child span per live source fetch.

Spans are collected with the SDK's in-memory exporter while real queries run against the
app with real loopback sources; without OpenTelemetry installed the hub still answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from hub.observability import tracing
from tests.federation.fault_server import FaultServer
from tests.observability.support import COUNTS, config, live, serving

TWO_COHORTS = """query Two($f: JSON) {
  a: cohort(filter: $f) { counts { series } }
  b: cohort(text: "lung") { counts { series } }
}"""


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    assert tracing.enable(provider)
    yield spans
    tracing.disable()
    provider.shutdown()


def _by_trace(spans: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        assert span.context is not None
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def test_one_trace_per_cohort_with_a_span_per_source(
    data_dir: Path, exporter: InMemorySpanExporter
) -> None:
    with (
        FaultServer("t_ok", series=25) as ok,
        FaultServer("t_down", mode="fail_then_ok", failures=10_000) as down,
    ):
        cfg = config(data_dir, live("t_ok", ok), live("t_down", down, timeout_s=5.0), tracing=True)
        with serving(cfg) as client:
            exporter.clear()
            answer = client.post(
                "/graphql",
                json={"query": TWO_COHORTS, "variables": {"f": {"=": {"modality": "CT"}}}},
                headers={"X-Request-ID": "trace-me-1"},
            )
            assert answer.status_code == 200 and "errors" not in answer.json()
            client.get("/healthz")  # no cohort: no trace
            spans = exporter.get_finished_spans()

    traces = _by_trace(spans)
    assert len(traces) == 2  # two cohort questions in one request: two traces
    for members in traces.values():
        roots = [s for s in members if s.parent is None]
        assert [r.name for r in roots] == ["cohort"]
        root = roots[0]
        assert root.attributes is not None and root.attributes["request_id"] == "trace-me-1"
        assert root.attributes["live_sources"] == 2
        assert root.attributes["failed_sources"] == "t_down"
        fetches = {s.attributes["source"]: s for s in members if s.name == "source.fetch"
                   and s.attributes is not None}  # fmt: skip
        assert set(fetches) == {"t_ok", "t_down"} and len(members) == 3
        assert all(s.parent is not None and s.parent.span_id == root.context.span_id
                   for s in fetches.values())  # fmt: skip
        good, bad = fetches["t_ok"].attributes, fetches["t_down"].attributes
        assert good is not None and bad is not None
        assert good["status"] == "ok" and good["series"] == 25 and good["latency_ms"] > 0
        assert bad["status"] == "error" and bad["series"] == 0 and bad["retries"] == 3
        assert fetches["t_down"].status.status_code is StatusCode.ERROR
        assert fetches["t_ok"].status.status_code is StatusCode.OK


def test_without_tracing_in_the_config_no_spans(
    data_dir: Path, exporter: InMemorySpanExporter
) -> None:
    tracing.disable()  # the config decides; this app's config leaves tracing off
    with FaultServer("t_quiet", series=5) as ok, serving(config(data_dir, live("t_q", ok))) as c:
        assert c.post("/graphql", json={"query": COUNTS}).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_the_hub_works_without_opentelemetry(small_data_dir: Path) -> None:
    """With the packages missing (imports blocked), tracing = true only warns."""
    script = textwrap.dedent(f"""
        import sys
        for name in ("opentelemetry", "opentelemetry.trace"):
            sys.modules[name] = None  # ImportError on import
        from pathlib import Path
        from hub.observability import tracing
        from tests.conftest import hub_config
        from hub.service import Hub
        cfg = hub_config(Path({str(small_data_dir)!r}))
        cfg.hub.tracing = True
        hub = Hub(cfg)
        cohort = hub.cohort({{"=": {{"modality": "CT"}}}}, None)
        print(tracing.available(), tracing.enabled(), cohort.view.counts().series)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2], env={**os.environ},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    available, enabled, series = out.stdout.split()
    assert (available, enabled) == ("False", "False") and int(series) > 0
    assert "OpenTelemetry is not installed" in out.stderr
