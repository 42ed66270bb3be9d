"""The last good copy of every harvested source, one parquet file each.

A harvest streams into a temporary file and replaces the snapshot with one atomic
rename only when the source has been read to the end: a harvest that fails half-way
leaves the previous copy untouched, and one killed half-way leaves a partial file that
the next harvest of that source removes. Index generations are built from these files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.batch import ARROW_SCHEMA, validate_batch
from hub.index.staging import partial_of, remove_all_but, writing

SNAPSHOT_FILES = "snapshot-*.parquet*"
"""A source's snapshot files, finished and partial (`snapshot.json` is not one)."""


@dataclass(frozen=True)
class Snapshot:
    source: str
    path: Path
    series: int
    harvested_at: str
    data_version: str | None


class SnapshotStore:
    """`<data_dir>/sources/<name>/snapshot.parquet` plus `snapshot.json` beside it."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "sources"

    def _dir(self, source: str) -> Path:
        return self.root / source

    def get(self, source: str) -> Snapshot | None:
        meta_path = self._dir(source) / "snapshot.json"
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        return Snapshot(
            source=source,
            path=self._dir(source) / meta["file"],
            series=int(meta["series"]),
            harvested_at=meta["harvested_at"],
            data_version=meta.get("data_version"),
        )

    def all(self) -> list[Snapshot]:
        if not self.root.is_dir():
            return []
        found = (self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir())
        return [s for s in found if s is not None]

    async def write(
        self,
        source: str,
        batches: AsyncIterator[pa.RecordBatch],
        data_version: str | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> Snapshot:
        """Stream batches into a new snapshot; replace the old one only on success.
        What a killed harvest left in the folder goes first (see `hub.index.staging`)."""
        folder = self._dir(source)
        folder.mkdir(parents=True, exist_ok=True)
        current = self.get(source)
        remove_all_but(folder, SNAPSHOT_FILES, current.path.name if current else None)
        stamp = dt.datetime.now(dt.UTC)
        name = f"snapshot-{stamp:%Y%m%dT%H%M%S%f}.parquet"
        tmp = partial_of(folder / name)
        rows = 0
        with writing(tmp):  # held until snapshot.json names the new file
            try:
                with pq.ParquetWriter(tmp, ARROW_SCHEMA, compression="zstd") as writer:
                    async for batch in batches:
                        batch = validate_batch(batch, source)
                        writer.write_batch(batch)
                        rows += batch.num_rows
                        if progress is not None:
                            progress(batch.num_rows)
                os.replace(tmp, folder / name)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            meta = {
                "file": name,
                "series": rows,
                "harvested_at": stamp.isoformat(),
                "data_version": data_version,
            }
            meta_tmp = partial_of(folder / "snapshot.json")
            meta_tmp.write_text(json.dumps(meta))
            os.replace(meta_tmp, folder / "snapshot.json")
        remove_all_but(folder, SNAPSHOT_FILES, name)
        snap = self.get(source)
        assert snap is not None
        return snap
