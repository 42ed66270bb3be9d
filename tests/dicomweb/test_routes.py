"""A source the filter excludes is not asked: a real Orthanc beside a DICOMweb server that
never answers (tests/federation/fault_server.py), both live, behind the real adapter.

A question restricted to Orthanc answers in Orthanc's time, not the hanging source's
deadline; the hanging source is reported `skipped` because the filter excludes it, its
circuit breaker never hears of such questions, and the next question that wants it still
asks it. `explain` shows the same routes.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.service import Hub
from tests.dicomweb.generate import SERIES
from tests.federation.fault_server import FaultServer

HANG_TIMEOUT_S = 3.0
ONLY_ORTHANC = {"IN": {"source": ["orthanc"]}}


@pytest.fixture()
def stuck() -> Iterator[FaultServer]:
    with FaultServer("stuck", 10, mode="hang") as server:
        yield server


@pytest.fixture()
def hub(orthanc: str, stuck: FaultServer, small_data_dir: Path, tmp_path: Path) -> Iterator[Hub]:
    data_dir = tmp_path / "hub"
    shutil.copytree(small_data_dir, data_dir)
    live = {"adapter": "dicomweb", "mode": "live", "cache_ttl_s": 0}
    sources = {
        "idc": SourceSettings(name="idc", adapter="idc"),
        "orthanc": SourceSettings(name="orthanc", url=orthanc, collection="orthanc_demo", **live),
        "stuck": SourceSettings(
            name="stuck", url=stuck.url, timeout_s=HANG_TIMEOUT_S, collection="stuck", **live
        ),
    }
    hub = Hub(HubConfig(hub=HubSettings(data_dir=data_dir, query_deadline_s=10), sources=sources))
    yield hub
    asyncio.run(hub.aclose())


def test_a_question_restricted_to_orthanc_never_waits_for_the_hanging_source(
    hub: Hub, stuck: FaultServer
) -> None:
    hub.cohort(ONLY_ORTHANC, None)  # warm-up: connections, imports
    started = time.perf_counter()
    for _ in range(4):  # more than the breaker's threshold of three
        cohort = hub.cohort(ONLY_ORTHANC, None)
    each_s = (time.perf_counter() - started) / 4
    results = {r.source: r for r in hub.by_source(cohort)}

    assert stuck.requests == 0, "a source the filter excludes must not be asked"
    assert each_s < HANG_TIMEOUT_S / 2, f"{each_s:.2f} s: waited for the hanging source"
    assert cohort.view.counts().series == len(SERIES)
    assert (results["orthanc"].status, results["orthanc"].count) == ("ok", len(SERIES))
    for name in ("stuck", "idc"):  # live or harvested, the same rule
        assert (results[name].status, results[name].count) == ("skipped", None)
        assert results[name].message == f"not asked: the filter's source conditions exclude {name}"
    breaker = hub.planner.fetchers["stuck"].breaker
    assert (breaker.state, breaker.failures) == ("closed", 0)

    plans = {p.source: p for p in hub.explain(ONLY_ORTHANC, None)}
    assert {n: p.route for n, p in plans.items()} == {
        "idc": "excluded by filter",
        "orthanc": "live",
        "stuck": "excluded by filter",
    }
    assert plans["stuck"].native is None and plans["stuck"].description == results["stuck"].message
    assert plans["orthanc"].native is not None

    wanted = hub.cohort({"IN": {"source": ["orthanc", "stuck"]}}, None)
    results = {r.source: r for r in hub.by_source(wanted)}
    assert stuck.requests >= 1, "a question that wants the source must still ask it"
    assert results["stuck"].status == "timeout"
    assert results["orthanc"].status == "ok"
    assert breaker.failures == 1


def test_a_source_filtered_on_other_fields_is_still_asked(hub: Hub, stuck: FaultServer) -> None:
    """Only `source` conditions exclude: `modality != CT` could match any source."""
    cohort = hub.cohort({"AND": [{"!=": {"modality": "CT"}}, {"!=": {"source": "idc"}}]}, None)
    results = {r.source: r for r in hub.by_source(cohort)}
    assert stuck.requests >= 1
    assert results["stuck"].status == "timeout"
    assert results["idc"].status == "skipped"
    assert results["orthanc"].status == "ok"
