"""How many questions a worker answers at once (`[hub] request_threads`)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient

import hub.api.graphql_http as transport
from adapters.spi import SourceSettings
from hub.api.app import create_app
from hub.config import HubSettings
from hub.federation.planner import Planner
from hub.index.embedded.live import LiveRecords
from tests.conftest import hub_config


def test_threads_follow_the_sources_unless_set() -> None:
    harvested = {"idc": SourceSettings(name="idc", adapter="idc")}
    live = {**harvested, "pacs": SourceSettings(name="pacs", adapter="dicomweb", mode="live")}
    assert HubSettings().threads_for(harvested) == 0  # CPU-bound: on the event loop
    assert HubSettings(index="elasticsearch").threads_for(harvested) == 2
    assert HubSettings().threads_for(live) == 32  # waiting on the network: many
    assert HubSettings(request_threads=5).threads_for(live) == 5


def test_the_app_answers_with_the_configured_threads(small_data_dir: Path) -> None:
    config = hub_config(small_data_dir)
    config.hub.request_threads = 3
    with TestClient(create_app(config)) as client:
        assert client.get("/readyz").status_code == 200
        limiter = client.portal.call(to_thread.current_default_thread_limiter)  # type: ignore[union-attr]
        assert limiter.total_tokens == 3


QUESTION = {"query": "{ cohort { counts { series } bySource { source status } } }"}


def test_questions_are_answered_on_the_loop_when_every_source_is_harvested(
    small_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    answer = transport._observed_graphql

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return answer(*args)

    monkeypatch.setattr(transport, "_observed_graphql", spy)
    with TestClient(create_app(hub_config(small_data_dir))) as client:
        hub = client.app.state.hub  # type: ignore[attr-defined]
        on_loop = client.post("/graphql", json=QUESTION).json()
        hub.planner.live = {"pacs": object()}  # as a runtime registration leaves it

        async def nothing_fetched(_query: Any) -> dict[str, Any]:
            return {}

        monkeypatch.setattr(hub.planner, "refresh", nothing_fetched)
        in_thread = client.post("/graphql", json=QUESTION).json()
        hub.planner.live = {}
    assert on_loop == in_thread and on_loop["data"]["cohort"]["counts"]["series"] > 0
    loop_thread, worker = threads
    assert worker != loop_thread and "AnyIO worker thread" in worker


def test_live_sources_are_never_awaited_on_the_loop_itself() -> None:
    planner = Planner({}, LiveRecords())

    async def on_the_loop() -> None:
        planner.loop = asyncio.get_running_loop()

        async def fetch() -> int:
            return 1

        with pytest.raises(RuntimeError, match="event loop's own thread"):
            planner.run(fetch())

    asyncio.run(on_the_loop())
