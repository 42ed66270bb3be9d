"""DICOM JSON (PS3.18 annex F.2) to and from canonical series fields.

QIDO-RS servers (Orthanc, dcm4chee, Google Cloud Healthcare) answer one object per match,
keyed by eight hex digits: `{"0020000D": {"vr": "UI", "Value": ["1.2..."]}}`. An attribute
may be absent, present with no `Value` (an empty type-2 element), hold a person name as
`{"Alphabetic": "..."}`, or an IS/DS number as a JSON number or a string depending on the
server. This module reads all of those into the canonical vocabulary, by the rules of
`schema.normalize`, and writes canonical records back, so the hub can reuse the same table
for a QIDO-RS face of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from schema import normalize as norm

DicomJson = Mapping[str, Any]
"""One DICOM JSON dataset: tag (8 hex digits) → {"vr": ..., "Value": [...]}."""

TAGS: dict[str, tuple[str, str]] = {
    "PatientID": ("00100020", "LO"),
    "PatientSex": ("00100040", "CS"),
    "PatientAge": ("00101010", "AS"),
    "StudyInstanceUID": ("0020000D", "UI"),
    "StudyDate": ("00080020", "DA"),
    "StudyDescription": ("00081030", "LO"),
    "SeriesInstanceUID": ("0020000E", "UI"),
    "Modality": ("00080060", "CS"),
    "BodyPartExamined": ("00180015", "CS"),
    "SeriesDescription": ("0008103E", "LO"),
    "Manufacturer": ("00080070", "LO"),
    "NumberOfSeriesRelatedInstances": ("00201209", "IS"),
}
"""The attributes a series record is built from: keyword → (tag, VR)."""

STUDY_LEVEL = ("PatientID", "PatientSex", "PatientAge", "StudyDate", "StudyDescription")
"""Patient and study attributes; a server may not copy them down to series answers."""

CANONICAL: dict[str, str] = {
    "patient_id": "PatientID",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "sex": "PatientSex",
    "age": "PatientAge",
    "study_date": "StudyDate",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "manufacturer": "Manufacturer",
    "instance_count": "NumberOfSeriesRelatedInstances",
}
"""Canonical field → the DICOM keyword it is read from and written to."""

_SEX_CODE = {"female": "F", "male": "M", "other": "O"}


def element(dataset: DicomJson, keyword: str) -> Mapping[str, Any] | None:
    """The element of `keyword`, or None when absent (tags are matched in either case)."""
    tag = TAGS[keyword][0]
    found = dataset.get(tag, dataset.get(tag.lower()))
    return found if isinstance(found, Mapping) else None


def first(dataset: DicomJson, keyword: str) -> Any:
    """The first value of an attribute; None when absent, empty, or bulk data only."""
    found = element(dataset, keyword)
    values = found.get("Value") if found is not None else None
    if not isinstance(values, list) or not values:
        return None
    return values[0]


def text(dataset: DicomJson, keyword: str) -> str | None:
    """A string value; a person name gives its Alphabetic group. Blank → None."""
    value = first(dataset, keyword)
    if isinstance(value, Mapping):
        value = value.get("Alphabetic")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    return norm.normalize_text(value) if isinstance(value, str) else None


def integer(dataset: DicomJson, keyword: str) -> int | None:
    """An IS value, sent as a JSON number or a string; anything else → None."""
    value = first(dataset, keyword)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    return value if isinstance(value, int) else None


def decode_series(dataset: DicomJson) -> dict[str, Any]:
    """Canonical fields of one series-level QIDO answer, normalised (DESIGN.md rules).

    `patient_id`, `study_uid` and `series_uid` are None when the server left them out;
    callers decide whether that is an error.
    """
    count = integer(dataset, "NumberOfSeriesRelatedInstances")
    return {
        "patient_id": text(dataset, "PatientID"),
        "study_uid": text(dataset, "StudyInstanceUID"),
        "series_uid": text(dataset, "SeriesInstanceUID"),
        "modality": norm.normalize_code(text(dataset, "Modality")),
        "body_part": norm.normalize_code(text(dataset, "BodyPartExamined")),
        "sex": norm.normalize_sex(text(dataset, "PatientSex")),
        "age": norm.normalize_age(text(dataset, "PatientAge")),
        "study_date": norm.normalize_date(text(dataset, "StudyDate")),
        "study_description": text(dataset, "StudyDescription"),
        "series_description": text(dataset, "SeriesDescription"),
        "manufacturer": text(dataset, "Manufacturer"),
        "instance_count": count if count is not None and count >= 0 else None,
    }


def encode_series(record: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical record as series-level DICOM JSON (for the hub's own QIDO-RS answers).

    Missing values become empty elements; `sex` "unknown" is written empty, and `age` as
    whole years (`045Y`), so `decode_series(encode_series(r))` gives `r`'s fields back.
    """
    out: dict[str, Any] = {}
    for field, keyword in CANONICAL.items():
        tag, vr = TAGS[keyword]
        value: Any = record.get(field)
        if field == "sex":
            value = _SEX_CODE.get(value or "")
        elif field == "age" and value is not None:
            value = f"{int(value):03d}Y"
        elif field == "study_date" and isinstance(value, dt.date):
            value = value.strftime("%Y%m%d")
        elif field == "study_date" and isinstance(value, str):
            parsed = norm.normalize_date(value)
            value = parsed.strftime("%Y%m%d") if parsed else None
        out[tag] = {"vr": vr, "Value": [value]} if value is not None else {"vr": vr}
    return out
