"""Shared fixtures: real IDC data harvested into a real on-disk embedded index.

`small_hub` holds a few real IDC collections chosen for their messy values
(ages in months and days, missing body parts, odd sexes, two licences, slide
microscopy) and builds in seconds; `full_hub` holds all 1,044,191 series and
takes about a minute, once per test session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from adapters.idc import IdcAdapter
from adapters.spi import Page, SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.observability.logs import divert_uncaptured, hub_handler
from hub.service import Hub
from schema.filters import parse_filter
from tests.security.grouped import GroupedReference

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


UNCAPTURED_LOG = "logged-outside-tests.log"
"""Per worker, under its base temp dir: hub log lines no test's capture was there to hold."""


@pytest.fixture(scope="session", autouse=True)
def _uncaptured_logs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Keep the hub's JSON lines off pytest's progress output.

    A server thread logs a request's access line after its client has the answer, so the
    test may be over and pytest writing its dots: such lines go to a file instead (listed
    in the summary of a failing run). Lines logged during a test stay in its capture."""
    if request.config.getoption("capture") == "no":  # `-s`: the caller wants to see them
        yield
        return
    with (tmp_path_factory.getbasetemp() / UNCAPTURED_LOG).open("a") as sink:
        divert_uncaptured(sink)
        try:
            yield
        finally:
            handler = hub_handler()
            if handler is not None:
                handler.flush()
            divert_uncaptured(None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if exitstatus == 0:
        return
    base = terminalreporter.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    logs = [p for p in (base / UNCAPTURED_LOG, *base.glob(f"*/{UNCAPTURED_LOG}")) if p.exists()]
    for path in (p for p in logs if p.stat().st_size):
        terminalreporter.write_line(f"hub log lines logged between tests: {path}")


def hub_config(data_dir: Path) -> HubConfig:
    return HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")},
    )


async def _harvest_subset(data_dir: Path, collections: list[str]) -> None:
    adapter = IdcAdapter(SourceSettings(name="idc", adapter="idc"))
    translation = adapter.translate(parse_filter({"IN": {"collection": collections}}))
    await SnapshotStore(data_dir).write(
        "idc", adapter.search(translation, Page(size=1_000_000)), adapter.data_version()
    )
    await adapter.aclose()


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("small-hub")
    asyncio.run(_harvest_subset(data_dir, SMALL_COLLECTIONS))
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), {"idc": 100})
    return data_dir


@pytest.fixture(scope="session")
def small_hub(small_data_dir: Path) -> Iterator[Hub]:
    hub = Hub(hub_config(small_data_dir))
    yield hub
    asyncio.run(hub.aclose())


@pytest.fixture(scope="session")
def full_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("full-hub")
    hub = Hub(hub_config(data_dir))
    asyncio.run(hub.harvest())
    asyncio.run(hub.aclose())
    return data_dir


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
