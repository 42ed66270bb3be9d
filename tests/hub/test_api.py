"""The HTTP API over a real index of real IDC data: contract, paging, and hostile input.

Counts are checked three ways: through GraphQL, through the `Hub` service directly, and
with an independent DuckDB query over the harvested snapshot, so an error in the index
and the same error in the API cannot hide each other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.api.app import MAX_BODY
from hub.index.snapshots import SnapshotStore
from hub.service import Hub
from tests.conftest import hub_config

COHORT = """
query Cohort($filter: JSON, $text: String, $after: String) {
  cohort(filter: $filter, text: $text) {
    counts { patients studies series }
    facets(fields: ["modality", "sex", "collection"]) { field buckets { key count } missing }
    histogram(field: "age", interval: 10) { key count }
    series(first: 5, after: $after) {
      totalCount
      edges { cursor node { seriesUid studyUid modality sex age studyDate sizeBytes sources } }
      nodes { seriesUid }
      pageInfo { hasNextPage endCursor }
    }
    bySource { source status count latencyMs message }
  }
}
"""

COUNTS = """query($f: JSON, $t: String) {
  cohort(filter: $f, text: $t) { counts { patients studies series } } }"""

CT = {"=": {"modality": "CT"}}
JSON_TYPE = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(small_data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(hub_config(small_data_dir))) as client:
        yield client


@pytest.fixture(scope="module")
def snapshot(small_data_dir: Path) -> str:
    snap = SnapshotStore(small_data_dir).get("idc")
    assert snap is not None
    return str(snap.path)


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    body = gql(client, query, **variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def error(client: TestClient, query: str, **variables: Any) -> str:
    body = gql(client, query, **variables)
    assert body.get("errors"), body
    assert "Traceback" not in str(body)
    message: str = body["errors"][0]["message"]
    return message


def duck(snapshot: str, where: str) -> tuple[int, int, int]:
    """(patients, studies, series) straight from the snapshot parquet."""
    row = duckdb.execute(
        "SELECT count(DISTINCT (collection, patient_id)), count(DISTINCT study_uid), count(*) "
        f"FROM read_parquet(?) WHERE {where}",
        [snapshot],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


# --- probes and GraphiQL -----------------------------------------------------------


def test_probes_with_an_index(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_without_an_index_readyz_is_503_and_queries_say_why(tmp_path: Path) -> None:
    with TestClient(create_app(hub_config(tmp_path))) as empty:
        assert empty.get("/healthz").status_code == 200
        response = empty.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "not ready"
        assert "harvest" in response.json()["reason"]
        assert "harvest" in error(empty, COUNTS, f=CT)
        sources = data(empty, "{ sources { name status series } }")["sources"]
        assert sources == [{"name": "idc", "status": "not harvested", "series": None}]


def test_get_serves_graphiql(client: TestClient) -> None:
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_get_with_a_query_executes(client: TestClient, small_hub: Hub) -> None:
    response = client.get("/graphql", params={"query": "{ cohort { counts { series } } }"})
    assert response.status_code == 200
    expected = small_hub.cohort(None, None).view.counts().series
    assert response.json()["data"]["cohort"]["counts"]["series"] == expected
    bad = client.get("/graphql", params={"query": "{ sources { name } }", "variables": "{"})
    assert bad.status_code == 400


def test_lifespan_closes_the_hub(small_data_dir: Path) -> None:
    closed: list[bool] = []
    with TestClient(create_app(hub_config(small_data_dir))) as c:
        hub: Hub = c.app.state.hub  # type: ignore[attr-defined]
        original = hub.aclose

        async def aclose() -> None:
            closed.append(True)
            await original()

        hub.aclose = aclose  # type: ignore[method-assign]
    assert closed == [True]


# --- the cohort contract -----------------------------------------------------------


def test_full_cohort_query(client: TestClient, small_hub: Hub, snapshot: str) -> None:
    cohort = data(client, COHORT, filter=CT)["cohort"]

    counts = cohort["counts"]
    direct = small_hub.cohort(CT, None).view.counts()
    as_tuple = (counts["patients"], counts["studies"], counts["series"])
    assert as_tuple == (direct.patients, direct.studies, direct.series)
    assert as_tuple == duck(snapshot, "modality = 'CT'")
    assert counts["series"] > 1000

    facets = {f["field"]: f for f in cohort["facets"]}
    assert list(facets) == ["modality", "sex", "collection"]
    assert facets["modality"]["buckets"] == [{"key": "CT", "count": counts["series"]}]
    for facet in facets.values():  # single-valued fields: buckets plus missing cover the cohort
        assert sum(b["count"] for b in facet["buckets"]) + facet["missing"] == counts["series"]
    assert {b["key"] for b in facets["sex"]["buckets"]} <= {"female", "male", "other", "unknown"}

    with_age = duckdb.execute(
        "SELECT count(age) FROM read_parquet(?) WHERE modality = 'CT'", [snapshot]
    ).fetchone()
    assert with_age is not None
    assert sum(b["count"] for b in cohort["histogram"]) == with_age[0]
    assert all(int(b["key"]) % 10 == 0 for b in cohort["histogram"])

    page1 = cohort["series"]
    assert page1["totalCount"] == counts["series"]
    assert len(page1["edges"]) == 5
    nodes = [e["node"] for e in page1["edges"]]
    assert [n["seriesUid"] for n in nodes] == [n["seriesUid"] for n in page1["nodes"]]
    assert all(n["modality"] == "CT" and n["sources"] == ["idc"] for n in nodes)
    assert page1["pageInfo"] == {"hasNextPage": True, "endCursor": page1["edges"][-1]["cursor"]}

    after = page1["pageInfo"]["endCursor"]
    page2 = data(client, COHORT, filter=CT, after=after)["cohort"]["series"]
    first = {n["seriesUid"] for n in page1["nodes"]}
    second = {n["seriesUid"] for n in page2["nodes"]}
    assert len(second) == 5
    assert not first & second

    assert cohort["bySource"][0]["source"] == "idc"
    assert cohort["bySource"][0]["status"] == "ok"
    assert cohort["bySource"][0]["count"] == counts["series"]


def test_filter_as_graphql_literal(client: TestClient, small_hub: Hub) -> None:
    query = '{ cohort(filter: {IN: {modality: ["CT", "MR"]}}) { counts { series } } }'
    expected = small_hub.cohort({"IN": {"modality": ["CT", "MR"]}}, None).view.counts().series
    assert data(client, query)["cohort"]["counts"]["series"] == expected


@pytest.mark.parametrize(
    ("filter_json", "where"),
    [
        (None, "true"),
        (
            {"AND": [{"IN": {"modality": ["CT", "MR"]}}, {">=": {"age": 55}}, {"<=": {"age": 65}}]},
            "modality IN ('CT', 'MR') AND age BETWEEN 55 AND 65",
        ),
        ({"!=": {"sex": "unknown"}}, "sex <> 'unknown'"),
        ({"EXCLUDES": {"body_part": ["CHEST"]}}, "body_part IS DISTINCT FROM 'CHEST'"),
        ({"is_missing": {"body_part": True}}, "body_part IS NULL"),
        (
            {"OR": [{"=": {"license": "CC BY 3.0"}}, {"<": {"study_date": "2000-01-01"}}]},
            "license = 'CC BY 3.0' OR study_date < DATE '2000-01-01'",
        ),
    ],
)
def test_counts_agree_with_duckdb(
    client: TestClient, snapshot: str, filter_json: Any, where: str
) -> None:
    counts = data(client, COUNTS, f=filter_json)["cohort"]["counts"]
    assert (counts["patients"], counts["studies"], counts["series"]) == duck(snapshot, where)


def test_sources(client: TestClient, snapshot: str) -> None:
    query = """{ sources {
      name adapter mode access status series harvestedAt dataVersion capabilities } }"""
    (source,) = data(client, query)["sources"]
    assert source["name"] == source["adapter"] == "idc"
    assert source["status"] == "ready"
    assert source["series"] == duck(snapshot, "true")[2]
    assert source["harvestedAt"]
    assert source["capabilities"]["harvest"] is True
    assert "=" in source["capabilities"]["pushdown"]["modality"]


def test_explain(client: TestClient) -> None:
    query = """query($f: JSON) {
      explain(filter: $f, text: "chest") { source route native residual description } }"""
    (plan,) = data(client, query, f={">=": {"study_date": "2000-01-01"}})["explain"]
    assert plan["source"] == "idc"
    assert plan["route"] == "index"
    assert plan["native"]  # JSON, dates made plain strings
    assert plan["residual"] == {
        "search": {"keyword": "chest", "fields": ["study_description", "series_description"]}
    }
    assert "chest" in plan["description"]


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_sort_by_age_puts_missing_last(client: TestClient, snapshot: str, order: str) -> None:
    query = """query($f: JSON, $order: SortOrder) {
      cohort(filter: $f) { series(first: 1000, sort: [{field: "age", order: $order}]) {
        totalCount pageInfo { hasNextPage } nodes { age } } } }"""
    series = data(client, query, f={"=": {"collection": "rms_mutation_prediction"}}, order=order)[
        "cohort"
    ]["series"]
    ages = [n["age"] for n in series["nodes"]]
    expected = duck(snapshot, "collection = 'rms_mutation_prediction'")[2]
    assert len(ages) == series["totalCount"] == expected
    assert not series["pageInfo"]["hasNextPage"]
    present = [a for a in ages if a is not None]
    assert 0 < len(present) < len(ages)
    assert ages[len(present) :] == [None] * (len(ages) - len(present))
    assert present == sorted(present, reverse=order == "DESC")


def test_size_bytes_above_2_31(client: TestClient, snapshot: str) -> None:
    query = """{ cohort(filter: {IN: {modality: ["SM"]}}) {
      series(first: 1, sort: [{field: "size_bytes", order: DESC}]) { nodes { sizeBytes } } } }"""
    (node,) = data(client, query)["cohort"]["series"]["nodes"]
    biggest = duckdb.execute(
        "SELECT max(size_bytes) FROM read_parquet(?) WHERE modality = 'SM'", [snapshot]
    ).fetchone()
    assert biggest is not None
    assert node["sizeBytes"] == biggest[0] > 2**31
    assert data(client, COUNTS, f={">": {"size_bytes": 2**31}})["cohort"]["counts"]["series"] > 0


# --- bad input: always a readable GraphQL error, never a 500 -----------------------


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = CT
    for _ in range(depth):
        node = {"AND": [node]}
    return node


@pytest.mark.parametrize(
    ("filter_json", "expected"),
    [
        ({"AND": [{"IN": {"modalityy": ["CT"]}}]}, "$.AND[0].IN.modalityy: unknown field"),
        ({"LIKE": {"modality": "C%"}}, "unknown operator 'LIKE'"),
        ({"=": {"age": "sixty"}}, "$.=.age: expected a whole number"),
        ({">": {"study_date": "yesterday"}}, "expected an ISO date"),
        ({"IN": {"modality": []}}, "IN takes a non-empty list"),
        ({">": {"modality": "CT"}}, "needs a numeric or date field"),
        (_nested(20), "nested deeper than"),
        ("modality = 'CT'", "expected an object"),
    ],
)
def test_bad_filters(client: TestClient, filter_json: Any, expected: str) -> None:
    assert expected in error(client, COUNTS, f=filter_json)


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ('facets(fields: ["nonsense"]) { field }', "unknown facet field 'nonsense'"),
        ('facets(fields: ["age"]) { field }', "numeric"),
        ('facets(fields: ["modality"], size: 0) { field }', "facet size"),
        ('series(sort: [{field: "nonsense"}]) { totalCount }', "cannot sort on 'nonsense'"),
        ('series(sort: [{field: "source"}]) { totalCount }', "cannot sort on 'source'"),
        ('series(after: "not-a-cursor") { totalCount }', "cursor"),
        ('series(after: "éé") { totalCount }', "cursor"),
        ("series(first: 100000) { totalCount }", "first must be between 0 and"),
        ("series(first: -1) { totalCount }", "first must be between 0 and"),
        ('histogram(field: "modality", interval: 10) { key }', "histogram needs a numeric"),
        ('histogram(field: "age", interval: -5) { key }', "positive number"),
        ('histogram(field: "age", interval: 0) { key }', "positive number"),
        ("series(first: 99999999999) { totalCount }", "Int cannot represent"),
        ("nosuchfield", "Cannot query field 'nosuchfield'"),
    ],
)
def test_bad_cohort_arguments(client: TestClient, selection: str, expected: str) -> None:
    query = "query($f: JSON) { cohort(filter: $f) { " + selection + " } }"
    assert expected in error(client, query, f=CT)


def test_a_cursor_from_another_query_is_refused(client: TestClient) -> None:
    cursor = data(client, COHORT, filter=CT)["cohort"]["series"]["pageInfo"]["endCursor"]
    message = error(client, COHORT, filter={"=": {"modality": "MR"}}, after=cursor)
    assert "cursor does not belong to this cohort query" in message


def test_overlong_text(client: TestClient) -> None:
    assert "at most" in error(client, COUNTS, f=None, t="x" * 5000)


@pytest.mark.parametrize(
    ("filter_json", "text"),
    [
        ({"=": {"modality": "CT' OR 1=1 --"}}, None),
        ({"IN": {"collection": ["*:*"]}}, None),
        ({"=": {"series_description": "*:*"}}, None),
        ({"=": {"study_description": '" OR ""="'}}, None),
        ({"search": {"keyword": "*:*"}}, None),
        (None, "*:*"),
    ],
)
def test_injection_looking_values_match_nothing(
    client: TestClient, filter_json: Any, text: str | None
) -> None:
    counts = data(client, COUNTS, f=filter_json, t=text)["cohort"]["counts"]
    assert counts == {"patients": 0, "studies": 0, "series": 0}


def test_unexpected_errors_are_logged_not_shown(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]

    def broken() -> None:
        raise RuntimeError("secret internals at /srv/index")

    monkeypatch.setattr(hub, "sources", broken)
    with caplog.at_level(logging.ERROR, logger="hub.api"):
        message = error(client, "{ sources { name } }")
    assert message.startswith("internal error (request id ") and "secret" not in message
    assert "secret internals" in caplog.text


def test_deeply_nested_query_text(client: TestClient) -> None:
    literal = "[" * 3000 + "]" * 3000
    message = error(client, "{ cohort(filter: " + literal + ") { counts { series } } }")
    assert "nested too deeply" in message


# --- HTTP-level refusals -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"variables": {}}', "`query` must be a non-empty string"),
        (b'{"query": 42}', "`query` must be a non-empty string"),
        (b'{"query": "{ sources { name } }", "variables": 1}', "`variables` must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(client: TestClient, content: bytes, expected: str) -> None:
    response = client.post("/graphql", content=content, headers=JSON_TYPE)
    assert response.status_code == 400
    assert expected in response.json()["error"]


def _streamed(size: int) -> Iterator[bytes]:
    yield b'{"query": "'
    for _ in range(size // 65536 + 1):
        yield b" " * 65536
    yield b'{ sources { name } }"}'


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"query": "' + b" " * MAX_BODY + b'{ sources { name } }"}', {}, 413),
        (_streamed(MAX_BODY), {}, 413),  # chunked: no Content-Length to refuse up front
        (b"{}", {"content-length": "lots"}, 400),
    ],
    ids=["declared", "streamed", "bad-length"],
)
def test_body_limits(
    client: TestClient, content: Any, headers: dict[str, str], status: int
) -> None:
    response = client.post("/graphql", content=content, headers={**JSON_TYPE, **headers})
    assert response.status_code == status
    assert "error" in response.json()
