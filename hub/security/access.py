"""Per-source access levels: which granularity each caller gets from each repository.

In the spirit of GA4GH Beacon v2 (`returnedGranularity`: boolean, count, record) and of
Gen3 Guppy tier access (a `regular` commons shows aggregations to everyone and records
only to the authorised), every source configures `access`:

- `open`: records for everyone;
- `registered`: records for authenticated callers (role reader or above), counts for
  anonymous ones;
- `controlled`: counts only, unless the caller's token authorises that source.

Admins follow the same rules: running the hub is not a data-access grant. A source in
the index that the configuration no longer names gets counts (fail closed).

An `AccessPlan` is one caller's view of the sources. It rewrites a cohort question into
the question for record-level output (`records_query`: the filter AND "held by a source
this caller sees as records"), and says which counts must go through small-cell
suppression (`hub.security.suppression`). A series held by an open and a controlled
source is one merged series listing both: its open copy makes it visible, so it is shown,
but with the controlled source left out of `sources` and `locations` (`scrub`): whether
a controlled repository also holds a series is itself not shown to a counts-only caller.

Filters are read in that same world (`as_seen`): for a caller who gets only counts of a
source, that source holds only the series no visible source holds, so `source = ctrl`
never selects a series the caller can list, and no count that combines it moves with
which visible series `ctrl` also holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.index.base import CohortQuery
from hub.security.identity import Caller, Role
from schema.filters import And, Compare, In, Node, Or, Search
from schema.record import TEXT_FIELDS

ACCESS_LEVELS = ("open", "registered", "controlled")


class Granularity(StrEnum):
    """What a caller gets from one source (Beacon v2 `returnedGranularity` words)."""

    RECORD = "record"
    COUNT = "count"


def granularity(source: str, access: str, caller: Caller) -> Granularity:
    """The granularity `caller` gets from `source`."""
    if access == "open":
        return Granularity.RECORD
    if access == "registered" and caller.authenticated:
        return Granularity.RECORD
    if access in ("registered", "controlled") and source in caller.authorized_sources:
        return Granularity.RECORD
    return Granularity.COUNT


@dataclass(frozen=True)
class SourceAccess:
    """One line of the answer's `access` list."""

    source: str
    access: str
    granularity: Granularity


