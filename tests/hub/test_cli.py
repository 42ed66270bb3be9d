"""The `imaging-hub` command end to end: harvest, sources, query and serve, on real IDC rows.

A config points the IDC adapter at a small parquet cut from the real `idc_index.parquet`
(three collections), so harvest and a first `serve` run in seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import idc_index_data
import pytest
from typer.testing import CliRunner

from hub.cli import app

IDC_DIR = Path(idc_index_data.__file__).parent
COLLECTIONS = ["c4kc_kits", "icdc_glioma", "rms_mutation_prediction"]
runner = CliRunner()


@pytest.fixture(scope="module")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    parquet = folder / "idc_subset.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM read_parquet(?) WHERE list_contains(?, collection_id)) TO '"
        + str(parquet).replace("'", "''")
        + "' (FORMAT parquet)",
        [str(IDC_DIR / "idc_index.parquet"), COLLECTIONS],
    )
    config = folder / "hub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{folder / "data"}"\n\n'
        f'[sources.idc]\nadapter = "idc"\nmode = "harvest"\nindex_parquet = "{parquet}"\n'
    )
    return config


def _expected_series() -> int:
    con = duckdb.connect()
    row = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE list_contains(?, collection_id)",
        [str(IDC_DIR / "idc_index.parquet"), COLLECTIONS],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_harvest_then_sources_and_query(small_config: Path) -> None:
    result = runner.invoke(app, ["harvest", "--config", str(small_config)])
    assert result.exit_code == 0, result.output
    expected = _expected_series()
    assert f"{expected:,} series in the index" in result.output

    result = runner.invoke(app, ["sources", "--config", str(small_config)])
    assert result.exit_code == 0 and "idc" in result.output and "ready" in result.output
    assert "route" in result.output and "index" in result.output  # how questions reach it

    result = runner.invoke(
        app, ["query", "{}", "--config", str(small_config), "--facet", "collection", "--size", "5"]
    )
    assert result.exit_code == 0, result.output
    assert f"{expected:,}" in result.output
    for collection in COLLECTIONS:
        assert collection in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "{not json"], "not valid JSON"),
        (["query", '{"=": {"modalityy": "CT"}}'], "$.=.modalityy: unknown field"),
        (["query", '{"IN": {"modality": []}}'], "non-empty list"),
        (["query", "{}", "--facet", "age"], "histogram"),
        (["harvest", "nosuchsource"], "unknown source"),
    ],
)
def test_bad_input_is_a_clear_error(small_config: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--config", str(small_config)])
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.midrc]\nadapter = "gen3"\ntoken = "abc"\n')
    result = runner.invoke(app, ["sources", "--config", str(bad)])
    assert result.exit_code == 2
    assert "secret inline" in " ".join(result.output.split())
    assert "abc" not in result.output
    bad.write_text('[sources.x]\nadapter = "nosuchadapter"\n')
    result = runner.invoke(app, ["sources", "--config", str(bad)])
    assert result.exit_code == 2 and "not installed" in " ".join(result.output.split())
    result = runner.invoke(app, ["sources", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_serve_harvests_an_empty_data_dir_then_answers(small_config: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--port",
            str(port),
            "--config",
            str(small_config),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.3)
            else:
                pytest.fail("serve never became ready")
            answer = client.post(
                "/graphql", json={"query": "{ cohort { counts { series } } }"}
            ).json()
            assert answer["data"]["cohort"]["counts"]["series"] == _expected_series()
            assert client.get("/healthz").status_code == 200
    finally:
        server.terminate()
        server.wait(15)
    assert (data_dir / "index" / "CURRENT").is_file()
    meta = json.loads((data_dir / "sources" / "idc" / "snapshot.json").read_text())
    assert meta["series"] == _expected_series()
