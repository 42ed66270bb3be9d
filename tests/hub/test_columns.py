"""Column counts: distinct values by runs (every value one run in row order, bar a few
split ones), and facets of large cohorts from the rows left out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.index.embedded.columns import MAX_SPLIT_CODES, MISSING, ColumnStore


def store(codes: np.ndarray) -> ColumnStore:
    cardinality = int(codes.max()) + 1 if len(codes) else 0
    dictionary = pa.array([str(i) for i in range(cardinality)])
    meta = {"rows": len(codes), "sources": [], "cardinality": {"study_uid": cardinality}}
    return ColumnStore({"study_uid": codes.astype(np.int32)}, lambda _: dictionary, meta)


def truth(codes: np.ndarray, rows: np.ndarray) -> int:
    values = codes[rows]
    return len(np.unique(values[values != MISSING]))


@st.composite
def runs_with_some_split(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Row-ordered codes: runs of values, some values again later, some missing; and an
    ascending selection of rows."""
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=60))
    values = draw(st.lists(st.integers(-1, 40), min_size=len(lengths), max_size=len(lengths)))
    codes = np.repeat(np.asarray(values), lengths)
    keep = draw(st.lists(st.booleans(), min_size=len(codes), max_size=len(codes)))
    return codes, np.flatnonzero(keep).astype(np.int64)


@settings(max_examples=300, deadline=None)
@given(runs_with_some_split())
def test_distinct_counts_equal_unique_values(case: tuple[np.ndarray, np.ndarray]) -> None:
    codes, rows = case
    assert store(codes).distinct("study_uid", rows) == truth(codes, rows)


def test_values_split_over_runs_are_counted_once() -> None:
    codes = np.asarray([0, 0, 1, 1, 2, 0, 0, 3, 1])  # 0 and 1 come back later
    columns = store(codes)
    split = columns._split_codes("study_uid")
    assert split is not None and list(split) == [0, 1]
    assert columns.distinct("study_uid", np.arange(9)) == 4
    assert columns.distinct("study_uid", np.asarray([0, 5, 8])) == 2


def test_scattered_values_fall_back_to_marking() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 3 * MAX_SPLIT_CODES, size=40 * MAX_SPLIT_CODES)
    columns = store(codes)
    assert columns._split_codes("study_uid") is None
    rows = np.flatnonzero(rng.random(len(codes)) < 0.3)
    assert columns.distinct("study_uid", rows) == truth(codes, rows)


@settings(max_examples=200, deadline=None)
@given(runs_with_some_split(), st.integers(1, 50))
def test_facets_from_the_rows_left_out_equal_facets_from_the_rows_in(
    case: tuple[np.ndarray, np.ndarray], size: int
) -> None:
    codes, rows = case
    columns = store(codes)
    left_out = np.setdiff1d(np.arange(len(codes)), rows)
    direct = columns.top_values("study_uid", rows, size)
    assert columns.top_values("study_uid", rows, size, left_out) == direct
    values = codes[rows]
    assert direct[1] == np.count_nonzero(values != MISSING)
