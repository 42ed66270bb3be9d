"""A real OpenSearch cluster for the Elasticsearch backend tests.

The run's one 3-node cluster (tests/devcluster/session.py: real OpenSearch 2.19 nodes,
512m heap each, one JVM per node) serves every test; when HUB_TEST_ELASTICSEARCH_URL is
set, the same tests run against that cluster instead. A cluster that cannot be started or
reached is an error, not a skip: these tests are the backend's only proof.

Every test gets its own index prefix, so tests never see each other's indices and a
real cluster keeps nothing after the session. Indices get one replica on a cluster of
several data nodes, as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.settings import ElasticSettings
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.snapshots import SnapshotStore

Record = dict[str, Any]


@pytest.fixture(scope="session")
def es_url(es_urls: list[str]) -> str:
    """The first node's URL (the session cluster's fixtures: tests/devcluster/session.py)."""
    return es_urls[0]


@pytest.fixture(scope="session")
def make_elastic(es_url: str, es_replicas: int) -> Iterator[Callable[..., ElasticIndex]]:
    """Builds ElasticIndex backends with fresh prefixes; drops their indices at the end."""
    made: list[ElasticIndex] = []

    def make(**overrides: Any) -> ElasticIndex:
        options: dict[str, Any] = {
            "url": es_url,
            "index_prefix": f"hubtest-{uuid.uuid4().hex[:10]}",
            "replicas": es_replicas,
            "bulk_chunk_docs": 2_000,
            "bulk_max_inflight": 2,
            "request_timeout_s": 120,  # a loaded CI machine, nested level documents
            **overrides,
        }
        index = ElasticIndex(ElasticSettings(**options))
        made.append(index)
        return index

    yield make
    for index in made:
        try:
            index.drop()
        finally:
            index.close()


@pytest.fixture(scope="session")
def elastic_small(small_data_dir: Path, make_elastic: Callable[..., ElasticIndex]) -> ElasticIndex:
    """The small real-IDC corpus published to the cluster (the embedded twin: `embedded_small`)."""
    index = make_elastic()
    published = asyncio.run(index.publish(SnapshotStore(small_data_dir).all(), {"idc": 100}))
    assert published == ["idc"]
    return index


@pytest.fixture(scope="session")
def embedded_small(small_data_dir: Path) -> EmbeddedIndex:
    return EmbeddedIndex(small_data_dir)


@pytest.fixture(scope="session")
def small_records(small_data_dir: Path) -> list[Record]:
    """The harvested snapshot both indices were built from, one dict per series."""
    snap = SnapshotStore(small_data_dir).get("idc")
    assert snap is not None
    records: list[Record] = pq.read_table(snap.path).to_pylist()
    return records


@pytest.fixture(params=["embedded", "elastic"])
def backend(
    request: pytest.FixtureRequest, embedded_small: EmbeddedIndex
) -> EmbeddedIndex | ElasticIndex:
    """Each backend in turn, over the same corpus."""
    if request.param == "embedded":
        return embedded_small
    index: ElasticIndex = request.getfixturevalue("elastic_small")
    return index


@pytest.fixture(scope="session")
def kits(small_data_dir: Path) -> pa.Table:
    """Real series of one collection, in row order."""
    snap = SnapshotStore(small_data_dir).get("idc")
    assert snap is not None
    table = pq.read_table(snap.path)
    table = table.filter(pc.equal(table["collection"], "c4kc_kits"))
    return table.sort_by([("patient_id", "ascending"), ("series_uid", "ascending")])
