"""Admin-only GraphQL mutations that change the hub's sources at runtime.

`registerSource(name, settings)`, `updateSource(name, settings)`,
`setSourceEnabled(name, enabled)`, `removeSource(name)` and `harvestSource(name)`, thin
over `hub.registry.admin.SourcesAdmin`. Each refuses a caller without the admin role
("admin role required ...") before reading its arguments. `harvestSource` returns when
the harvest has finished and the index is rebuilt (see the admin module for why).
"""

from __future__ import annotations

from typing import Any

import graphene

from hub.api.graphql_types import JSON
from hub.registry.admin import SourceChange, SourcesAdmin
from hub.security.auth import require_admin
from hub.security.identity import caller_of
from hub.service import Hub


def _admin(info: graphene.ResolveInfo, action: str) -> SourcesAdmin:
    require_admin(caller_of(info.context), action)
    hub: Hub = info.context["hub"]
    return SourcesAdmin.of(hub)


class SourceChangeType(graphene.ObjectType):  # type: ignore[misc]
    """What a source administration mutation did."""

    class Meta:
        name = "SourceChange"

    source = graphene.String(required=True)
    action = graphene.String(
        required=True, description="registered, updated, enabled, disabled, removed, harvested"
    )
    message = graphene.String(required=True)
    enabled = graphene.Boolean(required=True)
    series = graphene.Int(description="Series harvested (harvestSource only)")


def _name() -> graphene.String:
    return graphene.String(required=True, description="The source's name, as in [sources.NAME]")


class SourceMutations(graphene.ObjectType):  # type: ignore[misc]
    register_source = graphene.Field(
        SourceChangeType,
        required=True,
        args={"name": _name(), "settings": JSON(required=True)},
        description="Admin: add a source (settings as a [sources.NAME] table in JSON); it is "
        "validated and probed before it goes live, and kept across restarts",
    )
    update_source = graphene.Field(
        SourceChangeType,
        required=True,
        args={"name": _name(), "settings": JSON(required=True)},
        description="Admin: change a runtime source; the given keys replace the current ones "
        "(null removes one), then it is validated and probed again",
    )
    set_source_enabled = graphene.Field(
        SourceChangeType,
        required=True,
        args={"name": _name(), "enabled": graphene.Boolean(required=True)},
        description="Admin: disable (skipped, reported as disabled) or enable any source",
    )
    remove_source = graphene.Field(
        SourceChangeType,
        required=True,
        args={"name": _name()},
        description="Admin: remove a runtime source (config-file sources can only be disabled)",
    )
    harvest_source = graphene.Field(
        SourceChangeType,
        required=True,
        args={"name": _name()},
        description="Admin: harvest one source and rebuild the index; returns when finished",
    )

    @staticmethod
    def resolve_register_source(
        _root: None, info: graphene.ResolveInfo, name: str, settings: Any
    ) -> SourceChange:
        return _admin(info, "register sources").register(name, settings)

    @staticmethod
    def resolve_update_source(
        _root: None, info: graphene.ResolveInfo, name: str, settings: Any
    ) -> SourceChange:
        return _admin(info, "update sources").update(name, settings)

    @staticmethod
    def resolve_set_source_enabled(
        _root: None, info: graphene.ResolveInfo, name: str, enabled: bool
    ) -> SourceChange:
        return _admin(info, "enable or disable sources").set_enabled(name, enabled)

    @staticmethod
    def resolve_remove_source(_root: None, info: graphene.ResolveInfo, name: str) -> SourceChange:
        return _admin(info, "remove sources").remove(name)

    @staticmethod
    def resolve_harvest_source(_root: None, info: graphene.ResolveInfo, name: str) -> SourceChange:
        return _admin(info, "trigger harvests").harvest(name)
