"""Publishing to the cluster: atomic alias swaps, crash leftovers, and de-duplication.

Small real-IDC slices are written as source snapshots in a temporary data directory;
the embedded index is built from the same snapshots (`build_generation`), so every
de-duplication case is checked against what the embedded backend answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest

import hub.service
from adapters.batch import ARROW_SCHEMA
from adapters.spi import (
    Adapter,
    AdapterError,
    Capabilities,
    SourceSettings,
    TransientSourceError,
    Translation,
)
from hub.config import HubConfig, HubSettings, IndexTables
from hub.index.base import CohortQuery
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.publish import Publisher
from hub.service import Hub
from schema.filters import Node, parse_filter
from tests.elastic.expect import page_through
from tests.elastic.slices import answers, as_source, assert_same, embedded, publish, renamed, write

# ----------------------------------------------------------------- de-duplication


def test_series_held_by_two_sources_is_one_hit(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex]
) -> None:
    """IDC mirrors TCIA: shared series count once, list both sources, and take each field
    from the source with the lowest priority number that has a value."""
    idc = kits.slice(0, 200)
    idc = idc.set_column(  # IDC lacks the manufacturer of a few series TCIA knows
        idc.schema.get_field_index("manufacturer"),
        "manufacturer",
        pa.array(
            [None if i % 7 == 0 else v for i, v in enumerate(idc["manufacturer"].to_pylist())]
        ),
    )
    shared = as_source(kits.slice(100, 100), "tcia", modality="MR", manufacturer="TCIA-MAKER")
    only_tcia = as_source(renamed(kits.slice(0, 50), ".99"), "tcia")
    write(tmp_path, "idc", idc)
    write(tmp_path, "tcia", pa.concat_tables([shared, only_tcia]))
    priorities = {"idc": 10, "tcia": 50}
    index = make_elastic()
    assert publish(index, tmp_path, priorities) == ["idc", "tcia"]

    view = index.cohort(CohortQuery(parse_filter(None)))
    assert view.counts().series == 250
    assert view.by_source() == {"idc": 200, "tcia": 150}
    nodes = {n["series_uid"]: n for n in page_through(index, None, 100)}
    for uid in shared["series_uid"].to_pylist():
        assert nodes[uid]["sources"] == ["idc", "tcia"]
        assert nodes[uid]["modality"] != "MR" and nodes[uid]["source"] == "idc"
    coalesced = [n for n in nodes.values() if n["manufacturer"] == "TCIA-MAKER"]
    assert 0 < len(coalesced) < 100  # only where IDC had no value
    assert_same(embedded(tmp_path, priorities), index)

    # TCIA re-harvested with another overlap: IDC's copies are reconciled.
    moved = as_source(kits.slice(150, 100), "tcia", modality="MR", manufacturer="TCIA-MAKER")
    write(tmp_path, "tcia", moved)
    assert publish(index, tmp_path, priorities) == ["tcia"]
    assert_same(embedded(tmp_path, priorities), index)

    # The priorities change: the other copy of every shared series now counts.
    flipped = {"idc": 90, "tcia": 50}
    assert publish(index, tmp_path, flipped) == []
    assert index.cohort(CohortQuery(parse_filter({"=": {"modality": "MR"}}))).counts().series
    assert_same(embedded(tmp_path, flipped), index)

    # A source dropped from the configuration stops answering.
    (tmp_path / "sources" / "tcia" / "snapshot.json").unlink()
    publish(index, tmp_path, flipped)
    assert_same(embedded(tmp_path, flipped), index)


def test_reconcile_repairs_a_publish_killed_after_its_swap(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    write(tmp_path, "idc", kits.slice(0, 120))
    write(tmp_path, "tcia", as_source(kits.slice(60, 120), "tcia", modality="MR"))
    priorities = {"idc": 10, "tcia": 50}
    index = make_elastic()
    publish(index, tmp_path, priorities)
    write(tmp_path, "tcia", as_source(kits.slice(100, 120), "tcia", modality="MR"))

    async def killed(self: Publisher, corpus: object) -> int:
        return 0

    with monkeypatch.context() as patched:
        patched.setattr(Publisher, "reconcile", killed)
        publish(index, tmp_path, priorities)
    # IDC's copies still say what they said before TCIA's new snapshot
    broken = index.cohort(CohortQuery(parse_filter({"=": {"source": "tcia"}}))).counts()
    assert broken.series != 120
    assert publish(index, tmp_path, priorities) == []  # the next run repairs them
    assert_same(embedded(tmp_path, priorities), index)


# ------------------------------------------------------- alias swap and crash leftovers


class Interrupted(Exception):
    pass


def test_failed_publish_leaves_the_previous_index_serving(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    index = make_elastic(bulk_chunk_docs=40, bulk_max_inflight=1)
    write(tmp_path, "idc", kits.slice(0, 300))
    publish(index, tmp_path, {"idc": 100})
    before = answers(index, None)
    serving = [i.name for i in index.served().indices]

    def fail_after_first_chunk(n: int) -> None:
        raise Interrupted("harvest killed half-way")

    write(tmp_path, "idc", kits.slice(100, 200))
    with pytest.raises(Interrupted):
        publish(index, tmp_path, {"idc": 100}, progress=fail_after_first_chunk)
    assert answers(index, None) == before
    assert [i.name for i in index.served().indices] == serving
    assert _harvest_indices(index) == [n for n in serving if "-idc-" in n]  # cleaned up

    # Killed outright (no cleanup at all): the half-built index is left behind...
    async def no_delete(self: Publisher, names: list[str]) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(Publisher, "_delete", no_delete)
        with pytest.raises(Interrupted):
            publish(index, tmp_path, {"idc": 100}, progress=fail_after_first_chunk)
    assert len(_harvest_indices(index)) == 2
    assert answers(index, None) == before  # ...and never served
    # ...until the next run removes it, publishes, and drops the old copy.
    assert publish(index, tmp_path, {"idc": 100}) == ["idc"]
    assert index.cohort(CohortQuery(parse_filter(None))).counts().series == 200
    assert len(_harvest_indices(index)) == 1
    assert _harvest_indices(index) != serving


def _harvest_indices(index: ElasticIndex) -> list[str]:
    async def names() -> list[str]:
        infos = await index.layout.indices(await index.client())
        return [i.name for i in infos if i.kind == "harvest"]

    return index.runner.run(names())


class FlakyAdapter(Adapter):
    """Harvests `table`; with `fail`, loses the connection after the first batch."""

    capabilities = Capabilities(harvest=True, live_search=False)
    table: ClassVar[pa.Table | None] = None
    fail: ClassVar[bool] = False

    def translate(self, node: Node) -> Translation:
        return Translation(native=None, residual=node, description="test adapter")

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        assert self.table is not None
        batches = self.table.cast(ARROW_SCHEMA).to_batches(max_chunksize=50)
        for i, batch in enumerate(batches):
            if self.fail and i == 1:
                raise TransientSourceError("connection reset by peer")
            yield batch


def test_hub_harvest_publishes_to_the_cluster(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`index = "elasticsearch"`: a harvest publishes its snapshot; a failed one changes nothing."""
    monkeypatch.setattr(hub.service, "discover_adapters", lambda: {"flaky": FlakyAdapter})
    settings = make_elastic().settings
    config = HubConfig(
        hub=HubSettings(data_dir=tmp_path, index="elasticsearch"),
        sources={"idc": SourceSettings(name="idc", adapter="flaky", mode="harvest")},
        index=IndexTables(elasticsearch=settings),
    )
    FlakyAdapter.table, FlakyAdapter.fail = kits.slice(0, 120), False
    first = Hub(config)
    assert isinstance(first.index, ElasticIndex) and not first.index.ready()
    asyncio.run(first.harvest())
    assert first.cohort(None, None).view.counts().series == 120
    assert [s.series for s in first.index.snapshots()] == [120]

    FlakyAdapter.table, FlakyAdapter.fail = kits.slice(0, 200), True
    second = Hub(config)
    with pytest.raises(AdapterError, match="connection reset"):
        asyncio.run(second.harvest())
    for h in (first, second):
        assert h.cohort(None, None).view.counts().series == 120
        results = {r.source: r for r in h.by_source(h.cohort(None, None))}
        assert results["idc"].count == 120 and results["idc"].status == "ok"
    for h in (first, second):
        asyncio.run(h.aclose())
