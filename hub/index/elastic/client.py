"""Building the async cluster client, in Elasticsearch or OpenSearch mode.

The `elasticsearch` client (v9) sends `application/vnd.elasticsearch+json;
compatible-with=9`, which OpenSearch-family servers answer with 406, and refuses any
server that does not send `X-Elastic-Product: Elasticsearch`. In OpenSearch mode a
small transport node (`PlainJsonNode`) sends plain `application/json` instead and
vouches for the server. `mode = "auto"` asks the server's own `GET /` which it is.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Literal

from elastic_transport import HttpHeaders, HttpxAsyncHttpNode
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import AsyncElasticsearch

from hub.index.elastic.errors import guarded
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
        if headers:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value:
                    headers[name] = COMPAT_MEDIA.sub(r"application/\1", value)
        response = await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        if "x-elastic-product" in response.meta.headers:
            return response
        vouched = response.meta.headers.copy()
        vouched["x-elastic-product"] = "Elasticsearch"
        return NodeApiResponse(dataclasses.replace(response.meta, headers=vouched), response.body)


def build_client(settings: ElasticSettings, mode: Mode) -> AsyncElasticsearch:
    """A client for `mode`; credentials are read from the environment here, and only here."""
    options: dict[str, Any] = {}
    auth = settings.basic_auth()
    if auth is not None:
        options["basic_auth"] = auth
    key = settings.api_key()
    if key is not None:
        options["api_key"] = key
    if settings.url.startswith("https:"):
        options["verify_certs"] = settings.verify_certs
        options["ssl_show_warn"] = settings.verify_certs
        if settings.ca_certs is not None:
            options["ca_certs"] = str(settings.ca_certs)
    return AsyncElasticsearch(
        settings.url,
        node_class=PlainJsonNode if mode == "opensearch" else HttpxAsyncHttpNode,
        request_timeout=settings.request_timeout_s,
        retry_on_status=RETRY_STATUS,
        retry_on_timeout=True,
        max_retries=3,
        serializers=SERIALIZERS,
        **options,
    )


async def detect_mode(settings: ElasticSettings) -> Mode:
    """The configured mode, or for "auto" what the server's `GET /` says it is."""
    if settings.mode != "auto":
        return settings.mode
    probe = build_client(settings, "opensearch")  # plain JSON: both products accept it
    try:
        info = await guarded(settings, probe.info)
    finally:
        await probe.close()
    distribution = (info.body.get("version") or {}).get("distribution")
    mode: Mode = "opensearch" if distribution == "opensearch" else "elasticsearch"
    log.info("%s is %s (version %s)", settings.url, mode, info.body.get("version", {}))
    return mode
