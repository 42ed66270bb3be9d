"""Failover, completeness and deadlines, against fake nodes on loopback (fake_node.py).

What a real cluster does only by accident (a partial answer, a node that never answers)
is scripted here, so each rule is shown on its own: a dead node is passed over, a
partial answer is asked again and never returned, a silent cluster is reported within
the deadline, a red one makes `/readyz` say why.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.spi import SourceSettings
from hub.api.app import create_app
from hub.config import ConfigError, HubConfig, HubSettings, IndexTables, load_config
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.client import Server, build_client
from hub.index.elastic.errors import ElasticUnavailable, ShardsUnavailable
from hub.index.elastic.settings import ElasticSettings
from tests.resilience.fake_node import (
    FakeNode,
    alias_answer,
    free_port,
    mapping_answer,
    search_answer,
    serving,
)

PREFIX = "hub"


def served_script(**extra: list[tuple[object, object]]) -> dict[str, list[tuple[object, object]]]:
    """A node serving one harvested idc index under the `hub` prefix."""
    return {
        f"/{PREFIX}-*/_mapping": [(200, mapping_answer(PREFIX))],
        f"/{PREFIX}-*/_alias": [(200, alias_answer(PREFIX))],
        "/_cluster/health": [(200, {"status": "green"})],
        **extra,
    }


def index_on(*urls: str, deadline_s: float = 5.0, **options: object) -> ElasticIndex:
    settings = ElasticSettings(urls=list(urls), mode="opensearch", index_prefix=PREFIX, **options)
    return ElasticIndex(settings, query_deadline_s=deadline_s)


def total(index: ElasticIndex) -> int:
    """One search over what the read alias serves, as a question's count makes it."""
    index.served()
    answer = index.runner.run(index.search(size=0, track_total_hits=True))
    return int(answer["hits"]["total"]["value"])


# --- settings --------------------------------------------------------------------------


def test_url_is_the_one_node_form_of_urls() -> None:
    one = ElasticSettings(url="http://es:9200/")
    assert one.urls == ("http://es:9200",) and one.url == "http://es:9200"
    many = ElasticSettings(urls=["https://a:9200", "https://b:9200/"])
    assert many.urls == ("https://a:9200", "https://b:9200")
    assert many.where == "the cluster at https://a:9200, https://b:9200"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"urls": []}, "at least one node"),
        ({"urls": ["http://a:9200", "https://b:9200"]}, "mixes http:// and https://"),
        ({"urls": ["http://a:9200", "ftp://b"]}, "http:// or https:// URL"),
        ({"urls": ["http://a:9200", "http://a:9200/"]}, "names a node twice"),
        ({"urls": ["http://a:99999"]}, "invalid port"),
        ({"urls": ["http://u:p@a:9200"]}, "must not carry credentials"),
        ({"url": "http://a:9200", "urls": ["http://b:9200"]}, "not both"),
    ],
)
def test_bad_node_lists_are_config_errors(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ElasticSettings(**options)  # type: ignore[arg-type]
    lines = "\n".join(f"{k} = {_toml(v)}" for k, v in options.items())
    path = tmp_path / "hub.toml"
    path.write_text(f'[hub]\nindex = "elasticsearch"\n[index.elasticsearch]\n{lines}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path, tmp_path)


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"'


def test_the_client_holds_every_node_and_sniffs_only_when_asked() -> None:
    urls = ["http://127.0.0.1:9201", "http://127.0.0.1:9202", "http://127.0.0.1:9203"]
    quiet = build_client(ElasticSettings(urls=urls), Server("opensearch"))
    sniffing = build_client(ElasticSettings(urls=urls, sniff=True), Server("opensearch"))
    try:
        pool = quiet.transport.node_pool
        assert sorted(n.base_url for n in pool.all()) == urls
        assert not quiet.transport._sniff_on_start and not quiet.transport._sniff_on_node_failure
        assert sniffing.transport._sniff_on_start and sniffing.transport._sniff_on_node_failure
    finally:
        import asyncio

        asyncio.run(quiet.close())
        asyncio.run(sniffing.close())


# --- failover ----------------------------------------------------------------------------


def test_a_dead_node_is_passed_over() -> None:
    alive = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [(200, search_answer(7))]}))
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with serving(alive):
        index = index_on(dead, alive.url, dead_node_backoff_s=30)
        try:
            assert [total(index) for _ in range(4)] == [7, 7, 7, 7]
            assert index.not_ready_reason() is None
        finally:
            index.close()


def test_a_node_answering_503_is_retried_on_another() -> None:
    busy = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [(503, {"error": "busy"})]}))
    alive = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [(200, search_answer(7))]}))
    with serving(busy, alive):
        index = index_on(busy.url, alive.url)
        try:
            assert [total(index) for _ in range(4)] == [7, 7, 7, 7]
            assert alive.searches() >= 4
        finally:
            index.close()


# --- complete answers only ----------------------------------------------------------------


def test_a_partial_answer_is_asked_again_and_the_complete_one_kept() -> None:
    answers = [(200, search_answer(5, failed=1)), (200, search_answer(9))]
    node = FakeNode(served_script(**{f"/{PREFIX}-all/_search": answers}))
    with serving(node):
        index = index_on(node.url)
        try:
            assert total(index) == 9
            assert node.searches() == 2
        finally:
            index.close()


