"""Runtime source registration through `SourcesAdmin`: validation, probing, persistence,
disable/enable, remove and harvest, against a real index and real HTTP servers.

The hub's answers are checked right after each operation, with no restart: a
registered live source answers the next cohort, a disabled or removed one is gone from
it (and `bySource` says disabled), and a restart over the same data directory sees the
same sources.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.registry.admin import SourcesAdmin
from hub.registry.store import RegistryError
from hub.service import Hub
from tests.dicomweb.conftest import free_port
from tests.federation.fault_server import FaultServer
from tests.registry.support import CONFIG_SERIES, SERIES, dicomweb, series

MakeHub = Callable[[], Hub]


def _registry(hub: Hub) -> dict[str, Any]:
    path = hub.data_dir / "registry" / "sources.json"
    if not path.exists():
        return {}
    sources: dict[str, Any] = json.loads(path.read_text())["sources"]
    return sources


def test_registered_live_source_answers_at_once_and_survives_a_restart(
    make_hub: MakeHub, server: FaultServer
) -> None:
    hub = make_hub()
    assert series(hub) == 0
    change = SourcesAdmin.of(hub).register("acme", dicomweb(server.url))
    assert change.action == "registered" and "answers live queries now" in change.message
    assert "acme" in hub.adapters and "acme" in hub.planner.live

    cohort = hub.cohort({"=": {"collection": "acme_ct"}}, None)
    assert cohort.view.counts().series == SERIES
    assert {r.source: r.status for r in hub.by_source(cohort)} == {"cfg": "ok", "acme": "ok"}

    entry = _registry(hub)["acme"]
    assert entry["origin"] == "runtime" and entry["enabled"] is True
    assert entry["settings"]["url"] == server.url and "name" not in entry["settings"]

    restarted = make_hub()
    assert restarted.adapters["acme"].settings == hub.adapters["acme"].settings
    assert series(restarted) == SERIES


SECRET = "s3cr3t-value-never-shown"


@pytest.fixture(scope="module")
def bare_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub with one config-file source and no index: validation needs neither."""
    cfg = SourceSettings(name="cfg", adapter="dicomweb", url="http://127.0.0.1:9/dicom-web")
    hub = Hub(
        HubConfig(hub=HubSettings(data_dir=tmp_path_factory.mktemp("bare")), sources={"cfg": cfg})
    )
    yield hub
    asyncio.run(hub.aclose())


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("ftp", dicomweb("ftp://127.0.0.1/dicom-web"), "url must start with http:// or https://"),
        ("file", dicomweb("file:///etc/passwd"), "url must start with http:// or https://"),
        ("nohost", dicomweb("http:///dicom-web"), "url has no host"),
        ("userinfo", dicomweb(f"http://u:{SECRET}@127.0.0.1/"), "url carries credentials"),
        ("unknown", {"adapter": "pacs9000", "url": "http://127.0.0.1:1"}, "'pacs9000' is not in"),
        ("inline", dicomweb("http://127.0.0.1:1", token=SECRET), "secret inline (token)"),
        ("nested", dicomweb("http://127.0.0.1:1", auth={"password": SECRET}), "(auth.password)"),
        (
            "unset",
            dicomweb("http://127.0.0.1:1", credentials_env="IMAGING_HUB_TEST_UNSET"),
            "IMAGING_HUB_TEST_UNSET is not set in the hub's environment",
        ),
        (
            "pasted",
            dicomweb("http://127.0.0.1:1", credentials_env=f"Bearer {SECRET}"),
            "must be the NAME of an environment variable",
        ),
        ("mode", dicomweb("http://127.0.0.1:1", mode="sometimes"), "mode: Input should be"),
        ("bad name!", dicomweb("http://127.0.0.1:1"), "source names use letters"),
        ("cfg", {"adapter": "idc"}, "defined in the config file and cannot be registered"),
        ("list", ["adapter", "dicomweb"], "settings must be a JSON object"),
    ],
)
def test_invalid_registrations_are_refused_before_any_probe(
    bare_hub: Hub, name: str, settings: Any, message: str
) -> None:
    hub = bare_hub
    before = dict(hub.adapters)
    with pytest.raises(RegistryError) as caught:
        SourcesAdmin.of(hub).register(name, settings)
    assert message.replace("'pacs9000' is not in", "'pacs9000' is not installed") in str(
        caught.value
    )
    assert SECRET not in str(caught.value)
    assert hub.adapters == before and _registry(hub) == {}


