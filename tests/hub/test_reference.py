"""The hub's counts, facets and histograms equal DuckDB over the raw IDC parquet, exactly.

The whole corpus (1,044,191 series) is harvested through the real adapter into the real
embedded index (`full_hub`); the reference (`tests/reference.py`) is built independently
from the raw parquet with the pure Python normalisation rules. Each cohort is written
twice, by hand: as the Guppy JSON the hub receives and as a SQL `WHERE` over the
reference's canonical `ref` table. `!=` and `EXCLUDES` match missing values too
(DESIGN.md), so their SQL spells out `IS NULL OR ...`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from hub.service import Hub
from tests.reference import Reference

pytestmark = pytest.mark.slow  # runs in the normal suite: nothing deselects `slow` by default

FACET_FIELDS = ["modality", "body_part", "sex", "collection", "license", "manufacturer", "disease"]
FACET_SIZE = 1000
DESIGN_EXAMPLE = {
    "AND": [
        {"IN": {"modality": ["CT", "MR"]}},
        {"=": {"body_part": "CHEST"}},
        {">=": {"age": 55}},
        {"<=": {"age": 65}},
        {"!=": {"sex": "unknown"}},
        {"OR": [{"=": {"license": "CC BY 4.0"}}, {"=": {"license": "CC BY 3.0"}}]},
    ]
}

# (id, Guppy JSON filter, the same cohort as SQL over `ref`)
COHORTS: list[tuple[str, Any, str]] = [
    ("whole-corpus", None, "TRUE"),
    ("empty-and", {"AND": []}, "TRUE"),
    ("modality-ct", {"=": {"modality": "CT"}}, "modality = 'CT'"),
    ("modality-in-ct-mr", {"IN": {"modality": ["CT", "MR"]}}, "modality IN ('CT', 'MR')"),
    (
        "chest-ct",
        {"AND": [{"=": {"body_part": "CHEST"}}, {"=": {"modality": "CT"}}]},
        "body_part = 'CHEST' AND modality = 'CT'",
    ),
    (
        "collections",
        {"IN": {"collection": ["lidc_idri", "tcga_brca", "4d_lung", "no_such_collection"]}},
        "collection IN ('lidc_idri', 'tcga_brca', '4d_lung')",
    ),
    ("sex-female", {"=": {"sex": "female"}}, "sex = 'female'"),
    ("sex-not-unknown", {"!=": {"sex": "unknown"}}, "sex IS NULL OR sex <> 'unknown'"),
    (
        "age-55-65",
        {"AND": [{">=": {"age": 55}}, {"<=": {"age": 65}}]},
        "age >= 55 AND age <= 65",
    ),
    ("age-under-1", {"<": {"age": 1}}, "age < 1"),
    ("age-over-100", {">": {"age": 100}}, "age > 100"),
    ("age-not-60", {"!=": {"age": 60}}, "age IS NULL OR age <> 60"),
    (
        "licence-cc-by",
        {"IN": {"license": ["CC BY 4.0", "CC BY 3.0"]}},
        "license IN ('CC BY 4.0', 'CC BY 3.0')",
    ),
    (
        "study-date-2000-2005",
        {"AND": [{">=": {"study_date": "2000-01-01"}}, {"<=": {"study_date": "2005-12-31"}}]},
        "study_date >= DATE '2000-01-01' AND study_date <= DATE '2005-12-31'",
    ),
    (  # dates before the epoch are negative day numbers in the index
        "study-date-before-1970",
        {"<": {"study_date": "1970-01-01"}},
        "study_date < DATE '1970-01-01'",
    ),
    (
        "or-of-ands",
        {
            "OR": [
                {"AND": [{"=": {"modality": "MR"}}, {"=": {"body_part": "BRAIN"}}]},
                {"AND": [{"=": {"modality": "MG"}}, {"=": {"sex": "female"}}]},
            ]
        },
        "(modality = 'MR' AND body_part = 'BRAIN') OR (modality = 'MG' AND sex = 'female')",
    ),
    (
        "excludes-sr-seg",
        {"EXCLUDES": {"modality": ["SR", "SEG"]}},
        "modality IS NULL OR modality NOT IN ('SR', 'SEG')",
    ),
    (
        "body-part-not-chest",
        {"!=": {"body_part": "CHEST"}},
        "body_part IS NULL OR body_part <> 'CHEST'",
    ),
    ("body-part-missing", {"is_missing": {"body_part": True}}, "body_part IS NULL"),
    ("body-part-present", {"is_missing": {"body_part": False}}, "body_part IS NOT NULL"),
    ("age-missing", {"is_missing": {"age": True}}, "age IS NULL"),
    (
        "design-example",
        DESIGN_EXAMPLE,
        "modality IN ('CT', 'MR') AND body_part = 'CHEST' AND age >= 55 AND age <= 65"
        " AND (sex IS NULL OR sex <> 'unknown')"
        " AND (license = 'CC BY 4.0' OR license = 'CC BY 3.0')",
    ),
    ("disease-lung-cancer", {"=": {"disease": "Lung Cancer"}}, "disease = 'Lung Cancer'"),
    (
        "nested-not",
        {
            "AND": [
                {"EXCLUDES": {"collection": ["nlst"]}},
                {"OR": [{"is_missing": {"age": True}}, {">": {"age": 80}}]},
                {"!=": {"manufacturer": "SIEMENS"}},
            ]
        },
        "collection NOT IN ('nlst') AND (age IS NULL OR age > 80)"
        " AND (manufacturer IS NULL OR manufacturer <> 'SIEMENS')",
    ),
    ("nothing", {"=": {"modality": "NO-SUCH-MODALITY"}}, "FALSE"),
]
IDS = [c[0] for c in COHORTS]


@pytest.fixture(scope="module")
def ref() -> Iterator[Reference]:
    reference = Reference()  # about two seconds
    yield reference
    reference.close()


def test_reference_is_the_whole_corpus(ref: Reference) -> None:
    assert ref.counts().series == 1_044_191
    assert ref.scalar("SELECT count(DISTINCT series_uid) FROM ref") == 1_044_191
    # The cohorts below are not vacuous: each bites on real data.
    for cohort_id, _, where in COHORTS:
        if cohort_id != "nothing":
            assert ref.counts(where).series > 0, cohort_id


@pytest.mark.parametrize(("filter_json", "where"), [c[1:] for c in COHORTS], ids=IDS)
def test_counts_equal_reference(
    full_hub: Hub, ref: Reference, filter_json: Any, where: str
) -> None:
    counts = full_hub.cohort(filter_json, None).view.counts()
    expected = ref.counts(where)
    assert (counts.patients, counts.studies, counts.series) == (
        expected.patients,
        expected.studies,
        expected.series,
    )


@pytest.mark.parametrize(("filter_json", "where"), [c[1:] for c in COHORTS], ids=IDS)
def test_facets_equal_reference(
    full_hub: Hub, ref: Reference, filter_json: Any, where: str
) -> None:
    facets = full_hub.cohort(filter_json, None).view.facets(FACET_FIELDS, FACET_SIZE)
    assert [f.field for f in facets] == FACET_FIELDS
    for facet in facets:
        buckets, missing = ref.facet(facet.field, where)
        assert len(buckets) <= FACET_SIZE
        got = {b.key: b.count for b in facet.buckets}
        assert got == buckets, facet.field
        assert facet.missing == missing, facet.field
        counts = [b.count for b in facet.buckets]
        assert counts == sorted(counts, reverse=True), f"{facet.field} buckets not by count"


@pytest.mark.parametrize(("filter_json", "where"), [c[1:] for c in COHORTS], ids=IDS)
def test_age_histogram_equals_reference(
    full_hub: Hub, ref: Reference, filter_json: Any, where: str
) -> None:
    buckets = full_hub.cohort(filter_json, None).view.histogram("age", 10)
    got = {int(b.key): b.count for b in buckets if b.count}
    assert got == ref.histogram("age", 10, where)
    keys = [int(b.key) for b in buckets]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("filter_json", "where"),
    [
        c[1:]
        for c in COHORTS
        if c[0] in ("whole-corpus", "study-date-2000-2005", "modality-ct", "study-date-before-1970")
    ],
)
def test_study_date_histogram_equals_reference(
    full_hub: Hub, ref: Reference, filter_json: Any, where: str
) -> None:
    """Yearly-ish buckets of 365 days from 1970-01-01, as tantivy's histogram keys them."""
    buckets = full_hub.cohort(filter_json, None).view.histogram("study_date", 365)
    got = {dt.date.fromisoformat(b.key): b.count for b in buckets if b.count}
    days = ref.histogram("(study_date - DATE '1970-01-01')", 365, where)
    expected = {dt.date(1970, 1, 1) + dt.timedelta(days=d): n for d, n in days.items()}
    assert got == expected


def test_patients_are_counted_per_collection(full_hub: Hub, ref: Reference) -> None:
    """The same PatientID in two collections is two patients (DESIGN.md, "Counting")."""
    shared = ref.scalar(
        "SELECT count(*) FROM (SELECT patient_id FROM ref GROUP BY 1"
        " HAVING count(DISTINCT collection) > 1)"
    )
    assert shared > 0, "the corpus should have PatientIDs reused across collections"
    assert full_hub.cohort(None, None).view.counts().patients == ref.counts().patients
    assert ref.counts().patients > ref.scalar("SELECT count(DISTINCT patient_id) FROM ref")
