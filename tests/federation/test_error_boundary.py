"""One adapter's bug stays that source's `error`: the hub served for real, with a plugin.

The `buggy` adapter (tests/plugins/buggy_adapter, installed into the test environment by
scripts/bootstrap and found through the `imaging_hub.adapters` entry point, as a third
party's would be) raises plain exceptions whose text names internals. Next to it: real IDC
series harvested into the index, and a healthy live source (a catalogue file). Every
cohort question must still answer with data; the buggy sources say `error` with a generic
message and the request id, never the exception's text; the log holds the traceback with
the same request id; the breaker opens after its threshold.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import buggy_adapter
import httpx
import pytest
from buggy_adapter import INTERNAL_DETAIL

from adapters.registry import discover_adapters
from adapters.spi import AdapterError, SourceSettings
from hub.config import HubConfig, HubSettings
from hub.federation.fetch import CircuitBreaker
from hub.observability.context import REQUEST_ID
from hub.service import Hub
from tests.web.server import serve

CATALOGUE = Path(__file__).parents[1] / "fixtures" / "catalogue" / "stanford_aimi.toml"
BY_SOURCE = """query($f: JSON) { cohort(filter: $f) {
  counts { series } bySource { source status count message } } }"""
THRESHOLD = CircuitBreaker().threshold


class Captured(logging.Handler):
    """Records with the request id current where they were logged (the emitting thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[logging.LogRecord, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, REQUEST_ID.get()))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def config(data_dir: Path, **buggy: dict[str, Any]) -> HubConfig:
    sources = {
        "idc": SourceSettings(name="idc", adapter="idc", mode="harvest"),
        "aimi": SourceSettings(name="aimi", adapter="catalogue", mode="live", path=str(CATALOGUE)),
    }
    for name, options in buggy.items():
        sources[name] = SourceSettings(name=name, adapter="buggy", **options)
    return HubConfig(hub=HubSettings(data_dir=data_dir), sources=sources)


@pytest.fixture
def data_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "hub"
    shutil.copytree(small_data_dir, copy)
    return copy


