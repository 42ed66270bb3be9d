"""Every limit on one request, tried over HTTP against the real app (docs/security.md, "Limits").

GraphQL depth, breadth, aliases and cost are refused before execution with an error that
names the limit; the older limits (body size, filter nesting, conditions and values, value
length, page size, facet size, free-text length) are kept and checked here in one table.
Both directions are tested: what the product itself sends (the web page's largest query,
GraphiQL's introspection) must still pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import get_introspection_query, parse, specified_rules, validate

from hub.api import create_app
from hub.api.app import MAX_BODY
from hub.api.graphql_schema import schema
from hub.index.base import MAX_FACET_SIZE, MAX_PAGE
from hub.security.limits import LimitsSettings, query_limits_rule
from schema.filters import MAX_DEPTH, MAX_NODES, MAX_STRING, MAX_VALUES
from tests.conftest import hub_config

LIMITS = LimitsSettings()
CT = {"=": {"modality": "CT"}}


@pytest.fixture(scope="module")
def client(small_data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(hub_config(small_data_dir))) as client:
        yield client


def errors(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> list[str]:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "Traceback" not in response.text
    return [e["message"] for e in body.get("errors", [])]


def refused(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> str:
    messages = errors(client, query, variables)
    assert messages, "the query was accepted"
    return messages[0]


def problems(query: str, variables: dict[str, Any] | None = None, **limits: Any) -> list[str]:
    """Validation messages under the given limits (no execution)."""
    rule = query_limits_rule(LimitsSettings(**limits), variables)
    found = validate(schema.graphql_schema, parse(query), [*specified_rules, rule])
    return [e.message for e in found]


# --- depth ---------------------------------------------------------------------------


def _of_type(levels: int) -> str:
    return '{ __type(name: "Cohort") { ' + "ofType { " * levels + "name" + " }" * levels + " } }"


def test_depth_is_refused_past_the_limit(client: TestClient) -> None:
    message = refused(client, _of_type(LIMITS.graphql_max_depth))
    assert f"is {LIMITS.graphql_max_depth + 2} fields deep" in message
    assert f"the limit is {LIMITS.graphql_max_depth} (graphql_max_depth)" in message
    assert errors(client, _of_type(LIMITS.graphql_max_depth - 3)) == []


def test_depth_counts_through_fragments() -> None:
    query = """{ cohort { ...S } }
      fragment S on Cohort { series { edges { node { seriesUid } } } }"""
    assert problems(query, graphql_max_depth=5) == []
    (message,) = problems(query, graphql_max_depth=4)
    assert "is 5 fields deep; the limit is 4" in message


def test_nesting_past_the_walk_bound_is_an_error_not_a_crash(client: TestClient) -> None:
    message = refused(client, _of_type(400))
    assert "deep" in message


# --- breadth -------------------------------------------------------------------------


def test_breadth_is_refused_past_the_limit(client: TestClient) -> None:
    wide = "{ cohort { counts { " + "series " * (LIMITS.graphql_max_breadth + 1) + "} } }"
    message = refused(client, wide)
    assert f"asks for {LIMITS.graphql_max_breadth + 1} fields" in message
    assert "(graphql_max_breadth)" in message
    ok = "{ cohort { counts { " + "series " * LIMITS.graphql_max_breadth + "} } }"
    assert errors(client, ok) == []


def test_breadth_flattens_fragments() -> None:
    query = """{ cohort { counts { ...A ...B patients } } }
      fragment A on Counts { series studies }
      fragment B on Counts { series ... on Counts { studies } }"""
    assert problems(query, graphql_max_breadth=5) == []
    (message,) = problems(query, graphql_max_breadth=4)
    assert "asks for 5 fields" in message


# --- aliases -------------------------------------------------------------------------


def test_aliases_are_refused_past_the_limit(client: TestClient) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: sources {{ name }}" for i in range(n)) + " }"

    message = refused(client, aliased(LIMITS.graphql_max_aliases + 1))
    assert f"uses {LIMITS.graphql_max_aliases + 1} aliases" in message
    assert "(graphql_max_aliases)" in message
    assert errors(client, aliased(LIMITS.graphql_max_aliases)) == []


def test_aliases_in_a_fragment_count_once_per_spread() -> None:
    query = """{ ...F ...F x: cohort { ...C } }
      fragment F on Query { a: sources { name } b: sources { name } }
      fragment C on Cohort { c: counts { series } }"""
    assert problems(query, graphql_max_aliases=6) == []
    assert "uses 6 aliases" in problems(query, graphql_max_aliases=5)[0]


# --- cost ----------------------------------------------------------------------------


def _cohorts(n: int, first: str) -> str:
    parts = [f"c{i}: cohort {{ series(first: {first}) {{ totalCount }} }}" for i in range(n)]
    declared = "($n: Int = 1000) " if first.startswith("$") else ""
    return f"query {declared}{{ " + " ".join(parts) + " }"


def test_cost_is_refused_past_the_limit(client: TestClient) -> None:
    message = refused(client, _cohorts(5, "1000"))  # 5 x (10 + 1 + 100)
    assert "estimated cost of 555" in message
    assert f"the limit is {LIMITS.graphql_max_cost} (graphql_max_cost" in message
    assert "series(first: N)" in message  # says how cost is counted
    assert errors(client, _cohorts(4, "1000")) == []


@pytest.mark.parametrize(
    ("variables", "accepted"),
    [({"n": 10}, True), ({"n": 1000}, False), ({}, False), ({"n": 1000.0}, False)],
    ids=["small", "large", "default-1000", "float"],
)
def test_cost_reads_variables_and_their_defaults(
    client: TestClient, variables: dict[str, Any], accepted: bool
) -> None:
    found = errors(client, _cohorts(5, "$n"), variables)
    assert (found == []) is accepted, found


def test_facet_cost_counts_fields_and_size() -> None:
    fields = '["modality", "sex", "collection", "license", "body_part"]'
    query = f"{{ cohort {{ facets(fields: {fields}, size: 1000) {{ field }} }} }}"
    assert problems(query, graphql_max_cost=65) == []  # 10 + 5 x (1 + 10)
    assert "estimated cost of 65" in problems(query, graphql_max_cost=64)[0]


def test_exponential_fragments_are_measured_quickly_and_refused(client: TestClient) -> None:
    levels = 40  # 2**40 cohorts if expanded
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ cohort {{ counts {{ series }} }} }}")
    started = time.perf_counter()
    messages = errors(client, "{ ...F0 } " + " ".join(fragments))
    assert time.perf_counter() - started < 2.0
    assert any("(graphql_max_breadth)" in m for m in messages)  # the first too wide a set
    assert any(f"estimated cost of {10 * 2**levels + 2**levels}" in m for m in messages)


def test_fragment_cycles_are_a_validation_error(client: TestClient) -> None:
    query = "{ ...A } fragment A on Query { sources { name } ...B } fragment B on Query { ...A }"
    assert "Cannot spread fragment 'A' within itself" in refused(client, query)


# --- what the product sends still passes ---------------------------------------------


def test_the_web_page_largest_query_passes(client: TestClient) -> None:
    """The cohort page with every facet ticked and an age range (hub/web/static/js/api.js)."""
    facets = ["source", "collection", "modality", "body_part", "sex", "license", "disease"]
    fields = "field missing buckets { key count }"
    extra = " ".join(
        f'facet{i}: cohort(filter: $f{i}, text: $text) {{ facets(fields: ["{f}"], size: 300) '
        f"{{ {fields} }} }}"
        for i, f in enumerate(facets)
    )
    declared = ", ".join(f"$f{i}: JSON" for i in range(len(facets)))
    declared += ", $filter: JSON, $text: String, $after: String, $anyAge: JSON"
    histogram = 'histogram(field: "age", interval: 10) { key count }'
    query = f"""query Cohort({declared}) {{
      cohort(filter: $filter, text: $text) {{
        counts {{ patients studies series }}
        facets(fields: [], size: 300) {{ {fields} }}
        series(first: 50, after: $after) {{ totalCount nodes {{ seriesUid collection modality
          bodyPart sex age studyDate license viewerUrl downloadUrl sources }}
          pageInfo {{ hasNextPage endCursor }} }}
        bySource {{ source status count latencyMs message }}
      }}
      {extra}
      ages: cohort(filter: $anyAge, text: $text) {{ {histogram} }}
      sources {{ name adapter }}
    }}"""
    variables = {f"f{i}": CT for i in range(len(facets))} | {"filter": CT, "anyAge": CT}
    assert errors(client, query, variables) == []


def test_graphiql_introspection_passes(client: TestClient) -> None:
    query = get_introspection_query(
        descriptions=True, directive_is_repeatable=True, input_value_deprecation=True
    )
    assert errors(client, query) == []


def test_nested_introspection_lists_are_refused(client: TestClient) -> None:
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert refused(client, query) == "Maximum introspection depth exceeded"


def test_limits_are_configurable(small_data_dir: Path) -> None:
    config = hub_config(small_data_dir)
    config.limits = LimitsSettings(graphql_max_cost=15)
    with TestClient(create_app(config)) as client:
        assert "estimated cost of 16" in refused(client, "{ cohort { series { totalCount } } }")
        assert errors(client, "{ cohort { counts { series } } }") == []


# --- the older limits, kept ----------------------------------------------------------

COUNTS = "query($f: JSON, $t: String) { cohort(filter: $f, text: $t) { counts { series } } }"


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = CT
    for _ in range(depth - 1):
        node = {"AND": [node]}
    return node


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        (COUNTS, {"f": _nested(MAX_DEPTH + 1)}, f"nested deeper than {MAX_DEPTH} levels"),
        (COUNTS, {"f": {"OR": [CT] * MAX_NODES}}, f"more than {MAX_NODES} conditions"),
        (COUNTS, {"f": {"IN": {"modality": ["CT"] * (MAX_VALUES + 1)}}}, f"at most {MAX_VALUES}"),
        (COUNTS, {"f": {"=": {"modality": "x" * (MAX_STRING + 1)}}}, f"longer than {MAX_STRING}"),
        (COUNTS, {"t": "x" * (MAX_STRING + 1)}, f"at most {MAX_STRING} characters"),
        (
            f"{{ cohort {{ series(first: {MAX_PAGE + 1}) {{ totalCount }} }} }}",
            {},
            f"first must be between 0 and {MAX_PAGE}",
        ),
        (
            f'{{ cohort {{ facets(fields: ["sex"], size: {MAX_FACET_SIZE + 1}) {{ field }} }} }}',
            {},
            f"facet size must be between 1 and {MAX_FACET_SIZE}",
        ),
    ],
    ids=[
        "filter-depth",
        "filter-nodes",
        "filter-values",
        "value-length",
        "text-length",
        "page",
        "facet",
    ],
)
def test_request_size_limits(
    client: TestClient, query: str, variables: dict[str, Any], expected: str
) -> None:
    assert expected in refused(client, query, variables)


@pytest.mark.parametrize("path", ["/graphql", "/export", "/cohorts"])
def test_body_size_limit_on_every_posting_route(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=b" " * (MAX_BODY + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": f"request body larger than {MAX_BODY} bytes"}
