"""The document cache: parsed and validated once per text, the cost checked per variables."""

from __future__ import annotations

from hub.api import graphql_documents
from hub.api.graphql_documents import checked_document
from hub.api.graphql_schema import schema
from hub.security.limits import LimitsSettings

SCHEMA = schema.graphql_schema
PAGE = "query P($n: Int, $fields: [String!]!) { cohort { series(first: $n) { totalCount } "\
    "facets(fields: $fields) { field } } }"  # fmt: skip


def test_a_known_document_is_answered_again_without_parsing() -> None:
    limits = LimitsSettings()
    first = checked_document(SCHEMA, PAGE, {"n": 10, "fields": ["sex"]}, limits)
    again = checked_document(SCHEMA, PAGE, {"n": 10, "fields": ["sex"]}, limits)
    other_fields = checked_document(SCHEMA, PAGE, {"n": 20, "fields": ["modality"]}, limits)
    assert not isinstance(first, list)
    assert again is first and other_fields is first


def test_the_cost_of_a_known_document_is_checked_for_each_variables() -> None:
    limits = LimitsSettings(graphql_max_cost=30)  # 10 + 1 + ceil(n / 10) + fields
    cheap = {"n": 10, "fields": ["sex"]}
    costly = {"n": 500, "fields": ["sex"]}
    wide = {"n": 10, "fields": ["sex"] * 40}
    assert not isinstance(checked_document(SCHEMA, PAGE, cheap, limits), list)
    for variables in (costly, wide):
        found = checked_document(SCHEMA, PAGE, variables, limits)
        assert isinstance(found, list) and "estimated cost" in found[0].message
    assert not isinstance(checked_document(SCHEMA, PAGE, cheap, limits), list)


def test_an_invalid_document_is_refused_every_time_and_never_remembered() -> None:
    limits = LimitsSettings()
    query = "{ cohort { counts { nosuchfield } } }"
    for _ in range(2):
        found = checked_document(SCHEMA, query, None, limits)
        assert isinstance(found, list) and "nosuchfield" in found[0].message
    assert all(key[0] != query for key in graphql_documents._valid)


def test_other_limits_are_other_entries() -> None:
    strict = LimitsSettings(graphql_max_cost=12)
    loose = LimitsSettings()
    assert not isinstance(checked_document(SCHEMA, PAGE, {"n": 50, "fields": []}, loose), list)
    found = checked_document(SCHEMA, PAGE, {"n": 50, "fields": []}, strict)
    assert isinstance(found, list) and "graphql_max_cost" in found[0].message


def test_only_queries_of_the_index_alone_run_on_the_event_loop() -> None:
    from hub.api.graphql_documents import reads_index_only

    assert reads_index_only("{ cohort { counts { series } } __typename }", None)
    assert reads_index_only(
        "query A { cohort { counts { series } } } query B { sources { name } }", "A"
    )
    assert not reads_index_only(
        "query A { cohort { counts { series } } } query B { sources { name } }", "B"
    )
    assert not reads_index_only("{ sources { name } }", None)  # reads the registry
    assert not reads_index_only('mutation { removeSource(name: "x") { name } }', None)
    assert not reads_index_only(
        "query { ...f } fragment f on Query { cohort { counts { series } } }", None
    )
    assert not reads_index_only("{ cohort {", None)
