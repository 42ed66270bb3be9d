"""Property: the tantivy compiler, the numpy masks and the evaluator select the same rows.

tests/hub/test_index.py already checks random filters by their counts and one facet.
This property is stricter and nastier: it compares the selected series themselves (the
rows tantivy's compiled query matches, the rows the numpy masks keep, and the series the
reference evaluator picks), over value pools that mix the corpus' real values with the
hostile values of tests/security/payloads.py, with free text drawn from both. The
Elasticsearch compiler has its random-filter property in tests/elastic/test_parity.py
and its hostile values in tests/elastic/test_injection.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.index.embedded.cohort import EmbeddedCohort
from hub.service import Hub
from schema.filters import And, Search, parse_filter
from schema.record import TEXT_FIELDS
from tests.fuzz.conftest import Tally
from tests.reference import KEYWORD_FIELDS, SEARCH_WORDS, filter_strategy, value_pools
from tests.security.grouped import GroupedReference, index_selection
from tests.security.payloads import PAYLOADS

Record = dict[str, Any]


@pytest.fixture(scope="module")
def pools(records: list[Record]) -> dict[str, list[Any]]:
    pools = value_pools(records)
    for field in KEYWORD_FIELDS:
        pools[field] = pools[field] + PAYLOADS[::3]  # a third of them, so real values win often
    return pools


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_tantivy_numpy_and_evaluator_select_the_same_series(
    small_hub: Hub,
    reference: GroupedReference,
    pools: dict[str, list[Any]],
    tally: Tally,
    data: st.DataObject,
) -> None:
    filter_json = data.draw(filter_strategy(pools), label="filter")
    text = data.draw(st.none() | st.sampled_from([*SEARCH_WORDS, *PAYLOADS[::4]]), label="text")
    view = small_hub.cohort(filter_json, text).view
    assert isinstance(view, EmbeddedCohort)
    node = parse_filter(filter_json)
    if text and text.strip():
        node = And((node, Search(text.strip(), TEXT_FIELDS)))
    tantivy_rows, numpy_rows, uids = index_selection(view)
    assert tantivy_rows == numpy_rows
    assert uids == reference.uids(node)
    tally.record("compilers (tantivy = numpy = evaluator)", "agreed")
