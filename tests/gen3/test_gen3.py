"""The Gen3 adapter against a stand-in Guppy (respx) serving real-shaped fixture documents.

Translation must produce the exact Guppy filter JSON and leave the rest residual; the pushed
request answered by Guppy's own filter semantics plus the residual must select exactly what
the reference evaluator selects over every fixture record; paging must switch to
`/guppy/download` at the 10,000-row window; tokens go only to the commons host, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import respx

from adapters.gen3 import Gen3Adapter
from adapters.spi import SourceSettings, TerminalSourceError
from schema.evaluate import matches
from schema.filters import parse_filter, to_json
from tests.gen3.fake_guppy import FakeGuppy
from tests.gen3.support import MIDRC_URL, URL, _harvest, _walk, adapter, fixture, walk

# -- translation ------------------------------------------------------------------------

CT_MR = ["CT", "Ct", "ct", "MR", "Mr", "mr"]


@pytest.mark.parametrize(
    ("query", "native", "residual"),
    [
        (
            {"AND": [{"IN": {"modality": ["CT", "MR"]}}, {"=": {"body_part": "CHEST"}}]},
            {
                "AND": [
                    {"IN": {"Modality": CT_MR}},
                    {"IN": {"BodyPartExamined": ["CHEST", "Chest", "chest"]}},
                ]
            },
            None,
        ),
        (  # PatientAge holds strings ("065Y", "72") at BIH: age stays residual
            {"AND": [{"=": {"sex": "female"}}, {">=": {"age": 55}}]},
            {"IN": {"PatientSex": ["Female", "F"]}},
            {">=": {"age": 55}},
        ),
        ({"!=": {"sex": "male"}}, {"!=": {"PatientSex": ["Male", "M"]}}, None),
        (
            {"EXCLUDES": {"modality": ["SEG", "SR"]}},
            {"!=": {"Modality": ["SEG", "Seg", "seg", "SR", "Sr", "sr"]}},
            None,
        ),
        ({"is_missing": {"body_part": True}}, {"IN": {"BodyPartExamined": ["no data", ""]}}, None),
        ({"is_missing": {"body_part": False}}, None, {"is_missing": {"body_part": False}}),
        ({"=": {"collection": "lidc_idri"}}, None, {"=": {"collection": "lidc_idri"}}),
        ({"=": {"modality": "ct"}}, None, {"=": {"modality": "ct"}}),  # canonical is upper case
        (
            {"OR": [{"=": {"modality": "CT"}}, {"=": {"sex": "other"}}]},  # no raw value for other
            None,
            {"OR": [{"=": {"modality": "CT"}}, {"=": {"sex": "other"}}]},
        ),
        (
            {"AND": [{"=": {"patient_id": "LIDC-IDRI-0002"}}, {"search": {"keyword": "chest"}}]},
            {"=": {"PatientID": "LIDC-IDRI-0002"}},
            {"search": {"keyword": "chest", "fields": ["study_description", "series_description"]}},
        ),
    ],
)
def test_bih_translation(query: Any, native: Any, residual: Any) -> None:
    t = adapter("bih").translate(parse_filter(query))
    assert t.native["filter"] == native
    assert (to_json(t.residual) if t.residual else None) == residual
    assert t.native["index"] == "imaging_series"
    assert t.native["sort"] == [{"SeriesInstanceUID": "asc"}]


NODES = ["ct", "cr", "dx", "mg", "mr", "nm", "pt", "rf", "us", "xa"]
BASE = {"IN": {"source_node": [f"{m}_series_file" for m in NODES]}}


@pytest.mark.parametrize(
    ("query", "pushed", "residual"),
    [
        (  # each range alone in an AND: Guppy drops ranges beyond two under one AND
            {
                "AND": [
                    {"=": {"sex": "female"}},
                    {">=": {"age": 55}},
                    {"<=": {"age": 65}},
                    {">": {"age": 56}},
                ]
            },
            {
                "AND": [
                    {"=": {"sex": "Female"}},
                    {"AND": [{">=": {"age_at_imaging": 55}}]},
                    {"AND": [{"<": {"age_at_imaging": 66}}]},
                    {"AND": [{">=": {"age_at_imaging": 57}}]},
                ]
            },
            None,
        ),
        (
            {"IN": {"age": [45, 72]}},
            {
                "OR": [
                    {"AND": [{">=": {"age_at_imaging": 45}}, {"<": {"age_at_imaging": 46}}]},
                    {"AND": [{">=": {"age_at_imaging": 72}}, {"<": {"age_at_imaging": 73}}]},
                ]
            },
            None,
        ),
        ({"!=": {"age": 60}}, None, {"!=": {"age": 60}}),  # Guppy's numeric != drops missing ages
        ({"=": {"body_part": "<UNDEFINED>"}}, None, {"=": {"body_part": "<UNDEFINED>"}}),
        (
            {"is_missing": {"body_part": True}},
            {"IN": {"body_part_examined": ["no data", "", "<Undefined>"]}},
            None,
        ),
        ({">=": {"instance_count": 100}}, {"AND": [{">=": {"number_of_instances": 100}}]}, None),
    ],
)
def test_midrc_translation(query: Any, pushed: Any, residual: Any) -> None:
    t = adapter("midrc").translate(parse_filter(query))
    assert t.native["filter"] == ({"AND": [BASE, pushed]} if pushed else BASE)
    assert (to_json(t.residual) if t.residual else None) == residual
    assert t.native["index"] == "data_file"


def test_capabilities_follow_the_field_map() -> None:
    bih, midrc = adapter("bih").capabilities, adapter("midrc").capabilities
    assert not bih.pushes_down_exactly("age", ">=") and midrc.pushes_down_exactly("age", ">=")
    assert not bih.pushes_down_exactly("collection", "=")
    assert bih.pushes_down_exactly("modality", "EXCLUDES")
    licensed = adapter("bih", license="CC BY 4.0").capabilities
    assert not licensed.pushes_down_exactly("license", "=")
    no_alias = adapter("bih", missing_data_alias="").capabilities
    assert no_alias.pushes_down_exactly("sex", "is_missing") is False


def test_bad_configuration_is_terminal() -> None:
    with pytest.raises(TerminalSourceError, match="series-level"):
        adapter("bih", index="imaging_study")
    with pytest.raises(TerminalSourceError, match="needs a url"):
        Gen3Adapter(SourceSettings(name="x", adapter="gen3"))


# -- selection correctness --------------------------------------------------------------

FILTERS = [
    {"AND": [{"IN": {"modality": ["CT", "MR"]}}, {"=": {"body_part": "CHEST"}}]},
    {"AND": [{"=": {"sex": "female"}}, {">=": {"age": 55}}, {"<=": {"age": 75}}]},
    {
        "AND": [
            {"!=": {"sex": "female"}},
            {">": {"age": 50}},
            {"<": {"age": 90}},
            {">=": {"age": 56}},
        ]
    },
    {"OR": [{"=": {"modality": "CT"}}, {"=": {"sex": "male"}}]},
    {"!=": {"sex": "unknown"}},
    {"=": {"sex": "other"}},
    {"EXCLUDES": {"modality": ["SEG", "SR", "DX"]}},
    {"is_missing": {"body_part": True}},
    {"is_missing": {"age": False}},
    {
        "AND": [
            {"IN": {"collection": ["lidc_idri", "midrc_open_r1", "open_r1"]}},
            {"search": {"keyword": "chest"}},
        ]
    },
    {
        "AND": [
            {"IN": {"license": ["CC BY 4.0", "CC BY-NC 4.0"]}},
            {"=": {"manufacturer": "SIEMENS"}},
        ]
    },
    {"IN": {"age": [45, 72, 76]}},
    {"=": {"modality": "ct"}},
    {
        "OR": [
            {"=": {"body_part": "HEAD"}},
            {"AND": [{"=": {"modality": "DX"}}, {"=": {"sex": "female"}}]},
        ]
    },
    {">=": {"instance_count": 100}},
]


@pytest.mark.parametrize("preset", ["bih", "midrc"])
def test_pushdown_plus_residual_selects_what_the_reference_selects(
    preset: str, guppy: dict[str, FakeGuppy]
) -> None:
    everything = asyncio.run(_harvest(adapter(preset)))
    assert len({r["series_uid"] for r in everything}) == len(everything) > 20
    sizes = []
    for query in FILTERS:
        node = parse_filter(query)
        source = adapter(preset)
        translation = source.translate(node)
        fetched = asyncio.run(_walk(source, translation, size=7))
        residual = translation.residual
        got = sorted(r["series_uid"] for r in fetched if residual is None or matches(residual, r))
        expected = sorted(r["series_uid"] for r in everything if matches(node, r))
        assert got == expected, query
        sizes.append(len(expected))
    assert sum(1 for n in sizes if 0 < n < len(everything)) >= 10  # the filters discriminate


def test_records_are_canonical(guppy: dict[str, FakeGuppy]) -> None:
    bih = {r["series_uid"]: r for r in asyncio.run(_harvest(adapter("bih")))}
    midrc = {r["series_uid"]: r for r in asyncio.run(_harvest(adapter("midrc")))}
    assert len(bih) == 36 and len(midrc) == 25  # one series lacks a study UID; one is an annotation
    idc = next(r for r in bih.values() if r["patient_id"] == "TCGA-17-Z027")
    assert (idc["sex"], idc["age"], idc["collection"], idc["license"]) == (
        "female",
        76,
        "tcga_luad",
        "CC BY 3.0",
    )
    assert idc["viewer_url"].startswith("https://viewer.imaging.datacommons.cancer.gov/v3/viewer/")
    assert idc["download_url"].startswith(f"{URL}/ga4gh/drs/v1/objects/dg.4DFC/")
    other = next(r for r in bih.values() if r["patient_id"] == "ACRIN-NSCLC-FDG-PET-015")
    assert (other["sex"], other["age"], other["body_part"]) == ("other", 59, None)
    mid = next(r for r in bih.values() if r["collection"] == "midrc_open_r1" and r["age"] == 72)
    assert (
        mid["sex"] == "female" and mid["disease"] == "COVID-19" and mid["license"] == "CC BY-NC 4.0"
    )
    raw = {d["series_uid"]: d for d in fixture("midrc_data_file.json")}
    for uid, record in midrc.items():
        doc = raw[uid]
        assert record["instance_count"] == doc["number_of_instances"]
        assert record["size_bytes"] == doc["file_size"]
        assert record["collection"] in ("open_r1", "open_a1", "open_a1_petal_redcoral")
        assert record["download_url"] == f"{MIDRC_URL}/ga4gh/drs/v1/objects/{doc['object_id']}"
        assert record["body_part"] in ("CHEST", "BRAIN", "ABDOMEN", "HEAD", "WHOLEBODY", None)
        assert record["sex"] in ("female", "male", "unknown") and record["sources"] == ["midrc"]
    assert any(r["body_part"] is None for r in midrc.values())  # "<Undefined>" is missing


def test_fractional_ages_compare_as_whole_years() -> None:
    docs = [
        {
            "series_uid": f"1.{i}",
            "study_uid": ["2"],
            "case_ids": ["c"],
            "project_id": "Open-R1",
            "source_node": "ct_series_file",
            "age_at_imaging": [age],
        }
        for i, age in enumerate([64.9, 65.0, 65.7, 66.0])
    ]
    fake = FakeGuppy(docs, "data_file", fixture("midrc_data_file.json"))
    with respx.mock() as router:
        router.post(f"{MIDRC_URL}/guppy/graphql").mock(side_effect=fake.graphql)
        for query, ages in [
            ({"<=": {"age": 65}}, [64, 65, 65]),
            ({"=": {"age": 65}}, [65, 65]),
            ({">": {"age": 65}}, [66]),
            ({"IN": {"age": [64, 66]}}, [64, 66]),
        ]:
            assert sorted(r["age"] for r in walk(adapter("midrc"), parse_filter(query))) == ages
