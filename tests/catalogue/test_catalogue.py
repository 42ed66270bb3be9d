"""The static-catalogue adapter over a real Stanford AIMI dataset list.

Every entry must become one honest dataset-level record; a live search must select exactly
what the reference evaluator (`schema.evaluate.matches`) selects from the harvest, with
nothing left residual; a malformed file must be a TerminalSourceError naming the file, the
entry and the key, raised when the source is used (never when the hub starts).
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.batch import to_records, validate_batch
from adapters.catalogue import CatalogueAdapter
from adapters.registry import discover_adapters
from adapters.spi import Page, PagingStyle, SourceSettings, TerminalSourceError, Translation
from schema.evaluate import matches
from schema.filters import MATCH_ALL, parse_filter, to_json
from schema.record import FIELDS, FieldKind
from tests.reference import filter_strategy, value_pools

Record = dict[str, Any]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue" / "stanford_aimi.toml"
LICENCE = "Stanford University Dataset Research Use Agreement"
IDS = ["chexpert", "mura", "brainmetshare", "echonet-dynamic", "mrnet"]


def catalogue(path: Path | str = FIXTURE, name: str = "aimi") -> CatalogueAdapter:
    return CatalogueAdapter(SourceSettings(name=name, adapter="catalogue", path=str(path)))


async def _rows(batches: AsyncIterator[pa.RecordBatch]) -> list[Record]:
    return [r for b in [b async for b in batches] for r in b.to_pylist()]


def harvest(source: CatalogueAdapter) -> list[Record]:
    return asyncio.run(_rows(source.harvest()))


def search(source: CatalogueAdapter, filter_json: Any) -> tuple[Translation, list[Record]]:
    translation = source.translate(parse_filter(filter_json))
    page = Page(size=1)  # paging is NONE: one answer holds everything, whatever the page size
    answer = asyncio.run(source.search(translation, page))
    assert answer.next_page is None
    return translation, [r for b in answer.batches for r in b.to_pylist()]


def ids(rows: list[Record]) -> list[str]:
    return [r["series_uid"].removeprefix("catalogue:aimi:") for r in rows]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return harvest(catalogue())


# --- parsing and the records -----------------------------------------------------------


def test_each_entry_is_one_dataset_level_record(records: list[Record]) -> None:
    assert ids(records) == IDS
    validate_batch(pa.RecordBatch.from_pylist(records), "aimi")
    assert len(to_records(pa.RecordBatch.from_pylist(records))) == 5
    for r in records:
        uid = r["series_uid"]
        assert uid.startswith("catalogue:aimi:")
        assert r["study_uid"] == r["patient_id"] == uid
        assert r["source"] == "aimi" and r["sources"] == ["aimi"]
        assert r["sex"] == "unknown" and r["age"] is None and r["study_date"] is None
        assert r["license"] == LICENCE
        assert r["viewer_url"] is None and r["download_url"].startswith("https://")
        assert r["fetched_at"] is not None
        assert "Dataset-level entry; declared counts: " in r["series_description"]
    chexpert, mura, brains, echo, mrnet = records
    assert chexpert["collection"] == "chexpert" and echo["collection"] == "echonet_dynamic"
    assert (chexpert["modality"], chexpert["body_part"]) == ("CR", "CHEST")
    assert chexpert["instance_count"] == 224_316 and chexpert["size_bytes"] == 439_000_000_000
    assert chexpert["study_description"] == "CheXpert: chest radiographs with uncertainty labels"
    assert chexpert["series_description"].endswith(
        "declared counts: 65,240 patients, 224,316 images."
    )
    assert mura["series_description"].endswith("12,173 patients, 14,863 studies, 40,561 images.")
    assert brains["instance_count"] is None and brains["size_bytes"] is None
    assert "156 patients, 156 studies, 624 series." in brains["series_description"]
    assert mrnet["download_url"] == "https://stanfordmlgroup.github.io/competitions/mrnet/"


def test_values_are_normalised_and_counts_may_be_absent(tmp_path: Path) -> None:
    path = tmp_path / "messy.toml"
    path.write_text(
        '[[datasets]]\nid = "x1"\ncollection = "  Brain-Met  Share "\ntitle = "  Brains  "\n'
        'license = " CC BY 4.0 "\nurl = "http://example.org/x"\nmodality = " mr "\n'
        'body_part = "brain"\ndisease = "   "\n'
    )
    [r] = harvest(catalogue(path))
    assert (r["collection"], r["modality"], r["body_part"]) == ("brain_met_share", "MR", "BRAIN")
    assert (r["study_description"], r["license"], r["disease"]) == ("Brains", "CC BY 4.0", None)
    assert r["series_description"] == "Dataset-level entry; counts not declared."


def test_json_file_gives_the_same_records(tmp_path: Path, records: list[Record]) -> None:
    path = tmp_path / "stanford_aimi.json"
    path.write_text(json.dumps(tomllib.loads(FIXTURE.read_text())))
    from_json = harvest(catalogue(path))
    strip = [{k: v for k, v in r.items() if k != "fetched_at"} for r in records]
    assert [{k: v for k, v in r.items() if k != "fetched_at"} for r in from_json] == strip


def test_data_version_and_total() -> None:
    source = catalogue()
    assert source.data_version() == "2025-01-example"
    assert source.estimated_total() == 5


def test_data_version_without_version_is_a_content_digest(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(_entry("a"))
    source = catalogue(path)
    first = source.data_version()
    assert first.startswith("sha256:") and first == catalogue(path).data_version()
    path.write_text(_entry("a") + _entry("b"))
    assert source.data_version() != first


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(_entry("a"))
    source = catalogue(path)
    assert ids_of(harvest(source)) == ["a"]
    path.write_text(_entry("b") + _entry("a"))  # same size: the content is what counts
    assert ids_of(harvest(source)) == ["b", "a"]
    path.write_text(_entry("a") + _entry("b"))
    assert ids_of(harvest(source)) == ["a", "b"]
    path.write_text(_entry("a") + "oops = 1\n")
    with pytest.raises(TerminalSourceError, match="unknown key 'oops'"):
        harvest(source)


# --- translate and search ---------------------------------------------------------------


def test_capabilities_push_every_field_down() -> None:
    caps = CatalogueAdapter.capabilities
    assert caps.harvest and caps.live_search and caps.text_search
    assert caps.paging is PagingStyle.NONE
    for name, spec in FIELDS.items():
        for op in ("=", "!=", "IN", "EXCLUDES", "is_missing"):
            assert caps.pushes_down_exactly(name, op)
        numeric = spec.kind in (FieldKind.INTEGER, FieldKind.DATE)
        assert all(caps.pushes_down_exactly(name, op) is numeric for op in (">", ">=", "<", "<="))
        assert caps.pushes_down_exactly(name, "search") is (spec.kind is FieldKind.TEXT)


def test_translate_names_the_file_and_the_filter() -> None:
    source = catalogue()
    every = source.translate(MATCH_ALL)
    assert every.native == {"file": "stanford_aimi.toml", "filter": {"AND": []}}
    assert every.residual is None and "every entry" in every.description
    node = parse_filter({"AND": [{"=": {"modality": "MR"}}, {"search": {"keyword": "knee"}}]})
    t = source.translate(node)
    assert t.native == {"file": "stanford_aimi.toml", "filter": to_json(node)}
    assert t.residual is None
    assert "stanford_aimi.toml" in t.description and "modality" in t.description
    json.dumps(t.native)


SEARCHES: list[tuple[Any, list[str]]] = [
    ({"=": {"modality": "MR"}}, ["brainmetshare", "mrnet"]),
    ({"!=": {"modality": "MR"}}, ["chexpert", "mura", "echonet-dynamic"]),
    ({"IN": {"body_part": ["CHEST", "KNEE", "LIVER"]}}, ["chexpert", "mrnet"]),
    ({"EXCLUDES": {"body_part": ["CHEST", "KNEE"]}}, ["mura", "brainmetshare", "echonet-dynamic"]),
    ({"is_missing": {"size_bytes": True}}, ["brainmetshare", "mrnet"]),
    ({"is_missing": {"instance_count": False}}, ["chexpert", "mura", "echonet-dynamic"]),
    ({">=": {"instance_count": 40_561}}, ["chexpert", "mura"]),
    ({"<": {"size_bytes": 5_000_000_000}}, ["mura"]),
    ({"search": {"keyword": "knee"}}, ["mrnet"]),
    ({"search": {"keyword": "radiographs", "fields": ["study_description"]}}, ["chexpert", "mura"]),
    ({"search": {"keyword": "dataset-level entry"}}, IDS),
    ({"=": {"collection": "echonet_dynamic"}}, ["echonet-dynamic"]),
    ({"=": {"series_uid": "catalogue:aimi:mura"}}, ["mura"]),
    ({"=": {"source": "aimi"}}, IDS),
    ({"=": {"license": LICENCE}}, IDS),
    ({"!=": {"sex": "unknown"}}, []),
    ({"<=": {"study_date": "2030-01-01"}}, []),
    ({">": {"age": 0}}, []),
    ({"is_missing": {"age": True}}, IDS),
    (
        {
            "AND": [
                {"=": {"license": LICENCE}},
                {"OR": [{"=": {"collection": "mrnet"}}, {">": {"instance_count": 100_000}}]},
            ]
        },
        ["chexpert", "mrnet"],
    ),
    (
        {"OR": [{"=": {"modality": "US"}}, {"search": {"keyword": "metastases"}}]},
        ["brainmetshare", "echonet-dynamic"],
    ),
]


@pytest.mark.parametrize(("filter_json", "expected"), SEARCHES)
def test_search_selects_what_the_reference_selects(
    filter_json: Any, expected: list[str], records: list[Record]
) -> None:
    translation, rows = search(catalogue(), filter_json)
    assert translation.residual is None
    node = parse_filter(filter_json)
    assert ids(rows) == ids([r for r in records if matches(node, r)]) == expected


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_random_filters_agree_with_the_reference(
    data: st.DataObject, records: list[Record]
) -> None:
    filter_json = data.draw(filter_strategy(value_pools(records)), "filter")
    translation, rows = search(catalogue(), filter_json)
    node = parse_filter(filter_json)
    assert translation.residual is None
    assert ids(rows) == ids([r for r in records if matches(node, r)])


def test_a_foreign_translation_is_terminal() -> None:
    bad = Translation(native={"sql": "SELECT 1"}, residual=None, description="")
    with pytest.raises(TerminalSourceError, match="not a catalogue translation"):
        asyncio.run(catalogue().search(bad, Page()))


# --- bad files and bad settings ---------------------------------------------------------


def _entry(id_: str, **extra: str) -> str:
    fields = {
        "id": f'"{id_}"',
        "collection": '"c"',
        "title": '"t"',
        "license": '"CC BY 4.0"',
        "url": '"https://example.org/d"',
        **extra,
    }
    return "[[datasets]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())


def ids_of(rows: list[Record]) -> list[str]:
    return [r["series_uid"].rsplit(":", 1)[1] for r in rows]


BAD_TOML = [
    (
        _entry("a") + _entry("b", modalty='"CT"'),
        ["datasets[1] (id 'b')", "unknown key 'modalty'", "allowed: id, collection"],
    ),
    (
        _entry("a").replace('license = "CC BY 4.0"\n', ""),
        ["datasets[0] (id 'a')", "required key 'license' is missing"],
    ),
    ('[[datasets]]\nid = "a\n', ["not valid", "line 2"]),
    (_entry("a", patients='"156"'), ["datasets[0] (id 'a'): key 'patients'", "valid integer"]),
    (_entry("a", size_bytes="4.39e11"), ["key 'size_bytes'", "valid integer"]),
    (_entry("a", series="-1"), ["key 'series'", "greater than or equal to 0"]),
    (_entry("a", modality='"X-ray"'), ["key 'modality'", "'X-ray' is not a DICOM code string"]),
    (_entry("a", url='"ftp://example.org/d"'), ["key 'url'", "not an http(s) URL"]),
    (_entry("a", collection='"--"'), ["key 'collection'", "at least one letter or digit"]),
    (_entry("a", title='"   "'), ["key 'title'", "must not be empty"]),
    (_entry("a", id='"../etc"'), ["key 'id'", "should match pattern"]),
    (_entry("a") + _entry("a"), ["datasets[1] (id 'a')", "id already used by datasets[0]"]),
    (
        '[[dataset]]\nid = "a"\n',
        ["top level: unknown key 'dataset'", "required key 'datasets' is missing"],
    ),
    ('datasets = "none"\n', ["top level: key 'datasets'", "valid list"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_TOML)
def test_a_bad_toml_file_is_terminal_and_says_where(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    source = catalogue(path)  # constructing never reads the file: the hub still starts
    assert source.estimated_total() is None
    for attempt in (lambda: harvest(source), lambda: search(source, {"=": {"modality": "MR"}})):
        with pytest.raises(TerminalSourceError) as err:
            attempt()
        assert f"catalogue file {path}" in str(err.value)
        for part in expected:
            assert part in str(err.value)


BAD_JSON = [
    ('{"datasets": [', ["not valid", "line 1"]),
    ('{"datasets": [], "datasets": []}', ["not valid", "key 'datasets' appears twice"]),
    (
        '{"datasets": [{"id": "a", "collection": "c", "title": "t", "license": "l", '
        '"url": "https://x.org", "size_bytes": NaN}]}',
        ["NaN is not a JSON number"],
    ),
    (
        '{"datasets": [{"id": "a", "collection": "c", "title": "t", "license": "l", '
        '"url": "https://x.org", "patients": 1.5}]}',
        ["(id 'a'): key 'patients'", "valid integer"],
    ),
    ('[{"id": "a"}]', ["top level", "valid dictionary"]),
    ('{"datasets": [7]}', ["datasets[0]", "valid dictionary"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_JSON)
def test_a_bad_json_file_is_terminal_and_says_where(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(TerminalSourceError) as err:
        harvest(catalogue(path))
    assert "broken.json" in str(err.value)
    for part in expected:
        assert part in str(err.value)


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    path = tmp_path / "many.toml"
    path.write_text("".join(_entry(f"e{i}", bogus="1") for i in range(8)))
    with pytest.raises(TerminalSourceError, match=r"datasets\[4\].*; and 3 more problems$"):
        harvest(catalogue(path))


def test_a_missing_file_is_terminal(tmp_path: Path) -> None:
    with pytest.raises(TerminalSourceError, match="cannot read it"):
        harvest(catalogue(tmp_path / "nowhere.toml"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs `path`"),
        ({"path": ""}, "needs `path`"),
        ({"path": 3}, "needs `path`"),
        ({"path": "datasets.yaml"}, "must end in .toml or .json"),
    ],
)
def test_bad_settings_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TerminalSourceError, match=message):
        CatalogueAdapter(SourceSettings(name="aimi", adapter="catalogue", **options))


def test_discovered_through_the_entry_point() -> None:
    assert discover_adapters()["catalogue"] is CatalogueAdapter
