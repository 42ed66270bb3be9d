"""When `imaging-hub serve` harvests before serving (its `--workers` are exercised by
test_harness.py, which runs the hub with two).

Real processes: the CLI under `python -m hub`, the run's real OpenSearch cluster
(tests/devcluster/session.py) for the Elasticsearch backend, a small parquet cut from the
real IDC index as the source.
Against Elasticsearch, `serve` must not harvest on start unless `--harvest` is given (a
shared cluster is filled by `imaging-hub harvest` or the CronJob); with `--harvest` it
does, and then answers from the cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import idc_index_data
import pytest

from bench.load.procs import free_port

IDC_PARQUET = Path(idc_index_data.__file__).parent / "idc_index.parquet"
COLLECTION = "rms_mutation_prediction"


@pytest.fixture(scope="module")
def small_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("serve") / "idc_subset.parquet"
    con = duckdb.connect()
    query = f"SELECT * FROM read_parquet(?) WHERE collection_id = '{COLLECTION}'"
    con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)", [str(IDC_PARQUET)])
    row = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
    assert row is not None and row[0] > 0
    return path, int(row[0])


def _es_config(folder: Path, es_url: str, replicas: int, parquet: Path) -> Path:
    config = folder / "hub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{folder / "data"}"\nindex = "elasticsearch"\n\n'
        f'[index.elasticsearch]\nurl = "{es_url}"\nindex_prefix = "serve-{uuid.uuid4().hex[:8]}"\n'
        f"replicas = {replicas}\n\n"
        f'[sources.idc]\nadapter = "idc"\nmode = "harvest"\nindex_parquet = "{parquet}"\n'
    )
    return config


def _serve(config: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    argv = [sys.executable, "-m", "hub", "serve", "--port", str(port), "--config", str(config)]
    server = subprocess.Popen(
        [*argv, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return server, f"http://127.0.0.1:{port}"


def _wait(server: subprocess.Popen[str], url: str, path: str, timeout_s: float = 120) -> int:
    """Status of the first answer to `path` (the server's output if it dies first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited: {server.stdout.read() if server.stdout else ''}")
        try:
            return httpx.get(url + path, timeout=5).status_code
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"serve never answered {path}")


def _stop(server: subprocess.Popen[str]) -> str:
    server.terminate()
    out, _ = server.communicate(timeout=20)
    return out


def test_serve_does_not_harvest_into_elasticsearch_unless_asked(
    es_urls: list[str], es_replicas: int, small_parquet: tuple[Path, int], tmp_path: Path
) -> None:
    parquet, expected = small_parquet
    config = _es_config(tmp_path, es_urls[0], es_replicas, parquet)
    server, url = _serve(config)
    try:
        assert _wait(server, url, "/healthz") == 200
        assert httpx.get(url + "/readyz", timeout=10).status_code == 503  # nothing harvested
    finally:
        out = _stop(server)
    assert "Not harvesting into Elasticsearch" in out and "Harvesting" not in out

    server, url = _serve(config, "--harvest")
    try:
        assert _wait(server, url, "/readyz", timeout_s=300) == 200
        answer = httpx.post(
            url + "/graphql", json={"query": "{ cohort { counts { series } } }"}, timeout=30
        ).json()
        assert answer["data"]["cohort"]["counts"]["series"] == expected
    finally:
        out = _stop(server)
    assert "Harvesting idc" in out
