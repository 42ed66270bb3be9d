"""The adapter SPI: what a repository adapter declares and does.

An adapter declares what it can do as data (`Capabilities`) and does only
source-specific work: translate the filter AST into its native request, and stream
canonical records. Retries, timeouts, circuit breaking and concurrency belong to the
hub; an adapter only says, through the type of error it raises, whether trying again
could help (`TransientSourceError`) or not (`TerminalSourceError`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schema.errors import Terminal, Transient
from schema.filters import MATCH_ALL, And, Compare, In, IsMissing, Node, Or, Search

Operator = Literal["=", "!=", "IN", "EXCLUDES", ">", ">=", "<", "<=", "is_missing", "search"]
ALL_OPERATORS: frozenset[str] = frozenset(
    ["=", "!=", "IN", "EXCLUDES", ">", ">=", "<", "<=", "is_missing", "search"]
)


class PagingStyle(StrEnum):
    """How a source hands out a large answer (published by `sources`; the conformance kit
    checks that the pages `search` hands back follow it)."""

    NONE = "none"  # one response holds everything: no next page, ever
    OFFSET = "offset"  # limit/offset (DICOMweb, Guppy inside its window): `Page.next_offset`
    CURSOR = "cursor"  # an opaque continuation token: `Page.next_cursor`


class Support(StrEnum):
    """How well a source evaluates one operator on one field: the planner's three grades."""

    EXACT = "exact"
    """The source selects exactly the matching records; the hub does not re-check."""
    PARTIAL = "partial"
    """The source can narrow by it but may return extra records (case-insensitive matching,
    dates compared as strings): sent as a pre-filter AND kept in the residual."""
    NONE = "none"
    """The source cannot evaluate it: it stays in the residual, applied by the hub."""


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a source can do, as data the planner checks instead of guessing; every field is
    named where it is declared (`Capabilities(harvest=True, live_search=False, ...)`)."""

    harvest: bool
    """Can list every series, so the hub can keep a full copy in its index."""
    live_search: bool
    """Can answer a translated filter on demand."""
    pushdown: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per canonical field, the operators the native API evaluates exactly; the rest is residual."""
    paging: PagingStyle = PagingStyle.NONE
    """How large answers are paged."""
    max_page_size: int | None = None
    """Largest page the source accepts; None when it has no limit."""
    text_search: bool = False
    """Evaluates `search` natively over the fields listed in `pushdown`."""
    prefilter: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per canonical field, operators the source can only narrow by (`Support.PARTIAL`): the
    adapter may send them, and must also leave them in the residual for the hub to re-check."""
    max_values: int | None = None
    """Most values one IN/EXCLUDES condition may send; a longer list stays residual. None: no
    limit."""

    def pushes_down_exactly(self, field_name: str, operator: str) -> bool:
        """True when the source evaluates `operator` on `field_name` exactly (grade EXACT):
        the condition may leave the residual."""
        return operator in self.pushdown.get(field_name, frozenset())

    def grade(self, field_name: str, operator: str) -> Support:
        """The grade of `operator` on `field_name`: exact, partial (pre-filter) or none."""
        if self.pushes_down_exactly(field_name, operator):
            return Support.EXACT
        if operator in self.prefilter.get(field_name, frozenset()):
            return Support.PARTIAL
        return Support.NONE

    def graded(self) -> dict[str, dict[str, str]]:
        """Every declared field → operator → grade, for listings and documentation."""
        fields = sorted({*self.pushdown, *self.prefilter})
        return {
            f: {
                op: self.grade(f, op).value
                for op in sorted({*self.pushdown.get(f, ()), *self.prefilter.get(f, ())})
            }
            for f in fields
        }


@dataclass(frozen=True)
class Translation:
    """A filter turned into a source's native request.

    `native` is what would be sent (JSON-serialisable, secrets never included);
    `residual` is the part the source cannot express, applied by the hub after
    fetching (Trino's `remainingFilter`); `description` is for people (`explain`).
    """

    native: Any
    residual: Node | None
    description: str


@dataclass(frozen=True)
class Page:
    """Which slice of a live answer to fetch; `token` continues a cursor-paged source."""

    size: int = 1000
    offset: int = 0
    token: str | None = None

    def next_offset(self, sent: int) -> Page | None:
        """The offset page after this one, or None when this one was the last.

        `sent` is how many rows the SOURCE sent for this page, not how many records the
        adapter kept: a page with a skipped row (no series UID, say) is still a full page, and
        deciding from the kept records would stop early and lose the rest."""
        return Page(size=self.size, offset=self.offset + self.size) if sent >= self.size else None

    def next_cursor(self, token: str | None) -> Page | None:
        """The page the source's continuation token opens; None when it sent none (the end)."""
        return Page(size=self.size, token=token) if token else None


@dataclass(frozen=True)
class PageResult:
    """One page of a live answer and, with it, where the answer continues.

    `next_page` is None after the last page. The hub asks for `next_page` next, and asks
    for the same page again when fetching it failed, so a page's continuation never has to
    be remembered anywhere else."""

    batches: Sequence[pa.RecordBatch]
    next_page: Page | None = None


class AdapterError(Exception):
    """Base of errors an adapter raises on purpose; messages must never contain secrets.

    Their text becomes the source's status message (redacted). Anything else an adapter
    raises is a bug: the hub's fetch boundary logs it and reports a generic message."""


class TransientSourceError(AdapterError, Transient):
    """Trying again may help: timeouts, dropped connections, 429, 5xx."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TerminalSourceError(AdapterError, Terminal):
    """Trying again will not help: bad credentials, 4xx, a malformed answer, bad config."""


class SourceSettings(BaseModel):
    """One `[sources.NAME]` table of the hub config, as the adapter receives it."""

    model_config = ConfigDict(extra="allow")

    name: str
    adapter: str
    mode: Literal["harvest", "live"] = "harvest"
    url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    cache_ttl_s: float = Field(default=300.0, ge=0)
    credentials_env: str | None = None
    access: Literal["open", "registered", "controlled"] = "open"
    priority: int = 100

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not value.replace("_", "").replace("-", "").isalnum() or len(value) > 64:
            raise ValueError("source names use letters, digits, '-' and '_' (at most 64)")
        return value

    def option(self, key: str, default: Any = None) -> Any:
        """An adapter-specific setting from the same table."""
        return (self.model_extra or {}).get(key, default)


class Adapter(abc.ABC):
    """Base class of every repository adapter, found through entry point group
    `imaging_hub.adapters`."""

    capabilities: Capabilities
    """Declared per class; an instance may narrow it from its settings (the match keys a
    server supports, the fields a commons maps), before the planner reads it."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @abc.abstractmethod
    def translate(self, node: Node) -> Translation:
        """Compile the filter into the native request plus what stays residual."""

    async def search(self, translation: Translation, page: Page) -> PageResult:
        """ONE page of a translated filter (live sources) as canonical Arrow batches (see
        `adapters.batch`), with the page that follows it (`Page.next_offset`,
        `Page.next_cursor`; None after the last).

        The hub drives the paging loop, so it can retry a failed page and resume from the
        last good one: a search fetches one page and never loops, retries or sleeps."""
        raise TerminalSourceError(f"source {self.name!r} cannot search live")

    def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        """Stream every series the source holds, in batches (harvestable sources)."""
        raise TerminalSourceError(f"source {self.name!r} cannot be harvested")

    def data_version(self) -> str | None:
        """The repository's own version of its data, when it has one (e.g. IDC v21)."""
        return None

    def estimated_total(self) -> int | None:
        """Number of series a harvest will yield, for progress bars; None if unknown."""
        return None

    async def probe(self) -> None:
        """Ask the source one small question before it goes live, so a wrong URL, refused
        credentials or a broken server are caught at registration, not at the first cohort.

        The default asks for one MATCH_ALL page of size 1, or reads the first record of a
        harvest for sources that cannot search live, and lets the adapter's typed error
        (`TransientSourceError`/`TerminalSourceError`) propagate; it tries once, the hub's
        retries do not apply. Override it when a cheaper health call exists."""
        if self.capabilities.live_search:
            await self.search(self.translate(MATCH_ALL), Page(size=1))
            return
        if not self.capabilities.harvest:
            raise TerminalSourceError(f"source {self.name!r} can neither search nor harvest")
        records = self.harvest()
        try:
            await anext(aiter(records), None)
        finally:
            close = getattr(records, "aclose", None)
            if close is not None:
                await close()

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release clients and connections."""


def split_pushdown(node: Node, pushable: Callable[[Node], bool]) -> tuple[Node, Node | None]:
    """Split a filter into (pushed, residual) so that pushed AND residual == node.

    Conjunctions split child by child; a disjunction is pushed only when every branch
    is, otherwise it stays residual whole (pushing half of an OR would drop records).
    """
    if isinstance(node, And):
        pushed: list[Node] = []
        residual: list[Node] = []
        for child in node.children:
            p, r = split_pushdown(child, pushable)
            if p != MATCH_ALL:
                pushed.append(p)
            if r is not None:
                residual.append(r)
        return _conjoin(pushed), (_conjoin(residual) if residual else None)
    if isinstance(node, Or):
        if all(split_pushdown(c, pushable)[1] is None for c in node.children):
            return node, None
        return MATCH_ALL, node
    return (node, None) if pushable(node) else (MATCH_ALL, node)


def _conjoin(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def operator_of(node: Node) -> str:
    """The Guppy operator name of a leaf node."""
    if isinstance(node, Compare):
        return node.op
    if isinstance(node, In):
        return "EXCLUDES" if node.negated else "IN"
    if isinstance(node, IsMissing):
        return "is_missing"
    if isinstance(node, Search):
        return "search"
    raise TypeError(f"{type(node).__name__} is not a leaf")


def pushable_by(capabilities: Capabilities) -> Callable[[Node], bool]:
    """The leaf test `split_pushdown` needs, from declared capabilities."""

    def check(node: Node) -> bool:
        if isinstance(node, Search):
            return capabilities.text_search and all(
                capabilities.pushes_down_exactly(f, "search") for f in node.fields
            )
        if isinstance(node, Compare | In | IsMissing):
            return capabilities.pushes_down_exactly(node.field, operator_of(node))
        return False

    return check
