"""A hub whose config file holds one harvested source (`cfg`, a real DICOMweb server on
loopback), and a second such server (`acme`) to register at runtime. Small on purpose:
every disable, enable and remove of a harvested source rebuilds the index."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.security.apikeys import hash_key
from hub.security.auth_settings import AuthSettings
from hub.service import Hub
from tests.federation.fault_server import FaultServer
from tests.registry.support import ADMIN_KEY, CONFIG_SERIES, READER_KEY, SERIES


@pytest.fixture()
def config_server() -> Iterator[FaultServer]:
    with FaultServer("cfg_ct", series=CONFIG_SERIES) as running:
        yield running


@pytest.fixture()
def server() -> Iterator[FaultServer]:
    with FaultServer("acme_ct", series=SERIES) as running:
        yield running


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture()
def config(data_dir: Path, config_server: FaultServer) -> HubConfig:
    cfg = SourceSettings(
        name="cfg",
        adapter="dicomweb",
        mode="harvest",
        url=config_server.url,
        timeout_s=2,
        collection="cfg_ct",
        page_size=10,
    )
    config = HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={"cfg": cfg},
        auth=AuthSettings.model_validate(
            {
                "api_keys": {
                    "reader": {"hash": hash_key(READER_KEY), "role": "reader"},
                    "ops": {"hash": hash_key(ADMIN_KEY), "role": "admin"},
                }
            }
        ),
    )
    hub = Hub(config)
    asyncio.run(hub.harvest())  # the config-file source, in the index before any test
    asyncio.run(hub.aclose())
    return config


@pytest.fixture()
def make_hub(config: HubConfig) -> Iterator[Callable[[], Hub]]:
    """Hubs over the same data directory, as restarts of one server would be."""
    hubs: list[Hub] = []

    def make() -> Hub:
        hubs.append(Hub(config))
        return hubs[-1]

    yield make
    for hub in hubs:
        asyncio.run(hub.aclose())
