"""A real `python -m hub harvest` SIGKILLed half-way through its bulk load.

The old alias must keep serving with unchanged counts, the half-built index must be left
out of the read alias, and the next harvest must delete it and publish a complete one.
The source is real IDC series (a few collections of the shipped index, written to their
own parquet file), published to the package's own cluster (conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adapters.idc import _package_file
from devcluster.cluster import RunningCluster
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.settings import ElasticSettings
from tests.resilience.conftest import answers, get_json, settings_for, write_config

COLLECTIONS = ["tcga_skcm", "tcga_prad", "ct_colonography", "tcga_blca"]  # ~13,800 series
HARVEST_TIMEOUT_S = 600


def harvest(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUB_CONFIG": str(config)}
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "harvest"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=HARVEST_TIMEOUT_S)
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]


def source_indices(cluster: RunningCluster, settings: ElasticSettings) -> dict[str, dict]:
    """This prefix's idc indices: name -> {aliases, indexed operations so far}."""
    url, prefix = cluster.urls[0], settings.index_prefix
    aliases = get_json(f"{url}/{prefix}-idc-*/_alias")
    stats = get_json(f"{url}/{prefix}-idc-*/_stats/indexing")["indices"]
    return {
        name: {
            "aliases": set(body.get("aliases") or {}),
            "indexed": stats.get(name, {})
            .get("primaries", {})
            .get("indexing", {})
            .get("index_total", 0),
        }
        for name, body in aliases.items()
    }


@pytest.fixture
def subset(tmp_path: Path) -> Path:
    table = pq.read_table(_package_file("idc_index.parquet"))
    table = table.filter(pc.is_in(table["collection_id"], value_set=pa.array(COLLECTIONS)))
    path = tmp_path / "idc_subset.parquet"
    pq.write_table(table, path)
    return path


def test_a_killed_harvest_leaves_the_old_alias_serving(
    own_cluster: RunningCluster, subset: Path, tmp_path: Path
) -> None:
    settings = settings_for(own_cluster)
    config = write_config(tmp_path / "hub.toml", settings, tmp_path / "data", subset)
    index = ElasticIndex(settings, query_deadline_s=20)
    try:
        finish(harvest(config))
        (first,) = source_indices(own_cluster, settings)
        before = answers(index)
        assert before[0][0].series > 0

        killed = harvest(config)
        deadline = time.monotonic() + HARVEST_TIMEOUT_S
        half: str | None = None
        while half is None and time.monotonic() < deadline and killed.poll() is None:
            half = next(
                (
                    name
                    for name, facts in source_indices(own_cluster, settings).items()
                    if name != first and facts["indexed"] > 0
                ),
                None,
            )
            time.sleep(0.05)
        assert half is not None, "the second harvest never started its bulk load"
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        left = source_indices(own_cluster, settings)
        assert half in left and not left[half]["aliases"], "the half-built index is served"
        assert settings.index_prefix + "-all" in left[first]["aliases"]
        assert answers(index) == before

        finish(harvest(config))
        now = source_indices(own_cluster, settings)
        assert half not in now and first not in now, f"left behind: {sorted(now)}"
        (latest,) = now
        assert f"{settings.index_prefix}-all" in now[latest]["aliases"]
        assert answers(index) == before
    finally:
        index.drop()
        index.close()
