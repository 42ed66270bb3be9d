"""A GraphQL fuzz pass over HTTP: no input may produce a 500 or an internal error.

Four sources of requests, all POSTed to the real app over a copy of the small corpus:

- queries and mutations generated from the schema by hypothesis-graphql, valid ones and
  ones with one violation each (wrong argument types, missing arguments, bad enums),
  with JSON literals built from filter operators and field names and huge numbers;
- fixed cohort queries with random variables: arbitrary JSON filters (the parser's
  fuzz strategies), hostile strings, wrong types and huge integers everywhere;
- documents shaped to hurt: deep nesting, alias and breadth bombs, fragment cycles;
- raw request bodies that are barely GraphQL at all.

Each answer must be below 500, valid UTF-8 JSON (strings hold lone surrogates and control
characters, which messages quote) and, when 200, without the hub's "internal error"
message (which marks an exception nobody anticipated). Every case is counted.
"""

from __future__ import annotations

import json
from typing import Any

import graphql
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from hub.api.graphql_schema import INTERNAL_ERROR, schema
from schema.record import FIELDS
from tests.fuzz.conftest import Tally
from tests.schema.test_filters_fuzz import json_like, mostly_valid
from tests.security.payloads import NAMES as HOSTILE_NAMES
from tests.security.payloads import PAYLOADS

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- JSON literals for the custom scalars ---------------------------------------------

NAMES = st.sampled_from(["AND", "OR", "IN", "EXCLUDES", "search", "keyword", "fields", *FIELDS])
NAMES = NAMES | st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,8}", fullmatch=True)
HUGE = st.integers() | st.sampled_from([2**63, -(2**63) - 1, 10**30, 2**31])
STRINGS = st.sampled_from(PAYLOADS) | st.sampled_from(HOSTILE_NAMES) | st.text(max_size=20)
STRINGS |= st.text(st.characters(codec=None), max_size=12)  # lone surrogates, controls


