"""A real 3-node OpenSearch cluster of this directory's own, and questions to ask it.

The failure tests kill and restart nodes, so they cannot share the suite's session
cluster with the tests running beside them: this module-scoped cluster (3 nodes, 384m
heap each, one JVM per node, started by `devcluster`) is theirs alone. It failing to
start is an error, not a skip.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devcluster
from devcluster.cluster import RunningCluster
from hub.index.base import CohortQuery, SortKey
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.settings import ElasticSettings
from schema.filters import parse_filter

HEAP = "384m"
QUESTIONS = [
    {"=": {"modality": "CT"}},
    {"AND": [{"=": {"modality": "MR"}}, {">=": {"age": 40}}]},
    {"IN": {"collection": ["tcga_luad", "tcga_brca"]}},
]


@pytest.fixture(scope="package")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    cluster = devcluster.start(
        tmp_path_factory.mktemp("resilience-cluster"), nodes=3, heap=HEAP, bound_to_parent=True
    )
    try:
        cluster.wait_status("green", timeout=300)
        yield cluster
    finally:
        cluster.stop()


def settings_for(cluster: RunningCluster, **overrides: Any) -> ElasticSettings:
    options: dict[str, Any] = {
        "urls": cluster.urls,
        "mode": "opensearch",
        "index_prefix": f"resil-{uuid.uuid4().hex[:8]}",
        "replicas": 1,
        "shards": 2,
        "request_timeout_s": 30,
        "dead_node_backoff_s": 0.5,
        **overrides,
    }
    return ElasticSettings(**options)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def answers(index: ElasticIndex) -> list[Any]:
    """Counts, facets, a histogram and a page of every question: what must not change."""
    out: list[Any] = []
    for question in QUESTIONS:
        cohort = index.cohort(CohortQuery(parse_filter(question)))
        page = cohort.series(20, None, [SortKey("study_date", True)])
        out.append(
            (
                cohort.counts(),
                cohort.facets(["modality", "body_part", "collection"], 20),
                cohort.histogram("age", 10),
                cohort.by_source(),
                page.total,
                [n["series_uid"] for n in page.nodes],
            )
        )
    return out


def shard_nodes(cluster: RunningCluster, prefix: str) -> dict[str, set[str]]:
    """Node name -> the names of this prefix's indices it holds a started shard of."""
    rows = get_json(f"{cluster.urls[0]}/_cat/shards/{prefix}-*?format=json&h=index,node,state")
    held: dict[str, set[str]] = {}
    for row in rows:
        if row.get("state") == "STARTED" and row.get("node"):
            held.setdefault(row["node"], set()).add(row["index"])
    return held


def write_config(path: Path, settings: ElasticSettings, data_dir: Path, parquet: Path) -> Path:
    urls = ", ".join(json.dumps(u) for u in settings.urls)
    path.write_text(
        f"""
[hub]
data_dir = {json.dumps(str(data_dir))}
index = "elasticsearch"
query_deadline_s = 20

[index.elasticsearch]
urls = [{urls}]
mode = "opensearch"
index_prefix = "{settings.index_prefix}"
shards = 2
replicas = 1
bulk_chunk_docs = 200
bulk_max_inflight = 1

[sources.idc]
adapter = "idc"
mode = "harvest"
index_parquet = {json.dumps(str(parquet))}
"""
    )
    return path
