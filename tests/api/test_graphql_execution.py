"""The leaf short path answers exactly what graphql-core's own executor answers:
values, nulls, aliases, fragments, directives, and every error, located the same way."""

from __future__ import annotations

import enum
from types import SimpleNamespace
from typing import Any

import graphene
import pytest
from graphql import ExecutionContext, execute_sync, parse

from hub.api.graphql_execution import LeafShortcutContext, _leaf_plan
from hub.api.graphql_schema import schema
from hub.security.identity import ANONYMOUS


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(graphene.ObjectType):
    name = graphene.String()
    size = graphene.Int()
    weight = graphene.Float()
    colour = graphene.Enum.from_enum(Colour)()
    required = graphene.String(required=True)
    shout = graphene.String()
    scaled = graphene.Int(factor=graphene.Int())

    @staticmethod
    def resolve_shout(parent: Any, _info: Any) -> str | None:
        name = parent["name"] if isinstance(parent, dict) else parent.name
        return name.upper() if name else None

    @staticmethod
    def resolve_scaled(parent: Any, _info: Any, factor: int = 1) -> int:
        size = parent["size"] if isinstance(parent, dict) else parent.size
        return int(size or 0) * factor


class Query(graphene.ObjectType):
    items = graphene.List(Item)
    strict_items = graphene.List(graphene.NonNull(Item))

    @staticmethod
    def resolve_items(_root: Any, _info: Any) -> list[Any]:
        return ITEMS

    @staticmethod
    def resolve_strict_items(_root: Any, _info: Any) -> list[Any]:
        return ITEMS


ITEMS: list[Any] = [
    {"name": "a", "size": 1, "weight": 0.5, "colour": Colour.RED, "required": "x"},
    {"name": None, "size": None, "colour": None, "required": "y"},  # weight absent
    SimpleNamespace(name="b", size=2, weight=1.5, colour=Colour.BLUE, required="z"),
    {"name": "c", "size": "not a number", "required": "w"},  # fails Int serialization
    {"name": "d", "size": 4, "required": None},  # null on a non-null field
    {"name": "e", "size": 2**40, "required": "v"},  # past GraphQL's 32-bit Int
    {"name": "f", "size": ValueError("resolved to an error"), "required": "u"},
]
SCHEMA = graphene.Schema(query=Query).graphql_schema

QUERIES = [
    "{ items { name size weight colour required } }",
    "{ items { n: name name s: size __typename } }",
    "{ items { ...parts shout scaled(factor: 3) } } fragment parts on Item { name colour }",
    "query($skip: Boolean!) { items { name @skip(if: $skip) size @include(if: $skip) } }",
    "{ strictItems { name size required } }",
    "{ items { ... on Item { weight } required } }",
]


def run(query: str, context: type[ExecutionContext]) -> dict[str, Any]:
    result = execute_sync(
        SCHEMA, parse(query), variable_values={"skip": True}, execution_context_class=context
    )
    return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}


@pytest.mark.parametrize("query", QUERIES)
def test_the_short_path_answers_as_graphql_core_does(query: str) -> None:
    assert run(query, LeafShortcutContext) == run(query, ExecutionContext)


def test_plain_leaves_take_the_short_path_and_others_do_not() -> None:
    item = SCHEMA.get_type("Item")
    node = parse("{ name shout scaled required items }").definitions[0].selection_set.selections
    taken = {n.name.value: _leaf_plan(SCHEMA, item, n) is not None for n in node[:4]}
    assert taken == {"name": True, "shout": False, "scaled": False, "required": True}
    query = SCHEMA.query_type
    assert _leaf_plan(SCHEMA, query, node[4]) is None  # a list of objects


def test_the_fixtures_reach_every_error_the_short_path_hands_back() -> None:
    messages = [e["message"] for e in run(QUERIES[0], ExecutionContext)["errors"]]
    assert any("Int cannot represent non-integer value" in m for m in messages)
    assert any("non-nullable field Item.required" in m for m in messages)
    assert any("non 32-bit signed integer" in m for m in messages)
    assert any("resolved to an error" in m for m in messages)


def test_real_cohort_answers_are_unchanged(small_hub: Any) -> None:
    query = """query($filter: JSON) { cohort(filter: $filter) {
      counts { patients studies series suppressed }
      facets(fields: ["modality", "sex"], size: 5) { field missing buckets { key count } }
      series(first: 20) { totalCount pageInfo { hasNextPage endCursor }
        nodes { seriesUid collection patientId modality bodyPart sex age studyDate
                seriesDescription license viewerUrl sources } }
      bySource { source status } } }"""
    answers = [
        execute_sync(
            schema.graphql_schema,
            parse(query),
            context_value={"hub": small_hub, "caller": ANONYMOUS},
            variable_values={"filter": {">=": {"age": 40}}},
            execution_context_class=context,
        )
        for context in (ExecutionContext, LeafShortcutContext)
    ]
    assert answers[0].errors is None and answers[0].data == answers[1].data
    assert answers[0].data is not None and answers[0].data["cohort"]["series"]["totalCount"] > 0
