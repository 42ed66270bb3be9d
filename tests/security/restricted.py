"""Hubs over the small real-IDC index with restricted sources, callers, and the attacker's
arithmetic, shared by test_access.py and test_suppression.py.

- `controlled_hub`: the IDC snapshot configured `access = "controlled"`: anonymous callers
  see no series, only suppressed and rounded counts (every visible part is zero).
- `registered_hub`: the same snapshot as `registered`.
- `mixed_hub`: IDC open plus a "midrc" snapshot, controlled, that mirrors 40 c4kc_kits
  series (one merged series each, held by both) and holds ~1,500 series of its own (new
  series, study and patient ids, so hidden patients and studies exist too).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.security.access import operator
from hub.security.apikeys import hash_key
from hub.security.auth_settings import ApiKeySettings, AuthSettings
from hub.security.identity import Caller, Role
from hub.service import Hub

K = 10
SHARED = 40
"""c4kc_kits series midrc mirrors: visible through their IDC copy."""
EVERY = 17
"""midrc holds its own copy of every 17th IDC row, under new ids."""
READER_KEY = "ihk_reader-key-for-the-privacy-tests-000000000"
GRANTED_KEY = "ihk_granted-key-for-the-privacy-tests-00000000"

READER = Caller("reader", Role.READER)


def granted(source: str) -> Caller:
    return Caller("granted", Role.READER, frozenset({source}))


def _config(data_dir: Path, sources: dict[str, SourceSettings]) -> HubConfig:
    keys = {
        "reader": ApiKeySettings(hash=hash_key(READER_KEY)),
        "granted": ApiKeySettings(hash=hash_key(GRANTED_KEY), sources=["midrc", "idc"]),
    }
    return HubConfig(
        hub=HubSettings(data_dir=data_dir), sources=sources, auth=AuthSettings(api_keys=keys)
    )


def idc_only(data_dir: Path, access: str) -> HubConfig:
    settings = SourceSettings(name="idc", adapter="idc", access=access)  # type: ignore[arg-type]
    return _config(data_dir, {"idc": settings})


def mixed_config(data_dir: Path) -> HubConfig:
    return _config(
        data_dir,
        {
            "idc": SourceSettings(name="idc", adapter="idc"),
            "midrc": SourceSettings(name="midrc", adapter="idc", access="controlled"),
        },
    )


def _renamed(table: pa.Table, column: str) -> pa.Table:
    """New ids for midrc's own copies: UUID-derived UIDs (`2.25.<int>`, at most 64
    characters, as QIDO requires), or a suffixed patient id."""
    old = table[column].to_pylist()
    if column == "patient_id":
        new = [f"{v}-m" for v in old]
    else:
        new = [f"2.25.{int(hashlib.sha256(v.encode()).hexdigest()[:30], 16)}" for v in old]
    return table.set_column(table.schema.get_field_index(column), column, pa.array(new))


def midrc_copy(idc: pa.Table) -> tuple[pa.Table, list[str]]:
    """The midrc snapshot, and the uids of the series only midrc holds."""
    kits = idc.filter(pc.equal(idc["collection"], "c4kc_kits"))
    shared = kits.slice(0, SHARED)
    own = idc.take(pa.array(range(5, idc.num_rows, EVERY)))
    own = own.filter(pc.invert(pc.is_in(own["series_uid"], shared["series_uid"])))
    for column in ("series_uid", "study_uid", "patient_id"):
        own = _renamed(own, column)
    table = pa.concat_tables([shared, own])
    n = table.num_rows
    urls = pc.binary_join_element_wise(
        pa.scalar("https://midrc.example/series/"), table["series_uid"], ""
    )
    for name, column in (
        ("source", pa.array(["midrc"] * n)),
        ("sources", pa.array([["midrc"]] * n, pa.list_(pa.string()))),
        ("download_url", urls),
    ):
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table, own["series_uid"].to_pylist()


@dataclass
class Mixed:
    hub: Hub
    hidden: set[str]
    """series_uid of every series only midrc holds."""
    shared: set[str]
    data_dir: Path


def build_mixed(small_data_dir: Path, data_dir: Path) -> Mixed:
    shutil.copytree(small_data_dir / "sources", data_dir / "sources")
    idc = SnapshotStore(data_dir).get("idc")
    assert idc is not None
    whole = pq.read_table(idc.path)
    table, hidden = midrc_copy(whole)

    async def batches() -> AsyncIterator[pa.RecordBatch]:
        for batch in table.to_batches():
            yield batch

    asyncio.run(SnapshotStore(data_dir).write("midrc", batches(), "midrc test"))
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), {"idc": 100, "midrc": 200})
    kits = whole.filter(pc.equal(whole["collection"], "c4kc_kits")).slice(0, SHARED)
    return Mixed(
        Hub(mixed_config(data_dir)), set(hidden), set(kits["series_uid"].to_pylist()), data_dir
    )


@pytest.fixture(scope="module")
def controlled_hub(small_data_dir: Path) -> Iterator[Hub]:
    hub = Hub(idc_only(small_data_dir, "controlled"))
    yield hub
    asyncio.run(hub.aclose())


@pytest.fixture(scope="module")
def registered_hub(small_data_dir: Path) -> Iterator[Hub]:
    hub = Hub(idc_only(small_data_dir, "registered"))
    yield hub
    asyncio.run(hub.aclose())


@pytest.fixture(scope="module")
def mixed(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    found = build_mixed(small_data_dir, tmp_path_factory.mktemp("mixed") / "hub")
    yield found
    asyncio.run(found.hub.aclose())


# --- the attacker's arithmetic ------------------------------------------------------------


def truth(hub: Hub, filter_json: Any, text: str | None = None) -> Any:
    """The unrestricted cohort (what the tests compare against, never what callers get)."""
    return hub.cohort(filter_json, text, operator(hub.adapters))


Interval = tuple[int, int]
"""Inclusive bounds on a hidden part, as the attacker knows it."""


def known(released: int | None, visible: int, hidden: int, k: int = K) -> Interval:
    """What the strongest attacker knows of one cell's hidden part: a shown count pins it
    to its rounding interval (they count the visible part themselves, by paging); a
    suppressed one is in [0, k) if it was small, and if it was a secondary suppression
    they can ask for that cell alone and get its rounding interval."""
    if released is not None:
        low = released - visible
        return (low, low + k - 1)
    if hidden < k:
        return (0, k - 1)
    low = hidden // k * k
    return (low, low + k - 1)


def solve(total: Interval, others: list[Interval], own: Interval, exact_rest: int = 0) -> Interval:
    """Every value of one cell consistent with `total = cell + sum(others) + rest` and the
    cell's own bounds. One linear equation over integer intervals: the consistent values
    are exactly this interval (sums of integer intervals are intervals)."""
    low = total[0] - sum(o[1] for o in others) - exact_rest
    high = total[1] - sum(o[0] for o in others) - exact_rest
    return (max(low, own[0]), min(high, own[1]))


def width(interval: Interval) -> int:
    return max(0, interval[1] - interval[0] + 1)


def attack_group(total: Interval, cells: dict[str, tuple[int, int, int | None, bool]]) -> list[int]:
    """Widths of what the attacker can derive for every small hidden cell of a group
    that adds up to `total`. `cells`: key → (full, visible, released, displayed)."""
    widths = []
    for target, (full, seen, _released, _shown) in cells.items():
        if full - seen >= K:
            continue
        others: list[Interval] = []
        rest = 0
        for key, (f, v, released, shown) in cells.items():
            if key == target:
                continue
            if shown:
                others.append(known(released, v, f - v))
            else:
                rest += f - v  # not displayed: the attacker is granted its exact value
        widths.append(width(solve(total, others, (0, K - 1), rest)))
    return widths