def ask(url: str, filter_json: Any = None) -> tuple[dict[str, Any], str]:
    """One cohort question over HTTP; its answer and the request id the hub gave it."""
    response = httpx.post(
        f"{url}/graphql", json={"query": BY_SOURCE, "variables": {"f": filter_json}}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json(), response.headers["x-request-id"]


def test_the_plugin_is_found_through_the_entry_point() -> None:
    assert discover_adapters()["buggy"] is buggy_adapter.BuggyAdapter


def test_a_buggy_adapter_is_its_own_error_and_the_rest_answers(
    data_dir: Path, captured: Captured
) -> None:
    buggy = {"buggy": {"mode": "live"}, "untranslatable": {"mode": "live", "fail_in": "translate"}}
    with serve(config(data_dir, **buggy)) as url:
        for question in range(THRESHOLD):
            body, request_id = ask(url, {"IN": {"modality": ["CT", "MR", "CR", "DX", "SM"]}})
            assert "errors" not in body, body
            assert INTERNAL_DETAIL not in str(body) and "pt_secret_mrn" not in str(body)
            cohort = body["data"]["cohort"]
            statuses = {s["source"]: s for s in cohort["bySource"]}
            assert statuses["idc"]["status"] == "ok" and statuses["idc"]["count"] > 0
            assert statuses["aimi"]["status"] == "ok" and statuses["aimi"]["count"] > 0
            assert cohort["counts"]["series"] >= statuses["idc"]["count"]
            for name in buggy:
                status = statuses[name]
                assert status["status"] == "error", (question, status)
                assert request_id in status["message"], status
                assert "internal error" in status["message"], status
        body, request_id = ask(url)  # the breaker has counted every failure: now open
        statuses = {s["source"]: s for s in body["data"]["cohort"]["bySource"]}
        for name in buggy:
            assert statuses[name]["status"] == "skipped", statuses[name]
            assert "circuit breaker open" in statuses[name]["message"]
        assert statuses["idc"]["status"] == statuses["aimi"]["status"] == "ok"

    tracebacks = [(r, rid) for r, rid in captured.records if r.exc_info is not None]
    raised = [(type(r.exc_info[1]), rid) for r, rid in tracebacks if r.exc_info]
    assert (ValueError, request_id) not in raised  # the last question asked nobody
    assert sum(kind is ValueError for kind, _ in raised) == THRESHOLD
    assert sum(kind is KeyError for kind, _ in raised) == THRESHOLD
    for record, rid in tracebacks:
        assert rid is not None and record.exc_info is not None
        assert INTERNAL_DETAIL in str(record.exc_info[1])  # the detail is in the log only


def invalid_settings() -> None:
    SourceSettings.model_validate({"name": "x", "adapter": "y", "timeout_s": INTERNAL_DETAIL})


def plain_value_error() -> None:
    raise ValueError(f"timeout_s: cannot read {INTERNAL_DETAIL}")


@pytest.mark.parametrize("deep", [invalid_settings, plain_value_error])
def test_a_resolver_deep_error_is_generic(
    data_dir: Path, captured: Captured, monkeypatch: pytest.MonkeyPatch, deep: Any
) -> None:
    def explain(_hub: Hub, _filter: Any, _text: str | None) -> None:
        deep()

    monkeypatch.setattr(Hub, "explain", explain)
    with serve(config(data_dir)) as url:
        response = httpx.post(f"{url}/graphql", json={"query": "{ explain { source } }"})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["message"] == f"internal error (request id {request_id}); see the server log"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "validation" not in response.text.lower() and "pt_secret_mrn" not in response.text
    logged = [rid for r, rid in captured.records if r.exc_info and "timeout_s" in str(r.exc_info)]
    assert logged == [request_id]


@pytest.mark.parametrize(
    ("method", "path", "patched"),
    [
        ("GET", "/export?format=csv", "hub.api.rest_export.prepare_export"),
        ("POST", "/cohorts", "hub.saved_cohorts.CohortStore.save"),
        ("GET", "/dicomweb/studies", "hub.api.qido.search_studies"),
        ("GET", "/metrics", "hub.observability.metrics.render"),  # no route catches it
    ],
)
def test_rest_faces_hide_unexpected_errors(
    data_dir: Path,
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    patched: str,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ValueError(f"cannot read {INTERNAL_DETAIL}")

    monkeypatch.setattr(patched, broken)
    with serve(config(data_dir)) as url:
        response = httpx.request(method, url + path, json={} if method == "POST" else None)
    request_id = response.headers["x-request-id"]
    assert response.status_code == 500
    assert response.json() == {
        "error": f"internal error (request id {request_id}); see the server log",
        "request_id": request_id,
    }
    logged = [rid for r, rid in captured.records if INTERNAL_DETAIL in str(r.exc_info)]
    assert logged == [request_id]


def test_a_harvest_that_breaks_keeps_the_last_good_snapshot(
    data_dir: Path, captured: Captured
) -> None:
    def harvest(fail_in: str) -> Hub:
        hub = Hub(config(data_dir, buggy={"mode": "harvest", "fail_in": fail_in}))
        try:
            asyncio.run(hub.harvest(["buggy"]))
        finally:
            asyncio.run(hub.aclose())
        return hub

    good = harvest("none").snapshots.get("buggy")
    assert good is not None and good.series == buggy_adapter.SERIES
    with pytest.raises(AdapterError) as failed:
        harvest("harvest")
    assert INTERNAL_DETAIL not in str(failed.value)
    assert "buggy: internal error" in str(failed.value)
    hub = Hub(config(data_dir, buggy={"mode": "harvest"}))
    try:
        kept = hub.snapshots.get("buggy")
        assert kept is not None and kept.path == good.path
        counts = hub.cohort({"=": {"source": "buggy"}}, None).view.counts()
        assert counts.series == buggy_adapter.SERIES
    finally:
        asyncio.run(hub.aclose())
    assert any(INTERNAL_DETAIL in str(r.exc_info) for r, _ in captured.records if r.exc_info)
