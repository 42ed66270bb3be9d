"""The three-valued analysis of a filter's `source` conditions, checked against the
reference evaluator: whenever it says NEVER (or ALWAYS), no record of that source (every
record of it) matches, whatever its other fields hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.evaluate import matches
from schema.filters import MATCH_ALL, And, Compare, In, IsMissing, Node, Or, Search, parse_filter
from schema.source_conditions import Verdict, can_match, source_verdict

ALWAYS, NEVER, DEPENDS = Verdict.ALWAYS, Verdict.NEVER, Verdict.DEPENDS
CT = {"=": {"modality": "CT"}}


@pytest.mark.parametrize(
    ("filter_json", "orthanc", "stuck"),
    [
        (None, ALWAYS, ALWAYS),
        ({"=": {"source": "orthanc"}}, ALWAYS, NEVER),
        ({"!=": {"source": "orthanc"}}, NEVER, ALWAYS),
        ({"IN": {"source": ["orthanc", "idc"]}}, ALWAYS, NEVER),
        ({"EXCLUDES": {"source": ["orthanc"]}}, NEVER, ALWAYS),
        ({"is_missing": {"source": True}}, NEVER, NEVER),
        ({"is_missing": {"source": False}}, ALWAYS, ALWAYS),
        (CT, DEPENDS, DEPENDS),
        ({"AND": [CT, {"=": {"source": "orthanc"}}]}, DEPENDS, NEVER),
        ({"AND": [{"=": {"source": "orthanc"}}, {"=": {"source": "stuck"}}]}, NEVER, NEVER),
        ({"OR": [CT, {"=": {"source": "orthanc"}}]}, ALWAYS, DEPENDS),
        ({"OR": [{"=": {"source": "idc"}}, {"=": {"source": "orthanc"}}]}, ALWAYS, NEVER),
        ({"OR": [{"AND": [CT, {"=": {"source": "stuck"}}]}, {"IN": {"source": ["x"]}}]},
         NEVER, DEPENDS),
        ({"AND": [{"search": {"keyword": "chest"}}, {"!=": {"source": "stuck"}}]},
         DEPENDS, NEVER),
        ({"AND": []}, ALWAYS, ALWAYS),
    ],
)  # fmt: skip
def test_verdicts(filter_json: Any, orthanc: Verdict, stuck: Verdict) -> None:
    node = parse_filter(filter_json)
    assert source_verdict(node, "orthanc") is orthanc
    assert source_verdict(node, "stuck") is stuck
    assert can_match(node, "stuck") is (stuck is not NEVER)


def test_free_text_alone_depends() -> None:
    assert source_verdict(Search("lung", ("series_description",)), "idc") is DEPENDS
    assert source_verdict(MATCH_ALL, "idc") is ALWAYS


RECORDS = [
    {"source": source, "sources": [source], "modality": modality, "series_description": text}
    for source in ("orthanc", "stuck")
    for modality in ("CT", "MR", None)
    for text in ("chest ct", "brain", None)
]
FILTERS: list[Any] = [
    {"AND": [CT, {"EXCLUDES": {"source": ["stuck", "idc"]}}]},
    {"OR": [{"!=": {"modality": "MR"}}, {"=": {"source": "stuck"}}]},
    {"OR": [{"AND": [{"is_missing": {"modality": True}}, {"=": {"source": "orthanc"}}]},
            {"AND": [{"search": {"keyword": "chest"}}, {"!=": {"source": "orthanc"}}]}]},
    {"AND": [{"OR": [CT, {"IN": {"source": ["stuck"]}}]}, {"is_missing": {"source": False}}]},
]  # fmt: skip


@pytest.mark.parametrize("filter_json", FILTERS)
def test_verdict_agrees_with_the_reference_evaluator(filter_json: Any) -> None:
    node = parse_filter(filter_json)
    for source in ("orthanc", "stuck"):
        own = [matches(node, r) for r in RECORDS if r["source"] == source]
        verdict = source_verdict(node, source)
        if verdict is NEVER:
            assert not any(own)
        elif verdict is ALWAYS:
            assert all(own)
        else:
            assert any(own) and not all(own), (source, verdict)


SOURCES = ["orthanc", "stuck", "idc"]
LEAVES: st.SearchStrategy[Node] = st.one_of(
    st.builds(Compare, st.sampled_from(["=", "!="]), st.just("source"), st.sampled_from(SOURCES)),
    st.builds(
        In,
        st.just("source"),
        st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(IsMissing, st.sampled_from(["source", "modality"]), st.booleans()),
    st.builds(Compare, st.sampled_from(["=", "!="]), st.just("modality"), st.just("CT")),
    st.just(Search("chest", ("series_description",))),
)
FILTER_TREES = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(kids, min_size=1, max_size=3).map(lambda c: Or(tuple(c))),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, database=None)
@given(FILTER_TREES)
def test_the_verdict_is_sound_for_any_filter(node: Node) -> None:
    """NEVER: none of the source's records matches; ALWAYS: all of them do."""
    for source in ("orthanc", "stuck"):
        own = [matches(node, r) for r in RECORDS if r["source"] == source]
        verdict = source_verdict(node, source)
        assert verdict is not NEVER or not any(own)
        assert verdict is not ALWAYS or all(own)