@dataclass(frozen=True)
class AccessPlan:
    """One caller's granularity for every source the hub knows."""

    sources: tuple[SourceAccess, ...]

    @property
    def visible(self) -> frozenset[str]:
        """Sources whose records this caller may see."""
        return frozenset(s.source for s in self.sources if s.granularity is Granularity.RECORD)

    @property
    def restricted(self) -> frozenset[str]:
        """Sources that give this caller counts only."""
        return frozenset(s.source for s in self.sources if s.granularity is Granularity.COUNT)

    def granularity_of(self, source: str) -> Granularity:
        return Granularity.RECORD if source in self.visible else Granularity.COUNT

    @property
    def ranked(self) -> bool:
        """Whether free text may be ranked by BM25 for this caller. BM25's statistics
        (document frequency, average length) are taken over the whole index, hidden
        series included, so a visible series' score, or only the order of two, moves
        with how many hidden series use a word. Counts-only callers therefore get free
        text as a filter (the same series match), in browse order, with no score."""
        return not self.restricted

    def only_visible(self, node: Node) -> bool:
        """Whether every series `node` selects is held by a visible source, whatever the
        data: the filter requires `source` to be among them (directly, in every branch
        of an OR, or in any part of an AND). Then no count of it can be hidden."""
        match node:
            case Compare("=", "source", value):
                return value in self.visible
            case In("source", values, False):
                return all(v in self.visible for v in values)
            case And(children):
                return any(self.only_visible(c) for c in children)
            case Or(children):
                return bool(children) and all(self.only_visible(c) for c in children)
        return False

    def restricted_scope(self, node: Node) -> bool:
        """Whether counts of `node` may include hidden series (decided from the filter
        and the configuration, never from the data, so that whether a count is rounded
        says nothing about what it counts)."""
        return bool(self.restricted) and not self.only_visible(node)

    def as_seen(self, node: Node) -> Node:
        """`node` with every `source` condition read as this caller sees holdings: a
        counts-only source holds only the series that no visible source holds (a visible
        series is shown without it, see `scrub`). Otherwise `source = ctrl` would list
        the visible series `ctrl` also holds, and padding a small cell with them would
        walk `ctrl`'s rounded count across a multiple of k. Series no visible source
        holds are selected exactly as before, so hidden parts do not change."""
        if not self.restricted or not self.visible:
            return node
        return self._as_seen(node)

    def _as_seen(self, node: Node) -> Node:
        listed = tuple(sorted(self.visible))
        seen, unseen = In("source", listed), In("source", listed, negated=True)
        match node:
            case Compare("=", "source", value) if value in self.restricted:
                return And((node, unseen))
            case Compare("!=", "source", value) if value in self.restricted:
                return Or((node, seen))
            case In("source", values, negated) if any(v in self.restricted for v in values):
                hidden = tuple(v for v in values if v in self.restricted)
                rest = tuple(v for v in values if v not in self.restricted)
                if not negated:  # held by a named visible source, or only by hidden ones
                    part: Node = And((In("source", hidden), unseen))
                    return Or((In("source", rest), part)) if rest else part
                part = Or((In("source", hidden, negated=True), seen))
                return And((In("source", rest, negated=True), part)) if rest else part
            case And(children):
                return And(tuple(self._as_seen(c) for c in children))
            case Or(children):
                return Or(tuple(self._as_seen(c) for c in children))
        return node

    def counts_query(self, query: CohortQuery) -> CohortQuery:
        """The question whose counts are taken: `source` conditions read as this caller
        sees holdings (`as_seen`), and free text a filter when it may not be ranked (see
        `ranked`)."""
        node = self.as_seen(query.filter)
        if self.ranked or not query.text or not query.text.strip():
            return query if node == query.filter else CohortQuery(node, query.text)
        return CohortQuery(And((node, Search(query.text.strip(), TEXT_FIELDS))))

    def records_query(self, query: CohortQuery) -> CohortQuery | None:
        """The question for record-level output: only series some visible source holds.
        None when this caller sees no source as records."""
        counted = self.counts_query(query)
        if not self.restricted_scope(counted.filter):
            return counted
        if not self.visible:
            return None
        held = In("source", tuple(sorted(self.visible)))
        return CohortQuery(And((counted.filter, held)), counted.text)

    def scrub(self, record: dict[str, Any]) -> dict[str, Any]:
        """A visible record without what counts-only sources add to it: their names in
        `sources`, their `locations`, and their URLs when their copy won the merge."""
        if not self.restricted:
            return record
        visible = self.visible
        out = dict(record)
        if isinstance(out.get("sources"), list):
            out["sources"] = [s for s in out["sources"] if s in visible]
        if isinstance(out.get("locations"), list):
            out["locations"] = [loc for loc in out["locations"] if loc.get("source") in visible]
        if out.get("source") is not None and out["source"] not in visible:
            holders = out.get("sources") or []
            out["source"] = holders[0] if holders else None
            for key in ("download_url", "viewer_url"):
                if key in out:
                    out[key] = None
        return out


def plan_access(
    levels: Mapping[str, str], caller: Caller, indexed: Iterable[str] = ()
) -> AccessPlan:
    """The plan for `caller` given each configured source's `access` level; sources in
    `indexed` the configuration does not name get counts."""
    sources = [
        SourceAccess(name, level, granularity(name, level, caller))
        for name, level in levels.items()
    ]
    sources += [
        SourceAccess(name, "unconfigured", Granularity.COUNT)
        for name in sorted(set(indexed) - set(levels))
    ]
    return AccessPlan(tuple(sources))


def operator(sources: Iterable[str]) -> Caller:
    """The caller of the local command line: whoever runs it reads the data directory,
    snapshots included, so it gets records from every configured source."""
    return Caller("operator (command line)", Role.ADMIN, frozenset(sources))
