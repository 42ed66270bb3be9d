"""The backend settings every step uses: one place for prefixes, shards and bulk sizes."""

from __future__ import annotations

from typing import Any

from bench.scale.cluster import Cluster
from bench.scale.plan import Plan
from hub.index.elastic.settings import ElasticSettings

HUB_PREFIX = "imaging-hub-bench"
CAPTURE_PREFIX = "bench-capture"
RAW_PREFIX = "bench-raw"
"""Prefixes that do not start with another's `<prefix>-`, so no layout (or index template)
of one takes another's indices for its own."""


def elastic_settings(cluster: Cluster, plan: Plan, prefix: str = HUB_PREFIX) -> ElasticSettings:
    return ElasticSettings(**elastic_table(cluster, plan, prefix))


def elastic_table(cluster: Cluster, plan: Plan, prefix: str = HUB_PREFIX) -> dict[str, Any]:
    """The `[index.elasticsearch]` table, with every node's URL."""
    table: dict[str, Any] = {
        "urls": list(cluster.urls),
        "index_prefix": prefix,
        "shards": plan.shards,
        "replicas": plan.replicas,
        "bulk_chunk_docs": plan.bulk_chunk_docs,
        "bulk_max_inflight": plan.bulk_max_inflight,
        "request_timeout_s": 120,
    }
    return table
