"""QIDO-RS parameters to hub filters, without a server: what each key becomes, and that
the filter goes through the hub's own parser (so its limits apply)."""

from __future__ import annotations

import pytest

from hub.qido.params import MAX_RESULTS, QidoError, parse_qido
from schema.filters import FilterError, parse_filter


def test_keywords_and_tags_are_the_same_key() -> None:
    by_tag = parse_qido([("0020000d", "1.2.3,1.2.4"), ("00080060", "CT")], "series")
    by_name = parse_qido([("StudyInstanceUID", "1.2.3"), ("StudyInstanceUID", "1.2.4")], "series")
    assert (
        by_tag.conditions[0] == by_name.conditions[0] == {"IN": {"study_uid": ["1.2.3", "1.2.4"]}}
    )
    assert by_tag.conditions[1] == {"IN": {"modality": ["CT"]}}
    assert by_tag.matched == {"0020000D", "00080060"}


def test_dates_sex_and_study_modalities() -> None:
    query = parse_qido(
        [("StudyDate", "20000101-"), ("PatientSex", "f"), ("ModalitiesInStudy", "CT,SEG")],
        "study",
    )
    assert query.conditions == [
        {">=": {"study_date": "2000-01-01"}},
        {"=": {"sex": "female"}},
    ]
    assert query.filter()["AND"][-1] == {"IN": {"modality": ["CT", "SEG"]}}
    assert query.filter(with_modalities=False)["AND"] == query.conditions
    closed = parse_qido([("StudyDate", "-20101231")], "series").conditions
    assert closed == [{"<=": {"study_date": "2010-12-31"}}]
    parse_filter(query.filter())  # what the hub will parse


def test_paging_and_includefield() -> None:
    query = parse_qido([("limit", "5000"), ("offset", "20"), ("includefield", "all")], "series")
    assert (query.limit, query.offset, query.capped, query.include) == (MAX_RESULTS, 20, True, None)
    small = parse_qido([("limit", "10"), ("includefield", "BodyPartExamined,00080070")], "series")
    assert (small.limit, small.capped) == (10, False)
    assert small.include == {"00180015", "00080070"}
    assert parse_qido([], "series").capped  # no limit: the server's maximum applies


def test_scoped_study_is_a_condition_and_bad_values_fail() -> None:
    scoped = parse_qido([("Modality", "MR")], "series", study_uid="1.2.840.1")
    assert {"IN": {"study_uid": ["1.2.840.1"]}} in scoped.conditions
    with pytest.raises(QidoError, match="UIDs"):
        parse_qido([], "series", study_uid="not-a-uid")
    with pytest.raises(QidoError, match="once"):
        parse_qido([("limit", "1"), ("limit", "2")], "series")
    too_many = parse_qido(
        [("SeriesInstanceUID", ",".join(f"1.{i}" for i in range(1001)))], "series"
    )
    with pytest.raises(FilterError, match="at most 1000"):
        parse_filter(too_many.filter())
