"""Bad configuration, bad credentials, an unreachable or mismatched server, and bad input
all end in a clear, typed error (or a correct empty answer), never in a DSL error."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from hub.config import ConfigError, load_config
from hub.index.base import CohortQuery, QueryError, SortKey
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.errors import ElasticAuthError, ElasticUnavailable
from hub.index.elastic.settings import ElasticSettings
from hub.index.embedded.backend import EmbeddedIndex
from schema.filters import FilterError, parse_filter
from tests.elastic import expect
from tests.elastic.expect import Backend, view

SECRET = "s3cr3t-Pa55word"

# ------------------------------------------------------------------------ configuration


def _config(tmp_path: Path, table: str, index: str = "elasticsearch") -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(
        f'[hub]\ndata_dir = "{tmp_path}"\nindex = "{index}"\n\n'
        f'[sources.idc]\nadapter = "idc"\n\n[index.elasticsearch]\n{table}\n'
    )
    return path


def test_a_valid_table_is_accepted(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, 'url = "https://es:9200"\nusername = "hub"\npassword_env = "ES_PW"')
    )
    settings = config.index.elasticsearch
    assert settings is not None and settings.url == "https://es:9200"
    assert (settings.mode, settings.index_prefix, settings.verify_certs) == (
        "auto", "imaging-hub", True
    )  # fmt: skip


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("", "url"),
        ('url = "ftp://es:9200"', "url"),
        ('url = "https://user:pw@es:9200"', "url"),
        ('url = "https://es"\nmode = "solr"', "mode"),
        ('url = "https://es"\nindex_prefix = "Hub Index"', "index_prefix"),
        ('url = "https://es"\nbulk_chunk_docs = 0', "bulk_chunk_docs"),
        ('url = "https://es"\nbulk_max_inflight = 1000', "bulk_max_inflight"),
        ('url = "https://es"\nrequest_timeout_s = -1', "request_timeout_s"),
        ('url = "https://es"\nca_certs = "/no/such/ca.pem"', "ca_certs"),
        ('url = "https://es"\nusername = "hub"', "password_env"),
        ('url = "https://es"\npassword_env = "not a variable name"', "password_env"),
        ('url = "https://es"\npassword = "hunter2"', "password"),
        ('url = "https://es"\napi_key = "abc"', "api_key"),
        ('url = "https://es"\nshards_please = 3', "shards_please"),
    ],
)
def test_bad_settings_are_a_config_error_naming_the_key(
    tmp_path: Path, table: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        load_config(_config(tmp_path, table))
    assert "hunter2" not in str(caught.value) and "abc" not in str(caught.value)


def test_elasticsearch_needs_its_table_and_index_safe_source_names(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\nindex = "elasticsearch"\n[sources.idc]\nadapter = "idc"\n')
    with pytest.raises(ConfigError, match=r"\[index.elasticsearch\]"):
        load_config(path)
    path.write_text(
        '[hub]\nindex = "elasticsearch"\n[sources.IDC-Mirror]\nadapter = "idc"\n'
        '[index.elasticsearch]\nurl = "http://es:9200"\n'
    )
    with pytest.raises(ConfigError, match="IDC-Mirror"):
        load_config(path)


def test_an_unset_secret_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TEST_NO_SUCH_VAR", raising=False)
    settings = ElasticSettings(
        url="http://127.0.0.1:1", username="hub", password_env="HUB_TEST_NO_SUCH_VAR"
    )
    with pytest.raises(ConfigError, match=r"HUB_TEST_NO_SUCH_VAR.*not set"):
        ElasticIndex(settings)


# ------------------------------------------------------------------ the server's answers


@pytest.fixture()
def refusing_server() -> Iterator[Callable[[int], str]]:
    """A fake secured cluster: answers every request with the given status (401 or 403)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Refuse(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = json.dumps(
                    {
                        "error": {"type": "security_exception", "reason": "unable to authenticate"},
                        "status": status,
                    }
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("WWW-Authenticate", 'Basic realm="security"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(("status", "mode"), [(401, "auto"), (403, "opensearch")])
def test_bad_credentials_are_a_clear_error_without_the_secret(
    refusing_server: Callable[[int], str], monkeypatch: pytest.MonkeyPatch, status: int,
    mode: Literal["auto", "opensearch"],
) -> None:  # fmt: skip
    monkeypatch.setenv("HUB_TEST_ES_PASSWORD", SECRET)
    url = refusing_server(status)
    index = ElasticIndex(
        ElasticSettings(url=url, mode=mode, username="hub", password_env="HUB_TEST_ES_PASSWORD")
    )
    try:
        assert not index.ready()
        with pytest.raises(ElasticAuthError) as caught:
            index.cohort(CohortQuery(parse_filter(None)))
    finally:
        index.close()
    message = str(caught.value)
    assert f"HTTP {status}" in message and url in message and "$HUB_TEST_ES_PASSWORD" in message
    chain: list[str] = []
    seen: BaseException | None = caught.value
    while seen is not None:
        chain.append(repr(seen) + str(seen))
        seen = seen.__cause__ or seen.__context__
    assert SECRET not in "".join(chain)


def test_an_unreachable_cluster_is_not_ready() -> None:
    index = ElasticIndex(ElasticSettings(url="http://127.0.0.1:9", request_timeout_s=2))
    try:
        assert not index.ready()
        with pytest.raises(ElasticUnavailable, match=r"cannot connect to http://127\.0\.0\.1:9"):
            index.cohort(CohortQuery(parse_filter(None)))
    finally:
        index.close()


def test_mode_comes_from_the_servers_answer(elastic_small: ElasticIndex, es_url: str) -> None:
    """auto asks `GET /`; the Elasticsearch media type sent to an OpenSearch server is
    refused with a hint (a real Elasticsearch accepts it: there is nothing to check)."""
    from hub.index.elastic.client import detect_server

    detected = elastic_small.runner.run(detect_server(elastic_small.settings)).mode
    info = elastic_small.runner.run(_root(elastic_small))
    distribution = info.get("version", {}).get("distribution")
    expected = "opensearch" if distribution == "opensearch" else "elasticsearch"
    assert detected == expected
    if detected == "opensearch":
        # Not from make_elastic: its teardown would drop through this refused mode too.
        fresh = {"mode": "elasticsearch", "index_prefix": f"hubtest-{uuid.uuid4().hex[:10]}"}
        wrong = ElasticIndex(elastic_small.settings.model_copy(update=fresh))
        try:
            with pytest.raises(ElasticUnavailable, match='mode = "opensearch"'):
                asyncio.run(wrong.publish([], {}))
        finally:
            wrong.close()


async def _root(index: ElasticIndex) -> dict[str, Any]:
    client = await index.client()
    return dict((await client.info()).body)


# ------------------------------------------------------------------------------ bad input

HOSTILE = ['a" OR *:*', "*", "\\", '"', "{}", "*:*", 'a\\" OR 1=1 --', "\u0000", "ct OR mr"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_plain_values(
    backend: Backend, small_records: list[dict[str, Any]], value: str
) -> None:
    for filter_json in (
        {"=": {"modality": value}},
        {"!=": {"body_part": value}},
        {"IN": {"collection": [value, "tcga_luad"]}},
        {"EXCLUDES": {"license": [value]}},
        {"=": {"series_description": value}},
        {"=": {"source": value}},
        {"search": {"keyword": value}},
    ):
        rows = expect.chosen(small_records, parse_filter(filter_json))
        assert view(backend, filter_json).counts() == expect.counts(rows), filter_json
    rows = expect.chosen(small_records, parse_filter({"search": {"keyword": value}}))
    ranked = view(backend, None, value)
    assert ranked.counts().series == len(rows)
    assert len(ranked.series(10, None, []).nodes) == min(10, len(rows))


def test_unknown_fields_and_bad_values_are_filter_errors() -> None:
    for bad in (
        {"=": {"no_such_field": "x"}},
        {">": {"modality": "CT"}},
        {"=": {"age": "sixty"}},
        {"<": {"study_date": "yesterday"}},
        {"search": {"keyword": "x", "fields": ["modality"]}},
    ):
        with pytest.raises(FilterError):
            parse_filter(bad)


def test_bad_requests_are_query_errors(backend: Backend) -> None:
    v = view(backend, None)
    bad_calls: list[Callable[[], Any]] = [
        lambda: v.series(10, None, [SortKey("nope")]),
        lambda: v.series(10, None, [SortKey("source")]),
        lambda: v.series(10, None, [SortKey("age"), SortKey("sex")]),
        lambda: v.series(1001, None, []),
        lambda: v.series(10, "not-a-cursor", []),
        lambda: v.facets(["patient_id"], 10),
        lambda: v.facets(["age"], 10),
        lambda: v.facets(["nope"], 10),
        lambda: v.facets(["modality"], 0),
        lambda: v.histogram("modality", 10),
        lambda: v.histogram("age", 0),
        lambda: v.histogram("size_bytes", 1),
    ]
    for call in bad_calls:
        with pytest.raises(QueryError):
            call()


def test_a_cursor_only_fits_its_own_question(
    embedded_small: EmbeddedIndex, elastic_small: ElasticIndex
) -> None:
    luad, kits = {"=": {"collection": "tcga_luad"}}, {"=": {"collection": "c4kc_kits"}}
    for one, other in ((embedded_small, elastic_small), (elastic_small, embedded_small)):
        cursor = view(one, luad).series(5, None, []).end_cursor
        assert view(one, luad).series(5, cursor, []).nodes  # its own question takes it
        for foreign in (view(one, kits), view(other, luad)):
            with pytest.raises(QueryError, match="does not belong"):
                foreign.series(5, cursor, [])
        ranked = view(one, None, "lung").series(5, None, []).end_cursor
        with pytest.raises(QueryError):
            view(one, None, "lung").series(5, ranked, [SortKey("age")])
