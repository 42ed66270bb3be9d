"""A harvest killed while writing its snapshot: the last good copy keeps serving, and the
next harvest of that source removes the partial file the killed one left.

The kill is real: a subprocess streams real IDC records into `SnapshotStore.write` and
gets SIGKILL after its first batch is on disk, so no clean-up code of it runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.index.staging import remove_all_but, writing
from hub.service import Hub
from tests.conftest import _harvest_subset, hub_config

FIRST = ["c4kc_kits"]
SECOND = ["tcga_luad"]
KILLED_HARVEST = """
import asyncio, sys
from pathlib import Path
from adapters.idc import IdcAdapter
from adapters.spi import Page, SourceSettings
from hub.index.snapshots import SnapshotStore
from schema.filters import parse_filter

async def main(data_dir: str, marker: str) -> None:
    adapter = IdcAdapter(SourceSettings(name="idc", adapter="idc"))
    translation = adapter.translate(parse_filter({"IN": {"collection": ["tcga_luad"]}}))

    async def batches():
        for batch in (await adapter.search(translation, Page(size=1_000_000))).batches:
            yield batch
            Path(marker).touch()  # the batch is written: kill me now
            await asyncio.sleep(3600)

    await SnapshotStore(Path(data_dir)).write("idc", batches())

asyncio.run(main(*sys.argv[1:]))
"""


def series_served(data_dir: Path) -> int:
    """What a hub opened on `data_dir` answers for "every series"."""
    hub = Hub(hub_config(data_dir))
    try:
        return hub.cohort(None, None).view.counts().series
    finally:
        asyncio.run(hub.aclose())


def harvest(data_dir: Path, collections: list[str]) -> None:
    """A harvest of the `idc` source limited to `collections`: snapshot, then index."""
    asyncio.run(_harvest_subset(data_dir, collections))
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), {"idc": 100})


def kill_mid_write(data_dir: Path) -> None:
    marker = data_dir / "first-batch-written"
    process = subprocess.Popen([sys.executable, "-c", KILLED_HARVEST, str(data_dir), str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the harvest ended before it could be killed"
            assert time.monotonic() < deadline, "no batch written within 120 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_killed_harvest_leaves_the_last_good_snapshot_and_the_next_one_cleans_up(
    tmp_path: Path,
) -> None:
    harvest(tmp_path, FIRST)
    good = SnapshotStore(tmp_path).get("idc")
    assert good is not None
    served = series_served(tmp_path)
    assert served == good.series > 0

    kill_mid_write(tmp_path)
    folder = tmp_path / "sources" / "idc"
    (partial,) = folder.glob("snapshot-*.parquet.partial")
    assert partial.stat().st_size > 0  # the first batch reached the disk
    assert SnapshotStore(tmp_path).get("idc") == good
    assert series_served(tmp_path) == served  # the last good snapshot still serves
    build_generation(tmp_path / "index", SnapshotStore(tmp_path).all(), {"idc": 100})
    assert series_served(tmp_path) == served  # and an index built beside the partial too

    harvest(tmp_path, SECOND)
    after = SnapshotStore(tmp_path).get("idc")
    assert after is not None and after.path != good.path
    assert sorted(p.name for p in folder.iterdir()) == sorted([after.path.name, "snapshot.json"])
    assert series_served(tmp_path) == after.series != served


def test_a_file_a_running_writer_holds_is_left_alone(tmp_path: Path) -> None:
    busy = tmp_path / "snapshot-2.parquet.partial"
    stale = tmp_path / "snapshot-1.parquet.partial"
    stale.write_bytes(b"left by a killed writer")
    keep = tmp_path / "snapshot-0.parquet"
    keep.write_bytes(b"the current one")
    with writing(busy):
        assert remove_all_but(tmp_path, "snapshot-*.parquet*", keep.name) == [stale.name]
        assert busy.exists() and keep.exists()
    assert remove_all_but(tmp_path, "snapshot-*.parquet*", keep.name) == [busy.name]
    assert [p.name for p in tmp_path.iterdir()] == [keep.name]


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_index_generations_and_their_partials_share_the_clean_up(tmp_path: Path, kind: str) -> None:
    for name in ("gen-1", "gen-2.partial", "gen-3"):
        path = tmp_path / name
        path.mkdir() if kind == "dir" else path.write_text("x")
    assert remove_all_but(tmp_path, "gen-*", "gen-3") == ["gen-1", "gen-2.partial"]
