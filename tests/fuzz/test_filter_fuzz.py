"""More properties of the filter parser, beyond tests/schema/test_filters_fuzz.py.

That file fuzzes JSON-like values (node or FilterError). These add what it leaves out:
the JSON text a request actually carries (including NaN, huge numbers, lone
surrogates and deep nesting), hostile strings in every value position of every field
(kept exactly, or refused for length), and the parser's size limits as exact
boundaries rather than "some error".
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.filters import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_STRING,
    MAX_VALUES,
    Compare,
    FilterError,
    In,
    parse_filter,
)
from schema.record import FIELDS, FieldKind
from tests.fuzz.conftest import Tally
from tests.schema.test_filters_fuzz import _check, json_like
from tests.security.payloads import PAYLOADS

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KEYWORD_FIELDS = [n for n, s in FIELDS.items() if s.kind in (FieldKind.KEYWORD, FieldKind.TEXT)]
any_text = st.text(st.characters(codec=None), max_size=40)  # lone surrogates included
hostile = (
    st.sampled_from(PAYLOADS) | any_text | st.text(max_size=MAX_STRING + 5).map(lambda s: s * 40)
)

# JSON text as a client sends it: valid JSON, broken JSON, and JSON extensions Python accepts.
json_text = st.one_of(
    json_like.map(json.dumps),
    json_like.map(lambda v: json.dumps(v)[:-1]),  # cut short
    st.sampled_from(["NaN", "-Infinity", '{"=": {"age": NaN}}', '{">": {"age": 1e999}}',
                     '{"=": {"age": ' + "9" * 5000 + "}}", '{"=": {"modality": "\\ud800"}}',
                     "[" * 2000 + "]" * 2000, '{"AND": ' + "[" * 900 + "]" * 900 + "}"]),
    any_text,
)  # fmt: skip


def _outcome(data: Any, tally: Tally) -> None:
    _check(data)  # a node that round-trips, or a FilterError naming a path: nothing else
    try:
        parse_filter(data)
        tally.record("filter parser", "parsed")
    except FilterError:
        tally.record("filter parser", "FilterError")


@SETTINGS
@given(json_text)
def test_request_json_text_gives_node_or_filter_error(tally: Tally, text: str) -> None:
    """What `/export?filter=` and GraphQL variables go through: json.loads, then the parser."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # the endpoints answer 400 "not valid JSON"
        tally.record("filter parser", "bad JSON")
        return
    _outcome(data, tally)


@SETTINGS
@given(
    st.sampled_from(KEYWORD_FIELDS),
    st.sampled_from(["=", "!=", "IN", "EXCLUDES"]),
    st.lists(hostile, min_size=1, max_size=4),
)
def test_hostile_strings_are_kept_exactly_or_refused_for_length(
    tally: Tally, field: str, op: str, values: list[str]
) -> None:
    body: Any = values if op in ("IN", "EXCLUDES") else values[0]
    try:
        node = parse_filter({"AND": [{op: {field: body}}]})
    except FilterError as err:
        assert any(
            len(v) > MAX_STRING for v in (values if op in ("IN", "EXCLUDES") else values[:1])
        )
        assert f"longer than {MAX_STRING} characters" in str(err)
        tally.record("filter parser", "FilterError")
        return
    (leaf,) = node.children  # type: ignore[union-attr]
    if isinstance(leaf, In):
        assert list(leaf.values) == values and leaf.negated == (op == "EXCLUDES")
    else:
        assert isinstance(leaf, Compare) and leaf.value == values[0] and leaf.op == op
    tally.record("filter parser", "parsed")


@SETTINGS
@given(st.integers(1, MAX_DEPTH + 3), st.integers(1, 3))
def test_depth_limit_is_exact(tally: Tally, depth: int, width: int) -> None:
    node: Any = {"OR": [{"=": {"modality": "CT"}}] * width}  # the leaves sit one level down
    for _ in range(depth - 2):
        node = {"AND": [node]}
    levels = max(depth, 2)  # depth of the leaves: the OR is level 1 when depth is 1
    try:
        parse_filter(node)
        assert levels <= MAX_DEPTH
        tally.record("filter parser", "parsed")
    except FilterError as err:
        assert levels > MAX_DEPTH and f"nested deeper than {MAX_DEPTH} levels" in str(err)
        tally.record("filter parser", "FilterError")


@SETTINGS
@given(st.integers(MAX_NODES - 3, MAX_NODES + 3), st.integers(MAX_VALUES - 2, MAX_VALUES + 2))
def test_node_and_value_limits_are_exact(tally: Tally, conditions: int, values: int) -> None:
    leaves = [{"=": {"age": i}} for i in range(conditions - 1)]  # plus the OR itself
    try:
        parse_filter({"OR": leaves})
        assert conditions <= MAX_NODES
    except FilterError as err:
        assert conditions > MAX_NODES and f"more than {MAX_NODES} conditions" in str(err)
    try:
        parse_filter({"IN": {"modality": ["CT"] * values}})
        assert values <= MAX_VALUES
    except FilterError as err:
        assert values > MAX_VALUES and f"at most {MAX_VALUES} values" in str(err)
    tally.record("filter parser", "limits")