@pytest.mark.parametrize("failure", ["closed port", "HTTP 500"])
def test_probe_failure_rejects_the_registration(
    make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    monkeypatch.setenv("ACME_TOKEN", SECRET)
    hub = make_hub()
    with FaultServer("acme_ct", mode="fail_then_ok", failures=10_000) as broken:
        url = (
            f"http://127.0.0.1:{free_port()}/dicom-web" if failure == "closed port" else broken.url
        )
        with pytest.raises(RegistryError) as caught:
            SourcesAdmin.of(hub).register("acme", dicomweb(url, credentials_env="ACME_TOKEN"))
    message = str(caught.value)
    assert message.startswith("probe of 'acme' failed: ")
    expected = "failed: ConnectError" if failure == "closed port" else "answered HTTP 500"
    assert expected in message and "the source was not changed" in message
    assert SECRET not in message
    assert "acme" not in hub.adapters and _registry(hub) == {}


def test_disabling_a_config_source_skips_it_reports_it_and_persists(make_hub: MakeHub) -> None:
    hub = make_hub()
    admin = SourcesAdmin.of(hub)
    assert series(hub, {}) == CONFIG_SERIES

    assert admin.set_enabled("cfg", False).action == "disabled"
    cohort = hub.cohort({}, None)
    assert cohort.view.counts().series == 0  # the index no longer holds it
    (result,) = hub.by_source(cohort)
    assert (result.source, result.status, result.count) == ("cfg", "disabled", None)
    assert "disabled by an admin" in result.message and "source enable cfg" in result.message
    assert [(s.name, s.status) for s in hub.sources()] == [("cfg", "disabled")]

    assert "cfg" in make_hub().disabled  # a restart keeps it disabled
    with pytest.raises(RegistryError, match="cannot be removed at runtime; disable it"):
        admin.remove("cfg")
    with pytest.raises(RegistryError, match="cannot be changed at runtime; edit the config"):
        admin.update("cfg", {"priority": 1})
    with pytest.raises(RegistryError, match="disabled; enable it before harvesting"):
        admin.harvest("cfg")

    assert admin.set_enabled("cfg", True).action == "enabled"
    assert series(hub, {}) == CONFIG_SERIES
    assert _registry(hub) == {}  # a config source enabled again is just the config file
    assert admin.set_enabled("cfg", True).message == "'cfg' is already enabled"


def test_harvest_update_disable_and_remove_a_runtime_source(
    make_hub: MakeHub, server: FaultServer
) -> None:
    hub = make_hub()
    admin = SourcesAdmin.of(hub)
    registered = admin.register("acme", dicomweb(server.url, mode="harvest"))
    assert "harvest it next" in registered.message
    assert series(hub) == 0  # registered, not yet harvested

    harvested = admin.harvest("acme")
    assert (harvested.action, harvested.series) == ("harvested", SERIES)
    assert series(hub) == SERIES

    admin.update("acme", {"timeout_s": 3, "page_size": None})
    assert hub.adapters["acme"].settings.timeout_s == 3
    assert "page_size" not in _registry(hub)["acme"]["settings"]
    with pytest.raises(RegistryError, match="secret inline"):
        admin.update("acme", {"api_key": SECRET})
    with pytest.raises(RegistryError, match="is already registered; change it with updateSource"):
        admin.register("acme", dicomweb(server.url))

    admin.set_enabled("acme", False)
    assert series(hub) == 0
    statuses = {r.source: r.status for r in hub.by_source(hub.cohort(None, None))}
    assert statuses == {"cfg": "ok", "acme": "disabled"}

    snapshot = hub.snapshots.root / "acme"
    assert snapshot.is_dir()
    assert admin.remove("acme").action == "removed"
    assert "acme" not in hub.adapters and "acme" not in hub.disabled
    assert _registry(hub) == {} and not snapshot.exists()
    with pytest.raises(RegistryError, match="no source named 'acme'; known sources: cfg"):
        admin.remove("acme")


def test_removing_a_live_source_drops_its_answers_at_once(
    make_hub: MakeHub, server: FaultServer
) -> None:
    hub = make_hub()
    admin = SourcesAdmin.of(hub)
    admin.register("acme", dicomweb(server.url))
    assert series(hub) == SERIES
    with pytest.raises(
        RegistryError, match=r"is not harvested .* live sources are asked per query"
    ):
        admin.harvest("acme")
    admin.remove("acme")
    cohort = hub.cohort({"=": {"collection": "acme_ct"}}, None)
    assert cohort.view.counts().series == 0
    assert [r.source for r in hub.by_source(cohort)] == ["cfg"]
    assert "acme" not in hub.planner.live


def test_a_runtime_source_whose_adapter_was_uninstalled_is_served_disabled(
    make_hub: MakeHub, server: FaultServer, data_dir: Path
) -> None:
    SourcesAdmin.of(make_hub()).register("acme", dicomweb(server.url))
    path = data_dir / "registry" / "sources.json"
    body = json.loads(path.read_text())
    body["sources"]["acme"]["settings"]["adapter"] = "uninstalled"
    path.write_text(json.dumps(body))
    hub = make_hub()  # starts, and says why acme is not served
    assert "acme" not in hub.adapters
    assert "adapter 'uninstalled' is not installed" in hub.disabled["acme"].reason
    SourcesAdmin.of(hub).remove("acme")
    assert _registry(hub) == {}
