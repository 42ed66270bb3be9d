"""How much one GraphQL request may ask for: depth, breadth, aliases and cost.

A GraphQL document is small text that can ask for a great deal: twenty aliased
`cohort` fields each paging a thousand series, a fragment spread inside itself a
thousand times over, selection sets of every field repeated. These limits refuse such
a document before anything runs, as graphql-core validation rules, so the caller gets
a normal GraphQL error naming the limit, and the index never sees the work.

No maintained PyPI library fits graphql-core 3.2 as validation rules: graphene-protector
wraps the schema and executor rather than validating, and graphql-complexity computes a
number but neither depth, breadth nor aliases (and fails on a variable without a
default). So the rules are written here, small, over one shared walk of the document.

The cost estimate is in units of roughly "one cheap index operation" (see FIELD_COSTS):
a `cohort` costs 10, `series(first: N)` costs 1 + N/10, each facet field 1 + size/100.
Fragments are measured once and reused, so a document that spreads fragments
exponentially is measured in linear time. graphql-core's own MaxIntrospectionDepthRule
(among its specified rules) already bounds nested introspection lists.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    parse,
)
from pydantic import BaseModel, ConfigDict, Field

from hub.index.base import MAX_FACET_SIZE, MAX_PAGE
from schema.quoting import quote

API_PREFIXES = ("/graphql", "/export", "/dicomweb", "/cohorts")
"""Paths that answer cohort questions: rate limited and audited. Probes, metrics and the
static web page are neither."""


class LimitsSettings(BaseModel):
    """The `[limits]` table: per-client request rates and the size of a GraphQL request.

    Body size (1 MiB, `hub.api.app.MAX_BODY`), filter size and nesting
    (`schema.filters.MAX_DEPTH/MAX_NODES/MAX_VALUES`), page size and facet size
    (`hub.index.base.MAX_PAGE/MAX_FACET_SIZE`) are fixed in code, next to what they protect.
    """

    model_config = ConfigDict(extra="forbid")

    rate_limit: bool = True
    requests_per_minute: float = Field(default=600, gt=0, le=1_000_000)
    """Sustained requests per client (token refill rate)."""
    burst: int = Field(default=120, ge=1, le=1_000_000)
    """Requests a client may send at once before the refill rate applies (bucket size)."""
    max_clients: int = Field(default=100_000, ge=1)
    """Buckets kept in memory; the least recently seen client's is dropped beyond this."""
    graphql_max_depth: int = Field(default=20, ge=1, le=100)
    """Field nesting; 20 admits the standard introspection query (15 deep) of GraphiQL."""
    graphql_max_breadth: int = Field(default=64, ge=1, le=10_000)
    graphql_max_aliases: int = Field(default=20, ge=0, le=10_000)
    graphql_max_cost: int = Field(default=500, ge=1)


# --- parsing, once per text ---------------------------------------------------------

MAX_TOKENS = 5_000
"""A cohort query is a few hundred tokens; this bounds parser work on hostile input."""
REMEMBERED_TEXTS = 512
LONGEST_REMEMBERED = 16_384
"""Longer texts are parsed each time (hostile ones must not fill the memory)."""


def parsed_document(query: str) -> DocumentNode | GraphQLError:
    """The document of a GraphQL text, or the parser's error. Clients send the same few
    texts, and the endpoint, the audit log and the metrics all read each request's
    document: it is parsed once and shared (documents are never changed after parsing).
    Raises RecursionError for texts nested past the interpreter's limit."""
    if len(query) <= LONGEST_REMEMBERED:
        return _remembered(query)
    return _parse(query)


def _parse(query: str) -> DocumentNode | GraphQLError:
    try:
        return parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return exc


_remembered = functools.lru_cache(maxsize=REMEMBERED_TEXTS)(_parse)


# --- the cost model -----------------------------------------------------------------

