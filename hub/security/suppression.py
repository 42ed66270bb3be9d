"""Small-cell suppression: how a count over restricted series is released.

Pure arithmetic over what an index backend answered, so it works the same for both
backends. Every count is taken twice: over every series the cohort selects (`full`) and
over the series the caller may see as records (`visible`, see `hub.security.access`).
The caller can count the visible series themselves, by paging; what must be protected is
the rest, `hidden = full - visible`: series held only by sources that give this caller
counts, never records.

A restricted count is released as `visible + floor_k(hidden)`:

- `hidden < k` → the count is null and `suppressed` (zero included: "nobody" is
  disclosive too);
- otherwise `hidden` is rounded DOWN to a multiple of `k`, so a released value `v` says
  only `hidden ∈ [v - visible, v - visible + k)`.

Why both, and why `visible` stays exact, is derived in docs/security.md ("Small cells").
In short: a threshold alone falls to one subtraction (total minus visible buckets, or
X minus X∧¬f); rounding every released hidden part to a multiple of k leaves any hidden
cell at least k-1 values wide against any single subtraction of two released counts;
and keeping `visible` out of the rounding stops "padding" (adding known open series one
at a time to walk a rounded count across a rounding boundary).

Within one answer, cells that add up (facet buckets plus `missing` to the total,
histogram bins to the total) also get complementary suppression (`protect`): a group
never shows exactly one suppressed cell, and its suppressed cells together hold at least
k hidden series, so no cell of it can be solved for from the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from hub.index.base import Bucket, Counts, Facet


class PrivacySettings(BaseModel):
    """`[privacy]`: the smallest cell of restricted series the hub publishes."""

    model_config = ConfigDict(extra="forbid")

    min_cell: int = Field(default=10, ge=2, le=1000)
    """k: hidden parts below k are suppressed, the others rounded down to a multiple of
    k. k = 1 would publish exact counts, so 2 is the least accepted."""


@dataclass(frozen=True)
class Part:
    """One count, split by who may see its series."""

    full: int
    visible: int
    restricted: bool
    """False when no series of the cell can be hidden from the caller (open sources,
    or a filter that names only sources they see as records): released exactly."""

    @property
    def hidden(self) -> int:
        return max(0, self.full - self.visible)


@dataclass(frozen=True)
class Cell:
    """A released count: `value` is None exactly when `suppressed`."""

    value: int | None
    suppressed: bool = False
    rounded: bool = False


EXACT_ZERO = Cell(0)


def release(part: Part, k: int) -> Cell:
    """The primary rule for one count (see the module docstring)."""
    if not part.restricted:
        return Cell(part.full)
    if part.hidden < k:
        return Cell(None, suppressed=True)
    return Cell(part.visible + part.hidden // k * k, rounded=True)


def protect(parts: Sequence[Part], cells: list[Cell], k: int) -> list[Cell]:
    """Complementary suppression over cells that sum to a released total.

    If any cell is suppressed, suppress further restricted cells, smallest hidden part
    first (least information lost), until at least two are suppressed and together they
    hide at least k series: then "total minus the shown cells" gives only the sum of
    several unknowns, and that sum is itself no small cell. Cells of open sources are
    never suppressed (the caller can count them anyway)."""
    cells = list(cells)
    chosen = [i for i, cell in enumerate(cells) if cell.suppressed]
    if not chosen:
        return cells
    mass = sum(parts[i].hidden for i in chosen)
    spare = sorted(
        (i for i, cell in enumerate(cells) if not cell.suppressed and parts[i].restricted),
        key=lambda i: (parts[i].hidden, i),
    )
    for i in spare:
        if len(chosen) >= 2 and mass >= k:
            break
        cells[i] = Cell(None, suppressed=True)
        chosen.append(i)
        mass += parts[i].hidden
    return cells


# --- released answers ---------------------------------------------------------------


@dataclass(frozen=True)
class ReleasedCounts:
    """`Counts` as released to one caller; a None count was suppressed."""

    patients: int | None
    studies: int | None
    series: int | None
    suppressed: bool = False
    rounded: bool = False

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReleasedCounts:
        """Also reads saved cohorts written before suppression existed (plain counts)."""

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) else None

        return cls(
            number("patients"),
            number("studies"),
            number("series"),
            bool(data.get("suppressed", False)),
            bool(data.get("rounded", False)),
        )


@dataclass(frozen=True)
class ReleasedBucket:
    key: str
    count: int | None
    suppressed: bool = False
    rounded: bool = False


@dataclass(frozen=True)
class ReleasedFacet:
    field: str
    buckets: list[ReleasedBucket]
    missing: int | None
    missing_suppressed: bool = False

    @property
    def suppressed(self) -> bool:
        """Any cell of the facet, `missing` included, was suppressed."""
        return self.missing_suppressed or any(b.suppressed for b in self.buckets)


def release_counts(full: Counts, visible: Counts, restricted: bool, k: int) -> ReleasedCounts:
    """Patients, studies and series are distinct counts, not parts of one another, so
    each is released on its own."""
    cells = [
        release(Part(f, v, restricted), k)
        for f, v in (
            (full.patients, visible.patients),
            (full.studies, visible.studies),
            (full.series, visible.series),
        )
    ]
    return ReleasedCounts(
        cells[0].value,
        cells[1].value,
        cells[2].value,
        any(c.suppressed for c in cells),
        any(c.rounded for c in cells),
    )


def release_facet(
    full: Facet,
    visible: Facet | None,
    restricted: Callable[[str], bool],
    size: int,
    k: int,
    *,
    additive: bool,
    missing_restricted: bool,
) -> ReleasedFacet:
    """Buckets and `missing` of one facet. `full` should list every bucket (the caller's
    `size` is applied here, after release, so the cut-off cannot rank hidden counts);
    `restricted(key)` says whether a bucket may hold hidden series; `additive` (a
    single-valued field) makes buckets plus `missing` one group for `protect`.

    A bucket whose series are all hidden and too few (visible 0, hidden < k) is left
    out altogether, as the backends leave out empty ones: listing it would say "at least
    one hidden series has this value". Buckets are ordered by released count, then key,
    never by the hidden counts behind them."""
    seen = {b.key: b.count for b in visible.buckets} if visible is not None else {}
    keys = [b.key for b in full.buckets]
    parts = [Part(b.count, seen.get(b.key, 0), restricted(b.key)) for b in full.buckets]
    missing_part = Part(
        full.missing,
        visible.missing if visible is not None else 0,
        missing_restricted,
    )
    cells = [release(p, k) for p in [*parts, missing_part]]
    if additive:
        cells = protect([*parts, missing_part], cells, k)
    missing = cells.pop()
    shown = [
        ReleasedBucket(key, cell.value, cell.suppressed, cell.rounded)
        for key, part, cell in zip(keys, parts, cells, strict=True)
        if not (cell.suppressed and part.visible == 0 and part.hidden < k)
    ]
    shown.sort(key=lambda b: (b.count is None, -(b.count or 0), b.key))
    return ReleasedFacet(full.field, shown[:size], missing.value, missing.suppressed)


def release_histogram(
    full: list[Bucket], visible: list[Bucket], restricted: bool, k: int
) -> list[ReleasedBucket]:
    """Bins of one histogram: one group for `protect` (the series without a value make
    the difference to the total, and are never shown). Leading and trailing bins whose
    series are all hidden and too few are dropped, so the range shown never reveals the
    extreme values of hidden series; bins between shown ones stay, empty ones included,
    as the backends list them."""
    seen = {b.key: b.count for b in visible}
    parts = [Part(b.count, seen.get(b.key, 0), restricted) for b in full]
    cells = protect(parts, [release(p, k) for p in parts], k)
    keep = [
        not (cell.suppressed and part.visible == 0 and part.hidden < k)
        for part, cell in zip(parts, cells, strict=True)
    ]
    if not any(keep):
        return []
    first = keep.index(True)
    last = len(keep) - 1 - keep[::-1].index(True)
    return [
        ReleasedBucket(b.key, cell.value, cell.suppressed, cell.rounded)
        for b, cell in zip(full[first : last + 1], cells[first : last + 1], strict=True)
    ]


def release_per_source(
    names: Sequence[str],
    full: dict[str, int],
    visible: dict[str, int],
    restricted: Callable[[str], bool],
    k: int,
) -> dict[str, Cell]:
    """Series per repository, for every name given (a source holding none of the cohort
    is a zero cell, and zero is suppressed like any small cell). `full` is what each
    source holds as the caller's world has it (a counts-only source: only the series no
    visible source holds, `Disclosure.by_source`). Not a group: a series held by two
    repositories counts for both, so these do not add up to the total."""
    return {
        name: release(Part(full.get(name, 0), visible.get(name, 0), restricted(name)), k)
        for name in names
    }
