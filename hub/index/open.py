"""The one place that knows both index backends: which one a configuration asks for.

Everything else holds an `IndexBackend` (hub/index/protocol.py) and never learns which.
The Elasticsearch backend is imported only when it is configured, so an embedded hub
loads no cluster client.
"""

from __future__ import annotations

from hub.config import HubConfig
from hub.index.protocol import IndexBackend


def open_index(config: HubConfig) -> IndexBackend:
    """The backend `[hub] index` names: the embedded index under the data directory, or
    the cluster of `[index.elasticsearch]`."""
    cluster = config.index.elasticsearch
    if config.hub.index == "elasticsearch" and cluster is not None:
        from hub.index.elastic.backend import ElasticIndex

        return ElasticIndex(cluster, config.hub.query_deadline_s)
    from hub.index.embedded.backend import EmbeddedIndex

    return EmbeddedIndex(config.hub.data_dir)
