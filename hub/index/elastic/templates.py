"""Composable index templates: every index the hub creates gets its mapping and layout.

One template per kind of index under the prefix, so an index takes shards, replicas
and its strict mapping from the cluster itself, whoever creates it (a publish, a live
answer, an operator's reindex, or a bulk write that re-creates a deleted live index):

- `<prefix>-*`: series indices (one per source per harvest, and the empty one);
- `<prefix>-live-*`: live answers (their mapping adds `priority` and `own`);
- `<prefix>-level-studies-*`, `<prefix>-level-patients-*`: the level indices.

Source names have no `-` (settings.SOURCE_NAME), so no source's index matches a longer
pattern. Where patterns overlap, the longer (more specific) one must win, and servers
refuse two overlapping templates of the same priority: the priority is the pattern's
length (above `PRIORITY_BASE`, so that an operator's catch-all templates yield). The
templates are written at every publish and before a live index is created; writing
them again with the same body changes nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from elasticsearch import AsyncElasticsearch

from hub.index.elastic.errors import guarded
from hub.index.elastic.layout import LEVELS, Layout
from hub.index.elastic.levels import level_mappings
from hub.index.elastic.mapping import layout_settings, mappings
from hub.index.elastic.settings import ElasticSettings

PRIORITY_BASE = 1_000


def templates(settings: ElasticSettings) -> dict[str, dict[str, Any]]:
    """Template name → (pattern, priority, template body), by kind of index."""
    layout = Layout(settings)
    common = layout_settings(settings)
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "series": (f"{layout.prefix}-*", mappings()),
        "live": (f"{layout.prefix}-live-*", mappings(live=True)),
    }
    for level in LEVELS:
        bodies[f"level-{level}"] = (f"{layout.level_alias(level)}-*", level_mappings())
    return {
        f"{layout.prefix}-{kind}": {
            "index_patterns": [pattern],
            "priority": PRIORITY_BASE + len(pattern),
            "template": {"settings": common, "mappings": body},
        }
        for kind, (pattern, body) in bodies.items()
    }


async def ensure_templates(client: AsyncElasticsearch, settings: ElasticSettings) -> None:
    """Write the templates (idempotent: the same body again changes nothing)."""
    for name, body in templates(settings).items():
        await guarded(settings, partial(client.indices.put_index_template, name=name, **body))


async def delete_templates(client: AsyncElasticsearch, settings: ElasticSettings) -> None:
    """Remove the prefix's templates (`ElasticIndex.drop`)."""
    quiet = client.options(ignore_status=404)
    for name in templates(settings):
        await guarded(settings, partial(quiet.indices.delete_index_template, name=name))
