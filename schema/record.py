"""The canonical series record and the catalogue of its fields.

One document per DICOM series, with patient and study fields copied down, as the
BIH `imaging_series` index does. Every adapter produces these records; every index
backend stores them; filters, facets and sort keys use the canonical field names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class FieldKind(StrEnum):
    """How a field is stored and which operators make sense on it."""

    KEYWORD = "keyword"  # exact string: term, set and missing tests; facets
    INTEGER = "integer"  # whole number: ranges, histograms
    DATE = "date"  # ISO date: ranges, histograms in days
    TEXT = "text"  # free text: BM25 `search`; exact matches on the raw value too


@dataclass(frozen=True)
class FieldSpec:
    """What the hub knows about one canonical field."""

    name: str
    kind: FieldKind
    doc: str
    facetable: bool = True
    multi_valued: bool = False


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in [
        FieldSpec(
            "source", FieldKind.KEYWORD, "Repositories holding the series", multi_valued=True
        ),
        FieldSpec("collection", FieldKind.KEYWORD, "Collection id, lower snake case"),
        FieldSpec(
            "patient_id", FieldKind.KEYWORD, facetable=False, doc="PatientID within its collection"
        ),
        FieldSpec("study_uid", FieldKind.KEYWORD, facetable=False, doc="StudyInstanceUID"),
        FieldSpec("series_uid", FieldKind.KEYWORD, facetable=False, doc="SeriesInstanceUID"),
        FieldSpec("modality", FieldKind.KEYWORD, "DICOM Modality code, upper case"),
        FieldSpec("body_part", FieldKind.KEYWORD, "DICOM BodyPartExamined, upper case"),
        FieldSpec("sex", FieldKind.KEYWORD, "female, male, other or unknown"),
        FieldSpec("age", FieldKind.INTEGER, "Age at the study in whole years"),
        FieldSpec("race", FieldKind.KEYWORD, "Race as the repository reports it"),
        FieldSpec("ethnicity", FieldKind.KEYWORD, "Ethnicity as the repository reports it"),
        FieldSpec("study_date", FieldKind.DATE, "StudyDate, ISO YYYY-MM-DD"),
        FieldSpec("study_description", FieldKind.TEXT, "StudyDescription", facetable=False),
        FieldSpec("series_description", FieldKind.TEXT, "SeriesDescription", facetable=False),
        FieldSpec("manufacturer", FieldKind.KEYWORD, "Equipment manufacturer"),
        FieldSpec("license", FieldKind.KEYWORD, "Licence short name, e.g. CC BY 4.0"),
        FieldSpec("disease", FieldKind.KEYWORD, "Disease or cancer type of the collection"),
        FieldSpec("instance_count", FieldKind.INTEGER, "Number of instances in the series"),
        FieldSpec("size_bytes", FieldKind.INTEGER, "Total size of the series in bytes"),
    ]
}

TEXT_FIELDS: tuple[str, ...] = tuple(n for n, s in FIELDS.items() if s.kind is FieldKind.TEXT)
NUMERIC_FIELDS: tuple[str, ...] = tuple(
    n for n, s in FIELDS.items() if s.kind in (FieldKind.INTEGER, FieldKind.DATE)
)


class SeriesRecord(BaseModel):
    """One DICOM series as every part of the hub sees it.

    Values are already normalised (see `schema.normalize`); a missing value is None.
    `source` is the repository that produced this copy; `sources` lists every
    repository known to hold the series once copies have been merged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    collection: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str | None = None
    body_part: str | None = None
    sex: str = "unknown"
    age: int | None = Field(default=None, ge=0, le=200)
    race: str | None = None
    ethnicity: str | None = None
    study_date: dt.date | None = None
    study_description: str | None = None
    series_description: str | None = None
    manufacturer: str | None = None
    license: str | None = None
    disease: str | None = None
    instance_count: int | None = Field(default=None, ge=0)
    size_bytes: int | None = Field(default=None, ge=0)
    sources: list[str] = Field(default_factory=list)
    viewer_url: str | None = None
    download_url: str | None = None
    fetched_at: dt.datetime | None = None


RECORD_COLUMNS: tuple[str, ...] = tuple(SeriesRecord.model_fields)
