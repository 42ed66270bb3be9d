"""A writable copy of the small real-IDC index (saved cohorts write under it), and a
two-repository index where a "tcia" snapshot mirrors some IDC series, as TCIA does."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.service import Hub

MIRRORED = 40  # c4kc_kits series TCIA also holds
TCIA_ONLY = 7


@pytest.fixture(scope="module")
def data_dir(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("export") / "hub"
    shutil.copytree(small_data_dir, copy)
    return copy


def tcia_copy(idc: pa.Table) -> pa.Table:
    kits = idc.filter(pc.equal(idc["collection"], "c4kc_kits"))
    shared, extra = kits.slice(0, MIRRORED), kits.slice(MIRRORED, TCIA_ONLY)
    uids = pc.binary_join_element_wise(extra["series_uid"], pa.scalar(".77"), "")
    extra = extra.set_column(extra.schema.get_field_index("series_uid"), "series_uid", uids)
    table = pa.concat_tables([shared, extra])
    n = table.num_rows
    urls = pc.binary_join_element_wise(
        pa.scalar("https://nbia.example/getImage?SeriesInstanceUID="), table["series_uid"], ""
    )
    for name, column in (
        ("source", pa.array(["tcia"] * n)),
        ("sources", pa.array([["tcia"]] * n, pa.list_(pa.string()))),
        ("download_url", urls),
    ):
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


@pytest.fixture(scope="module")
def two_repo_hub(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data_dir = tmp_path_factory.mktemp("two-repos")
    shutil.copytree(small_data_dir / "sources", data_dir / "sources")
    idc = SnapshotStore(data_dir).get("idc")
    assert idc is not None
    table = tcia_copy(pq.read_table(idc.path))

    async def batches() -> AsyncIterator[pa.RecordBatch]:
        for batch in table.to_batches():
            yield batch

    asyncio.run(SnapshotStore(data_dir).write("tcia", batches(), "nbia test"))
    # TCIA wins field values (priority 50 < 100), so merged download_urls are TCIA's
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), {"idc": 100, "tcia": 50})
    config = HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={
            "idc": SourceSettings(name="idc", adapter="idc"),
            "tcia": SourceSettings(name="tcia", adapter="tcia", priority=50),
        },
    )
    hub = Hub(config)
    yield hub
    asyncio.run(hub.aclose())
