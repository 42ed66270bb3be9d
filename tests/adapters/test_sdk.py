"""The public adapter SDK: one module, no hub imports, and helpers that do what they say."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import adapters.sdk as sdk
from adapters.dicomweb import DicomwebAdapter
from adapters.sdk import (
    MATCH_ALL,
    Adapter,
    Capabilities,
    FieldMap,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SourceSettings,
    Support,
    TerminalSourceError,
    Translation,
    canonical_value,
    conjoin,
    credential,
    offset_params,
    one_per_field,
    parse_filter,
    to_batch,
    walk_pages,
)
from adapters.tcia import TciaAdapter


def test_every_exported_name_exists_and_no_hub_module_is_imported() -> None:
    assert all(hasattr(sdk, name) for name in sdk.__all__)
    code = (
        "import sys, adapters.sdk, adapters.conformance; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'hub'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


BUILT_INS = ("idc", "gen3", "tcia", "dicomweb", "catalogue")


@pytest.mark.parametrize("module", BUILT_INS)
def test_built_in_adapters_are_written_against_the_sdk_only(module: str) -> None:
    source = Path(sdk.__file__).with_name(f"{module}.py").read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    ours = {m for m in imported if m.split(".")[0] in ("adapters", "schema", "hub")}
    assert ours == {"adapters.sdk"}, f"{module} imports {sorted(ours)}"


def test_support_is_graded_per_field_and_operator() -> None:
    caps = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={"modality": frozenset(["=", "IN"])},
        prefilter={"patient_id": frozenset(["="])},
    )
    assert caps.grade("modality", "IN") is Support.EXACT
    assert caps.grade("patient_id", "=") is Support.PARTIAL
    assert caps.grade("patient_id", "IN") is Support.NONE
    assert caps.grade("sex", "=") is Support.NONE
    assert caps.pushes_down_exactly("modality", "IN")
    assert not caps.pushes_down_exactly("patient_id", "=")  # partial is not exact
    assert caps.graded() == {
        "modality": {"=": "exact", "IN": "exact"},
        "patient_id": {"=": "partial"},
    }


def test_built_ins_declare_what_they_only_pre_filter() -> None:
    assert TciaAdapter.capabilities.grade("patient_id", "IN") is Support.PARTIAL
    assert TciaAdapter.capabilities.grade("modality", "IN") is Support.EXACT
    pacs = DicomwebAdapter(
        SourceSettings(name="pacs", adapter="dicomweb", url="http://127.0.0.1:8042/dicom-web")
    )
    assert pacs.capabilities.grade("study_date", ">=") is Support.PARTIAL
    assert pacs.capabilities.grade("series_uid", "=") is Support.EXACT


ROWS = [
    {"uid": ["1.2.3"], "st": "1.2", "p": {"id": "P1", "sex": "F", "age": 62.7}, "c": "LIDC-IDRI",
     "mod": " ct ", "date": "20190412", "n": "12", "url": "ftp://nope"},
    {"uid": None, "st": "1.2", "p": {"id": "P1"}, "c": "LIDC-IDRI"},
]  # fmt: skip
FIELDS = FieldMap(
    {
        "series_uid": "uid",
        "study_uid": "st",
        "patient_id": "p.id",
        "sex": "p.sex",
        "age": "p.age",
        "collection": "c",
        "modality": "mod",
        "study_date": "date",
        "instance_count": "n",
        "viewer_url": "url",
        "license": lambda row: "CC BY 4.0",
    }
)


def test_a_field_map_builds_normalised_records_and_skips_unidentifiable_rows() -> None:
    record = FIELDS.record(ROWS[0], "src")
    assert record is not None
    assert (record.series_uid, record.sex, record.age, record.collection) == (
        "1.2.3",
        "female",
        62,
        "lidc_idri",
    )
    assert (record.modality, record.study_date, record.instance_count) == (
        "CT",
        dt.date(2019, 4, 12),
        12,
    )
    assert (record.viewer_url, record.license, record.sources) == (None, "CC BY 4.0", ["src"])
    assert FIELDS.record(ROWS[1], "src") is None
    assert FIELDS.batch(ROWS, "src").num_rows == 1
    assert FIELDS.native("patient_id") == "p.id" and FIELDS.native("license") is None
    with pytest.raises(ValueError, match="modaltiy"):
        FieldMap({"modaltiy": "m"})


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("sex", "0000", "unknown"),
        ("age", "018M", 1),
        ("age", True, None),
        ("body_part", "", None),
        ("study_date", "2021.08.17", dt.date(2021, 8, 17)),
        ("collection", "--", None),
        ("size_bytes", -5, None),
        ("manufacturer", ["", "GE "], "GE"),
    ],
)
def test_canonical_value_applies_the_rule_of_each_field(
    field: str, raw: object, value: object
) -> None:
    assert canonical_value(field, raw) == value


def test_one_condition_per_field_and_the_rest_for_the_residual() -> None:
    node = parse_filter(
        {"AND": [{"=": {"modality": "CT"}}, {"IN": {"modality": ["CT", "MR"]}},
                 {"OR": [{"=": {"sex": "male"}}, {"=": {"sex": "female"}}]}]}
    )  # fmt: skip
    slots, rest = one_per_field(node)
    assert list(slots) == ["modality"] and len(rest) == 2
    assert conjoin([None]) is None and conjoin([rest[0], None]) == rest[0]


def test_a_page_names_the_next_from_what_the_source_sent() -> None:
    page = Page(size=2)
    assert page.next_offset(sent=2) == Page(size=2, offset=2)  # full, though a row was skipped
    assert page.next_offset(sent=1) is None  # a short page is the last
    assert Page(size=2, offset=2).next_offset(2) == Page(size=2, offset=4)
    assert Page(size=5).next_cursor("abc") == Page(size=5, token="abc")
    assert Page(size=5, token="abc").next_cursor(None) is None
    assert Page(size=5, token="abc").next_cursor("") is None
    assert offset_params(Page(size=10, offset=30), "count", "start") == {
        "count": "10",
        "start": "30",
    }


class Numbers(Adapter):
    """Seven records, two per page; the continuation comes back with each page."""

    capabilities = Capabilities(
        harvest=True, live_search=True, paging=PagingStyle.OFFSET, max_page_size=2
    )

    def translate(self, node: Node) -> Translation:
        return Translation({}, node if node != MATCH_ALL else None, "all")

    async def search(self, translation: Translation, page: Page) -> PageResult:
        uids = [str(i) for i in range(7)][page.offset : page.offset + page.size]
        batch = to_batch(
            sdk.SeriesRecord(source="n", collection="c", patient_id="p", study_uid="s",
                             series_uid=u) for u in uids
        )  # fmt: skip
        return PageResult([batch] if uids else [], page.next_offset(len(uids)))


def test_walk_pages_is_the_hubs_paging_loop() -> None:
    async def walk() -> list[str]:
        adapter = Numbers(SourceSettings(name="n", adapter="n"))
        return [
            r["series_uid"]
            async for b in walk_pages(adapter, adapter.translate(MATCH_ALL))
            for r in b.to_pylist()
        ]

    assert asyncio.run(walk()) == [str(i) for i in range(7)]


def test_credentials_come_from_the_named_variable_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert credential(SourceSettings(name="a", adapter="a")) is None
    named = SourceSettings(name="a", adapter="a", credentials_env="ACME_TOKEN")
    monkeypatch.setenv("ACME_TOKEN", " t0k3n ")
    assert credential(named) == "t0k3n"
    monkeypatch.setenv("ACME_TOKEN", "")
    with pytest.raises(TerminalSourceError, match="environment variable ACME_TOKEN is empty"):
        credential(named)
