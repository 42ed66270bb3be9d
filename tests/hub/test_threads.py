"""How many questions a worker answers at once (`[hub] request_threads`)."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi.testclient import TestClient

from adapters.spi import SourceSettings
from hub.api.app import create_app
from hub.config import HubSettings
from tests.conftest import hub_config


def test_threads_follow_the_sources_unless_set() -> None:
    harvested = {"idc": SourceSettings(name="idc", adapter="idc")}
    live = {**harvested, "pacs": SourceSettings(name="pacs", adapter="dicomweb", mode="live")}
    assert HubSettings().threads_for(harvested) == 2  # CPU-bound: few threads, in order
    assert HubSettings().threads_for(live) == 32  # waiting on the network: many
    assert HubSettings(request_threads=5).threads_for(live) == 5


def test_the_app_answers_with_the_configured_threads(small_data_dir: Path) -> None:
    config = hub_config(small_data_dir)
    config.hub.request_threads = 3
    with TestClient(create_app(config)) as client:
        assert client.get("/readyz").status_code == 200
        limiter = client.portal.call(to_thread.current_default_thread_limiter)  # type: ignore[union-attr]
        assert limiter.total_tokens == 3
