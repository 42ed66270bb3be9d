"""The re-harvest that `killed_harvest` SIGKILLs, in a process of its own:
`python -m bench.scale.child_harvest SETTINGS_JSON SNAPSHOT_PARQUET SERIES`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from bench.scale.data import PRIORITIES, SOURCE
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.settings import ElasticSettings
from hub.index.snapshots import Snapshot


def main(table: str, path: str, series: int) -> None:
    """The process that is killed: publishes `path` as a newer snapshot, printing
    `sent N` after every bulk answer."""
    stamp = dt.datetime.now(dt.UTC).isoformat()
    snap = Snapshot(SOURCE, Path(path), series, stamp, None)
    elastic = ElasticIndex(ElasticSettings(**json.loads(table)))
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n
        print(f"sent {sent[0]}", flush=True)

    asyncio.run(elastic.publish([snap], PRIORITIES, progress))
    print("published", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
