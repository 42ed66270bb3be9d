"""Every string an error message can quote, hostile, on every route: never a 500.

Field names, operators, facet, histogram and sort fields, cursors, free text, export
parameters (format, source, cohort id, limit, unknown keys), saved-cohort ids and QIDO
parameter names and values get lone surrogates, control characters, bidi overrides and
oversized strings (`tests.security.payloads.NAMES`, plus hypothesis' full character
range); raw bodies and query strings get bytes that are not UTF-8 at all. Each answer
must be below 500, its body valid UTF-8 JSON (or, for a 200 export, UTF-8 text), and a
GraphQL answer must not carry the "internal error" of an unanticipated exception.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import orjson
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.api.encoding import dumps
from hub.api.graphql_schema import INTERNAL_ERROR
from hub.api.rest_export import PARAMS
from schema.filters import MAX_STRING
from schema.record import FIELDS
from tests.fuzz.conftest import Tally
from tests.schema.test_filters_fuzz import ALL_OPS
from tests.security.payloads import NAMES

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KNOWN = {*FIELDS, *ALL_OPS, *PARAMS, "score"}
hostile = (st.sampled_from(NAMES) | st.text(st.characters(codec=None), max_size=12)).filter(
    lambda name: name not in KNOWN
)  # never a name the hub knows: each must be refused where a name belongs
# Bytes as they sit in a request: lone surrogates in their (invalid) UTF-8 form,
# overlong forms, stray continuation bytes, truncated sequences.
BAD_UTF8 = [b"\xed\xa0\x80", b"\xc0\xaf", b"\x80", b"\xff\xfe", b"\xe2\x82", b"ok\xf5"]
bad_bytes = st.sampled_from(BAD_UTF8) | st.binary(min_size=1, max_size=8)


def url_quote(text: str, safe: str = "/") -> str:
    """Percent-encoded UTF-8; a lone surrogate goes as its (invalid) three bytes, as a
    client that does not check its strings would send it."""
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def check(response: Response, tally: Tally, target: str, text_ok: bool = False) -> Any:
    """Below 500 and valid UTF-8 JSON; the decoded body (None for an accepted text)."""
    tally.record(target, response.status_code)
    assert response.status_code < 500, response.text[:500]
    body = response.content.decode("utf-8")  # raises on invalid UTF-8
    if text_ok and response.status_code == 200:
        return None
    answer = json.loads(body)
    assert "Traceback" not in body
    if isinstance(answer, dict) and "errors" in answer:
        messages = [e.get("message") for e in answer["errors"]]
        assert INTERNAL_ERROR not in messages, messages
    return answer


def refused(answer: Any, status: int) -> None:
    """A clear refusal: a 4xx whose JSON says why (`error`, or the router's `detail`),
    or a GraphQL `errors` list."""
    if isinstance(answer, dict) and "errors" in answer:
        assert answer["errors"] and all(isinstance(e["message"], str) for e in answer["errors"])
    else:
        assert 400 <= status < 500, (status, answer)
        assert isinstance(answer.get("error", answer.get("detail")), str), answer


QUERY = """query Q($f: JSON, $t: String, $fields: [String!]!, $h: String!, $s: String!,
  $after: String, $id: ID!) {
  cohort(filter: $f, text: $t) {
    counts { series }
    facets(fields: $fields) { field buckets { key count } }
    histogram(field: $h, interval: 1) { key count }
    series(first: 2, after: $after, sort: [{field: $s}]) { totalCount nodes { seriesUid } }
  }
  explain(filter: $f) { source residual }
  savedCohort(id: $id) { id }
}"""


def _variables(name: str, slot: str) -> dict[str, Any]:
    """Valid variables but one hostile string in `slot`."""
    values: dict[str, Any] = {
        "f": {"=": {"modality": "CT"}},
        "t": None,
        "fields": ["modality"],
        "h": "age",
        "s": "age",
        "after": None,
        "id": "0" * 32,
    }
    if slot == "field":
        values["f"] = {"AND": [{"=": {name: 1}}]}
    elif slot == "operator":
        values["f"] = {name: {"modality": "CT"}}
    elif slot == "value":
        values["f"] = {"IN": {"modality": [name]}}
    elif slot == "search":
        values["f"] = {"search": {"keyword": "lung", "fields": [name]}}
    elif slot == "fields":
        values["fields"] = [name]
    else:
        values[slot] = name
    return values


SLOTS = ["field", "operator", "value", "search", "fields", "h", "s", "after", "t", "id"]


@settings(SETTINGS, max_examples=80)
@given(hostile, st.sampled_from(SLOTS), st.booleans())
@example("nonexistent\ud800", "field", False)  # the field name that gave a 500
@example("nonexistent\ud800", "field", True)
@example("\ud800", "fields", False)
@example("\ud800", "s", True)
@example("x" * (MAX_STRING + 1), "value", False)  # refused with the limit, not answered
def test_graphql_post_and_get(
    fuzz_client: TestClient, tally: Tally, name: str, slot: str, get: bool
) -> None:
    variables = json.dumps(_variables(name, slot))  # lone surrogates as \\ud800 escapes
    if get:
        url = f"/graphql?query={url_quote(QUERY)}&variables={url_quote(variables)}"
        response = fuzz_client.get(url)
    else:
        body = json.dumps({"query": QUERY, "variables": _variables(name, slot)})
        response = fuzz_client.post(
            "/graphql", content=body.encode(), headers={"content-type": "application/json"}
        )
    answer = check(response, tally, f"hostile names: graphql {'GET' if get else 'POST'}")
    if slot == "value" and len(name) <= MAX_STRING:  # a value like any other: answered
        assert answer.get("data") and "errors" not in answer, answer
    elif slot == "value" or (slot != "t" and (slot != "after" or name)):  # oversized: refused
        refused(answer, response.status_code)


EXPORT_KEYS = ["format", "source", "cohort", "limit", "text", "key"]


@SETTINGS
@given(hostile, st.sampled_from(EXPORT_KEYS), st.booleans())
@example("csv\ud800", "format", True)
@example("\ud800", "key", True)
def test_export_parameters(
    fuzz_client: TestClient, tally: Tally, name: str, key: str, post: bool
) -> None:
    params: dict[str, Any] = {"format": "csv", "limit": 2}
    if key == "key":
        params[name] = "1"
    else:
        params[key] = name
    if post:
        response = fuzz_client.post("/export", content=json.dumps(params).encode())
    else:
        query = "&".join(f"{url_quote(str(k))}={url_quote(str(v))}" for k, v in params.items())
        response = fuzz_client.get(f"/export?{query}")
    answer = check(response, tally, "hostile names: export", text_ok=True)
    if key in ("format", "source", "cohort", "key"):
        refused(answer, response.status_code)


@SETTINGS
@given(hostile, st.sampled_from(["field", "operator", "search"]), st.booleans())
@example("nonexistent\ud800", "field", True)
@example("nonexistent\ud800", "field", False)
def test_filters_on_export_and_cohorts(
    fuzz_client: TestClient, tally: Tally, name: str, slot: str, to_export: bool
) -> None:
    data = _variables(name, slot)["f"]
    if to_export:
        query = f"format=csv&filter={url_quote(json.dumps(data))}"
        response = fuzz_client.get(f"/export?{query}")
        target = "hostile names: export filter"
    else:
        body = json.dumps({"filter": data}).encode()
        response = fuzz_client.post("/cohorts", content=body)
        target = "hostile names: cohorts"
    refused(check(response, tally, target), response.status_code)


@SETTINGS
@given(hostile, st.sampled_from(["", "/rerun"]))
def test_saved_cohort_ids(fuzz_client: TestClient, tally: Tally, name: str, tail: str) -> None:
    response = fuzz_client.get(f"/cohorts/{url_quote(name, safe='')}{tail}")
    refused(check(response, tally, "hostile names: saved cohort ids"), response.status_code)


QIDO_PATHS = ["/dicomweb/studies", "/dicomweb/series", "/dicomweb/studies/1.2.3/series"]


@SETTINGS
@given(
    hostile,
    st.sampled_from(QIDO_PATHS),
    st.sampled_from(["name", "PatientID", "StudyDate", "limit", "includefield", "Modality"]),
)
def test_qido_parameters(
    fuzz_client: TestClient, tally: Tally, name: str, path: str, key: str
) -> None:
    if path.endswith("/studies") and key == "Modality":
        key = "ModalitiesInStudy"
    query = f"{url_quote(name)}=1" if key == "name" else f"{key}={url_quote(name)}"
    response = fuzz_client.get(f"{path}?{query}")
    answer = check(response, tally, "hostile names: dicomweb")
    if response.status_code != 200:
        refused(answer, response.status_code)
    else:
        assert isinstance(answer, list)


ROUTES = [
    ("POST", "/graphql"),
    ("GET", "/graphql"),
    ("GET", "/export"),
    ("POST", "/export"),
    ("POST", "/cohorts"),
    ("GET", "/cohorts"),
    *(("GET", p) for p in QIDO_PATHS),
]


@settings(SETTINGS, max_examples=80)
@given(st.sampled_from(ROUTES), bad_bytes, st.sampled_from(["body", "query", "name"]))
def test_bytes_that_are_not_utf8(
    fuzz_client: TestClient, tally: Tally, route: tuple[str, str], raw: bytes, where: str
) -> None:
    """Raw bodies, and query strings percent-encoding bytes that decode to no text."""
    method, path = route
    encoded = "".join(f"%{b:02X}" for b in raw)
    if path == "/cohorts" and method == "GET":  # a saved cohort id of such bytes
        path = f"/cohorts/{encoded}"
    if where == "body" and method == "POST":
        body = b'{"query": "{ sources { name } }", "filter": "' + raw + b'"}'
        response = fuzz_client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    else:
        key = {"/graphql": "query", "/export": "filter"}.get(path, "PatientID")
        query = f"{encoded}=1&format=csv" if where == "name" else f"{key}={encoded}&format=csv"
        response = fuzz_client.request(method, f"{path}?{query}")
    check(response, tally, "hostile names: bytes not UTF-8", text_ok=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | hostile,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile, inner, max_size=3),
    max_leaves=12,
)


@settings(SETTINGS, max_examples=300)
@given(json_values)
def test_the_answer_encoder_never_fails(tally: Tally, value: Any) -> None:
    """`hub.api.encoding.dumps` writes any message or answer as UTF-8 JSON; what orjson
    can encode comes out exactly as orjson writes it (the fast path is unchanged)."""
    encoded = dumps(value)
    json.loads(encoded.decode("utf-8"))
    try:
        assert encoded == orjson.dumps(value)
        tally.record("answer encoder", "as orjson")
    except orjson.JSONEncodeError:
        tally.record("answer encoder", "escaped")
