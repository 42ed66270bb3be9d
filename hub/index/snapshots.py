"""The last good copy of every harvested source, one parquet file each.

A harvest streams into a temporary file and replaces the snapshot with one atomic
rename only when the source has been read to the end: a harvest that fails half-way
leaves the previous copy untouched. Index generations are built from these files.
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
        """Stream batches into a new snapshot; replace the old one only on success."""
        folder = self._dir(source)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC)
        name = f"snapshot-{stamp:%Y%m%dT%H%M%S%f}.parquet"
        tmp = folder / (name + ".partial")
        rows = 0
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
        meta_tmp = folder / "snapshot.json.partial"
        meta_tmp.write_text(json.dumps(meta))
        os.replace(meta_tmp, folder / "snapshot.json")
        for old in folder.glob("snapshot-*.parquet"):
            if old.name != name:
                old.unlink(missing_ok=True)
        snap = self.get(source)
        assert snap is not None
        return snap
