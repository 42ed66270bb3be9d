"""GraphQL for saved cohorts: `saveCohort(filter, text)` and `savedCohort(id)`.

Kept beside `graphql_schema` (which mixes `CohortQueries` into its `Query` and serves
`Mutation`), so the contract's core stays readable. A saved cohort's `current` field
asks the question again only when a caller selects it.
"""

from __future__ import annotations

from typing import Any

import graphene

from hub.api.graphql_types import JSON, CountsType
from hub.saved_cohorts import CohortNotFound, CohortStore, Rerun, SavedCohort
from hub.service import Hub


def _store(info: graphene.ResolveInfo) -> CohortStore:
    hub: Hub = info.context["hub"]
    return CohortStore(hub)


def _pairs(counts: dict[str, int | None]) -> list[dict[str, Any]]:
    """Saved counts are released ones (hub/saved_cohorts.py): None is a suppressed count."""
    return [
        {"source": name, "count": count, "suppressed": count is None}
        for name, count in counts.items()
    ]


class SourceCount(graphene.ObjectType):  # type: ignore[misc]
    source = graphene.String(required=True)
    count = graphene.Int(description="null when suppressed (small-cell suppression)")
    suppressed = graphene.Boolean(required=True)


class DataVersionType(graphene.ObjectType):  # type: ignore[misc]
    """What one repository held when the cohort was answered."""

    class Meta:
        name = "DataVersion"

    source = graphene.String(required=True)
    mode = graphene.String(required=True)
    data_version = graphene.String()
    harvested_at = graphene.String()


class CohortRerun(graphene.ObjectType):  # type: ignore[misc]
    """The saved question asked again on the data the hub holds now."""

    counts = graphene.Field(CountsType, required=True)
    by_source = graphene.List(graphene.NonNull(SourceCount), required=True)
    counts_changed = graphene.Boolean(required=True)
    data_changed = graphene.Boolean(required=True)
    changed_sources = graphene.List(graphene.NonNull(graphene.String), required=True)
    data_versions = graphene.List(graphene.NonNull(DataVersionType), required=True)

    @staticmethod
    def resolve_by_source(root: Rerun, _info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return _pairs(root.by_source)


class SavedCohortType(graphene.ObjectType):  # type: ignore[misc]
    """A cohort kept under a stable id: filter, text, counts and the data versions it was
    answered on. Export its manifest again with `/export?cohort=<id>&format=...`."""

    class Meta:
        name = "SavedCohort"

    id = graphene.ID(required=True)
    filter = graphene.Field(JSON, required=True)
    text = graphene.String()
    counts = graphene.Field(CountsType, required=True)
    by_source = graphene.List(graphene.NonNull(SourceCount), required=True)
    sources = graphene.List(graphene.NonNull(graphene.String), required=True)
    data_versions = graphene.List(graphene.NonNull(DataVersionType), required=True)
    created_at = graphene.String(required=True)
    current = graphene.Field(CohortRerun, required=True, description="Asked again now")

    @staticmethod
    def resolve_by_source(root: SavedCohort, _info: graphene.ResolveInfo) -> list[dict[str, Any]]:
        return _pairs(root.by_source)

    @staticmethod
    def resolve_current(root: SavedCohort, info: graphene.ResolveInfo) -> Rerun:
        return _store(info).rerun(root.id)


class CohortQueries(graphene.ObjectType):  # type: ignore[misc]
    saved_cohort = graphene.Field(
        SavedCohortType,
        id=graphene.ID(required=True),
        description="A saved cohort by id; null when no cohort has that id",
    )

    @staticmethod
    def resolve_saved_cohort(
        _root: None, info: graphene.ResolveInfo, id: str
    ) -> SavedCohort | None:
        try:
            return _store(info).get(id)
        except CohortNotFound:
            return None


class CohortMutations(graphene.ObjectType):  # type: ignore[misc]
    save_cohort = graphene.Field(
        SavedCohortType,
        required=True,
        filter=JSON(),
        text=graphene.String(),
        description="Answer a cohort and keep it under a stable id (same cohort, same data: "
        "same id)",
    )

    @staticmethod
    def resolve_save_cohort(
        _root: None, info: graphene.ResolveInfo, filter: Any = None, text: str | None = None
    ) -> SavedCohort:
        return _store(info).save(filter, text)
