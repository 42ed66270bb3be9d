"""The cohort filter language: Guppy-compatible JSON → typed AST, with JSON-path errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from schema.filters import (
    MATCH_ALL,
    MAX_DEPTH,
    MAX_NODES,
    MAX_STRING,
    MAX_VALUES,
    And,
    Compare,
    FilterError,
    In,
    IsMissing,
    Or,
    Search,
    fields_used,
    parse_filter,
    to_json,
    walk,
)
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

DESIGN_EXAMPLE: dict[str, Any] = {
    "AND": [
        {"IN": {"modality": ["CT", "MR"]}},
        {"=": {"body_part": "CHEST"}},
        {">=": {"age": 55}},
        {"<=": {"age": 65}},
        {"!=": {"sex": "unknown"}},
        {"OR": [{"=": {"license": "CC BY 4.0"}}, {"=": {"license": "CC BY 3.0"}}]},
    ]
}

DESIGN_AST = And(
    (
        In("modality", ("CT", "MR")),
        Compare("=", "body_part", "CHEST"),
        Compare(">=", "age", 55),
        Compare("<=", "age", 65),
        Compare("!=", "sex", "unknown"),
        Or((Compare("=", "license", "CC BY 4.0"), Compare("=", "license", "CC BY 3.0"))),
    )
)

KEYWORD_FIELDS = [n for n, s in FIELDS.items() if s.kind is FieldKind.KEYWORD]
INTEGER_FIELDS = [n for n, s in FIELDS.items() if s.kind is FieldKind.INTEGER]
DATE_FIELDS = [n for n, s in FIELDS.items() if s.kind is FieldKind.DATE]


def error_of(data: Any) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse_filter(data)
    return info.value


def nested(depth: int, op: str = "AND") -> dict[str, Any]:
    """`depth` levels: depth-1 combinators wrapping one leaf (built without recursion)."""
    node: dict[str, Any] = {"=": {"modality": "CT"}}
    for _ in range(depth - 1):
        node = {op: [node]}
    return node


def nested_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# --------------------------------------------------------------------------- success


def test_design_example_parses_to_typed_ast() -> None:
    assert parse_filter(DESIGN_EXAMPLE) == DESIGN_AST


def test_design_example_through_json_text() -> None:
    assert parse_filter(json.loads(json.dumps(DESIGN_EXAMPLE))) == DESIGN_AST


def test_design_example_to_json_is_the_input() -> None:
    assert to_json(parse_filter(DESIGN_EXAMPLE)) == DESIGN_EXAMPLE


@pytest.mark.parametrize("data", [None, {}])
def test_none_and_empty_object_match_all(data: Any) -> None:
    node = parse_filter(data)
    assert node == MATCH_ALL
    assert node == And(())


def test_empty_and_matches_all() -> None:
    assert parse_filter({"AND": []}) == MATCH_ALL


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"=": {"modality": "CT"}}, Compare("=", "modality", "CT")),
        ({"!=": {"sex": "unknown"}}, Compare("!=", "sex", "unknown")),
        ({"=": {"age": 55}}, Compare("=", "age", 55)),
        ({"=": {"age": 55.0}}, Compare("=", "age", 55)),
        ({"=": {"age": 0}}, Compare("=", "age", 0)),
        ({"=": {"age": -3}}, Compare("=", "age", -3)),
        ({">": {"age": 18}}, Compare(">", "age", 18)),
        ({">=": {"instance_count": 100}}, Compare(">=", "instance_count", 100)),
        ({"<": {"size_bytes": 2**40}}, Compare("<", "size_bytes", 2**40)),
        ({"<=": {"size_bytes": 2**53}}, Compare("<=", "size_bytes", 2**53)),
        ({">=": {"size_bytes": -(2**53)}}, Compare(">=", "size_bytes", -(2**53))),
        (
            {">=": {"study_date": "2020-01-01"}},
            Compare(">=", "study_date", dt.date(2020, 1, 1)),
        ),
        (
            {"<": {"study_date": "2024-02-29"}},
            Compare("<", "study_date", dt.date(2024, 2, 29)),
        ),
        (
            {"=": {"study_date": "1999-12-31"}},
            Compare("=", "study_date", dt.date(1999, 12, 31)),
        ),
        ({"=": {"study_description": "CT CHEST"}}, Compare("=", "study_description", "CT CHEST")),
        ({"=": {"license": "CC BY 4.0"}}, Compare("=", "license", "CC BY 4.0")),
        ({"=": {"modality": ""}}, Compare("=", "modality", "")),
        ({"=": {"modality": "x" * MAX_STRING}}, Compare("=", "modality", "x" * MAX_STRING)),
        ({"IN": {"modality": ["CT"]}}, In("modality", ("CT",))),
        ({"IN": {"modality": ["CT", "MR", "PT"]}}, In("modality", ("CT", "MR", "PT"))),
        (
            {"EXCLUDES": {"modality": ["SEG", "RTSTRUCT"]}},
            In("modality", ("SEG", "RTSTRUCT"), True),
        ),
        ({"IN": {"age": [50, 60.0]}}, In("age", (50, 60))),
        (
            {"IN": {"study_date": ["2020-01-01", "2021-06-30"]}},
            In("study_date", (dt.date(2020, 1, 1), dt.date(2021, 6, 30))),
        ),
        ({"is_missing": {"body_part": True}}, IsMissing("body_part", True)),
        ({"is_missing": {"age": False}}, IsMissing("age", False)),
        (
            {"search": {"keyword": "lung nodule", "fields": ["series_description"]}},
            Search("lung nodule", ("series_description",)),
        ),
        ({"search": {"keyword": "lung"}}, Search("lung", TEXT_FIELDS)),
        ({"search": {"keyword": "lung", "fields": []}}, Search("lung", TEXT_FIELDS)),
        ({"search": {"keyword": "  lung  "}}, Search("lung", TEXT_FIELDS)),
        (
            {"search": {"keyword": "l" * MAX_STRING, "fields": list(TEXT_FIELDS)}},
            Search("l" * MAX_STRING, TEXT_FIELDS),
        ),
        ({"OR": [{"=": {"modality": "CT"}}]}, Or((Compare("=", "modality", "CT"),))),
        (
            {"AND": [{"OR": [{"AND": []}]}]},
            And((Or((And(()),)),)),
        ),
    ],
)
def test_parse_success(data: Any, expected: Any) -> None:
    assert parse_filter(data) == expected


def test_integer_values_are_ints_not_floats() -> None:
    node = parse_filter({"=": {"age": 55.0}})
    assert isinstance(node, Compare)
    assert type(node.value) is int


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
@pytest.mark.parametrize("field", INTEGER_FIELDS + DATE_FIELDS)
def test_every_compare_operator_on_every_numeric_field(op: str, field: str) -> None:
    raw = "2021-03-04" if field in DATE_FIELDS else 7
    value = dt.date(2021, 3, 4) if field in DATE_FIELDS else 7
    assert parse_filter({op: {field: raw}}) == Compare(op, field, value)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", KEYWORD_FIELDS + list(TEXT_FIELDS))
@pytest.mark.parametrize("op", ["=", "!="])
def test_equality_on_every_string_field(op: str, field: str) -> None:
    assert parse_filter({op: {field: "v"}}) == Compare(op, field, "v")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", list(FIELDS))
def test_is_missing_on_every_field(field: str) -> None:
    assert parse_filter({"is_missing": {field: True}}) == IsMissing(field)


def test_in_accepts_exactly_max_values() -> None:
    values = [f"M{i}" for i in range(MAX_VALUES)]
    node = parse_filter({"IN": {"modality": values}})
    assert node == In("modality", tuple(values))


def test_nesting_up_to_max_depth_is_accepted() -> None:
    node = parse_filter(nested(MAX_DEPTH))
    assert sum(1 for _ in walk(node)) == MAX_DEPTH


def test_up_to_max_nodes_is_accepted() -> None:
    # Every node counts, the combinators included: one AND plus MAX_NODES - 1 leaves.
    data = {"AND": [{"=": {"modality": "CT"}}] * (MAX_NODES - 1)}
    node = parse_filter(data)
    assert sum(1 for _ in walk(node)) == MAX_NODES


# --------------------------------------------------------------------------- hostile values


SQL_INJECTION = [
    "CT'; DROP TABLE series; --",
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    'CT"; DELETE FROM series WHERE "1"="1',
    "1; SELECT * FROM information_schema.tables",
    "CT' UNION SELECT patient_id FROM series --",
    "%' AND modality LIKE '%",
    "\\'; --",
    "CT\x00",
    "Robert'); DROP TABLE Students;--",
    '{"AND": []}',
    "$.AND[0]",
    "日本語 ✓ \u202e",
]


@pytest.mark.parametrize("value", SQL_INJECTION)
def test_sql_injection_looking_strings_are_plain_values(value: str) -> None:
    assert parse_filter({"=": {"modality": value}}) == Compare("=", "modality", value)
    assert parse_filter({"!=": {"license": value}}) == Compare("!=", "license", value)
    assert parse_filter({"IN": {"body_part": [value, "CHEST"]}}) == In(
        "body_part", (value, "CHEST")
    )
    assert parse_filter({"search": {"keyword": value + " x"}}).keyword == (value + " x").strip()  # type: ignore[union-attr]
    node = parse_filter({"AND": [{"=": {"collection": value}}]})
    assert to_json(node) == {"AND": [{"=": {"collection": value}}]}


@pytest.mark.parametrize("value", SQL_INJECTION)
def test_sql_injection_looking_field_names_are_unknown_fields(value: str) -> None:
    # a name with a control or format character is quoted (escaped), never echoed raw
    expected = f"$.=.{value}" if value.isprintable() else f"$.=[{value!r}]"
    assert error_of({"=": {value: "CT"}}).path == expected


def test_sql_injection_looking_operator_is_unknown_operator() -> None:
    assert error_of({"= 1 OR 1=1 --": {"modality": "CT"}}).path == "$"


@pytest.mark.parametrize("op", ["AND", "OR"])
def test_ten_thousand_deep_nesting_is_rejected_without_recursion_error(op: str) -> None:
    err = error_of(nested(10_000, op))
    assert err.path == "$" + f".{op}[0]" * MAX_DEPTH


def test_ten_thousand_deep_nested_value_is_rejected_without_recursion_error() -> None:
    deep = nested_list(10_000)
    assert error_of({"=": {"modality": deep}}).path == "$.=.modality"
    assert error_of({"=": {"age": deep}}).path == "$.=.age"
    assert error_of({"=": {"study_date": deep}}).path == "$.=.study_date"
    assert error_of({"IN": {"modality": ["CT", deep]}}).path == "$.IN.modality[1]"
    assert error_of({"search": {"keyword": "x", "fields": [deep]}}).path == "$.search.fields[0]"
    assert error_of({"is_missing": {"age": deep}}).path == "$.is_missing.age"
    assert error_of({"=": deep}).path == "$.="


def test_ten_thousand_deep_nested_object_value_is_rejected() -> None:
    deep: dict[str, Any] = {}
    for _ in range(10_000):
        deep = {"k": deep}
    assert error_of({"=": {"modality": deep}}).path == "$.=.modality"
    assert error_of({"AND": [deep]}).path == "$.AND[0]"  # "k" is an unknown operator


def test_five_thousand_element_in_is_rejected() -> None:
    values = [f"M{i}" for i in range(5_000)]
    assert error_of({"IN": {"modality": values}}).path == "$.IN.modality"
    assert (
        error_of({"AND": [{"EXCLUDES": {"modality": values}}]}).path == "$.AND[0].EXCLUDES.modality"
    )


def test_in_one_over_max_values_is_rejected() -> None:
    values = ["CT"] * (MAX_VALUES + 1)
    assert error_of({"IN": {"modality": values}}).path == "$.IN.modality"


def test_huge_value_error_message_stays_small() -> None:
    err = error_of({"=": {"age": "9" * 1_000_000}})
    assert err.path == "$.=.age"
    assert len(str(err)) < 1_000


@pytest.mark.parametrize(
    "data", [[], [{"=": {"modality": "CT"}}], "CT", "", 0, 1, 3.5, True, False]
)
def test_non_object_top_level_is_rejected(data: Any) -> None:
    assert error_of(data).path == "$"


# --------------------------------------------------------------------------- error paths


@pytest.mark.parametrize(
    ("data", "path"),
    [
        # Shape of a condition.
        ({"=": {"modality": "CT"}, "!=": {"sex": "male"}}, "$"),
        ({"AND": [{"=": {"modality": "CT"}}, "CT"]}, "$.AND[1]"),
        ({"AND": [{"=": {"modality": "CT"}}, {}]}, "$.AND[1]"),
        ({"AND": [None]}, "$.AND[0]"),
        ({"AND": [[{"=": {"modality": "CT"}}]]}, "$.AND[0]"),
        ({"AND": {"=": {"modality": "CT"}}}, "$.AND"),
        ({"AND": "x"}, "$.AND"),
        ({"AND": None}, "$.AND"),
        ({"OR": []}, "$.OR"),
        ({"OR": {"=": {"modality": "CT"}}}, "$.OR"),
        ({"AND": [{"OR": []}]}, "$.AND[0].OR"),
        ({"=": "CT"}, "$.="),
        ({"=": ["modality", "CT"]}, "$.="),
        ({"=": {}}, "$.="),
        ({"=": {"modality": "CT", "body_part": "CHEST"}}, "$.="),
        ({"IN": None}, "$.IN"),
        # Unknown operators (the path is the object holding the operator).
        ({"LIKE": {"modality": "C%"}}, "$"),
        ({"and": [{"=": {"modality": "CT"}}]}, "$"),
        ({"==": {"modality": "CT"}}, "$"),
        ({"in": {"modality": ["CT"]}}, "$"),
        ({"NOT": {"=": {"modality": "CT"}}}, "$"),
        ({"AND": [{"=": {"modality": "CT"}}, {"NOT": {"=": {"modality": "MR"}}}]}, "$.AND[1]"),
        ({"OR": [{"AND": [{"BETWEEN": {"age": [1, 2]}}]}]}, "$.OR[0].AND[0]"),
        # Unknown fields.
        ({"=": {"modalty": "CT"}}, "$.=.modalty"),
        ({"=": {"Modality": "CT"}}, "$.=.Modality"),
        ({"=": {"": "CT"}}, "$.=."),
        ({"IN": {"PatientAge": ["066Y"]}}, "$.IN.PatientAge"),
        (
            {"AND": [{"=": {"modality": "CT"}}, {"IN": {"modalityy": ["CT"]}}]},
            "$.AND[1].IN.modalityy",
        ),
        ({"is_missing": {"bodypart": True}}, "$.is_missing.bodypart"),
        ({">=": {"agee": 5}}, "$.>=.agee"),
        ({"=": {"viewer_url": "x"}}, "$.=.viewer_url"),  # a record column, not a filter field
        # Wrong value types.
        ({"=": {"age": "55"}}, "$.=.age"),
        ({">=": {"age": "55"}}, "$.>=.age"),
        ({">=": {"age": True}}, "$.>=.age"),
        ({"=": {"age": False}}, "$.=.age"),
        ({"=": {"age": None}}, "$.=.age"),
        ({"=": {"age": 55.5}}, "$.=.age"),
        ({"=": {"age": [55]}}, "$.=.age"),
        ({"=": {"age": {"value": 55}}}, "$.=.age"),
        ({"=": {"age": float("nan")}}, "$.=.age"),
        ({"=": {"age": float("inf")}}, "$.=.age"),
        ({"<": {"age": float("-inf")}}, "$.<.age"),
        ({"=": {"age": 2**53 + 1}}, "$.=.age"),
        ({"=": {"age": -(2**53) - 1}}, "$.=.age"),
        ({"=": {"size_bytes": 1e300}}, "$.=.size_bytes"),
        ({"=": {"modality": 3}}, "$.=.modality"),
        ({"=": {"modality": 3.0}}, "$.=.modality"),
        ({"=": {"modality": True}}, "$.=.modality"),
        ({"=": {"modality": None}}, "$.=.modality"),
        ({"=": {"modality": ["CT"]}}, "$.=.modality"),
        ({"!=": {"sex": {"=": "male"}}}, "$.!=.sex"),
        ({"=": {"modality": "x" * (MAX_STRING + 1)}}, "$.=.modality"),
        ({"=": {"study_description": 5}}, "$.=.study_description"),
        ({"=": {"study_date": 20230101}}, "$.=.study_date"),
        ({"=": {"study_date": None}}, "$.=.study_date"),
        ({">=": {"study_date": "20231345"}}, "$.>=.study_date"),
        ({">=": {"study_date": "2023-13-01"}}, "$.>=.study_date"),
        ({"<": {"study_date": "2023-02-30"}}, "$.<.study_date"),
        ({"<": {"study_date": "abc"}}, "$.<.study_date"),
        ({"<": {"study_date": ""}}, "$.<.study_date"),
        ({"<": {"study_date": "01/02/2023"}}, "$.<.study_date"),
        (
            {"AND": [{">=": {"study_date": "2023-01-01"}}, {"<": {"study_date": "soon"}}]},
            "$.AND[1].<.study_date",
        ),
        # IN / EXCLUDES.
        ({"IN": {"modality": []}}, "$.IN.modality"),
        ({"EXCLUDES": {"modality": []}}, "$.EXCLUDES.modality"),
        ({"AND": [{"=": {"age": 1}}, {"IN": {"modality": []}}]}, "$.AND[1].IN.modality"),
        ({"IN": {"modality": "CT"}}, "$.IN.modality"),
        ({"IN": {"modality": None}}, "$.IN.modality"),
        ({"IN": {"modality": {"CT": 1}}}, "$.IN.modality"),
        ({"AND": [{"IN": {"modality": ["CT", 3]}}]}, "$.AND[0].IN.modality[1]"),
        ({"IN": {"modality": ["CT", "MR", None]}}, "$.IN.modality[2]"),
        ({"EXCLUDES": {"age": [1, "2"]}}, "$.EXCLUDES.age[1]"),
        ({"IN": {"age": [True]}}, "$.IN.age[0]"),
        ({"IN": {"study_date": ["2020-01-01", "2020-01-32"]}}, "$.IN.study_date[1]"),
        ({"IN": {"modality": ["CT", ["MR"]]}}, "$.IN.modality[1]"),
        # Range operators need numeric or date fields.
        ({">": {"modality": "CT"}}, "$.>.modality"),
        ({">=": {"sex": "female"}}, "$.>=.sex"),
        ({"<": {"collection": "a"}}, "$.<.collection"),
        ({"<=": {"license": "CC BY 4.0"}}, "$.<=.license"),
        ({"<": {"study_description": "x"}}, "$.<.study_description"),
        ({"AND": [{"=": {"age": 1}}, {">": {"body_part": "CHEST"}}]}, "$.AND[1].>.body_part"),
        # is_missing.
        ({"is_missing": {"body_part": "yes"}}, "$.is_missing.body_part"),
        ({"is_missing": {"body_part": 1}}, "$.is_missing.body_part"),
        ({"is_missing": {"body_part": None}}, "$.is_missing.body_part"),
        ({"is_missing": {"body_part": True, "age": True}}, "$.is_missing"),
        ({"is_missing": "body_part"}, "$.is_missing"),
        ({"is_missing": ["body_part"]}, "$.is_missing"),
        # search.
        ({"search": "lung"}, "$.search"),
        ({"search": ["lung"]}, "$.search"),
        ({"search": {}}, "$.search"),
        ({"search": {"fields": ["series_description"]}}, "$.search"),
        ({"search": {"keyword": 5}}, "$.search"),
        ({"search": {"keyword": None}}, "$.search"),
        ({"search": {"keyword": ["lung"]}}, "$.search"),
        ({"search": {"keyword": "lung", "field": ["series_description"]}}, "$.search"),
        ({"search": {"keyword": "lung", "fuzzy": True}}, "$.search"),
        ({"search": {"keyword": ""}}, "$.search.keyword"),
        ({"search": {"keyword": "   "}}, "$.search.keyword"),
        ({"search": {"keyword": "x" * (MAX_STRING + 1)}}, "$.search.keyword"),
        ({"search": {"keyword": "lung", "fields": "series_description"}}, "$.search.fields"),
        ({"search": {"keyword": "lung", "fields": {"series_description": 1}}}, "$.search.fields"),
        (
            {"search": {"keyword": "lung", "fields": ["series_description", "nope"]}},
            "$.search.fields[1]",
        ),
        ({"search": {"keyword": "lung", "fields": ["modality"]}}, "$.search.fields[0]"),
        ({"search": {"keyword": "lung", "fields": ["age"]}}, "$.search.fields[0]"),
        ({"search": {"keyword": "lung", "fields": [None]}}, "$.search.fields[0]"),
        ({"search": {"keyword": "lung", "fields": [3]}}, "$.search.fields[0]"),
        ({"search": {"keyword": "lung", "fields": [["series_description"]]}}, "$.search.fields[0]"),
        ({"AND": [{"=": {"age": 1}}, {"search": {"keyword": ""}}]}, "$.AND[1].search.keyword"),
        # Errors deep in the design example.
        (
            {
                "AND": [
                    *DESIGN_EXAMPLE["AND"][:5],
                    {"OR": [{"=": {"license": "CC BY 4.0"}}, {"=": {"licence": "x"}}]},
                ]
            },
            "$.AND[5].OR[1].=.licence",
        ),
        (
            {"AND": [{"IN": {"modality": ["CT", "MR"]}}, {"IN": {"modality": ["CT", 7]}}]},
            "$.AND[1].IN.modality[1]",
        ),
    ],
)
def test_error_paths(data: Any, path: str) -> None:
    err = error_of(data)
    assert err.path == path
    assert str(err).startswith(f"{path}: ")
    assert err.message


def test_first_error_wins() -> None:
    data = {"AND": [{"=": {"modality": 1}}, {"=": {"nope": "x"}}]}
    assert error_of(data).path == "$.AND[0].=.modality"


def test_filter_error_is_a_value_error_with_path_and_message() -> None:
    err = error_of({"=": {"nope": "x"}})
    assert isinstance(err, ValueError)
    assert err.path == "$.=.nope"
    assert "nope" in err.message
    assert str(err) == f"{err.path}: {err.message}"


def test_unknown_field_message_lists_known_fields() -> None:
    err = error_of({"=": {"nope": "x"}})
    for field in FIELDS:
        assert field in err.message


def test_unknown_operator_message_lists_known_operators() -> None:
    err = error_of({"LIKE": {"modality": "x"}})
    for op in ("IN", "EXCLUDES", "AND", "OR", "search", "is_missing"):
        assert op in err.message


# --------------------------------------------------------------------------- limits


def test_one_level_deeper_than_max_depth_is_rejected() -> None:
    err = error_of(nested(MAX_DEPTH + 1))
    assert err.path == "$" + ".AND[0]" * MAX_DEPTH
    assert str(MAX_DEPTH) in err.message


def test_max_depth_counts_combinators_mixed() -> None:
    node: dict[str, Any] = {"=": {"modality": "CT"}}
    for i in range(MAX_DEPTH):
        node = {("AND" if i % 2 else "OR"): [node]}
    path = "$" + "".join(".AND[0]" if i % 2 else ".OR[0]" for i in reversed(range(MAX_DEPTH)))
    assert error_of(node).path == path


def test_more_than_max_nodes_is_rejected() -> None:
    data = {"AND": [{"=": {"modality": "CT"}}] * MAX_NODES}
    err = error_of(data)
    assert err.path == f"$.AND[{MAX_NODES - 1}]"
    assert str(MAX_NODES) in err.message


def test_max_nodes_counts_across_branches() -> None:
    leaf = {"=": {"modality": "CT"}}
    half = (MAX_NODES - 3) // 2  # top AND + two ORs + leaves
    ok = {"AND": [{"OR": [leaf] * half}, {"OR": [leaf] * (MAX_NODES - 3 - half)}]}
    assert sum(1 for _ in walk(parse_filter(ok))) == MAX_NODES
    too_many = {"AND": [{"OR": [leaf] * half}, {"OR": [leaf] * (MAX_NODES - 2 - half)}]}
    assert error_of(too_many).path == f"$.AND[1].OR[{MAX_NODES - 3 - half}]"


def test_a_million_flat_conditions_are_rejected_quickly() -> None:
    data = {"OR": [{"=": {"modality": "CT"}}] * 1_000_000}
    assert error_of(data).path == f"$.OR[{MAX_NODES - 1}]"


# --------------------------------------------------------------------------- round trip

ROUND_TRIP = [
    None,
    {},
    {"AND": []},
    DESIGN_EXAMPLE,
    {"=": {"modality": "CT"}},
    {"=": {"age": 55.0}},
    {">=": {"study_date": "2020-01-01"}},
    {"IN": {"study_date": ["2020-01-01", "2021-12-31"]}},
    {"EXCLUDES": {"modality": ["SEG", "RTSTRUCT"]}},
    {"IN": {"instance_count": [1, 2, 3]}},
    {"is_missing": {"body_part": True}},
    {"is_missing": {"body_part": False}},
    {"search": {"keyword": "lung"}},
    {"search": {"keyword": "  lung  nodule ", "fields": ["series_description"]}},
    {
        "OR": [
            {"AND": [{"=": {"sex": "female"}}, {"<": {"age": 40}}]},
            {"is_missing": {"age": True}},
        ]
    },
    {"=": {"modality": SQL_INJECTION[0]}},
    nested(MAX_DEPTH),
]


@pytest.mark.parametrize("data", ROUND_TRIP)
def test_round_trip(data: Any) -> None:
    ast = parse_filter(data)
    assert parse_filter(to_json(ast)) == ast


@pytest.mark.parametrize("data", ROUND_TRIP)
def test_to_json_is_plain_json(data: Any) -> None:
    out = to_json(parse_filter(data))
    assert json.loads(json.dumps(out)) == out


def test_to_json_of_match_all() -> None:
    assert to_json(MATCH_ALL) == {"AND": []}


def test_to_json_serialises_dates_as_iso() -> None:
    assert to_json(Compare(">=", "study_date", dt.date(2020, 1, 2))) == {
        ">=": {"study_date": "2020-01-02"}
    }
    assert to_json(In("study_date", (dt.date(2020, 1, 2),), negated=True)) == {
        "EXCLUDES": {"study_date": ["2020-01-02"]}
    }


def test_to_json_rejects_non_nodes() -> None:
    with pytest.raises(TypeError):
        to_json({"=": {"modality": "CT"}})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- AST helpers


def test_nodes_are_frozen_and_hashable() -> None:
    ast = parse_filter(DESIGN_EXAMPLE)
    assert hash(ast) == hash(parse_filter(DESIGN_EXAMPLE))
    assert {ast: 1}[DESIGN_AST] == 1
    with pytest.raises(AttributeError):
        ast.children = ()  # type: ignore[misc]


def test_walk_yields_parents_first() -> None:
    nodes = list(walk(DESIGN_AST))
    assert nodes[0] is DESIGN_AST
    assert nodes[1:7] == list(DESIGN_AST.children[:6])
    assert nodes[7:] == list(DESIGN_AST.children[5].children)  # type: ignore[union-attr]
    assert len(nodes) == 9


def test_walk_single_leaf() -> None:
    leaf = Compare("=", "modality", "CT")
    assert list(walk(leaf)) == [leaf]


def test_fields_used() -> None:
    assert fields_used(DESIGN_AST) == {"modality", "body_part", "age", "sex", "license"}
    assert fields_used(MATCH_ALL) == set()
    assert fields_used(parse_filter({"search": {"keyword": "lung"}})) == set(TEXT_FIELDS)
    assert fields_used(
        parse_filter(
            {
                "OR": [
                    {"is_missing": {"body_part": True}},
                    {"search": {"keyword": "x", "fields": ["series_description"]}},
                    {"EXCLUDES": {"collection": ["a"]}},
                ]
            }
        )
    ) == {"body_part", "series_description", "collection"}


def test_limits_are_sane() -> None:
    assert MAX_DEPTH >= 3
    assert MAX_NODES >= 10
    assert MAX_VALUES >= 10
    assert MAX_STRING >= 100
    assert TEXT_FIELDS
