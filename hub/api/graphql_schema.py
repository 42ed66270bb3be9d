"""The GraphQL schema (the contract in DESIGN.md "API") and how a request runs.

Resolvers stay thin over `hub.service.Hub`; the hub comes from `info.context["hub"]`.
`run_graphql` is synchronous on purpose: the index work blocks, so the app calls it in
a worker thread. It is also the one place where exceptions become GraphQL errors: a
mistake by the caller keeps its message, anything else is logged and hidden.
"""

from __future__ import annotations

import logging
from typing import Any

import graphene
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute_sync,
    parse,
    validate,
)

from hub.api.graphql_cohorts import CohortQueries, Mutation
from hub.api.graphql_types import (
    JSON,
    Bucket,
    Counts,
    Facet,
    SeriesConnection,
    SortInput,
    Source,
    SourcePlan,
    SourceResult,
)
from hub.index.base import Bucket as BucketResult
from hub.index.base import Counts as CountsResult
from hub.index.base import Facet as FacetResult
from hub.index.base import IndexNotReady, SeriesPage, SortKey
from hub.service import Cohort as CohortResult
from hub.service import Hub, SourceInfo
from hub.service import SourcePlan as SourcePlanResult
from hub.service import SourceResult as SourceResultValue

log = logging.getLogger(__name__)

MAX_TOKENS = 5_000
"""A cohort query is a few hundred tokens; this bounds parser work on hostile input."""

INTERNAL_ERROR = "internal error; see server log"

CALLER_ERRORS = (ValueError, IndexNotReady)
"""FilterError and QueryError are ValueErrors: the message tells the caller what to fix."""


def _hub(info: graphene.ResolveInfo) -> Hub:
    hub: Hub = info.context["hub"]
    return hub


class Cohort(graphene.ObjectType):  # type: ignore[misc]
    """One cohort question; every field is computed lazily from the same row set."""

    counts = graphene.Field(Counts, required=True)
    facets = graphene.List(
        graphene.NonNull(Facet),
        required=True,
        fields=graphene.List(graphene.NonNull(graphene.String), required=True),
        size=graphene.Int(default_value=50),
    )
    histogram = graphene.List(
        graphene.NonNull(Bucket),
        required=True,
        field=graphene.String(required=True),
        interval=graphene.Float(required=True),
    )
    series = graphene.Field(
        SeriesConnection,
        required=True,
        first=graphene.Int(default_value=50),
        after=graphene.String(),
        sort=graphene.List(graphene.NonNull(SortInput)),
    )
    by_source = graphene.List(graphene.NonNull(SourceResult), required=True)

    @staticmethod
    def resolve_counts(root: CohortResult, _info: graphene.ResolveInfo) -> CountsResult:
        return root.view.counts()

    @staticmethod
    def resolve_facets(
        root: CohortResult, _info: graphene.ResolveInfo, fields: list[str], size: int
    ) -> list[FacetResult]:
        return root.view.facets(fields, size)

    @staticmethod
    def resolve_histogram(
        root: CohortResult, _info: graphene.ResolveInfo, field: str, interval: float
    ) -> list[BucketResult]:
        return root.view.histogram(field, interval)

    @staticmethod
    def resolve_series(
        root: CohortResult,
        _info: graphene.ResolveInfo,
        first: int,
        after: str | None = None,
        sort: list[Any] | None = None,
    ) -> SeriesPage:
        # graphene 3 hands enum members in; compare by name so plain strings work too.
        keys = [SortKey(s.field, getattr(s.order, "name", s.order) == "DESC") for s in sort or []]
        return root.view.series(first, after, keys)

    @staticmethod
    def resolve_by_source(
        root: CohortResult, info: graphene.ResolveInfo
    ) -> list[SourceResultValue]:
        return _hub(info).by_source(root)


class Query(CohortQueries, graphene.ObjectType):  # type: ignore[misc]
    cohort = graphene.Field(
        Cohort,
        required=True,
        filter=JSON(),
        text=graphene.String(),
        description="Series matching a Guppy-style filter and optional free text",
    )
    sources = graphene.List(
        graphene.NonNull(Source),
        required=True,
        description="Registered repositories and what the index holds",
    )
    explain = graphene.List(
        graphene.NonNull(SourcePlan),
        required=True,
        filter=JSON(),
        text=graphene.String(),
        description="Per repository: the native request, the residual filter and the route",
    )

    @staticmethod
    def resolve_cohort(
        _root: None, info: graphene.ResolveInfo, filter: Any = None, text: str | None = None
    ) -> CohortResult:
        return _hub(info).cohort(filter, text)

    @staticmethod
    def resolve_sources(_root: None, info: graphene.ResolveInfo) -> list[SourceInfo]:
        return _hub(info).sources()

    @staticmethod
    def resolve_explain(
        _root: None, info: graphene.ResolveInfo, filter: Any = None, text: str | None = None
    ) -> list[SourcePlanResult]:
        return _hub(info).explain(filter, text)


schema = graphene.Schema(query=Query, mutation=Mutation)


def run_graphql(
    hub: Hub,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    allow_mutations: bool = True,
) -> dict[str, Any]:
    """Parse, validate and execute one request; the result as a JSON-ready dict.
    `allow_mutations=False` (GET requests) refuses mutations, as GraphQL over HTTP asks."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return {"errors": [dict(exc.formatted)]}
    except RecursionError:
        return {"errors": [{"message": "query is nested too deeply"}]}
    if not allow_mutations and _is_mutation(document, operation_name):
        return {"errors": [{"message": "mutations must be sent with POST"}]}
    try:
        errors = validate(schema.graphql_schema, document)
        if errors:
            return {"errors": [dict(e.formatted) for e in errors]}
        result = execute_sync(
            schema.graphql_schema,
            document,
            context_value={"hub": hub},
            variable_values=variables,
            operation_name=operation_name,
        )
        return _response(result)
    except RecursionError:
        return {"errors": [{"message": "query is nested too deeply"}]}
    except Exception:
        log.exception("GraphQL request failed outside any resolver")
        return {"errors": [{"message": INTERNAL_ERROR}]}


def _is_mutation(document: DocumentNode, operation_name: str | None) -> bool:
    return any(
        isinstance(d, OperationDefinitionNode)
        and d.operation is OperationType.MUTATION
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
        for d in document.definitions
    )


def _response(result: ExecutionResult) -> dict[str, Any]:
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [_format_error(e) for e in result.errors]
    return out


def _format_error(error: GraphQLError) -> dict[str, Any]:
    """Keep the caller's own mistakes readable; log and hide everything unexpected."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    formatted = dict(error.formatted)
    if original is None or isinstance(original, GraphQLError):
        return formatted
    if isinstance(original, CALLER_ERRORS):
        # str(), not the GraphQL message: that prefers FilterError.message, which drops the path.
        formatted["message"] = str(original)
        return formatted
    log.error("GraphQL resolver failed at %s", error.path, exc_info=original)
    formatted["message"] = INTERNAL_ERROR
    return formatted
