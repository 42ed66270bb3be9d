"""Names of the hub's indices and aliases, and reading them back from the cluster.

- `<prefix>-<source>-<utc stamp>`: one index per source per harvest;
- `<prefix>-<source>`: alias on the source's current index (moved atomically);
- `<prefix>-all`: the read alias every query goes to (current harvested indices,
  live indices, and an empty index so it exists before the first harvest);
- `<prefix>-live-<source>`: the answers of a live source;
- `<prefix>-level-studies-<stamp>` / `<prefix>-level-patients-<stamp>`: one document per
  study / patient with its series nested (exact distinct counts, see `levels.py`),
  behind the aliases `<prefix>-level-studies` / `<prefix>-level-patients` (not behind
  the read alias: series queries never see them). Source names have no `-`, so no
  source's alias can be a level's.

Every index records what it is in its mapping `_meta` (`prefix`, `kind`, `source`,
snapshot facts), so the hub recognises its own indices without parsing names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import AsyncElasticsearch

from hub.index.elastic.errors import guarded
from hub.index.elastic.settings import ElasticSettings, check_source_name

LEVELS = ("studies", "patients")


@dataclass(frozen=True)
class IndexInfo:
    name: str
    meta: dict[str, Any]
    aliases: frozenset[str] = field(default_factory=frozenset)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", ""))

    @property
    def source(self) -> str:
        return str(self.meta.get("source", ""))


@dataclass(frozen=True)
class Served:
    """The indices behind the read alias at one moment."""

    key: str
    indices: tuple[IndexInfo, ...]
    levels: tuple[IndexInfo, ...] = ()
    """The level indices behind their aliases at that moment (see `levels.py`)."""


class Layout:
    """Index and alias names under one prefix."""

    def __init__(self, settings: ElasticSettings) -> None:
        self.settings = settings
        self.prefix = settings.index_prefix
        self.read_alias = f"{self.prefix}-all"
        self.empty_index = f"{self.prefix}-empty"

    def source_alias(self, source: str) -> str:
        return f"{self.prefix}-{check_source_name(source)}"

    def new_index(self, source: str) -> str:
        return f"{self.prefix}-{check_source_name(source)}-{_stamp()}"

    def level_alias(self, level: str) -> str:
        return f"{self.prefix}-level-{level}"

    def new_level_index(self, level: str) -> str:
        return f"{self.level_alias(level)}-{_stamp()}"

    def live_index(self, source: str) -> str:
        return f"{self.prefix}-live-{check_source_name(source)}"

    def meta(self, kind: str, source: str | None = None, **facts: Any) -> dict[str, Any]:
        return {
            "hub": "imaging-hub",
            "prefix": self.prefix,
            "kind": kind,
            "source": source,
            **facts,
        }

    async def indices(self, client: AsyncElasticsearch) -> list[IndexInfo]:
        """The hub's indices under this prefix, with their `_meta` and aliases."""
        pattern = f"{self.prefix}-*"
        mappings = await guarded(self.settings, lambda: client.indices.get_mapping(index=pattern))
        aliases = await guarded(self.settings, lambda: client.indices.get_alias(index=pattern))
        found = []
        for name, body in mappings.body.items():
            meta = (body.get("mappings") or {}).get("_meta") or {}
            if meta.get("prefix") != self.prefix:  # another deployment's longer prefix
                continue
            names = frozenset((aliases.body.get(name) or {}).get("aliases") or {})
            found.append(IndexInfo(name, meta, names))
        return sorted(found, key=lambda i: i.name)

    async def serving(self, client: AsyncElasticsearch) -> list[IndexInfo]:
        """Indices behind the read alias."""
        return [i for i in await self.indices(client) if self.read_alias in i.aliases]

    def served_levels(self, indices: list[IndexInfo]) -> list[IndexInfo]:
        """Level indices behind their level's alias."""
        return [
            i
            for i in indices
            if i.kind == "level" and self.level_alias(str(i.meta.get("level"))) in i.aliases
        ]


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dt%H%M%S%f")
