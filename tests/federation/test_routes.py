"""`route`: one answer per source and question, read by the planner, `explain`, `bySource`,
`sources` and harvesting; and the refusal of a mode the adapter cannot serve, in the config
file and in the runtime registry alike.

The hub's sources here are the harvested IDC subset and real DICOMweb servers on loopback
(tests/federation/fault_server.py); an adapter that can only harvest is a small class of
this module, installed the way an entry point would be.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import hub.registry.admin
import hub.service
from adapters.dicomweb import DicomwebAdapter
from adapters.idc import IdcAdapter
from adapters.registry import discover_adapters
from adapters.spi import Adapter, Capabilities, SourceSettings, Translation
from hub.api import create_app
from hub.config import ConfigError, HubConfig, HubSettings
from hub.federation.route import Route, RouteKind, mode_problem, route
from hub.federation.status import SourceState
from hub.registry.admin import SourcesAdmin
from hub.registry.store import RegistryError
from hub.registry.validate import build
from hub.service import Hub
from schema.filters import MATCH_ALL, parse_filter
from tests.federation.fault_server import FaultServer

MakeHub = Callable[..., Hub]


class FilesOnly(Adapter):
    """Lists a directory of files: it can harvest, never search live."""

    capabilities: ClassVar[Capabilities] = Capabilities(harvest=True, live_search=False)

    def translate(self, node: Any) -> Translation:
        return Translation(None, node, "every file, filtered by the hub")

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        return
        yield  # an async generator with nothing in it


class AskOnly(FilesOnly):
    """Answers questions, but cannot list everything."""

    capabilities: ClassVar[Capabilities] = Capabilities(harvest=False, live_search=True)


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Adapter]]:
    adapters = {**discover_adapters(), "filesonly": FilesOnly, "askonly": AskOnly}
    monkeypatch.setattr(hub.service, "discover_adapters", lambda: adapters)
    monkeypatch.setattr(hub.registry.admin, "discover_adapters", lambda: adapters)
    return adapters


@pytest.fixture()
def data_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(small_data_dir, tmp_path / "hub")
    return tmp_path / "hub"


def config(data_dir: Path, *sources: SourceSettings) -> HubConfig:
    table = {"idc": SourceSettings(name="idc", adapter="idc")} | {s.name: s for s in sources}
    return HubConfig(hub=HubSettings(data_dir=data_dir), sources=table)


@pytest.fixture()
def make_hub(data_dir: Path) -> Iterator[MakeHub]:
    hubs: list[Hub] = []

    def make(*sources: SourceSettings) -> Hub:
        hubs.append(Hub(config(data_dir, *sources)))
        return hubs[-1]

    yield make
    for made in hubs:
        asyncio.run(made.aclose())


def live(name: str, server: FaultServer, **extra: Any) -> SourceSettings:
    table = {"timeout_s": 1, "cache_ttl_s": 0, "collection": name, **extra}
    return SourceSettings(name=name, adapter="dicomweb", mode="live", url=server.url, **table)


# --- the rule, as a pure function --------------------------------------------------


DICOMWEB = DicomwebAdapter.capabilities
ORTHANC = SourceSettings(name="orthanc", adapter="dicomweb", mode="live", url="http://h/dw")
IDC = SourceSettings(name="idc", adapter="idc")


@pytest.mark.parametrize(
    ("settings", "filter_json", "facts", "kind"),
    [
        (ORTHANC, None, {}, RouteKind.LIVE),
        (ORTHANC, {"=": {"source": "idc"}}, {}, RouteKind.EXCLUDED),
        (ORTHANC, {"=": {"source": "idc"}}, {"circuit": "open"}, RouteKind.EXCLUDED),
        (ORTHANC, None, {"circuit": "open"}, RouteKind.CIRCUIT_OPEN),
        (ORTHANC, None, {"circuit": "half-open"}, RouteKind.LIVE),
        (ORTHANC, None, {"fresh": True, "circuit": "open"}, RouteKind.CACHED),
        (ORTHANC, None, {"disabled": "disabled by admin"}, RouteKind.DISABLED),
        (IDC, {"!=": {"modality": "CT"}}, {}, RouteKind.NOT_HARVESTED),
        (IDC, {"EXCLUDES": {"source": ["idc"]}}, {}, RouteKind.EXCLUDED),
    ],
)
def test_route_rule(
    settings: SourceSettings, filter_json: Any, facts: dict[str, Any], kind: RouteKind
) -> None:
    way = route(settings, DICOMWEB, parse_filter(filter_json), **facts)
    assert way.kind is kind
    assert way.asks is (kind is RouteKind.LIVE)
    skipped = {RouteKind.EXCLUDED, RouteKind.CIRCUIT_OPEN, RouteKind.NOT_HARVESTED}
    assert (way.state is SourceState.SKIPPED) is (kind in skipped)


def test_mode_problems_name_the_source_and_the_adapter() -> None:
    files = SourceSettings(name="scans", adapter="filesonly", mode="live")
    message = mode_problem(files, FilesOnly.capabilities)
    assert message is not None
    assert "[sources.scans]" in message and "'filesonly' cannot search live" in message
    assert 'use mode = "harvest"' in message
    ask = SourceSettings(name="pacs", adapter="askonly")
    assert "'askonly' cannot harvest" in (mode_problem(ask, AskOnly.capabilities) or "")
    assert (
        mode_problem(files.model_copy(update={"mode": "harvest"}), FilesOnly.capabilities) is None
    )


# --- the config file and the registry refuse what cannot work ------------------------


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SourceSettings(name="scans", adapter="filesonly", mode="live"), "cannot search live"),
        (SourceSettings(name="pacs", adapter="askonly"), "cannot harvest"),
    ],
)
def test_the_config_refuses_a_mode_the_adapter_cannot_serve(
    make_hub: MakeHub, settings: SourceSettings, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        make_hub(settings)
    assert f"[sources.{settings.name}]" in str(caught.value)
    assert settings.adapter in str(caught.value)


def test_the_registry_refuses_it_too(
    make_hub: MakeHub, installed: dict[str, type[Adapter]]
) -> None:
    made = make_hub()
    with pytest.raises(RegistryError, match=r"\[sources.scans\].*'filesonly' cannot search live"):
        SourcesAdmin.of(made).register("scans", {"adapter": "filesonly", "mode": "live"})
    assert "scans" not in made.adapters
    with pytest.raises(RegistryError, match="'askonly' cannot harvest"):
        build(installed["askonly"], SourceSettings(name="pacs", adapter="askonly"))
    assert isinstance(build(IdcAdapter, IDC), IdcAdapter)


# --- every reader of routes agrees ---------------------------------------------------


def test_explain_sources_and_by_source_read_the_same_routes(make_hub: MakeHub) -> None:
    with FaultServer("site", 20) as site, FaultServer("stuck", 5, mode="hang") as stuck:
        made = make_hub(live("site", site), live("stuck", stuck))
        only_site = {"=": {"source": "site"}}
        cohort = made.cohort(only_site, None)
        by_source = {r.source: r for r in made.by_source(cohort)}
        plans = {p.source: p for p in made.explain(only_site, None)}
        routes = made.routes(parse_filter(only_site))
        listed = {s.name: s for s in made.sources()}
        assert stuck.requests == 0
    assert {n: p.route for n, p in plans.items()} == {n: w.kind for n, w in routes.items()}
    assert routes["site"].kind is RouteKind.LIVE
    for name in ("idc", "stuck"):
        assert routes[name] == Route(
            name, RouteKind.EXCLUDED, f"not asked: the filter's source conditions exclude {name}"
        )
        assert by_source[name].status is SourceState.SKIPPED
        assert by_source[name].message == routes[name].message == plans[name].description
    assert (by_source["site"].status, by_source["site"].count) == ("ok", 20)
    assert cohort.view.counts().series == 20
    assert {n: s.route for n, s in listed.items()} == {
        "idc": "index",
        "site": "live",
        "stuck": "live",
    }
    assert made.harvestable() == ["idc"]


def test_circuit_open_is_a_route_and_a_fresh_answer_still_serves(make_hub: MakeHub) -> None:
    with FaultServer("stuck", 5, mode="hang") as stuck:
        made = make_hub(live("stuck", stuck))
        breaker = made.planner.fetchers["stuck"].breaker
        for _ in range(breaker.threshold):
            made.cohort(None, None)
        asked = stuck.requests
        assert made.routes()["stuck"].kind is RouteKind.CIRCUIT_OPEN
        assert {p.source: p.route for p in made.explain(None, None)}["stuck"] == "circuit open"
        cohort = made.cohort(None, None)
        result = {r.source: r for r in made.by_source(cohort)}["stuck"]
        assert stuck.requests == asked, "an open circuit is not asked"
    assert (result.status, result.message) == ("skipped", "stuck is failing; circuit breaker open")


def test_a_fresh_answer_routes_as_cached(make_hub: MakeHub) -> None:
    with FaultServer("site", 20) as site:
        made = make_hub(live("site", site, cache_ttl_s=300))
        made.cohort(None, None)
        asked = site.requests
        assert made.routes()["site"].kind is RouteKind.CACHED
        cohort = made.cohort(None, None)
        result = {r.source: r for r in made.by_source(cohort)}["site"]
        assert site.requests == asked
    assert (result.status, result.message) == ("ok", "answered from the cache")
    assert made.routes(parse_filter({"=": {"modality": "MR"}}))["site"].kind is RouteKind.LIVE


GRAPHQL = """query($f: JSON) {
  sources { name route capabilities }
  explain(filter: $f) { source route native description }
  cohort(filter: $f) { bySource { source status message } }
}"""


def test_graphql_shows_the_routes(data_dir: Path) -> None:
    with FaultServer("site", 5) as site, FaultServer("stuck", 5, mode="hang") as stuck:
        app = create_app(config(data_dir, live("site", site), live("stuck", stuck)))
        with TestClient(app) as client:
            answer = client.post(
                "/graphql", json={"query": GRAPHQL, "variables": {"f": {"=": {"source": "stuck"}}}}
            ).json()
        asked = stuck.requests
    assert "errors" not in answer, answer
    result = answer["data"]
    assert {s["name"]: s["route"] for s in result["sources"]} == {
        "idc": "index", "site": "live", "stuck": "live",
    }  # fmt: skip
    site_caps = {s["name"]: s["capabilities"] for s in result["sources"]}["site"]
    assert site_caps["pushdown"]["modality"] == {"=": "exact", "IN": "exact"}
    plans = {p["source"]: p for p in result["explain"]}
    assert {n: p["route"] for n, p in plans.items()} == {
        "idc": "excluded by filter", "site": "excluded by filter", "stuck": "live",
    }  # fmt: skip
    by_source = {r["source"]: r for r in result["cohort"]["bySource"]}
    assert by_source["site"] == {
        "source": "site",
        "status": "skipped",
        "message": "not asked: the filter's source conditions exclude site",
    }
    assert by_source["stuck"]["status"] == "timeout" and asked >= 1


def test_sources_publish_graded_pushdown(make_hub: MakeHub) -> None:
    with FaultServer("site", 5) as site:
        made = make_hub(live("site", site))
        listed = {s.name: s for s in made.sources()}
    pushdown = listed["site"].capabilities["pushdown"]
    assert pushdown == made.adapters["site"].capabilities.graded()
    grades = {grade for ops in pushdown.values() for grade in ops.values()}
    assert grades == {"exact", "partial"}  # DICOMweb re-checks what servers match loosely
    assert listed["idc"].capabilities["pushdown"]["modality"]["="] == "exact"


def test_harvesting_takes_only_the_sources_routed_to_the_index(make_hub: MakeHub) -> None:
    with FaultServer("site", 5) as site:
        made = make_hub(live("site", site))
        assert made.harvestable() == ["idc"]
        assert made.routes(MATCH_ALL)["site"].kind is RouteKind.LIVE