@pytest.mark.parametrize(
    "failure",
    [
        (200, search_answer(5, failed=1)),
        (
            500,
            {
                "error": {
                    "type": "search_phase_execution_exception",
                    "reason": "Partial shards failure",
                    "failed_shards": [{"index": f"{PREFIX}-idc-1", "reason": {"type": "x"}}],
                },
                "status": 500,
            },
        ),
    ],
    ids=["200 with failed shards", "500 partial shards failure"],
)
def test_a_search_that_stays_partial_is_refused_naming_the_source(
    failure: tuple[int, object],
) -> None:
    node = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [failure]}))
    with serving(node):
        index = index_on(node.url)
        try:
            with pytest.raises(ShardsUnavailable) as refused:
                total(index)
            assert "no partial answer" in str(refused.value)
            if failure[0] == 500:
                assert refused.value.sources == ("idc",)
                assert "indices of idc" in str(refused.value)
            assert node.searches() == 3  # asked, then asked twice again
        finally:
            index.close()


# --- deadlines ----------------------------------------------------------------------------


def test_a_silent_cluster_is_reported_within_the_deadline() -> None:
    node = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [("hang", 60)]}))
    with serving(node):
        index = index_on(node.url, deadline_s=2.0, request_timeout_s=30)
        try:
            started = time.monotonic()
            with pytest.raises(ElasticUnavailable, match="did not answer within"):
                total(index)
            assert time.monotonic() - started < 3.5
        finally:
            index.close()


def test_an_unreachable_cluster_fails_fast_and_says_so() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    index = index_on(*dead, deadline_s=5.0)
    try:
        started = time.monotonic()
        reason = index.not_ready_reason()
        assert reason is not None and "cannot connect" in reason and dead[2] in reason
        with pytest.raises(ElasticUnavailable, match="cannot connect"):
            total(index)
        assert time.monotonic() - started < 5.0
    finally:
        index.close()


# --- readiness ----------------------------------------------------------------------------


def _red_health() -> dict[str, object]:
    return {"status": "red", "indices": {f"{PREFIX}-idc-1": {"status": "red"}}}


def test_readyz_says_why_while_the_cluster_is_red_and_recovers(tmp_path: Path) -> None:
    health = [(200, _red_health()), (200, _red_health()), (200, {"status": "green"})]
    node = FakeNode(served_script(**{"/_cluster/health": health}))
    with serving(node):
        config = HubConfig(
            hub=HubSettings(data_dir=tmp_path, index="elasticsearch", query_deadline_s=5),
            index=IndexTables(elasticsearch=ElasticSettings(urls=[node.url], index_prefix=PREFIX)),
            sources={"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")},
        )
        with TestClient(create_app(config)) as client:
            first = client.get("/readyz")
            assert first.status_code == 503
            assert "red" in first.json()["reason"] and "idc" in first.json()["reason"]
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503
            assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_says_not_ready_while_the_cluster_is_unreachable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = HubConfig(
        hub=HubSettings(data_dir=tmp_path, index="elasticsearch", query_deadline_s=5),
        index=IndexTables(elasticsearch=ElasticSettings(url=dead, mode="opensearch")),
        sources={"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")},
    )
    with TestClient(create_app(config)) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503 and "cannot connect" in answer.json()["reason"]
        assert client.get("/healthz").json() == {"status": "ok"}


def test_nodes_refusing_for_missing_shards_are_not_rested() -> None:
    """A red cluster's healthy nodes answer 503; they must stay in the pool, or only the
    dead node is left to try and red reads as "cannot connect"."""
    red = (
        503,
        {
            "error": {"type": "search_phase_execution_exception", "reason": "all shards failed"},
            "status": 503,
        },
    )
    nodes = [FakeNode(served_script(**{f"/{PREFIX}-all/_search": [red]})) for _ in range(2)]
    dead = f"http://127.0.0.1:{free_port()}"
    with serving(*nodes):
        index = index_on(dead, *(n.url for n in nodes), dead_node_backoff_s=30)
        try:
            for _ in range(2):
                with pytest.raises(ShardsUnavailable, match="no partial answer"):
                    total(index)
            assert all(n.searches() >= 3 for n in nodes)
        finally:
            index.close()


def test_a_silent_cluster_gives_each_source_its_error_within_the_deadline(
    tmp_path: Path,
) -> None:
    """The question's answer names every source it could not read, with the reason, in
    GraphQL's error extensions and in the REST faces' 503."""
    node = FakeNode(served_script(**{f"/{PREFIX}-all/_search": [("hang", 60)]}))
    with serving(node):
        config = HubConfig(
            hub=HubSettings(data_dir=tmp_path, index="elasticsearch", query_deadline_s=2),
            index=IndexTables(
                elasticsearch=ElasticSettings(
                    urls=[node.url], index_prefix=PREFIX, request_timeout_s=30
                )
            ),
            sources={"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")},
        )
        with TestClient(create_app(config)) as client:
            started = time.monotonic()
            answer = client.post("/graphql", json={"query": "{ cohort { counts { series } } }"})
            assert time.monotonic() - started < 4.0
            (error,) = answer.json()["errors"]
            assert "did not answer within" in error["message"]
            extensions = error["extensions"]
            assert extensions["code"] == "INDEX_UNAVAILABLE"
            assert extensions["bySource"] == [
                {"source": "idc", "status": "error", "message": error["message"]}
            ]
            saved = client.post("/cohorts", json={"filter": {"=": {"modality": "CT"}}})
            assert saved.status_code == 503
            assert [s["source"] for s in saved.json()["by_source"]] == ["idc"]
