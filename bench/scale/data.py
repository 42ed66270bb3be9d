"""The data the benchmark runs on: a private copy of a harvested data directory.

A private copy because another `bench harvest` may replace the original meanwhile, and
the served hubs write beside their index. `--small` keeps a few collections only and
builds their embedded index, so every step runs in seconds on the same code paths.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hub.index.embedded.build import build_generation
from hub.index.snapshots import Snapshot, SnapshotStore

SOURCE = "idc"
PRIORITIES = {SOURCE: 100}


@dataclass(frozen=True)
class BenchData:
    data_dir: Path
    snapshot: Snapshot

    @property
    def series(self) -> int:
        return self.snapshot.series


def prepare(original: Path, work: Path, collections: tuple[str, ...] | None) -> BenchData:
    """Copy `original` (a data directory with an IDC snapshot and its embedded index) to
    `work`, or with `collections` write only their series there and index them."""
    snapshot = SnapshotStore(original).get(SOURCE)
    if snapshot is None or not (original / "index" / "CURRENT").is_file():
        raise SystemExit(
            f"no IDC snapshot and index in {original}; run `python -m bench harvest` "
            "or give --data-dir"
        )
    if collections is None:
        shutil.copytree(original / "sources", work / "sources")
        shutil.copytree(original / "index", work / "index")
    else:
        _subset(snapshot, work, collections)
        build_generation(work / "index", SnapshotStore(work).all(), PRIORITIES)
    copied = SnapshotStore(work).get(SOURCE)
    assert copied is not None
    return BenchData(work, copied)


def _subset(snapshot: Snapshot, work: Path, collections: tuple[str, ...]) -> None:
    table = pq.read_table(snapshot.path)
    table = table.filter(
        pc.is_in(table.column("collection"), value_set=pa.array(list(collections), pa.string()))
    )
    folder = work / "sources" / SOURCE
    folder.mkdir(parents=True)
    name = snapshot.path.name
    pq.write_table(table, folder / name)
    meta = {
        "file": name,
        "series": table.num_rows,
        "harvested_at": snapshot.harvested_at,
        "data_version": snapshot.data_version,
    }
    (folder / "snapshot.json").write_text(json.dumps(meta))
