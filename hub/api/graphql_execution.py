"""graphql-core's executor, with a short path for plain leaf fields.

A page of 50 series with 11 fields is 550 leaf fields. For each, graphql-core builds a
resolve-info object, reads the field's arguments, calls graphene's default resolver
(a dict or attribute lookup) and dispatches on the return type to serialize it: about
half of a page question's time under load. Most leaves need none of that.

A field takes the short path when it is a scalar or enum (possibly non-null), has no
arguments, and resolves with graphene's default resolver. Its value is looked up and
serialized directly. Anything else, or a value the short path cannot finish cleanly
(null on a non-null field, an exception, a failed serialization), goes through the
standard `execute_field`, which raises and locates the error exactly as before.
Answers are identical either way (`tests/api/test_graphql_execution.py` compares them).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from graphene.types.resolver import dict_or_attr_resolver
from graphql import (
    ExecutionContext,
    FieldNode,
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.execution.execute import get_field_def
from graphql.pyutils import AwaitableOrValue, Path

_NO_VALUE = object()
"""What the short path answers when it must leave the field to the standard path."""


class LeafPlan:
    """How to answer one plain leaf field: which key to read, how to serialize it."""

    __slots__ = ("attname", "default", "nullable", "serialize")

    def __init__(self, attname: str, default: Any, leaf: GraphQLLeafType, nullable: bool) -> None:
        self.attname = attname
        self.default = default
        self.serialize: Callable[[Any], Any] = leaf.serialize
        self.nullable = nullable

    def answer(self, source: Any) -> Any:
        if isinstance(source, dict):
            value = source.get(self.attname, self.default)
        else:
            value = getattr(source, self.attname, self.default)
        if value is None:
            return None if self.nullable else _NO_VALUE
        if isinstance(value, Exception):
            return _NO_VALUE
        try:
            serialized = self.serialize(value)
        except Exception:  # the standard path raises it again, located
            return _NO_VALUE
        if serialized is None or serialized is Undefined:
            return _NO_VALUE
        return serialized


_plans: dict[tuple[int, str, str], LeafPlan | None] = {}
_plans_lock = threading.Lock()


def _leaf_plan(
    schema: GraphQLSchema, parent: GraphQLObjectType, node: FieldNode
) -> LeafPlan | None:
    key = (id(schema), parent.name, node.name.value)
    try:
        return _plans[key]
    except KeyError:
        pass
    plan = None
    definition = get_field_def(schema, parent, node)
    resolve = definition.resolve if definition is not None else None
    if (
        definition is not None
        and not definition.args
        and isinstance(resolve, functools.partial)
        and resolve.func is dict_or_attr_resolver
        and len(resolve.args) == 2
        and not resolve.keywords
    ):
        field_type = definition.type
        nullable = not isinstance(field_type, GraphQLNonNull)
        named = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            plan = LeafPlan(resolve.args[0], resolve.args[1], named, nullable)
    with _plans_lock:
        _plans[key] = plan
    return plan


class LeafShortcutContext(ExecutionContext):
    """Pass as `execution_context_class` to `execute_sync`."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_nodes: list[FieldNode],
        path: Path,
    ) -> AwaitableOrValue[Any]:
        node = field_nodes[0]
        if not node.arguments and not self.middleware_manager:
            plan = _leaf_plan(self.schema, parent_type, node)
            if plan is not None:
                answer = plan.answer(source)
                if answer is not _NO_VALUE:
                    return answer
        return super().execute_field(parent_type, source, field_nodes, path)
