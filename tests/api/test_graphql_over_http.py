"""GraphQL over HTTP at `/graphql`, against the hub served by uvicorn on loopback: the
specification's own audit suite (npm `graphql-http`, run with node), the negotiation rules
one by one over httpx, and the `gql` client partners use."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.api.graphql_http import GRAPHQL_RESPONSE, JSON, status_of
from hub.api.graphql_schema import INTERNAL_ERROR, run_graphql
from hub.security.limits import LimitsSettings
from hub.service import Hub
from tests.conftest import hub_config
from tests.web.server import serve

AUDIT = Path(__file__).parent / "graphql_http_audit"
RESPONSE_TYPE = f"{GRAPHQL_RESPONSE}; charset=utf-8"
TYPENAME = {"query": "{ __typename }"}
COUNTS = "query Counts($f: JSON) { cohort(filter: $f) { counts { series } } }"
COERCION = {"query": "query Q($id: ID!) { __typename }", "variables": {"id": None}}


@pytest.fixture(scope="module")
def endpoint(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("graphql-http") / "hub"
    shutil.copytree(small_data_dir, data_dir)
    config = hub_config(data_dir)
    config.limits = LimitsSettings(rate_limit=False)  # the audit alone sends a burst of ~60
    with serve(config) as url:
        yield f"{url}/graphql"


def post(endpoint: str, body: Any, **headers: str) -> httpx.Response:
    sent = {"content-type": JSON, **{k.replace("_", "-"): v for k, v in headers.items()}}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(endpoint, content=content, headers=sent, timeout=60)


# --- the specification's audit suite ---------------------------------------------------


def test_the_audit_suite_finds_nothing_to_fix(endpoint: str) -> None:
    node = shutil.which("node")
    assert node, "node is needed for the graphql-http audit (Debian: nodejs)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), (
        f"the audit's npm packages are missing: run scripts/bootstrap (npm ci in {AUDIT})"
    )
    run = subprocess.run(
        [node, "audit.mjs", endpoint], cwd=AUDIT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert len(results) > 50  # the whole suite ran, not an empty list
    failed = [r for r in results if r["status"] != "ok"]
    errors = [r for r in failed if r["status"] == "error"]
    warnings = [r for r in failed if r["status"] == "warn"]
    report = "\n".join(
        f"{r['status']} {r['id']} {r['name']}: {r['reason']} (got {r['response']})" for r in failed
    )
    assert (len(errors), len(warnings)) == (0, 0), report
    assert not failed, report  # the optional (MAY) audits pass as well


# --- which media type answers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, JSON),  # legacy clients: as before
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html, */*;q=0.8", JSON),  # a browser
        (JSON, JSON),
        ("Application/JSON; charset=UTF-8", JSON),
        (GRAPHQL_RESPONSE, RESPONSE_TYPE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", RESPONSE_TYPE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", RESPONSE_TYPE),  # named both: the newer one
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", RESPONSE_TYPE),  # Apollo
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{JSON};q=0.5, {GRAPHQL_RESPONSE};q=0.6", RESPONSE_TYPE),
        (f"{GRAPHQL_RESPONSE}, */*;q=0.5", RESPONSE_TYPE),
        (f"*/*, {GRAPHQL_RESPONSE};q=0", JSON),  # the named range's q=0 wins over */*
        (f"{JSON}; charset=iso-8859-1, {GRAPHQL_RESPONSE}", RESPONSE_TYPE),
        ("not a media type, application/json", JSON),  # one bad range: the rest count
        ("not a media type", JSON),  # nothing parses: as if there were no Accept
    ],
)
def test_accept_chooses_the_media_type(endpoint: str, accept: str | None, media: str) -> None:
    headers = {} if accept is None else {"accept": accept}
    response = post(endpoint, TYPENAME, **headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media
    assert response.headers["vary"] == "Accept"
    assert response.json() == {"data": {"__typename": "Query"}}


MEDIA_PARTS = [
    "application",
    "json",
    "graphql-response+json",
    "*",
    "/",
    ";",
    ",",
    "q=",
    "0",
    "0.5",
    "1",
    "charset=",
    "utf-8",
    "latin1",
    '"',
    " ",
    "=",
    "text",
    "html",
    "nan",
]
header_values = (
    st.lists(st.sampled_from(MEDIA_PARTS), max_size=12).map("".join)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
).map(str.strip)  # HTTP trims a header value's outer whitespace


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(accept=header_values, content_type=header_values)
def test_any_accept_or_content_type_is_answered_cleanly(
    endpoint: str, accept: str, content_type: str
) -> None:
    headers = {"accept": accept, "content-type": content_type}
    response = httpx.post(endpoint, content=json.dumps(TYPENAME), headers=headers)
    assert response.status_code in (200, 406, 415), (headers, response.text)
    assert response.headers["content-type"] in (JSON, RESPONSE_TYPE)
    body = response.json()
    assert body.get("data") == {"__typename": "Query"} or body.get("error") or body.get("errors")


@pytest.mark.parametrize(
    "accept", ["text/html", f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0", f"{JSON}; charset=latin1"]
)
def test_no_acceptable_type_is_406(endpoint: str, accept: str) -> None:
    response = post(endpoint, TYPENAME, accept=accept)
    assert response.status_code == 406
    assert GRAPHQL_RESPONSE in response.json()["error"]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "application/graphql",
        f"{JSON}; charset=latin1",
        "json",
    ],
)
def test_a_post_body_that_is_not_json_is_415(endpoint: str, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(endpoint, content=json.dumps(TYPENAME), headers=headers)
    assert response.status_code == 415
    assert JSON in response.json()["error"]
    typed = httpx.post(
        endpoint, content=json.dumps(TYPENAME), headers={**headers, "accept": GRAPHQL_RESPONSE}
    )
    assert typed.status_code == 415 and typed.headers["content-type"] == RESPONSE_TYPE
    assert JSON in typed.json()["errors"][0]["message"]


def test_json_with_a_utf8_charset_in_any_spelling_is_read(endpoint: str) -> None:
    for content_type in ("application/json; charset=utf-8", 'APPLICATION/JSON; charset="UTF-8"'):
        response = post(endpoint, TYPENAME, content_type=content_type)
        assert response.status_code == 200, (content_type, response.text)


# --- status codes: application/json as always, the new type by the rules -------------------

REQUEST_ERRORS = {
    "parse": {"query": "{"},
    "validation": {"query": "{ noSuchField }"},
    "coercion": COERCION,
    "unknown operation": {"query": "query A { __typename }", "operationName": "B"},
    "ambiguous operation": {"query": "query A { __typename } query B { __typename }"},
    "over the cost limit": {
        "query": "{ "
        + " ".join(f"c{i}: cohort {{ counts {{ series }} }}" for i in range(60))
        + " }"
    },
}


@pytest.mark.parametrize("kind", list(REQUEST_ERRORS))
def test_requests_that_fail_before_execution(endpoint: str, small_hub: Hub, kind: str) -> None:
    body = REQUEST_ERRORS[kind]
    legacy = post(endpoint, body, accept=JSON)
    # application/json: 200 and exactly what the GraphQL layer answered
    expected = run_graphql(
        small_hub, body["query"], body.get("variables"), body.get("operationName")
    )
    assert (legacy.status_code, legacy.json()) == (200, expected)
    assert legacy.headers["content-type"] == JSON
    typed = post(endpoint, body, accept=GRAPHQL_RESPONSE)
    assert typed.status_code == 400, typed.text
    assert typed.headers["content-type"] == RESPONSE_TYPE
    assert "data" not in typed.json()
    assert typed.json()["errors"] == expected["errors"]


def test_once_execution_began_the_answer_is_200_with_data(endpoint: str) -> None:
    for accept in (JSON, GRAPHQL_RESPONSE):
        ok = post(
            endpoint,
            {"query": COUNTS, "variables": {"f": {"=": {"modality": "CT"}}}},
            accept=accept,
        )
        assert ok.status_code == 200 and ok.json()["data"]["cohort"]["counts"]["series"] > 0
        # a field error (a filter naming no field) nulls the non-null root: data null, 200
        bad = post(
            endpoint, {"query": COUNTS, "variables": {"f": {"=": {"colour": "red"}}}}, accept=accept
        )
        assert bad.status_code == 200, bad.text
        assert bad.json()["data"] is None and "unknown field" in bad.json()["errors"][0]["message"]
        assert bad.json()["errors"][0]["path"] == ["cohort"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b'{ "not a JSON', "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"qeury": "{ __typename }"}', "`query` must be a non-empty string"),
        (b'{"query": ["{ __typename }"]}', "`query` must be a non-empty string"),
        (b'{"query": "{ __typename }", "variables": "{}"}', "`variables` must be a JSON object"),
        (b'{"query": "{ __typename }", "operationName": 0}', "`operationName` must be a string"),
        (b'{"query": "{ __typename }", "extensions": []}', "`extensions` must be a JSON object"),
    ],
)
def test_malformed_requests_are_400_in_either_type(
    endpoint: str, body: bytes, message: str
) -> None:
    legacy = post(endpoint, body, accept=JSON)
    assert legacy.status_code == 400 and message in legacy.json()["error"]
    typed = post(endpoint, body, accept=GRAPHQL_RESPONSE)
    assert typed.status_code == 400 and message in typed.json()["errors"][0]["message"]


def test_null_and_map_parameters_are_accepted(endpoint: str) -> None:
    body = {**TYPENAME, "variables": None, "operationName": None, "extensions": {"some": 1}}
    for accept in (JSON, GRAPHQL_RESPONSE):
        response = post(endpoint, body, accept=accept)
        assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})


def test_an_internal_failure_is_500_only_in_the_new_type() -> None:
    internal = {"errors": [{"message": INTERNAL_ERROR}]}
    assert (status_of(internal, JSON), status_of(internal, GRAPHQL_RESPONSE)) == (200, 500)


# --- GET ------------------------------------------------------------------------------------


def test_get_runs_queries_and_refuses_mutations_with_405(endpoint: str) -> None:
    query = "query Type($name: String!) { __type(name: $name) { name } }"
    params = {"query": query, "variables": json.dumps({"name": "Cohort"}), "operationName": ""}
    for accept in (JSON, GRAPHQL_RESPONSE):
        ok = httpx.get(endpoint, params=params, headers={"accept": accept})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"data": {"__type": {"name": "Cohort"}}}
        mutation = httpx.get(
            endpoint, params={"query": "mutation { __typename }"}, headers={"accept": accept}
        )
        assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"
        assert mutation.json() == {"errors": [{"message": "mutations must be sent with POST"}]}
    named = "query Q { __typename } mutation M { __typename }"
    chosen = httpx.get(endpoint, params={"query": named, "operationName": "M"})
    assert chosen.status_code == 405
    assert httpx.get(endpoint, params={"query": named, "operationName": "Q"}).status_code == 200
    bad = httpx.get(endpoint, params={"query": "{ __typename }", "extensions": "{"})
    assert bad.status_code == 400 and "`extensions` is not valid JSON" in bad.json()["error"]


def test_get_without_a_query_serves_graphiql(endpoint: str) -> None:
    page = httpx.get(endpoint, headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


# --- the clients partners use ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"accept": f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8"}]
)
def test_the_gql_client_reads_either_type(endpoint: str, headers: dict[str, str]) -> None:
    transport = HTTPXTransport(url=endpoint, timeout=60, headers=headers)
    with Client(transport=transport, fetch_schema_from_transport=True) as session:
        ct = GraphQLRequest(gql(COUNTS), variable_values={"f": {"=": {"modality": "CT"}}})
        result = session.execute(ct)
        assert result["cohort"]["counts"]["series"] > 0
        with pytest.raises(TransportQueryError, match="unknown field"):
            session.execute(
                GraphQLRequest(gql(COUNTS), variable_values={"f": {"=": {"colour": "red"}}})
            )
