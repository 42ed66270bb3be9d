"""A harvested source disabled, enabled or removed at runtime (hub/registry) stops or
starts answering on the cluster at once, exactly as on the embedded index.

Both hubs run the real `SourcesAdmin` over the same two harvested sources (real IDC
slices; TCIA holds some of IDC's series); after every change the cluster must answer
what the embedded hub answers, and a source that left must have no index behind any
alias.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest

import hub.registry.admin
import hub.service
from adapters.batch import ARROW_SCHEMA
from adapters.spi import Adapter, Capabilities, SourceSettings, Translation
from hub.config import HubConfig, HubSettings, IndexTables
from hub.index.elastic.backend import ElasticIndex
from hub.registry.admin import SourcesAdmin
from hub.service import Hub
from schema.filters import Node
from tests.elastic.slices import answers, as_source, renamed

FILTERS = [None, {"=": {"source": "tcia"}}, {"=": {"modality": "MR"}}]


class TableAdapter(Adapter):
    """Harvests the table kept for its source name (no network)."""

    capabilities = Capabilities(harvest=True, live_search=False)
    tables: ClassVar[dict[str, pa.Table]] = {}

    def translate(self, node: Node) -> Translation:
        return Translation(native=None, residual=node, description="test adapter")

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        for batch in self.tables[self.name].cast(ARROW_SCHEMA).to_batches(max_chunksize=50):
            yield batch

    async def probe(self) -> None:
        return None


@pytest.fixture()
def hubs(
    kits: pa.Table,
    tmp_path: Path,
    make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Hub, Hub]]:
    """(embedded hub, cluster hub), both harvested from the same tables."""
    for module in (hub.service, hub.registry.admin):
        monkeypatch.setattr(module, "discover_adapters", lambda: {"table": TableAdapter})
    TableAdapter.tables = {
        "idc": kits.slice(0, 150),
        "tcia": pa.concat_tables(
            [
                as_source(kits.slice(100, 50), "tcia", modality="MR"),
                as_source(renamed(kits.slice(0, 40), ".7"), "tcia"),
            ]
        ),
    }
    sources = {
        name: SourceSettings(name=name, adapter="table", mode="harvest", priority=priority)
        for name, priority in (("idc", 10), ("tcia", 50))
    }
    made = []
    for index, folder in (("embedded", "embedded"), ("elasticsearch", "cluster")):
        config = HubConfig(
            hub=HubSettings(data_dir=tmp_path / folder, index=index),  # type: ignore[arg-type]
            sources=sources,
            index=IndexTables(elasticsearch=make_elastic().settings),
        )
        made.append(Hub(config))
        asyncio.run(made[-1].harvest())
    yield made[0], made[1]
    for h in made:
        asyncio.run(h.aclose())


def _same(embedded: Hub, cluster: Hub) -> None:
    for filter_json in FILTERS:
        assert answers(cluster.index, filter_json) == answers(embedded.index, filter_json)


def _published(cluster: Hub) -> dict[str, list[str]]:
    """Harvested indices by source, with their aliases."""
    index = cluster.index
    assert isinstance(index, ElasticIndex)

    async def found() -> dict[str, list[str]]:
        infos = await index.layout.indices(await index.client())
        return {i.source: sorted(i.aliases) for i in infos if i.kind == "harvest"}

    return index.runner.run(found())


def test_a_disabled_source_stops_answering_on_both_backends(hubs: tuple[Hub, Hub]) -> None:
    embedded, cluster = hubs
    assert cluster.cohort({"=": {"source": "tcia"}}, None).view.counts().series == 90
    _same(embedded, cluster)

    for h in hubs:
        assert SourcesAdmin.of(h).set_enabled("tcia", False).action == "disabled"
    assert cluster.cohort({"=": {"source": "tcia"}}, None).view.counts().series == 0
    assert cluster.cohort(None, None).view.counts().series == 150
    statuses = {r.source: r.status for r in cluster.by_source(cluster.cohort(None, None))}
    assert statuses == {"idc": "ok", "tcia": "disabled"}
    assert list(_published(cluster)) == ["idc"]  # no index of tcia behind any alias
    _same(embedded, cluster)  # IDC's copies of the series TCIA shared are IDC's own again

    for h in hubs:
        assert SourcesAdmin.of(h).set_enabled("tcia", True).action == "enabled"
    assert cluster.cohort({"=": {"source": "tcia"}}, None).view.counts().series == 90
    prefix = cluster.config.index.elasticsearch.index_prefix  # type: ignore[union-attr]
    assert _published(cluster)["tcia"] == [f"{prefix}-all", f"{prefix}-tcia"]
    _same(embedded, cluster)

    for h in hubs:  # disabling the last source leaves an empty, answering index
        for name in ("idc", "tcia"):
            SourcesAdmin.of(h).set_enabled(name, False)
    assert cluster.index.ready() and _published(cluster) == {}
    assert cluster.cohort(None, None).view.counts().series == 0
    _same(embedded, cluster)
