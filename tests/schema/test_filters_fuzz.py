"""Property: parse_filter on any JSON-like input returns a node or raises FilterError.

Never KeyError, TypeError, RecursionError, OverflowError or a bare ValueError: a filter
comes straight from an HTTP request body, so every failure must be a FilterError that
names a JSON path. Whatever the caller's bytes (field names, operators and values with
lone surrogates or control characters), the message is printable and encodes as UTF-8:
it goes into a JSON answer, and a message that cannot be encoded is a 500.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.filters import (
    MAX_DEPTH,
    And,
    Compare,
    FilterError,
    In,
    IsMissing,
    Or,
    Search,
    parse_filter,
    to_json,
)
from schema.record import FIELDS, TEXT_FIELDS, FieldKind
from tests.security.payloads import NAMES

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

COMPARE_OPS = ["=", "!=", ">", ">=", "<", "<="]
LEAF_OPS = [*COMPARE_OPS, "IN", "EXCLUDES", "is_missing"]
ALL_OPS = [*LEAF_OPS, "AND", "OR", "search"]
FIELD_NAMES = list(FIELDS)
NODE_TYPES = (Compare, In, IsMissing, Search, And, Or)

# ----------------------------------------------------------------------- arbitrary JSON

any_text = st.text(st.characters(codec=None), max_size=12)  # surrogates, controls included
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)  # json.loads accepts NaN/Infinity
    | st.text(max_size=20)
    | any_text
    | st.sampled_from(["CT", "2020-01-01", "20231345", "066Y", "", " ", "keyword", "fields"])
)
hostile_names = st.sampled_from(NAMES) | any_text
keys = (
    st.text(max_size=10)
    | st.sampled_from([*ALL_OPS, *FIELD_NAMES, "keyword", "fields"])
    | hostile_names
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=3),
    max_leaves=40,
)

# ----------------------------------------------------------------------- mostly-valid filters


def _value_for(kind: FieldKind) -> st.SearchStrategy[Any]:
    if kind is FieldKind.INTEGER:
        good: st.SearchStrategy[Any] = st.integers(-(2**60), 2**60) | st.floats(
            allow_nan=True, allow_infinity=True
        )
    elif kind is FieldKind.DATE:
        good = st.dates().map(lambda d: d.isoformat()) | st.sampled_from(
            ["2020-02-30", "20231345", "2020-1-1", "abc", ""]
        )
    else:
        good = st.text(max_size=30) | st.sampled_from(
            ["CT", "MR", "CHEST", "female", "unknown", "CC BY 4.0", "' OR 1=1 --"]
        )
    # Mostly the right type, sometimes any scalar at all.
    return st.one_of(good, good, good, scalars)


@st.composite
def leaf_filters(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(
        st.sampled_from(FIELD_NAMES)
        | st.sampled_from(["", "modalty", "PatientAge"])
        | hostile_names
    )
    kind = FIELDS[field].kind if field in FIELDS else FieldKind.KEYWORD
    op = draw(
        st.sampled_from([*LEAF_OPS, "search"])
        | st.sampled_from(["LIKE", "in", "NOT"])
        | hostile_names
    )
    if op == "search":
        body: dict[str, Any] = {"keyword": draw(st.text(max_size=20) | scalars)}
        if draw(st.booleans()):
            body["fields"] = draw(
                st.lists(
                    st.sampled_from([*TEXT_FIELDS, *FIELD_NAMES, "nope"]) | hostile_names,
                    max_size=3,
                )
                | scalars
            )
        return {"search": body}
    if op == "is_missing":
        return {op: {field: draw(st.booleans() | scalars)}}
    if op in ("IN", "EXCLUDES"):
        return {op: {field: draw(st.lists(_value_for(kind), max_size=5) | scalars)}}
    return {op: {field: draw(_value_for(kind))}}


mostly_valid = st.recursive(
    leaf_filters(),
    lambda children: st.builds(
        lambda op, kids: {op: kids}, st.sampled_from(["AND", "OR"]), st.lists(children, max_size=4)
    ),
    max_leaves=30,
)


def _check(data: Any) -> None:
    try:
        node = parse_filter(data)
    except FilterError as err:
        assert isinstance(err.path, str)
        assert err.path.startswith("$")
        assert str(err).startswith(err.path)
        assert_quotable(str(err))
        return
    assert isinstance(node, NODE_TYPES)
    # Whatever parses round-trips through its JSON.
    assert parse_filter(to_json(node)) == node


def assert_quotable(message: str) -> None:
    """A message as an answer carries it: printable (no raw control, format or surrogate
    character), UTF-8 encodable, and bounded whatever the caller sent."""
    assert message.isprintable(), message
    message.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
    assert len(message) < 2000, message[:200]


@SETTINGS
@given(hostile_names.filter(lambda n: n not in FIELDS), st.sampled_from(LEAF_OPS), scalars)
def test_hostile_field_names_are_refused_with_a_quotable_message(
    name: str, op: str, value: Any
) -> None:
    try:
        parse_filter({"AND": [{op: {name: value}}]})
    except FilterError as err:
        assert_quotable(str(err))
        assert err.path.startswith("$.AND[0]")
    else:
        raise AssertionError(f"{name!r} accepted as a field name")


@SETTINGS
@given(
    hostile_names.filter(lambda n: n not in FIELDS and n not in ALL_OPS),
    st.sampled_from(FIELD_NAMES),
)
def test_hostile_operators_and_search_fields_give_quotable_messages(name: str, field: str) -> None:
    for data in ({name: {field: "CT"}}, {"search": {"keyword": "lung", "fields": [name]}}):
        try:
            parse_filter(data)
        except FilterError as err:
            assert_quotable(str(err))
        else:
            raise AssertionError(f"{data!r} accepted")


@SETTINGS
@given(json_like)
def test_arbitrary_json_gives_node_or_filter_error(data: Any) -> None:
    _check(data)


@SETTINGS
@given(json_like.map(lambda body: {"AND": [body]}) | json_like.map(lambda b: {"=": b}))
def test_arbitrary_json_below_an_operator_gives_node_or_filter_error(data: Any) -> None:
    _check(data)


@SETTINGS
@given(mostly_valid)
def test_mostly_valid_filters_give_node_or_filter_error(data: Any) -> None:
    _check(data)


@SETTINGS
@given(st.lists(leaf_filters(), min_size=1, max_size=6), st.integers(1, MAX_DEPTH + 3))
def test_deep_and_wide_filters_give_node_or_filter_error(leaves: list[Any], depth: int) -> None:
    node: Any = {"OR": leaves}
    for _ in range(depth - 1):
        node = {"AND": [node]}
    _check(node)


@SETTINGS
@given(
    st.sampled_from(COMPARE_OPS),
    st.sampled_from([n for n, s in FIELDS.items() if s.kind is FieldKind.INTEGER]),
    st.integers(-(2**53), 2**53) | st.floats(allow_nan=True, allow_infinity=True),
)
def test_numbers_on_integer_fields(op: str, field: str, value: int | float) -> None:
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        try:
            parse_filter({op: {field: value}})
        except FilterError as err:
            assert err.path == f"$.{op}.{field}"
        else:
            raise AssertionError(f"{value!r} accepted for {field}")
    elif abs(value) > 2**53:
        try:
            parse_filter({op: {field: value}})
        except FilterError as err:
            assert err.path == f"$.{op}.{field}"
    else:
        assert parse_filter({op: {field: value}}) == Compare(op, field, int(value))  # type: ignore[arg-type]
