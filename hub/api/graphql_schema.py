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
)

from hub.api.graphql_cohorts import CohortMutations, CohortQueries
from hub.api.graphql_documents import checked_document
from hub.api.graphql_execution import LeafShortcutContext
from hub.api.graphql_sources import SourceMutations
from hub.api.graphql_types import (
    JSON,
    BucketType,
    CountsType,
    FacetType,
    Privacy,
    SeriesConnection,
    SortInput,
    Source,
    SourceAccessType,
    SourcePlanType,
    SourceResultType,
)
from hub.index.base import IndexNotReady, SeriesPage, SortKey
from hub.observability.context import current_request_id
from hub.security.access import SourceAccess
from hub.security.disclosure import release_sources
from hub.security.identity import ANONYMOUS, Caller, caller_of
from hub.security.suppression import ReleasedBucket, ReleasedCounts, ReleasedFacet
from hub.service import Cohort, Hub, SourcePlan, SourceResult
from hub.source_info import SourceInfo
from schema.errors import internal_message, is_caller_error

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error"
"""How every hidden error's message starts; the request id follows (`internal_message`)."""


def _hub(info: graphene.ResolveInfo) -> Hub:
    hub: Hub = info.context["hub"]
    return hub


class CohortType(graphene.ObjectType):  # type: ignore[misc]
    """One cohort question; every field is computed lazily from the same row set.
    Counts are released per caller (hub/security): `access` says which granularity each
    repository gave, `privacy` whether small counts were suppressed and rounded."""

    class Meta:
        name = "Cohort"

    counts = graphene.Field(CountsType, required=True)
    facets = graphene.List(
        graphene.NonNull(FacetType),
        required=True,
        fields=graphene.List(graphene.NonNull(graphene.String), required=True),
        size=graphene.Int(default_value=50),
    )
    histogram = graphene.List(
        graphene.NonNull(BucketType),
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
    by_source = graphene.List(graphene.NonNull(SourceResultType), required=True)
    access = graphene.List(graphene.NonNull(SourceAccessType), required=True)
    privacy = graphene.Field(Privacy, required=True)

    @staticmethod
    def resolve_counts(root: Cohort, _info: graphene.ResolveInfo) -> ReleasedCounts:
        return root.disclosure.counts()

    @staticmethod
    def resolve_facets(
        root: Cohort, _info: graphene.ResolveInfo, fields: list[str], size: int | None
    ) -> list[ReleasedFacet]:
        return root.disclosure.facets(fields, 50 if size is None else size)  # null: the default

    @staticmethod
    def resolve_histogram(
        root: Cohort, _info: graphene.ResolveInfo, field: str, interval: float
    ) -> list[ReleasedBucket]:
        return root.disclosure.histogram(field, interval)

    @staticmethod
    def resolve_series(
        root: Cohort,
        _info: graphene.ResolveInfo,
        first: int | None,
        after: str | None = None,
        sort: list[Any] | None = None,
    ) -> SeriesPage:
        # graphene 3 hands enum members in; compare by name so plain strings work too.
        keys = [SortKey(s.field, getattr(s.order, "name", s.order) == "DESC") for s in sort or []]
        return root.disclosure.series(50 if first is None else first, after, keys)  # null: default

    @staticmethod
    def resolve_by_source(root: Cohort, info: graphene.ResolveInfo) -> list[SourceResult]:
        return _hub(info).by_source(root)

    @staticmethod
    def resolve_access(root: Cohort, _info: graphene.ResolveInfo) -> tuple[SourceAccess, ...]:
        return root.disclosure.access

    @staticmethod
    def resolve_privacy(root: Cohort, info: graphene.ResolveInfo) -> dict[str, Any]:
        return {
            "min_cell": _hub(info).config.privacy.min_cell,
            "applied": root.disclosure.restricted,
            "ranked": root.disclosure.plan.ranked,
        }


class Query(CohortQueries, graphene.ObjectType):  # type: ignore[misc]
    cohort = graphene.Field(
        CohortType,
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
        graphene.NonNull(SourcePlanType),
        required=True,
        filter=JSON(),
        text=graphene.String(),
        description="Per repository: the native request, the residual filter and the route",
    )

    @staticmethod
    def resolve_cohort(
        _root: None, info: graphene.ResolveInfo, filter: Any = None, text: str | None = None
    ) -> Cohort:
        return _hub(info).cohort(filter, text, caller_of(info.context))

    @staticmethod
    def resolve_sources(_root: None, info: graphene.ResolveInfo) -> list[SourceInfo]:
        hub = _hub(info)
        plan = hub.access_plan(caller_of(info.context))
        return release_sources(hub.sources(), plan, hub.config.privacy.min_cell)

    @staticmethod
    def resolve_explain(
        _root: None, info: graphene.ResolveInfo, filter: Any = None, text: str | None = None
    ) -> list[SourcePlan]:
        return _hub(info).explain(filter, text)


class Mutation(SourceMutations, CohortMutations, graphene.ObjectType):  # type: ignore[misc]
    """Saved cohorts, and the admin-only source administration (graphql_sources.py)."""


schema = graphene.Schema(query=Query, mutation=Mutation)


def run_graphql(
    hub: Hub,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    allow_mutations: bool = True,
    caller: Caller = ANONYMOUS,
) -> dict[str, Any]:
    """Parse, validate and execute one request; the result as a JSON-ready dict.
    `allow_mutations=False` (GET requests) refuses mutations, as GraphQL over HTTP asks.
    `caller` (authenticated by the HTTP layer) reaches resolvers as `context["caller"]`."""
    try:
        document = checked_document(schema.graphql_schema, query, variables, hub.config.limits)
    except RecursionError:
        return {"errors": [{"message": "query is nested too deeply"}]}
    if isinstance(document, list):
        return {"errors": [dict(e.formatted) for e in document]}
    if not allow_mutations and _is_mutation(document, operation_name):
        return {"errors": [{"message": "mutations must be sent with POST"}]}
    try:
        result = execute_sync(
            schema.graphql_schema,
            document,
            context_value={"hub": hub, "caller": caller},
            variable_values=variables,
            operation_name=operation_name,
            execution_context_class=LeafShortcutContext,
        )
        return _response(result)
    except RecursionError:
        return {"errors": [{"message": "query is nested too deeply"}]}
    except Exception:
        log.exception("GraphQL request failed outside any resolver")
        return {"errors": [_internal({})]}


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
    """Keep the caller's own mistakes readable; log and hide everything unexpected.

    Only a `CallerError` (and the hub's own "not ready yet") keeps its text: a plain
    ValueError, KeyError or pydantic ValidationError raised deep in the hub is not the
    caller's fault, and its text may name internals."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    formatted: dict[str, Any] = dict(error.formatted)
    if original is None or isinstance(original, GraphQLError):
        return formatted
    if is_caller_error(original) or isinstance(original, IndexNotReady):
        # str(), not the GraphQL message: that prefers FilterError.message, which drops the path.
        formatted["message"] = str(original)
        if isinstance(original, IndexNotReady):
            unavailable: dict[str, Any] = {
                "code": "INDEX_UNAVAILABLE",
                "bySource": original.by_source(),
            }
            formatted["extensions"] = {**formatted.get("extensions", {}), **unavailable}
        return formatted
    log.error("GraphQL resolver failed at %s", error.path, exc_info=original)
    return _internal(formatted)


def _internal(formatted: dict[str, Any]) -> dict[str, Any]:
    """A generic error carrying the request id, in the message and in `extensions`."""
    request_id = current_request_id()
    formatted["message"] = internal_message(request_id, INTERNAL_ERROR)
    extensions = {"code": "INTERNAL_SERVER_ERROR"}
    if request_id:
        extensions["requestId"] = request_id
    formatted["extensions"] = {**formatted.get("extensions", {}), **extensions}
    return formatted