FIELD_COSTS: dict[tuple[str, str], int] = {
    ("Query", "cohort"): 10,  # parse, plan, ask live sources, evaluate the filter
    ("Query", "explain"): 10,  # translate for every source
    ("Query", "savedCohort"): 2,
    ("SavedCohort", "current"): 10,  # asks the saved question again
    ("CohortRerun", "counts"): 1,
    ("Mutation", "saveCohort"): 20,  # answers a cohort and writes it
    ("Cohort", "counts"): 1,
    ("Cohort", "bySource"): 1,
    ("Cohort", "histogram"): 5,
}
"""Fixed costs; `series` and `facets` depend on their arguments (see `_field_cost`).
Any other field on a root type costs ROOT_DEFAULT_COST, any other nested field nothing."""
ROOT_DEFAULT_COST = 1
SERIES_ROWS_PER_UNIT = 10
FACET_BUCKETS_PER_UNIT = 100
DEFAULT_FIRST = 50
DEFAULT_FACET_SIZE = 50
_HUGE = 10**9  # stands for any integer argument too large to matter
MAX_NESTING = 200
"""Selection sets and fragment spreads nested in one another; a document past this is
refused as too deep (it bounds the walk's recursion as well)."""


@dataclass
class _Shape:
    """What one selection set asks for; fragments' shapes are computed once."""

    depth: int = 0
    width: int = 0  # fields in the set once fragments are flattened
    aliases: int = 0
    cost: int = 0


class _TooDeep(Exception):
    """Raised through the walk when nesting passes MAX_NESTING."""


@dataclass
class _Walk:
    """Measures operations of one document; breadth problems are collected as found."""

    context: ValidationContext
    variables: Mapping[str, Any]
    max_breadth: int
    defaults: dict[str, Any] = field(default_factory=dict)  # the operation's variable defaults
    fragments: dict[str, _Shape] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    too_wide: list[tuple[Node, int]] = field(default_factory=list)

    def selection_set(
        self, node: SelectionSetNode, parent: GraphQLNamedType | None, nesting: int
    ) -> _Shape:
        if nesting > MAX_NESTING:
            raise _TooDeep
        shape = _Shape()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                child = self.field(selection, parent, nesting + 1)
                shape.width += 1
                shape.aliases += child.aliases + (selection.alias is not None)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                own = self.context.schema.get_type(condition.name.value) if condition else parent
                child = self.selection_set(selection.selection_set, own or parent, nesting + 1)
                shape.width += child.width
                shape.aliases += child.aliases
            elif isinstance(selection, FragmentSpreadNode):
                child = self.spread(selection, nesting + 1)
                shape.width += child.width
                shape.aliases += child.aliases
            else:  # pragma: no cover - graphql-core has no other selection kinds
                continue
            shape.depth = max(shape.depth, child.depth)
            shape.cost += child.cost
        if shape.width > self.max_breadth:
            self.too_wide.append((node, shape.width))
        return shape

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, nesting: int) -> _Shape:
        definition = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(node.name.value)
        own = _Shape(depth=1, cost=self._field_cost(node, parent))
        if node.selection_set is not None:
            named = get_named_type(definition.type) if definition is not None else None
            below = self.selection_set(node.selection_set, named, nesting)
            own.depth += below.depth
            own.aliases = below.aliases
            own.cost += below.cost
        return own

    def spread(self, node: FragmentSpreadNode, nesting: int) -> _Shape:
        name = node.name.value
        known = self.fragments.get(name)
        if known is not None:
            return known
        fragment = self.context.get_fragment(name)
        if fragment is None or name in self.in_progress:
            return _Shape()  # unknown fragments and cycles are other rules' errors
        self.in_progress.add(name)
        try:
            parent = self.context.schema.get_type(fragment.type_condition.name.value)
            shape = self.selection_set(fragment.selection_set, parent, nesting)
        finally:
            self.in_progress.discard(name)
        self.fragments[name] = shape
        return shape

    def _field_cost(self, node: FieldNode, parent: GraphQLNamedType | None) -> int:
        type_name = parent.name if parent is not None else ""
        name = node.name.value
        if (type_name, name) in FIELD_COSTS:
            return FIELD_COSTS[(type_name, name)]
        if type_name == "Cohort" and name == "series":
            # Past MAX_PAGE the resolver refuses with its own message, at no cost.
            first = min(self._int_argument(node, "first", DEFAULT_FIRST), MAX_PAGE)
            return 1 + math.ceil(first / SERIES_ROWS_PER_UNIT)
        if type_name == "Cohort" and name == "facets":
            size = min(self._int_argument(node, "size", DEFAULT_FACET_SIZE), MAX_FACET_SIZE)
            fields = self._list_length(node, "fields")
            return fields * (1 + math.ceil(size / FACET_BUCKETS_PER_UNIT))
        root = self.context.schema.query_type, self.context.schema.mutation_type
        return ROOT_DEFAULT_COST if parent is not None and parent in root else 0

    def _argument(self, node: FieldNode, name: str) -> Any:
        """The argument's value: literal, or the variable's value; None when absent."""
        for argument in node.arguments:
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                variable = value.name.value
                given = self.variables.get(variable)
                return given if given is not None else self.defaults.get(variable)
            return value
        return None

    def _int_argument(self, node: FieldNode, name: str, default: int) -> int:
        value = self._argument(node, name)
        if isinstance(value, IntValueNode):
            digits = value.value.lstrip("-")
            value = _HUGE if len(digits) > 9 else int(value.value)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)  # GraphQL's Int accepts 1000.0 for 1000
        if isinstance(value, bool) or not isinstance(value, int):
            return default  # absent, or a wrong type the standard rules report
        return max(0, min(value, _HUGE))

    def _list_length(self, node: FieldNode, name: str) -> int:
        value = self._argument(node, name)
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, list):
            return len(value)
        return 1  # a single value is coerced to a one-item list