def _node(value: Any) -> graphql.ValueNode:
    """A GraphQL literal for a JSON-like value whose object keys are GraphQL names."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_node(v) for v in value))
    fields = tuple(
        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_node(v))
        for k, v in value.items()
    )
    return graphql.ObjectValueNode(fields=fields)


json_literals = st.recursive(
    st.none() | st.booleans() | HUGE | st.floats(allow_nan=False, allow_infinity=False) | STRINGS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=20,
).map(_node)
SCALARS = {"JSON": json_literals, "Long": HUGE.map(_node)}


# --- checking one request -------------------------------------------------------------


def post(client: TestClient, tally: Tally, target: str, body: dict[str, Any]) -> None:
    """POST one request; it must be answered below 500, as JSON, with no internal error."""
    content = json.dumps(body).encode()  # NaN and Infinity included, as Python clients send
    response = client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    tally.record(target, response.status_code)
    assert response.status_code < 500, (body, response.text[:500])
    answer = json.loads(response.content.decode("utf-8"))  # UTF-8 JSON, whatever was quoted
    assert isinstance(answer, dict), response.text[:500]
    messages = [e.get("message") for e in answer.get("errors") or []]
    assert not any(INTERNAL_ERROR in str(m) for m in messages), (body, messages)
    assert "Traceback" not in response.text


@settings(SETTINGS, max_examples=150)
@given(st.data())
def test_schema_generated_queries(
    fuzz_client: TestClient, tally: Tally, data: st.DataObject
) -> None:
    mode = data.draw(st.sampled_from([Mode.POSITIVE, Mode.NEGATIVE]), label="mode")
    query = data.draw(
        queries(schema.graphql_schema, custom_scalars=SCALARS, mode=mode), label="query"
    )
    post(fuzz_client, tally, f"graphql: generated queries ({mode.name.lower()})", {"query": query})


@settings(SETTINGS, max_examples=40)
@given(st.data())
def test_schema_generated_mutations(
    fuzz_client: TestClient, tally: Tally, data: st.DataObject
) -> None:
    mode = data.draw(st.sampled_from([Mode.POSITIVE, Mode.NEGATIVE]), label="mode")
    query = data.draw(
        mutations(schema.graphql_schema, custom_scalars=SCALARS, mode=mode), label="mutation"
    )
    post(
        fuzz_client, tally, f"graphql: generated mutations ({mode.name.lower()})", {"query": query}
    )


TEMPLATE = """query Q($f: JSON, $t: String, $n: Int, $s: Int, $fields: [String!]!, $h: String!,
  $i: Float!, $after: String, $sort: [SortInput!]) {
  cohort(filter: $f, text: $t) {
    counts { patients studies series }
    facets(fields: $fields, size: $s) { field missing buckets { key count } }
    histogram(field: $h, interval: $i) { key count }
    series(first: $n, after: $after, sort: $sort) { totalCount nodes { seriesUid age } }
    bySource { source status count }
  }
  explain(filter: $f, text: $t) { source native residual }
}"""
anything = json_like | HUGE | STRINGS
variables = st.fixed_dictionaries(
    {},
    optional={
        "f": mostly_valid | json_like | STRINGS,
        "t": st.none() | STRINGS | anything,
        "n": st.integers(-5, 2000) | anything,
        "s": st.integers(-5, 2000) | anything,
        "fields": st.lists(st.sampled_from([*FIELDS, "nope"]) | STRINGS, max_size=4) | anything,
        "h": st.sampled_from(["age", "study_date", "size_bytes", "modality"]) | anything,
        "i": st.sampled_from([0.5, 10, 365, 1e-300, 1e300, -1, 0]) | anything,
        "after": STRINGS | anything,
        "sort": st.lists(st.fixed_dictionaries({"field": STRINGS | st.sampled_from([*FIELDS])}))
        | anything,
    },
)


@settings(SETTINGS, max_examples=150)
@given(variables)
def test_random_variables(fuzz_client: TestClient, tally: Tally, values: dict[str, Any]) -> None:
    post(fuzz_client, tally, "graphql: random variables", {"query": TEMPLATE, "variables": values})


def _shaped(kind: str, n: int) -> str:
    if kind == "deep":
        return '{ __type(name: "Cohort") { ' + "ofType { " * n + "name" + " }" * n + " } }"
    if kind == "aliases":
        return "{ " + " ".join(f"a{i}: cohort {{ counts {{ series }} }}" for i in range(n)) + " }"
    if kind == "wide":
        return "{ cohort { counts { " + "series " * n + "} } }"
    if kind == "fragments":
        frags = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
        return "{ ...F0 } " + frags + f" fragment F{n} on Query {{ sources {{ name }} }}"
    if kind == "cycle":
        return "{ ...A } " + " ".join(
            f"fragment {a} on Query {{ ...{b} }}" for a, b in zip("AB", "BA", strict=True)
        )
    return "{ cohort(filter: " + "[" * n + "]" * n + ") { counts { series } } }"


@settings(SETTINGS, max_examples=60)
@given(st.sampled_from(["deep", "aliases", "wide", "fragments", "cycle", "brackets"]),
       st.integers(1, 1200))  # fmt: skip
def test_documents_shaped_to_hurt(fuzz_client: TestClient, tally: Tally, kind: str, n: int) -> None:
    post(fuzz_client, tally, "graphql: hostile document shapes", {"query": _shaped(kind, n)})


raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_like.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"query": st.text(max_size=200) | anything},
        optional={"variables": anything, "operationName": anything},
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(SETTINGS, max_examples=100)
@given(raw_bodies)
def test_raw_bodies(fuzz_client: TestClient, tally: Tally, body: bytes) -> None:
    response = fuzz_client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    tally.record("graphql: raw bodies", response.status_code)
    assert response.status_code < 500, (body, response.text[:300])
    assert INTERNAL_ERROR not in response.text and "Traceback" not in response.text
