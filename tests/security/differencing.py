"""A controlled source that co-holds open series, and what an anonymous attacker can
conclude from the hub's answers about it.

Corpus (`build_coheld`): real IDC rows of three collections are the open source `idc`;
`ctrl`, controlled, holds 40 of idc's c4kc_kits series unchanged (co-held: one merged
series each, listed through its open copy) and, under new ids, cells of its own, one
per (collection, modality), with the sizes in `HIDDEN` (small ones to attack, larger
ones to be rounded).

Knowledge: every hidden series falls in exactly one atom, its (collection, modality).
Every question the attacker asks selects whole atoms of hidden series (its filter
names collections, modalities and sources; `series_uid` padding selects only series
the attacker can list), so each released count is one linear constraint
`sum(h[a] for a in atoms) in [low, high]`. `Knowledge.propagate` tightens every atom's
bounds against every constraint until nothing moves (interval reasoning per answer,
intersected); `Knowledge.subtractions` gives what single subtractions say (two
constraints whose atom sets differ by one atom).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hub.index.snapshots import SnapshotStore
from hub.security.suppression import Cell
from hub.service import Hub

K = 10
COLLECTIONS = ("c4kc_kits", "tcga_luad", "acrin_nsclc_fdg_pet")
COHELD = 40
PER_CELL = 80
"""idc rows kept per (collection, modality)."""
HIDDEN: dict[tuple[str, str], int] = {
    ("c4kc_kits", "CT"): 3,
    ("c4kc_kits", "SEG"): 41,
    ("tcga_luad", "CT"): 9,
    ("tcga_luad", "NM"): 1,
    ("tcga_luad", "PT"): 11,
    ("acrin_nsclc_fdg_pet", "PT"): 6,
    ("acrin_nsclc_fdg_pet", "CT"): 25,
    ("acrin_nsclc_fdg_pet", "MR"): 2,
    ("tcga_luad", "SEG"): 7,
}
"""ctrl's own series per (collection, modality): the attack targets are those below k."""
PRIORITIES = {"idc": 100, "ctrl": 200}
INFINITE = 10**9

Atom = tuple[str, str | None]
"""(collection, modality); None: no modality."""


def _first_of_each(table: pa.Table, n: int) -> list[bool]:
    """Keeps the first `n` rows of every (collection, modality): a corpus small enough
    for hundreds of questions on a shared cluster, with every value kept."""
    seen: dict[tuple[str, str], int] = {}
    keep = []
    pairs = zip(table["collection"].to_pylist(), table["modality"].to_pylist(), strict=True)
    for pair in pairs:
        seen[pair] = seen.get(pair, 0) + 1
        keep.append(seen[pair] <= n)
    return keep


def _renamed(table: pa.Table, column: str) -> pa.Table:
    old = table[column].to_pylist()
    if column == "patient_id":
        new = [f"{v}-ctrl" for v in old]
    else:  # UUID-derived UIDs, as QIDO requires
        new = [f"2.25.{int(hashlib.sha256(f'ctrl{v}'.encode()).hexdigest()[:30], 16)}" for v in old]
    return table.set_column(table.schema.get_field_index(column), column, pa.array(new))


def _as_ctrl(table: pa.Table) -> pa.Table:
    n = table.num_rows
    for name, column in (
        ("source", pa.array(["ctrl"] * n)),
        ("sources", pa.array([["ctrl"]] * n, pa.list_(pa.string()))),
    ):
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


@dataclass
class Corpus:
    data_dir: Path
    coheld: list[str]
    """series_uid of the idc series ctrl also holds."""
    open_only: list[str]
    """series_uid of idc series ctrl does not hold (c4kc_kits, like the co-held ones)."""
    hidden: dict[Atom, int]
    """The truth: ctrl's own series per atom (never shown to the attacker)."""
    modalities: tuple[str, ...]


