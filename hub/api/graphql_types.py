"""GraphQL types of the cohort API: scalars, result types and the generated `Series`.

Resolvers (in `graphql_schema`) return the service's plain dataclasses and the index's
snake_case node dicts; graphene's default resolver reads them by attribute or key, so
these types only declare shape. Field names are snake_case here and camelCase on the wire.
A type whose name the service or the index also uses (`Counts`, `Facet`, ...) is a
`...Type` class here, its GraphQL name set by `Meta.name`: clients see the same names.
"""

from __future__ import annotations

import json
from typing import Any

import graphene
from graphql import ValueNode
from graphql.language import IntValueNode
from graphql.utilities import value_from_ast_untyped

from hub.index.base import SeriesPage
from schema.errors import CallerError
from schema.quoting import quote
from schema.record import FIELDS, FieldKind, FieldSpec


class JSON(graphene.Scalar):  # type: ignore[misc]
    """Any JSON value, passed as a literal or variable (a filter is an object, not a string)."""

    @staticmethod
    def serialize(value: Any) -> Any:
        # Plans carry SQL parameters such as dates; make them plain JSON, never a 500.
        return json.loads(json.dumps(value, default=str))

    @staticmethod
    def parse_value(value: Any) -> Any:
        return value

    @staticmethod
    def parse_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
        # Unlike GenericScalar this keeps 64-bit integers and resolves nested $variables.
        return value_from_ast_untyped(node, variables)


