"""DICOM JSON decoding (PS3.18 F.2) into canonical fields, and back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters.dicom_json import decode_series, encode_series, first, integer, text

SERIES: dict[str, Any] = {
    "0020000D": {"vr": "UI", "Value": ["1.2.840.1"]},
    "0020000E": {"vr": "UI", "Value": ["1.2.840.1.7"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
    "00100020": {"vr": "LO", "Value": ["PAT-1"]},
    "00100040": {"vr": "CS", "Value": ["F"]},
    "00101010": {"vr": "AS", "Value": ["018M"]},
    "00080020": {"vr": "DA", "Value": ["20210615"]},
    "00081030": {"vr": "LO", "Value": ["  Chest CT  "]},
    "0008103e": {"vr": "LO", "Value": ["Axial"]},  # lower-case tag: still read
    "00080060": {"vr": "CS", "Value": ["ct"]},
    "00180015": {"vr": "CS"},  # present, empty
    "00201209": {"vr": "IS", "Value": ["12"]},  # IS as a string (some servers)
}


def test_decode_normalises() -> None:
    assert decode_series(SERIES) == {
        "patient_id": "PAT-1",
        "study_uid": "1.2.840.1",
        "series_uid": "1.2.840.1.7",
        "modality": "CT",
        "body_part": None,
        "sex": "female",
        "age": 1,
        "study_date": dt.date(2021, 6, 15),
        "study_description": "Chest CT",
        "series_description": "Axial",
        "manufacturer": None,
        "instance_count": 12,
    }


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ({"vr": "IS", "Value": [3]}, 3),
        ({"vr": "IS", "Value": [3.0]}, 3),
        ({"vr": "IS", "Value": [" 4 "]}, 4),
        ({"vr": "IS", "Value": ["4.5"]}, None),
        ({"vr": "IS", "Value": [True]}, None),
        ({"vr": "IS", "Value": []}, None),
        ({"vr": "IS", "BulkDataURI": "http://x"}, None),
    ],
)
def test_integer(element: dict[str, Any], expected: int | None) -> None:
    assert integer({"00201209": element}, "NumberOfSeriesRelatedInstances") == expected


def test_person_names_blank_and_odd_values() -> None:
    assert text(SERIES, "PatientID") == "PAT-1"
    assert first({}, "PatientID") is None
    assert text({"00100020": {"vr": "LO", "Value": ["   "]}}, "PatientID") is None
    assert text({"00100020": {"vr": "LO", "Value": [None]}}, "PatientID") is None
    assert text({"00100020": {"vr": "LO", "Value": [{"Ideographic": "x"}]}}, "PatientID") is None
    assert text({"00100020": "not an element"}, "PatientID") is None
    odd = {"00100040": {"vr": "CS", "Value": ["0000"]}, "00080020": {"vr": "DA", "Value": ["2021"]}}
    decoded = decode_series(odd)
    assert decoded["sex"] == "unknown" and decoded["study_date"] is None
    assert decoded["patient_id"] is None and decoded["instance_count"] is None


def test_encode_round_trips() -> None:
    fields = decode_series(SERIES)
    encoded = encode_series(fields)
    assert encoded["00100040"] == {"vr": "CS", "Value": ["F"]}
    assert encoded["00101010"] == {"vr": "AS", "Value": ["001Y"]}
    assert encoded["00080020"] == {"vr": "DA", "Value": ["20210615"]}
    assert encoded["00180015"] == {"vr": "CS"}
    assert decode_series(encoded) == fields
    unknown = encode_series({**fields, "sex": "unknown", "study_date": "2021-06-15"})
    assert unknown["00100040"] == {"vr": "CS"}
    assert unknown["00080020"]["Value"] == ["20210615"]