def build_coheld(small_data_dir: Path, data_dir: Path) -> Corpus:
    """Snapshots of `idc` and `ctrl` under `data_dir` (no index built yet)."""
    store = SnapshotStore(small_data_dir)
    snap = store.get("idc")
    assert snap is not None
    whole = pq.read_table(snap.path)
    idc = whole.filter(pc.is_in(whole["collection"], pa.array(COLLECTIONS)))
    idc = idc.sort_by([("collection", "ascending"), ("series_uid", "ascending")])
    idc = idc.filter(pa.array(_first_of_each(idc, PER_CELL)))
    kits = idc.filter(pc.equal(idc["collection"], "c4kc_kits"))
    shared = kits.slice(0, COHELD)
    own = []
    for (collection, modality), n in HIDDEN.items():
        cell = idc.filter(
            pc.and_(pc.equal(idc["collection"], collection), pc.equal(idc["modality"], modality))
        )
        assert cell.num_rows >= n, (collection, modality, cell.num_rows)
        own.append(cell.slice(0, n))
    mine = pa.concat_tables(own)
    for column in ("series_uid", "study_uid", "patient_id"):
        mine = _renamed(mine, column)
    ctrl = _as_ctrl(pa.concat_tables([shared, mine]))
    sources = data_dir / "sources"
    sources.mkdir(parents=True)
    for name, table in (("idc", idc), ("ctrl", ctrl)):

        async def batches(t: pa.Table = table) -> AsyncIterator[pa.RecordBatch]:
            for batch in t.to_batches(max_chunksize=5_000):
                yield batch

        asyncio.run(SnapshotStore(data_dir).write(name, batches(), f"{name} test"))
    modalities = tuple(sorted({m for m in idc["modality"].to_pylist() if m is not None}))
    return Corpus(
        data_dir,
        shared["series_uid"].to_pylist(),
        kits.slice(COHELD, COHELD)["series_uid"].to_pylist(),
        dict(HIDDEN),
        modalities,
    )


def copy_sources(corpus: Corpus, data_dir: Path) -> None:
    shutil.copytree(corpus.data_dir / "sources", data_dir / "sources")


# --- questions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A filter, and the atoms of hidden series it selects (what the attacker knows of it)."""

    filter: Any
    atoms: frozenset[Atom]


class Atoms:
    """Which atoms the attacker's building blocks select."""

    def __init__(self, modalities: Iterable[str]) -> None:
        self.modalities: tuple[str | None, ...] = (*modalities, None)
        self.every = frozenset((c, m) for c in COLLECTIONS for m in self.modalities)

    def collection(self, c: str) -> frozenset[Atom]:
        return frozenset(a for a in self.every if a[0] == c)

    def modality(self, m: str) -> frozenset[Atom]:
        return frozenset(a for a in self.every if a[1] == m)


# --- knowledge ----------------------------------------------------------------------


@dataclass(frozen=True)
class Constraint:
    atoms: frozenset[Atom]
    low: int
    high: int
    why: str


def from_cell(atoms: frozenset[Atom], value: int | None, visible: int, why: str) -> Constraint:
    """A released restricted count: suppressed means a hidden part in [0, k); a shown
    value v means one in [v - visible, v - visible + k)."""
    if value is None:
        return Constraint(atoms, 0, K - 1, why)
    return Constraint(atoms, value - visible, value - visible + K - 1, why)


