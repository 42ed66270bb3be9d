"""Harvest and query on the embedded index, each against a baseline run alongside.

  python -m bench harvest  full IDC harvest into the embedded index vs raw tantivy indexing
  python -m bench query    the cohort query over HTTP /graphql vs DuckDB over the same parquet,
                           plus resident memory of `serve`

Figures are medians of several runs; the machine is noisy, so ratios matter more than
absolute numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import tantivy

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.snapshots import SnapshotStore
from hub.service import Hub

FILTER = {"AND": [{"=": {"modality": "CT"}}, {"=": {"body_part": "CHEST"}}]}
FACETS = ["modality", "body_part", "sex", "collection", "license"]
GRAPHQL = f"""
query($filter: JSON) {{ cohort(filter: $filter) {{
  counts {{ patients studies series }}
  facets(fields: {json.dumps(FACETS)}, size: 50) {{ field missing buckets {{ key count }} }}
  histogram(field: "age", interval: 10) {{ key count }}
  series(first: 50) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{
    seriesUid studyUid patientId collection modality bodyPart sex age studyDate
    studyDescription seriesDescription manufacturer license disease instanceCount sizeBytes
    sources viewerUrl downloadUrl }} }}
}} }}"""


def _config(data_dir: Path) -> HubConfig:
    return HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={"idc": SourceSettings(name="idc", adapter="idc")},
    )


def bench_harvest(data_dir: Path, runs: int) -> dict[str, Any]:
    hub_times, raw_times = [], []
    for _ in range(runs):
        shutil.rmtree(data_dir, ignore_errors=True)
        hub = Hub(_config(data_dir))
        t = time.perf_counter()
        asyncio.run(hub.harvest())
        hub_times.append(time.perf_counter() - t)
        asyncio.run(hub.aclose())
        snapshot = SnapshotStore(data_dir).get("idc")
        assert snapshot is not None
        raw_times.append(_raw_tantivy(snapshot.path))
    hub_s, raw_s = statistics.median(hub_times), statistics.median(raw_times)
    return {
        "series": snapshot.series,
        "hub_harvest_s": round(hub_s, 1),
        "raw_tantivy_s": round(raw_s, 1),
        "ratio": round(hub_s / raw_s, 2),
        "runs": runs,
        "all_hub_s": [round(x, 1) for x in hub_times],
        "all_raw_s": [round(x, 1) for x in raw_times],
    }


def _raw_tantivy(parquet: Path) -> float:
    """Baseline: index the same rows into tantivy with a plain schema, no hub logic."""
    sb = tantivy.SchemaBuilder()
    for name in (
        "collection",
        "patient_id",
        "study_uid",
        "series_uid",
        "modality",
        "body_part",
        "sex",
        "license",
    ):
        sb.add_text_field(name, stored=True, fast=True, tokenizer_name="raw")
    sb.add_integer_field("age", stored=True, indexed=True, fast=True)
    sb.add_text_field("series_description", stored=True)
    folder = Path(tempfile.mkdtemp(prefix="raw-tantivy-"))
    try:
        t = time.perf_counter()
        index = tantivy.Index(sb.build(), path=str(folder))
        writer = index.writer(heap_size=1_000_000_000, num_threads=2)
        con = duckdb.connect()
        sql = (
            "SELECT json_merge_patch('{}', json_object('collection', collection, 'patient_id', "
            "patient_id, 'study_uid', study_uid, 'series_uid', series_uid, 'modality', modality, "
            "'body_part', body_part, 'sex', sex, 'license', license, 'age', age, "
            "'series_description', series_description))::VARCHAR FROM read_parquet(?)"
        )
        for batch in con.sql(sql, params=[str(parquet)]).to_arrow_reader(50_000):
            for doc in batch.column(0).to_pylist():
                writer.add_json(doc)
        writer.commit()
        writer.wait_merging_threads()
        return time.perf_counter() - t
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_query(data_dir: Path, runs: int) -> dict[str, Any]:
    if not (data_dir / "index" / "CURRENT").is_file():
        raise SystemExit(f"no index in {data_dir}; run `python -m bench harvest` first")
    port = _free_port()
    env = {**os.environ, "HUB_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            _wait_ready(client)
            body = {"query": GRAPHQL, "variables": {"filter": FILTER}}
            answer = client.post("/graphql", json=body).json()
            assert "errors" not in answer, answer
            hub_ms = _median_ms(lambda: client.post("/graphql", json=body).raise_for_status(), runs)
        rss_mib = _rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    snapshot = SnapshotStore(data_dir).get("idc")
    assert snapshot is not None
    duck_ms = _median_ms(lambda: _duckdb_cohort(str(snapshot.path)), runs)
    counts = answer["data"]["cohort"]["counts"]
    return {
        "hub_http_ms": round(hub_ms, 1),
        "duckdb_ms": round(duck_ms, 1),
        "speedup_vs_duckdb": round(duck_ms / hub_ms, 2),
        "serve_rss_mib": round(rss_mib),
        "cohort_counts": counts,
        "runs": runs,
    }


_CON: dict[str, duckdb.DuckDBPyConnection] = {}


def _duckdb_cohort(parquet: str) -> None:
    """Baseline: the same answer (counts, five facets, histogram, first 50) in DuckDB."""
    con = _CON.setdefault("c", duckdb.connect())
    where = "FROM read_parquet(?) WHERE modality = 'CT' AND body_part = 'CHEST'"
    con.execute(
        "SELECT count(*), count(DISTINCT study_uid), count(DISTINCT (collection, patient_id)) "
        + where,
        [parquet],
    ).fetchall()
    for f in FACETS:
        con.execute(
            f"SELECT {f}, count(*) c {where} GROUP BY 1 ORDER BY c DESC LIMIT 50", [parquet]
        ).fetchall()
    con.execute(f"SELECT floor(age / 10) * 10 b, count(*) {where} GROUP BY 1", [parquet]).fetchall()
    con.execute(
        f"SELECT * EXCLUDE (fetched_at) {where} "
        "ORDER BY collection, patient_id, study_uid, series_uid LIMIT 50",
        [parquet],
    ).fetchall()


def _median_ms(fn: Any, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the hub did not become ready in 120 s")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
