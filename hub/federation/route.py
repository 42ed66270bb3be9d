"""Which way one question reaches one source, decided in one place.

The planner (what to fetch), `explain` (what would be asked), `sources` (how each is
served) and harvesting (what to copy) all read `route`, so they cannot disagree: a source
`explain` calls `index` is never fetched, and one the filter excludes is neither asked nor
counted against its circuit breaker. The rule, in order:

1. disabled in the source registry: `disabled`;
2. the filter's `source` conditions exclude every record it could contribute:
   `excluded by filter` (schema/source_conditions.py);
3. a live source (mode `live`, and it can search live): `cached` while an answer to the
   same native request is fresh, `circuit open` while its breaker is open, else `live`;
4. otherwise the index: `index` once harvested, `not harvested` before.

Config refuses a mode the adapter cannot serve (`mode_problem`), so 3 and 4 never meet a
source that would fail on every question.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from adapters.spi import Capabilities, SourceSettings
from hub.federation.status import SourceState
from hub.index.base import SourceSnapshotInfo
from schema.filters import Node
from schema.source_conditions import can_match


class RouteKind(StrEnum):
    """How a source takes part in a question (`explain.route`, `sources.route`)."""

    INDEX = "index"
    """Answered from the harvested copy in the index."""
    LIVE = "live"
    """Asked now, under its deadline."""
    CACHED = "cached"
    """Answered from its fresh answer to the same native request; not asked again."""
    EXCLUDED = "excluded by filter"
    """The filter's `source` conditions exclude it: not asked, not counted by its breaker."""
    CIRCUIT_OPEN = "circuit open"
    """Failing lately: not asked until its circuit breaker lets a probe through."""
    DISABLED = "disabled"
    """Disabled in the source registry."""
    NOT_HARVESTED = "not harvested"
    """A harvested source with no copy in the index yet."""


HARVESTED = frozenset({RouteKind.INDEX, RouteKind.NOT_HARVESTED})
"""Routes of sources the hub keeps a copy of (what `imaging-hub harvest` harvests)."""


@dataclass(frozen=True)
class Route:
    """One source's route for one question, with a message for people."""

    source: str
    kind: RouteKind
    message: str

    @property
    def asks(self) -> bool:
        """Whether the source is fetched for this question."""
        return self.kind is RouteKind.LIVE

    @property
    def state(self) -> SourceState | None:
        """The `bySource` status of a source this route does not ask; None when the
        answer decides it (a fetch, or the index)."""
        if self.kind is RouteKind.DISABLED:
            return SourceState.DISABLED
        if self.kind in (RouteKind.EXCLUDED, RouteKind.CIRCUIT_OPEN, RouteKind.NOT_HARVESTED):
            return SourceState.SKIPPED
        return None


def route(
    settings: SourceSettings,
    capabilities: Capabilities | None,
    node: Node,
    *,
    snapshot: SourceSnapshotInfo | None = None,
    circuit: str = "closed",
    fresh: bool = False,
    disabled: str | None = None,
) -> Route:
    """The route of source `settings.name` for filter `node` (free text included).

    `snapshot`: what the index holds of it (None: no copy); `circuit`:
    its breaker's state (`closed`, `half-open`, `open`); `fresh`: whether the planner holds
    a fresh answer to this question's native request; `disabled`: the registry's reason."""
    name = settings.name
    if disabled is not None or capabilities is None:
        return Route(name, RouteKind.DISABLED, disabled or "disabled")
    if not can_match(node, name):
        return Route(
            name,
            RouteKind.EXCLUDED,
            f"not asked: the filter's source conditions exclude {name}",
        )
    if is_live(settings, capabilities):
        if fresh:  # a fresh answer serves even while the source is failing
            return Route(name, RouteKind.CACHED, "answered from the cache")
        if circuit == "open":
            return Route(name, RouteKind.CIRCUIT_OPEN, circuit_open_message(name))
        return Route(name, RouteKind.LIVE, f"asked live (deadline {settings.timeout_s:g} s)")
    if snapshot is None:
        return Route(
            name,
            RouteKind.NOT_HARVESTED,
            f"not harvested yet; run `imaging-hub harvest {name}`",
        )
    when = f" (harvested {snapshot.harvested_at})" if snapshot.harvested_at else ""
    return Route(name, RouteKind.INDEX, f"answered from the index{when}")


def circuit_open_message(name: str) -> str:
    return f"{name} is failing; circuit breaker open"


def is_live(settings: SourceSettings, capabilities: Capabilities) -> bool:
    """A source asked per question rather than harvested."""
    return settings.mode == "live" and capabilities.live_search


def mode_problem(settings: SourceSettings, capabilities: Capabilities) -> str | None:
    """Why the source's `mode` cannot work with its adapter, or None when it can."""
    name, adapter = settings.name, settings.adapter
    if settings.mode == "live" and not capabilities.live_search:
        other = '; use mode = "harvest"' if capabilities.harvest else ""
        return (
            f'[sources.{name}] sets mode = "live", but adapter {adapter!r} cannot search '
            f"live{other}"
        )
    if settings.mode == "harvest" and not capabilities.harvest:
        other = '; use mode = "live"' if capabilities.live_search else ""
        return (
            f'[sources.{name}] sets mode = "harvest", but adapter {adapter!r} cannot harvest{other}'
        )
    return None