class QueryLimitsRule(ValidationRule):
    """Refuses an operation deeper, wider, more aliased or costlier than `[limits]` allow.

    Bound to settings and the request's variables by `query_limits_rule`; graphql-core
    instantiates it once per validation with only the context."""

    limits: ClassVar[LimitsSettings] = LimitsSettings()
    variables: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.walk = _Walk(context, self.variables, self.limits.graphql_max_breadth)

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        schema = self.context.schema
        root = schema.mutation_type if node.operation is OperationType.MUTATION else None
        root = root or (schema.query_type if node.operation is OperationType.QUERY else None)
        name = f"operation {quote(node.name.value)}" if node.name else "the operation"
        limits = self.limits
        self.walk.defaults = {
            v.variable.name.value: v.default_value for v in node.variable_definitions or ()
        }
        try:
            shape = self.walk.selection_set(node.selection_set, root, 0)
        except _TooDeep:
            self._refuse(f"{name} nests selections more than {MAX_NESTING} deep", node)
            return
        for where, width in self.walk.too_wide[:1]:
            self._refuse(
                f"a selection set in {name} asks for {width} fields; the limit is "
                f"{limits.graphql_max_breadth} (graphql_max_breadth)",
                where,
            )
        self.walk.too_wide.clear()
        if shape.depth > limits.graphql_max_depth:
            self._refuse(
                f"{name} is {shape.depth} fields deep; the limit is {limits.graphql_max_depth} "
                "(graphql_max_depth)",
                node,
            )
        if shape.aliases > limits.graphql_max_aliases:
            self._refuse(
                f"{name} uses {shape.aliases} aliases; the limit is "
                f"{limits.graphql_max_aliases} (graphql_max_aliases)",
                node,
            )
        if shape.cost > limits.graphql_max_cost:
            self._refuse(
                f"{name} has an estimated cost of {shape.cost}; the limit is "
                f"{limits.graphql_max_cost} (graphql_max_cost: each cohort costs "
                f"{FIELD_COSTS[('Query', 'cohort')]}, series(first: N) 1 + N/"
                f"{SERIES_ROWS_PER_UNIT}, each facet field 1 + size/{FACET_BUCKETS_PER_UNIT})",
                node,
            )

    def _refuse(self, message: str, node: Node) -> None:
        self.report_error(GraphQLError(message, node, extensions={"code": "QUERY_TOO_LARGE"}))


def query_limits_rule(
    limits: LimitsSettings, variables: Mapping[str, Any] | None
) -> type[ValidationRule]:
    """The rule for one request: the limits in force and that request's variables (cost
    depends on `first` and `size`, which are often variables)."""
    attributes = {"limits": limits, "variables": dict(variables or {})}
    return type("QueryLimitsRule", (QueryLimitsRule,), attributes)
