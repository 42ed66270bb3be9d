"""One cohort question across the harvested IDC index and live DICOMweb servers that misbehave.

The live sources are real HTTP servers on loopback (tests/federation/fault_server.py)
spoken to by the real DICOMweb adapter; the hub must fan out concurrently, retry what
is transient, give up at deadlines, report each source's status, and keep the healthy
sources' answers intact.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.snapshots import SnapshotStore
from hub.service import Hub
from tests.federation.fault_server import FaultServer

SERIES = 30


@pytest.fixture()
def data_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "hub"
    shutil.copytree(small_data_dir, copy)
    return copy


def _live(name: str, server: FaultServer, timeout_s: float = 2.0, **extra: Any) -> SourceSettings:
    options = {"collection": name, "page_size": 10, **extra}
    return SourceSettings(
        name=name,
        adapter="dicomweb",
        mode="live",
        url=server.url,
        timeout_s=timeout_s,
        cache_ttl_s=0,
        **options,
    )


@pytest.fixture()
def make_hub(data_dir: Path) -> Iterator[Any]:
    hubs: list[Hub] = []

    def make(*live: SourceSettings, deadline_s: float = 5.0) -> Hub:
        sources = {"idc": SourceSettings(name="idc", adapter="idc")}
        sources.update({s.name: s for s in live})
        config = HubConfig(
            hub=HubSettings(data_dir=data_dir, query_deadline_s=deadline_s), sources=sources
        )
        hub = Hub(config)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        asyncio.run(hub.aclose())


def _statuses(hub: Hub, cohort: Any) -> dict[str, tuple[str, int | None]]:
    return {r.source: (r.status, r.count) for r in hub.by_source(cohort)}


def test_fan_out_is_concurrent_and_every_source_counts(make_hub: Any) -> None:
    with ExitStack() as stack:
        servers = [
            stack.enter_context(FaultServer(f"site{i}", SERIES, delay_s=1.0)) for i in range(4)
        ]
        hub = make_hub(*[_live(s.name, s, page_size=100) for s in servers])
        started = time.perf_counter()
        cohort = hub.cohort({"=": {"modality": "CT"}}, None)
        elapsed = time.perf_counter() - started
        statuses = _statuses(hub, cohort)
    # four sources answering in 1 s each: asking them one after another takes 4 s
    # (the latency figures themselves are measured by `python -m bench federation`)
    assert elapsed < 3.5
    for server in servers:
        assert statuses[server.name] == ("ok", SERIES)
    idc_ct = statuses["idc"][1]
    assert cohort.view.counts().series == idc_ct + 4 * SERIES


def test_a_hanging_source_times_out_and_the_rest_answer(make_hub: Any) -> None:
    with FaultServer("ok", SERIES) as healthy, FaultServer("stuck", SERIES, mode="hang") as stuck:
        hub = make_hub(_live("ok", healthy), _live("stuck", stuck, timeout_s=1.0))
        started = time.perf_counter()
        cohort = hub.cohort(None, None)
        elapsed = time.perf_counter() - started
        statuses = _statuses(hub, cohort)
    assert statuses["stuck"] == ("timeout", None)
    assert statuses["ok"] == ("ok", SERIES)
    # the source's own 1 s deadline cut it off, long before the query's 5 s deadline
    assert elapsed < 4.0
    message = {r.source: r.message for r in hub.by_source(cohort)}["stuck"]
    assert "did not finish within 1 s" in message


@pytest.mark.parametrize(
    ("mode", "status"),
    [("fail_then_ok", "ok"), ("throttle", "ok"), ("malformed", "error"), ("drop", "partial")],
)
def test_faults_are_reported_per_source(make_hub: Any, mode: str, status: str) -> None:
    with FaultServer("healthy", SERIES) as healthy, FaultServer("faulty", SERIES, mode=mode) as bad:
        hub = make_hub(_live("healthy", healthy), _live("faulty", bad, timeout_s=5.0))
        cohort = hub.cohort(None, None)
        statuses = _statuses(hub, cohort)
        results = {r.source: r for r in hub.by_source(cohort)}
    assert statuses["healthy"] == ("ok", SERIES)
    assert statuses["faulty"][0] == status
    if status == "ok":
        assert statuses["faulty"][1] == SERIES
        assert bad.requests > 3  # the failed requests were retried
    if mode == "drop":
        assert statuses["faulty"][1] == 10  # the first page arrived before the drops
    if mode == "malformed":
        assert "not valid JSON" in results["faulty"].message
    assert "127.0.0.1" not in results["faulty"].message or "/dicom-web" in results["faulty"].message


def test_circuit_breaker_skips_a_dead_source(make_hub: Any) -> None:
    with FaultServer("dead", SERIES, mode="malformed") as dead, FaultServer("ok", SERIES) as ok:
        hub = make_hub(_live("dead", dead), _live("ok", ok))
        for _ in range(3):
            hub.cohort(None, None)
        requests = dead.requests
        cohort = hub.cohort(None, None)
        statuses = _statuses(hub, cohort)
    assert statuses["dead"] == ("skipped", None)
    assert dead.requests == requests  # not even asked
    assert statuses["ok"] == ("ok", SERIES)


def test_series_shared_with_the_index_are_counted_once(make_hub: Any, data_dir: Path) -> None:
    snapshot = SnapshotStore(data_dir).get("idc")
    assert snapshot is not None
    idc = pq.read_table(snapshot.path)
    kits = idc.filter(pc.equal(idc["collection"], "c4kc_kits")).slice(0, 20)
    with FaultServer("mirror", 0) as mirror:
        mirror.records = [_as_dicom_json(row) for row in kits.to_pylist()]
        hub = make_hub(_live("mirror", mirror, collection="c4kc_kits"))
        cohort = hub.cohort({"=": {"collection": "c4kc_kits"}}, None)
        counts = cohort.view.counts()
        nodes = cohort.view.series(1000, None, []).nodes
    total_kits = pc.sum(pc.equal(idc["collection"], "c4kc_kits")).as_py()
    assert counts.series == total_kits  # every mirrored series was already harvested
    assert sum(1 for n in nodes if n["sources"] == ["idc", "mirror"]) == 20


def _as_dicom_json(row: dict[str, Any]) -> dict[str, Any]:
    def tag(vr: str, value: Any) -> dict[str, Any]:
        return {"vr": vr, "Value": [value]} if value is not None else {"vr": vr}

    sex = {"female": "F", "male": "M", "other": "O"}.get(row["sex"])
    return {
        "0020000D": tag("UI", row["study_uid"]),
        "0020000E": tag("UI", row["series_uid"]),
        "00100020": tag("LO", row["patient_id"]),
        "00080060": tag("CS", row["modality"]),
        "00100040": tag("CS", sex),
        "00080020": tag("DA", row["study_date"].strftime("%Y%m%d") if row["study_date"] else None),
    }


def test_a_fresh_answer_is_reused_within_its_cache_time(make_hub: Any) -> None:
    with FaultServer("cached", SERIES) as server:
        settings = SourceSettings(
            name="cached",
            adapter="dicomweb",
            mode="live",
            url=server.url,
            cache_ttl_s=60,
            collection="cached",
            page_size=100,
        )
        hub = make_hub(settings)
        first = _statuses(hub, hub.cohort({"=": {"modality": "CT"}}, None))
        asked = server.requests
        again = hub.cohort({"=": {"modality": "CT"}}, None)
        asked_again = server.requests
        results = {r.source: r for r in hub.by_source(again)}
        other = hub.cohort({"=": {"modality": "MR"}}, None)  # another native request
    assert first["cached"] == ("ok", SERIES)
    assert asked_again == asked  # the same question was not sent again
    assert server.requests > asked_again  # a different one was
    assert results["cached"].status == "ok" and results["cached"].count == SERIES
    assert "cache" in results["cached"].message
    assert _statuses(hub, other)["cached"] == ("ok", 0)


def test_a_cursor_survives_other_questions_live_answers(make_hub: Any) -> None:
    """Every question with live sources merges their answers anew; a page-2 cursor taken
    before another question must still work after it."""
    with FaultServer("ok", SERIES) as ok:
        hub = make_hub(_live("ok", ok))
        first = hub.cohort(None, None).view
        page = first.series(10, None, [])
        hub.cohort({"=": {"modality": "CT"}}, None)  # another question: live answers merged
        later = hub.cohort(None, None).view
        assert later.gen.live_version != first.gen.live_version
        following = later.series(10, page.end_cursor, [])
    assert following.nodes
    seen = {n["series_uid"] for n in page.nodes}
    assert not seen & {n["series_uid"] for n in following.nodes}
