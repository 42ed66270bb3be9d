"""Building the async cluster client, in Elasticsearch or OpenSearch mode.

The `elasticsearch` client (v9) sends `application/vnd.elasticsearch+json;
compatible-with=9`, which OpenSearch-family servers answer with 406, an Elasticsearch
8.x server with 400 ("Accept version must be either version 8 or 7"), and refuses any
server that does not send `X-Elastic-Product: Elasticsearch`. So the media type is
chosen from the server's own `GET /` (`Server`): OpenSearch (`version.distribution`)
gets plain `application/json` from a small transport node (`PlainJsonNode`, which also
vouches for the server); Elasticsearch gets `compatible-with=<its major version>`
when that is older than the client's (`CompatNode`). `mode = "auto"` also takes the
product from that answer; an explicit mode is trusted for the product.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, ClassVar, Literal

import elasticsearch
from elastic_transport import BaseNode, HttpHeaders, HttpxAsyncHttpNode, NodePool
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import AsyncElasticsearch
from elasticsearch._version import __versionstr__ as elasticsearch_version

from hub.index.elastic.errors import ElasticAuthError, guarded
from hub.index.elastic.settings import ElasticSettings

try:  # orjson is a hub dependency; parsing big aggregation answers is 3x faster with it
    from elasticsearch.serializer import OrjsonSerializer

    SERIALIZERS: dict[str, Any] = {"application/json": OrjsonSerializer()}
except ImportError:  # pragma: no cover
    SERIALIZERS = {}

log = logging.getLogger(__name__)
Mode = Literal["elasticsearch", "opensearch"]
COMPAT_MEDIA = re.compile(r"application/vnd\.elasticsearch\+([\w-]+)\s*;\s*compatible-with=\d+")
RETRY_STATUS = (429, 502, 503, 504)
CLIENT_MAJOR = int(elasticsearch_version.partition(".")[0])
OLDEST_COMPAT = 7  # the first major that understands `compatible-with` (7.11)
MAX_DEAD_NODE_BACKOFF_S = 30.0
SNIFF_TIMEOUT_S = 2.0
SNIFF_EVERY_S = 10.0


@dataclasses.dataclass(frozen=True)
class Server:
    """What the client must speak: the product, and for Elasticsearch the major version
    named in `compatible-with` (the client's own when the server is as new or newer)."""

    mode: Mode
    compat: int = CLIENT_MAJOR


def server_from_info(body: Any, configured: str = "auto") -> Server:
    """`Server` from the body of `GET /` (a real answer's shape, see the tests)."""
    version = (body.get("version") if isinstance(body, dict) else None) or {}
    if configured == "opensearch" or (
        configured == "auto" and version.get("distribution") == "opensearch"
    ):
        return Server("opensearch")
    if version.get("distribution") == "opensearch":  # told it is Elasticsearch: trust that
        return Server("elasticsearch")
    match = re.match(r"(\d+)\.", str(version.get("number", "")))
    major = int(match.group(1)) if match else CLIENT_MAJOR
    return Server("elasticsearch", max(OLDEST_COMPAT, min(major, CLIENT_MAJOR)))


def _media(headers: HttpHeaders | None, replacement: str) -> HttpHeaders | None:
    """`headers` with the compatibility media type of Accept/Content-Type rewritten."""
    if not headers:
        return headers
    headers = headers.copy()
    for name in ("accept", "content-type"):
        value = headers.get(name)
        if value:
            headers[name] = COMPAT_MEDIA.sub(replacement, value)
    return headers


DATA_REFUSALS = (b"search_phase_execution_exception", b"no_shard_available_action_exception")


def note_refusal(node: BaseNode, response: NodeApiResponse) -> None:
    """Mark on `node` whether its last 5xx was about the data, not about the node.

    The transport rests every node that answers 5xx. A healthy node answering "no copy
    of that shard" (the cluster is red) is not dead, and resting all of them leaves only
    the truly dead node to be tried, so red would read as unreachable. `NodePool` below
    keeps such a node alive."""
    status, body = response.meta.status, response.body
    node.refused_for_data = status >= 500 and any(  # type: ignore[attr-defined]
        marker in body[:4096] for marker in DATA_REFUSALS
    )


class DataAwareNodePool(NodePool):
    """A node pool that does not rest a node for answering about missing shards."""

    def mark_dead(self, node: BaseNode, _now: float | None = None) -> None:
        if getattr(node, "refused_for_data", False):
            self.mark_live(node)
            return
        super().mark_dead(node, _now)


class CompatNode(HttpxAsyncHttpNode):
    """An httpx node that asks an older Elasticsearch for its own major's compatibility."""

    compat: ClassVar[int] = CLIENT_MAJOR

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        headers = _media(
            headers, rf"application/vnd.elasticsearch+\1; compatible-with={self.compat}"
        )
        response = await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        note_refusal(self, response)
        return response


def compat_node(major: int) -> type[HttpxAsyncHttpNode]:
    """The node class for an Elasticsearch server of `major` (the stock one if current)."""
    if major >= CLIENT_MAJOR:
        return HttpxAsyncHttpNode
    return type(f"CompatNode{major}", (CompatNode,), {"compat": major})


class PlainJsonNode(HttpxAsyncHttpNode):
    """An httpx node that speaks plain JSON (see module docstring)."""

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        headers = _media(headers, r"application/\1")
        response = await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        note_refusal(self, response)
        if "x-elastic-product" in response.meta.headers:
            return response
        vouched = response.meta.headers.copy()
        vouched["x-elastic-product"] = "Elasticsearch"
        return NodeApiResponse(dataclasses.replace(response.meta, headers=vouched), response.body)


def build_client(settings: ElasticSettings, server: Server) -> AsyncElasticsearch:
    """A client for `server` over every configured node; credentials are read from the
    environment here, and only here.

    The transport's node pool does the failover: a connection error or timeout marks
    the node dead (rested `dead_node_backoff_s`, doubling, before it is tried again) and
    the request goes to the next node; a 429/502/503/504 answer is retried on the next
    node too. Sniffing (asking the cluster for its nodes) only when `sniff` is set."""
    options: dict[str, Any] = {}
    auth = settings.basic_auth()
    if auth is not None:
        options["basic_auth"] = auth
    key = settings.api_key()
    if key is not None:
        options["api_key"] = key
    if settings.https:
        options["verify_certs"] = settings.verify_certs
        options["ssl_show_warn"] = settings.verify_certs
        if settings.ca_certs is not None:
            options["ca_certs"] = str(settings.ca_certs)
    if settings.sniff:
        options |= {
            "sniff_on_start": True,
            "sniff_on_node_failure": True,
            "sniff_timeout": min(settings.request_timeout_s, SNIFF_TIMEOUT_S),
            "min_delay_between_sniffing": SNIFF_EVERY_S,
        }
    return AsyncElasticsearch(
        list(settings.urls),
        node_class=PlainJsonNode if server.mode == "opensearch" else compat_node(server.compat),
        request_timeout=settings.request_timeout_s,
        retry_on_status=RETRY_STATUS,
        retry_on_timeout=True,
        max_retries=settings.max_retries,
        dead_node_backoff_factor=settings.dead_node_backoff_s,
        max_dead_node_backoff=MAX_DEAD_NODE_BACKOFF_S,
        node_pool_class=DataAwareNodePool,
        serializers=SERIALIZERS,
        **options,
    )


async def detect_server(settings: ElasticSettings) -> Server:
    """What the server's `GET /` says it is (see `server_from_info`); OpenSearch mode
    needs no answer. A user not allowed `GET /` (HTTP 403: it needs the `monitor`
    privilege) gets the configured mode at the client's own version."""
    if settings.mode == "opensearch":
        return Server("opensearch")
    probe = build_client(settings, Server("opensearch"))  # plain JSON: every server takes it
    try:
        info = await guarded(settings, probe.info)
    except ElasticAuthError as exc:
        if settings.mode == "auto" or not isinstance(
            exc.__cause__, elasticsearch.AuthorizationException
        ):
            raise
        log.warning(
            "%s: GET / is not allowed; assuming Elasticsearch %d", settings.where, CLIENT_MAJOR
        )
        return Server("elasticsearch")
    finally:
        await probe.close()
    server = server_from_info(info.body, settings.mode)
    log.info("%s is %s (version %s)", settings.where, server, info.body.get("version", {}))
    return server