@dataclass
class Knowledge:
    constraints: list[Constraint] = field(default_factory=list)

    def add(self, constraint: Constraint) -> None:
        self.constraints.append(constraint)

    def unsound(self, truth: dict[Atom, int]) -> list[Constraint]:
        """Constraints the true hidden counts break (the hub answered otherwise than the
        documented rule says)."""
        return [
            c
            for c in self.constraints
            if not c.low <= sum(truth.get(a, 0) for a in c.atoms) <= c.high
        ]

    def propagate(self, atoms: Iterable[Atom]) -> dict[Atom, tuple[int, int]]:
        """Bounds of every atom consistent with every constraint, tightened to a fixpoint."""
        bounds = {a: (0, INFINITE) for a in atoms}
        merged: dict[frozenset[Atom], tuple[int, int]] = {}
        for c in self.constraints:
            low, high = merged.get(c.atoms, (0, INFINITE))
            merged[c.atoms] = (max(low, c.low), min(high, c.high))
        for _ in range(200):
            moved = False
            for group, (low, high) in merged.items():
                for a in group:
                    others = [bounds[b] for b in group if b != a]
                    top = sum(hi for _lo, hi in others)
                    lo, hi = bounds[a]
                    new = (
                        max(lo, low - min(top, INFINITE)),
                        min(hi, high - sum(o[0] for o in others)),
                    )
                    if new[0] > new[1]:
                        bounds[a] = new
                        return bounds  # no value fits: the answers contradict the model
                    if new != (lo, hi):
                        bounds[a], moved = new, True
            if not moved:
                break
        return bounds

    def subtractions(self, target: Atom, own: tuple[int, int]) -> list[tuple[int, str]]:
        """(values left, how) for every pair of constraints that differ by `target`
        alone, intersected with the target's own released interval."""
        out = []
        for a in self.constraints:
            if target not in a.atoms:
                continue
            rest = a.atoms - {target}
            for b in self.constraints:
                if b.atoms != rest:
                    continue
                low = max(own[0], a.low - b.high)
                high = min(own[1], a.high - b.low)
                out.append((max(0, high - low + 1), f"{a.why} minus {b.why}"))
        return out


def width(bounds: tuple[int, int]) -> int:
    return max(0, bounds[1] - bounds[0] + 1)


def observe(hub: Hub, question: Question, knowledge: Knowledge) -> None:
    """Ask one question anonymously and record every count it releases: the total, ctrl's
    `bySource` cell and ctrl's `source` facet bucket (absent: small). idc's count is
    exact and is the caller's own visible count."""
    cohort = hub.cohort(question.filter, None)
    disclosure = cohort.disclosure
    seen = cohort.view.counts().series
    released = disclosure.counts().series
    name = repr(question.filter)
    if disclosure.restricted:
        knowledge.add(from_cell(question.atoms, released, seen, f"total of {name}"))
    else:
        assert released == seen
        knowledge.add(Constraint(question.atoms, 0, 0, f"exact total of {name}"))
    cells: dict[str, Cell] = disclosure.by_source(["idc", "ctrl"])
    assert cells["idc"].value == seen, name  # idc is the only visible source
    knowledge.add(from_cell(question.atoms, cells["ctrl"].value, 0, f"bySource ctrl of {name}"))
    (facet,) = disclosure.facets(["source"], 10)
    buckets = {b.key: b for b in facet.buckets}
    ctrl = buckets.get("ctrl")
    knowledge.add(
        from_cell(question.atoms, ctrl.count if ctrl else None, 0, f"facet ctrl of {name}")
    )
    if seen:
        assert buckets["idc"].count == seen, name


def observe_facet(hub: Hub, question: Question, split: Atoms, knowledge: Knowledge) -> None:
    """The modality facet of one question: each bucket is a cell of its own (total minus
    the buckets is then the propagation's business). A suppressed bucket may be a
    complementary suppression, so it says only "some number"; a value the caller sees
    none of and that is not listed is small (`release_facet` leaves it out)."""
    cohort = hub.cohort(question.filter, None)
    (released,) = cohort.disclosure.facets(["modality"], 1000)
    (seen,) = cohort.view.facets(["modality"], 1000)
    visible = {b.key: b.count for b in seen.buckets}
    shown = {b.key: b for b in released.buckets}
    name = f"modality facet of {question.filter!r}"
    for m in split.modalities[:-1]:
        atoms = question.atoms & split.modality(m)
        bucket = shown.get(m)
        if bucket is None:
            assert not visible.get(m), (name, m)
            knowledge.add(Constraint(atoms, 0, K - 1, f"{m} not listed in {name}"))
        elif bucket.count is not None:
            knowledge.add(from_cell(atoms, bucket.count, visible.get(m, 0), f"{m} in {name}"))
    if released.missing == 0 and not released.missing_suppressed:
        atoms = question.atoms & frozenset(a for a in split.every if a[1] is None)
        knowledge.add(Constraint(atoms, 0, 0, f"missing in {name}"))
