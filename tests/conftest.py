"""Shared fixtures: real IDC data harvested into a real on-disk embedded index.

`small_hub` holds a few real IDC collections chosen for their messy values
(ages in months and days, missing body parts, odd sexes, two licences, slide
microscopy) and builds in seconds; `full_hub` holds all 1,044,191 series and
takes about a minute, once per test session.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from adapters.idc import IdcAdapter
from adapters.sdk import walk_pages
from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.service import Hub
from schema.filters import parse_filter
from tests.security.grouped import GroupedReference
from tests.workers import built_once

pytest_plugins = [  # loaded by the xdist controller too: these write the run's summary
    "tests.quiet_logs",
    "tests.fuzz.tally",
    "tests.web.artifacts",
    "tests.devcluster.session",  # the run's one real OpenSearch cluster, started here
]

SMALL_COLLECTIONS = [
    "ccdi_mci",
    "bonemarrowwsi_pediatricleukemia",
    "rms_mutation_prediction",
    "acrin_nsclc_fdg_pet",
    "icdc_glioma",
    "c4kc_kits",
    "tcga_luad",
    "tcga_brca",
]


def hub_config(data_dir: Path) -> HubConfig:
    return HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")},
    )


async def _harvest_subset(data_dir: Path, collections: list[str]) -> None:
    adapter = IdcAdapter(SourceSettings(name="idc", adapter="idc"))
    translation = adapter.translate(parse_filter({"IN": {"collection": collections}}))
    await SnapshotStore(data_dir).write(
        "idc", walk_pages(adapter, translation, 1_000_000), adapter.data_version()
    )
    await adapter.aclose()


def _build_small(data_dir: Path) -> None:
    asyncio.run(_harvest_subset(data_dir, SMALL_COLLECTIONS))
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), {"idc": 100})


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's own copy (tests may write under it) of the run's one small build."""
    built = built_once(tmp_path_factory, "small-hub", _build_small)
    data_dir = tmp_path_factory.mktemp("small-hub")
    shutil.copytree(built, data_dir, dirs_exist_ok=True)
    return data_dir


@pytest.fixture(scope="session")
def small_hub(small_data_dir: Path) -> Iterator[Hub]:
    hub = Hub(hub_config(small_data_dir))
    yield hub
    asyncio.run(hub.aclose())


def _build_full(data_dir: Path) -> None:
    hub = Hub(hub_config(data_dir))
    asyncio.run(hub.harvest())
    asyncio.run(hub.aclose())


@pytest.fixture(scope="session")
def full_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full corpus, built once per run and shared by the workers (read it only)."""
    return built_once(tmp_path_factory, "full-hub", _build_full)


@pytest.fixture(scope="session")
def full_hub(full_data_dir: Path) -> Iterator[Hub]:
    hub = Hub(hub_config(full_data_dir))
    yield hub
    asyncio.run(hub.aclose())


@pytest.fixture(scope="session")
def records(small_data_dir: Path) -> list[dict[str, Any]]:
    """The small corpus's harvested snapshot, one dict per series (the reference data)."""
    snap = SnapshotStore(small_data_dir).get("idc")
    assert snap is not None
    rows: list[dict[str, Any]] = pq.read_table(snap.path).to_pylist()
    return rows


@pytest.fixture(scope="session")
def reference(records: list[dict[str, Any]]) -> GroupedReference:
    """The reference evaluator over `records`, grouped once."""
    return GroupedReference(records)
