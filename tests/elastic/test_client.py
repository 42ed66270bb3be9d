"""The media type follows the server's `GET /` answer: Elasticsearch 8.x refuses the v9
client's `compatible-with=9`, OpenSearch refuses any compatibility media type.

The servers are respx mocks that answer `GET /` with bodies in the shapes the real
products send, and check the media types of every other request the way those
products do (Elasticsearch: 400 `media_type_header_exception` for a major it cannot
speak; OpenSearch: 406). The client under test is the real one, over real httpx.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
import respx

from hub.index.base import CohortQuery
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.client import (
    CLIENT_MAJOR,
    Server,
    build_client,
    detect_server,
    server_from_info,
)
from hub.index.elastic.errors import ElasticFailure, guarded
from hub.index.elastic.settings import ElasticSettings
from schema.filters import parse_filter

URL = "http://es.test:9200"
ES_8 = {
    "name": "es01",
    "cluster_name": "docker-cluster",
    "cluster_uuid": "7u2Uq1mmT5u8cFQ9kQ3y3w",
    "version": {
        "number": "8.15.3",
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "f97532e680b555c3a05e73a74c28afb666923018",
        "build_date": "2024-10-09T22:08:00.328917561Z",
        "build_snapshot": False,
        "lucene_version": "9.11.1",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "You Know, for Search",
}
ES_9 = {
    **ES_8,
    "version": {
        **ES_8["version"],  # type: ignore[dict-item]
        "number": "9.1.5",
        "lucene_version": "10.2.2",
        "minimum_wire_compatibility_version": "8.19.0",
        "minimum_index_compatibility_version": "8.0.0",
    },
}
OPENSEARCH_2 = {
    "name": "opensearch-node1",
    "cluster_name": "opensearch-cluster",
    "cluster_uuid": "Yr1bU2eTQ6mHtK5c6l1Wlg",
    "version": {
        "distribution": "opensearch",
        "number": "2.17.1",
        "build_type": "tar",
        "build_hash": "1893d20797e30110e5877170e44d42275ce5951e",
        "build_date": "2024-09-26T21:59:52.691008096Z",
        "build_snapshot": False,
        "lucene_version": "9.11.1",
        "minimum_wire_compatibility_version": "7.10.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}
COMPAT = re.compile(r"application/vnd\.elasticsearch\+[\w-]+;\s*compatible-with=(\d+)")


def _server(root: dict[str, Any], seen: list[httpx.Request]) -> respx.MockRouter:
    """A mock cluster: `GET /` answers `root`; `_count` answers 7 if the media types are
    ones that product accepts, else the product's own refusal."""
    opensearch = root["version"].get("distribution") == "opensearch"
    major = int(root["version"]["number"].split(".")[0])
    product = {} if opensearch else {"x-elastic-product": "Elasticsearch"}

    def count(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        for name in ("accept", "content-type"):
            value = request.headers.get(name, "")
            wanted = COMPAT.search(value)
            if wanted and opensearch:
                return httpx.Response(406, json={"error": f"{value} is not supported"})
            if wanted and int(wanted.group(1)) not in (major, major - 1):
                reason = (
                    f"{name.title()} version must be either version {major} or {major - 1}, "
                    f"but found {wanted.group(1)}. {name.title()}={value}"
                )
                error = {"type": "media_type_header_exception", "reason": reason}
                return httpx.Response(400, json={"error": error, "status": 400}, headers=product)
        return httpx.Response(200, json={"count": 7}, headers=product)

    router = respx.mock(base_url=URL, assert_all_called=False)
    router.get("/").respond(200, json=root, headers=product)
    router.route(path__regex=r"^/[^/]+/_count$").mock(side_effect=count)
    return router


async def _count(settings: ElasticSettings, server: Server | None = None) -> int:
    """A count through the hub's client for `server` (detected when not given)."""
    client = build_client(settings, server or await detect_server(settings))
    try:
        answer = await guarded(settings, lambda: client.count(index="hub-all"))
    finally:
        await client.close()
    return int(answer["count"])


@pytest.mark.parametrize(
    ("root", "accept"),
    [
        (ES_8, "application/vnd.elasticsearch+json; compatible-with=8"),
        (ES_9, "application/vnd.elasticsearch+json; compatible-with=9"),
        (OPENSEARCH_2, "application/json"),
    ],
    ids=["elasticsearch-8", "elasticsearch-9", "opensearch-2"],
)
def test_the_media_type_is_the_servers_own(root: dict[str, Any], accept: str) -> None:
    seen: list[httpx.Request] = []
    with _server(root, seen):
        assert asyncio.run(_count(ElasticSettings(url=URL))) == 7  # mode = "auto"
    assert seen[-1].headers["accept"] == accept


def test_an_explicit_elasticsearch_mode_still_asks_the_version() -> None:
    seen: list[httpx.Request] = []
    with _server(ES_8, seen):
        assert asyncio.run(_count(ElasticSettings(url=URL, mode="elasticsearch"))) == 7
    assert seen[-1].headers["accept"].endswith("compatible-with=8")


def test_the_stock_media_type_is_what_elasticsearch_8_refuses() -> None:
    """Without the choice above, an 8.x server refuses the client (the case this guards)."""
    seen: list[httpx.Request] = []
    stock = Server("elasticsearch", CLIENT_MAJOR)
    with _server(ES_8, seen), pytest.raises(ElasticFailure, match="version must be either"):
        asyncio.run(_count(ElasticSettings(url=URL), stock))
    assert seen[-1].headers["accept"].endswith(f"compatible-with={CLIENT_MAJOR}")


def test_server_from_info_reads_product_and_major() -> None:
    assert server_from_info(ES_8) == Server("elasticsearch", 8)
    assert server_from_info(ES_9) == Server("elasticsearch", min(9, CLIENT_MAJOR))
    assert server_from_info(OPENSEARCH_2) == Server("opensearch")
    seven = {"version": {"number": "7.17.24"}}
    assert server_from_info(seven) == Server("elasticsearch", 7)
    # an explicit mode is trusted for the product; a strange answer keeps the client's own
    assert server_from_info(OPENSEARCH_2, "elasticsearch") == Server("elasticsearch")
    assert server_from_info(ES_8, "opensearch") == Server("opensearch")
    assert server_from_info({"version": {"number": "x"}}) == Server("elasticsearch")
    assert server_from_info([]) == Server("elasticsearch")


def test_the_backend_talks_to_an_elasticsearch_8() -> None:
    """End to end through `ElasticIndex`: detection, then a query with version 8 types."""
    seen: list[httpx.Request] = []
    router = _server(ES_8, seen)
    aliases: dict[str, Any] = {"hub-idc-1": {"aliases": {"hub-all": {}}}}
    mapping = {"hub-idc-1": {"mappings": {"_meta": {"prefix": "hub", "kind": "harvest"}}}}
    product = {"x-elastic-product": "Elasticsearch"}

    def checked(body: dict[str, Any]) -> Any:
        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if "compatible-with=8" not in request.headers["accept"]:
                return httpx.Response(400, json={"error": "bad media type"}, headers=product)
            return httpx.Response(200, json=body, headers=product)

        return answer

    router.get("/hub-*/_mapping").mock(side_effect=checked(mapping))
    router.get("/hub-*/_alias").mock(side_effect=checked(aliases))
    hits = {"hits": {"total": {"value": 42, "relation": "eq"}, "hits": []}}
    router.post("/hub-all/_search").mock(side_effect=checked(hits))
    index = ElasticIndex(ElasticSettings(url=URL, index_prefix="hub"))
    try:
        with router:
            view = index.cohort(CohortQuery(parse_filter(None)))
            assert index.runner.run(view.counting.total()) == 42
    finally:
        index.close()
    assert all("compatible-with=8" in r.headers["accept"] for r in seen)