class Long(graphene.Scalar):  # type: ignore[misc]
    """A 64-bit integer: series sizes pass 2^31, which GraphQL `Int` cannot carry."""

    @staticmethod
    def serialize(value: Any) -> int:
        return int(value)

    @staticmethod
    def parse_value(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CallerError(f"Long cannot represent {quote(value)}")
        return value

    @staticmethod
    def parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
        if not isinstance(node, IntValueNode):
            raise CallerError("Long takes a whole number")
        return int(node.value)


SUPPRESSED = "A count here was too small to publish (small-cell suppression) and is null"
ROUNDED = "A count here includes restricted series, rounded down to a multiple of minCell"


def _flag(name: str, description: str = SUPPRESSED) -> Any:
    """A Boolean! read from the resolved value, false where it has no such attribute."""
    return graphene.Boolean(
        required=True,
        description=description,
        resolver=lambda root, _info: bool(getattr(root, name, False)),
    )


class CountsType(graphene.ObjectType):  # type: ignore[misc]
    """Distinct patients (collection, patient_id), studies and series of a cohort."""

    class Meta:
        name = "Counts"

    patients = graphene.Int()
    studies = graphene.Int()
    series = graphene.Int()
    suppressed = _flag("suppressed")
    rounded = _flag("rounded", ROUNDED)


class BucketType(graphene.ObjectType):  # type: ignore[misc]
    class Meta:
        name = "Bucket"

    key = graphene.String(required=True)
    count = graphene.Int(description="Series in the bucket; null when suppressed")
    suppressed = _flag("suppressed")
    rounded = _flag("rounded", ROUNDED)


class FacetType(graphene.ObjectType):  # type: ignore[misc]
    class Meta:
        name = "Facet"

    field = graphene.String(required=True)
    buckets = graphene.List(graphene.NonNull(BucketType), required=True)
    missing = graphene.Int(description="Series without a value; null when suppressed")
    missing_suppressed = _flag("missing_suppressed")
    suppressed = _flag("suppressed")


class SourceAccessType(graphene.ObjectType):  # type: ignore[misc]
    """The granularity one repository gives the caller: `record` or `count` (Beacon v2)."""

    class Meta:
        name = "SourceAccess"

    source = graphene.String(required=True)
    access = graphene.String(required=True, description="open, registered or controlled")
    granularity = graphene.String(required=True)


class Privacy(graphene.ObjectType):  # type: ignore[misc]
    """How this answer's counts were released (docs/security.md, "Small cells")."""

    min_cell = graphene.Int(required=True)
    applied = graphene.Boolean(
        required=True, description="Counts may include restricted series: suppressed/rounded"
    )
    ranked = graphene.Boolean(
        required=True, description="Free text is ranked (false: a filter only, no score)"
    )


class SortOrder(graphene.Enum):  # type: ignore[misc]
    ASC = "ASC"
    DESC = "DESC"


class SortInput(graphene.InputObjectType):  # type: ignore[misc]
    """A canonical field name (or `score`, the BM25 rank of `text`) and a direction."""

    field = graphene.String(required=True)
    order = SortOrder(default_value=SortOrder.ASC)


def _field_type(spec: FieldSpec) -> Any:
    if spec.kind is FieldKind.INTEGER:
        # Ages fit in Int; counts and sizes are stored as int64 and may not.
        return graphene.Int if spec.name == "age" else Long
    return graphene.String  # keyword, text, and dates as ISO strings


def _series_fields() -> dict[str, Any]:
    """One field per canonical field, so a field added to the record shows up here."""
    fields: dict[str, Any] = {
        name: _field_type(spec)(description=spec.doc) for name, spec in FIELDS.items()
    }
    fields["source"] = graphene.String(description="Repository this copy came from")
    fields.update(
        sources=graphene.List(
            graphene.NonNull(graphene.String),
            required=True,
            description="Every repository holding the series",
        ),
        score=graphene.Float(description="BM25 score of the `text` question, when ranked"),
        viewer_url=graphene.String(description="Web viewer for the series"),
        download_url=graphene.String(description="Where to fetch the DICOM files"),
        fetched_at=graphene.String(description="When the hub read the record (ISO time)"),
    )
    return fields


Series = type(
    "Series",
    (graphene.ObjectType,),
    {
        "__doc__": "One DICOM series with its patient and study fields.",
        **_series_fields(),
    },
)


class SeriesEdge(graphene.ObjectType):  # type: ignore[misc]
    cursor = graphene.String(required=True)
    node = graphene.Field(Series, required=True)


class PageInfo(graphene.ObjectType):  # type: ignore[misc]
    has_next_page = graphene.Boolean(required=True)
    end_cursor = graphene.String()


class SeriesConnection(graphene.ObjectType):  # type: ignore[misc]
    """One page of series; pass `pageInfo.endCursor` as `after` for the next."""

    total_count = graphene.Int(required=True)
    edges = graphene.List(graphene.NonNull(SeriesEdge), required=True)
    nodes = graphene.List(graphene.NonNull(Series), required=True)
    page_info = graphene.Field(PageInfo, required=True)

    @staticmethod
    def resolve_total_count(page: SeriesPage, _info: graphene.ResolveInfo) -> int:
        return page.total

    @staticmethod
    def resolve_edges(page: SeriesPage, _info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return [{"cursor": c, "node": n} for c, n in zip(page.cursors, page.nodes, strict=True)]

    @staticmethod
    def resolve_page_info(page: SeriesPage, _info: graphene.ResolveInfo) -> dict[str, Any]:
        return {"has_next_page": page.has_next, "end_cursor": page.end_cursor}


class SourceResultType(graphene.ObjectType):  # type: ignore[misc]
    """How one repository answered a cohort question."""

    class Meta:
        name = "SourceResult"

    source = graphene.String(required=True)
    status = graphene.String(required=True)
    count = graphene.Int()
    latency_ms = graphene.Float()
    message = graphene.String()
    granularity = graphene.String(required=True, description="record or count")
    suppressed = _flag("suppressed")


class Source(graphene.ObjectType):  # type: ignore[misc]
    """A registered repository: what it can do and what the index holds of it."""

    name = graphene.String(required=True)
    adapter = graphene.String(required=True)
    mode = graphene.String(required=True)
    access = graphene.String(required=True)
    status = graphene.String(required=True)
    message = graphene.String()
    series = graphene.Int()
    harvested_at = graphene.String()
    data_version = graphene.String()
    capabilities = graphene.Field(JSON)
    route = graphene.String(description="How it is served: index, live, not harvested, ...")


class SourcePlanType(graphene.ObjectType):  # type: ignore[misc]
    """How one repository would be asked: native request and what the hub applies after."""

    class Meta:
        name = "SourcePlan"

    source = graphene.String(required=True)
    route = graphene.String(
        required=True,
        description="index, live, cached, excluded by filter, circuit open, disabled or "
        "not harvested",
    )
    native = graphene.Field(JSON)
    residual = graphene.Field(JSON)
    description = graphene.String()
