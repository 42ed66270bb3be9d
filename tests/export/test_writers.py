"""The writers alone: record chunks in, text out, checked by reading the text back the
way each repository's tool would (csv module, JSON, line by line)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.export.writers import (
    Repository,
    Tally,
    csv_text,
    drs_object_id,
    gen3_text,
    ndjson_text,
    s5cmd_text,
    tcia_text,
    wadors_text,
)
from schema.record import RECORD_COLUMNS

IDC = Repository("idc", "idc")
TCIA = Repository("tcia", "tcia", "https://services.cancerimagingarchive.net/nbia-api/services/v4")
MIDRC = Repository("midrc", "gen3", "https://data.midrc.org")
ORTHANC = Repository("orthanc", "dicomweb", "http://127.0.0.1:8042/dicom-web")


def record(n: int, sources: list[str], locations: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {name: None for name in RECORD_COLUMNS}
    out.update(
        source=sources[0],
        collection="lidc_idri",
        patient_id=f"P-{n}",
        study_uid=f"1.2.{n}",
        series_uid=f"1.2.{n}.1",
        modality="CT",
        sex="female",
        age=60 + n,
        study_date="2001-02-03",
        series_description='Chest, "lung", 1mm',
        sources=sources,
        download_url=locations.get(sources[0]),
        locations=[{"source": s, "url": u} for s, u in locations.items()],
    )
    return out


MIRRORED = record(1, ["idc", "tcia"], {"idc": "s3://idc-open-data/aaa/*", "tcia": "https://x"})
IDC_ONLY = record(2, ["idc"], {"idc": "s3://idc-open-data/bbb/*"})
GEN3 = record(3, ["midrc"], {"midrc": "https://data.midrc.org/ga4gh/drs/v1/objects/dg.MD1R/123"})
DICOMWEB = record(4, ["orthanc", "idc"], {"idc": "s3://idc-open-data/ddd/*"})
CHUNKS = [[MIRRORED, IDC_ONLY], [], [GEN3, DICOMWEB]]


def test_csv_reads_back_with_quoting_and_lists() -> None:
    tally = Tally()
    rows = list(csv.DictReader(io.StringIO("".join(csv_text(CHUNKS, tally)))))
    assert [r["series_uid"] for r in rows] == ["1.2.1.1", "1.2.2.1", "1.2.3.1", "1.2.4.1"]
    assert rows[0]["series_description"] == 'Chest, "lung", 1mm'
    assert rows[0]["sources"] == "idc;tcia" and rows[0]["body_part"] == ""
    assert list(rows[0]) == list(RECORD_COLUMNS) and tally.written == 4


def test_ndjson_has_canonical_columns_only() -> None:
    lines = "".join(ndjson_text(CHUNKS)).splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [list(p) for p in parsed] == [list(RECORD_COLUMNS)] * 4
    assert parsed[0]["sources"] == ["idc", "tcia"] and parsed[0]["age"] == 61


def test_s5cmd_lists_every_series_idc_holds() -> None:
    tally = Tally()
    text = "".join(s5cmd_text(CHUNKS, [IDC], tally))
    assert text.splitlines() == [
        "cp s3://idc-open-data/aaa/* .",
        "cp s3://idc-open-data/bbb/* .",
        "cp s3://idc-open-data/ddd/* .",  # held by orthanc too; IDC's copy is listed
    ]
    assert (tally.written, tally.skipped) == (3, 1)


def test_tcia_manifest_is_what_the_data_retriever_reads() -> None:
    tally = Tally()
    text = "".join(tcia_text(CHUNKS, TCIA, "cohort-abc.tcia", tally))
    header, _, body = text.partition("ListOfSeriesToDownload=\n")
    fields = dict(line.split("=", 1) for line in header.splitlines())
    assert fields["manifestVersion"] == "3.0" and fields["databasketId"] == "cohort-abc.tcia"
    assert fields["downloadServerUrl"].endswith("/nbia-download/servlet/DownloadServlet")
    assert set(fields) == {
        "downloadServerUrl",
        "includeAnnotation",
        "noOfrRetry",
        "databasketId",
        "manifestVersion",
    }
    assert body.splitlines() == ["1.2.1.1"]  # the mirrored series, found by its UID
    assert (tally.written, tally.skipped) == (1, 3)


def test_gen3_manifest_is_valid_json_with_object_ids() -> None:
    tally = Tally()
    entries = json.loads("".join(gen3_text(CHUNKS, [MIDRC], tally)))
    assert entries == [
        {"object_id": "dg.MD1R/123", "subject_id": "P-3", "commons_url": "data.midrc.org"}
    ]
    assert json.loads("".join(gen3_text([[IDC_ONLY]], [MIDRC], Tally()))) == []
    assert json.loads("".join(gen3_text([], [MIDRC], Tally()))) == []


def test_drs_object_ids() -> None:
    assert drs_object_id("https://c.org/ga4gh/drs/v1/objects/dg.X%2F1") == "dg.X/1"
    assert drs_object_id("drs://c.org/abc") == "drs://c.org/abc"
    assert drs_object_id("https://c.org/files/abc.zip") is None


def test_wadors_urls_use_the_location_or_the_adapters_rule() -> None:
    located = record(5, ["orthanc"], {"orthanc": "http://127.0.0.1:8042/dicom-web/studies/9"})
    tally = Tally()
    text = "".join(wadors_text([[located, DICOMWEB, IDC_ONLY]], [ORTHANC], tally))
    assert text.split("\r\n")[:-1] == [
        "http://127.0.0.1:8042/dicom-web/studies/9",
        "http://127.0.0.1:8042/dicom-web/studies/1.2.4/series/1.2.4.1",
    ]
    assert text.endswith("\r\n") and (tally.written, tally.skipped) == (2, 1)


def test_records_in_canonical_order_take_the_fast_path_to_the_same_text() -> None:
    plain = [[{n: r[n] for n in RECORD_COLUMNS} for r in chunk] for chunk in CHUNKS]
    assert [list(r) for chunk in plain for r in chunk] == [list(RECORD_COLUMNS)] * 4
    shuffled = [[dict(reversed(r.items())) for r in chunk] for chunk in CHUNKS]
    for writer in (ndjson_text, csv_text):
        expected = "".join(writer(CHUNKS))
        assert "".join(writer(plain)) == expected == "".join(writer(shuffled))
    assert '"locations"' not in "".join(ndjson_text(CHUNKS))


def _one_repository_record(n: int, repo: Repository) -> tuple[dict[str, Any], str]:
    """A record `repo` holds, and a marker of it that its manifest line contains."""
    url = {
        "idc": f"s3://idc-open-data/uuid-{n}/*",
        "tcia": f"https://nbia.example/{n}",
        "gen3": f"https://data.midrc.org/ga4gh/drs/v1/objects/dg.MD1R/obj-{n}",
        "dicomweb": f"http://127.0.0.1:8042/dicom-web/studies/1.2.{n}/series/1.2.{n}.1",
    }[repo.kind]
    marker = {"idc": f"uuid-{n}/", "gen3": f"obj-{n}"}.get(repo.kind, f"1.2.{n}.1")
    return record(n, [repo.name], {repo.name: url}), marker


Writer = Callable[[Iterator[list[dict[str, Any]]], Repository], Iterator[str]]
WRITERS: dict[str, tuple[Repository, Writer]] = {
    "csv": (IDC, lambda chunks, repo: csv_text(chunks, Tally())),
    "ndjson": (IDC, lambda chunks, repo: ndjson_text(chunks, Tally())),
    "s5cmd": (IDC, lambda chunks, repo: s5cmd_text(chunks, [repo], Tally())),
    "tcia": (TCIA, lambda chunks, repo: tcia_text(chunks, repo, "b.tcia", Tally())),
    "gen3": (MIDRC, lambda chunks, repo: gen3_text(chunks, [repo], Tally())),
    "wadors": (ORTHANC, lambda chunks, repo: wadors_text(chunks, [repo], Tally())),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_writer_hands_out_a_chunk_before_it_reads_the_next(name: str) -> None:
    """What keeps an export's memory flat: no writer reads ahead or collects chunks, so
    it never holds more than one. Each chunk's text must be out before the writer asks
    for the next chunk."""
    repo, writer = WRITERS[name]
    out: list[str] = []

    def chunks() -> Iterator[list[dict[str, Any]]]:
        for n in range(1, 6):
            yield [_one_repository_record(n, repo)[0]]
            marker = _one_repository_record(n, repo)[1]
            assert marker in "".join(out), f"{name}: chunk {n} not written before the next"

    for piece in writer(chunks(), repo):
        out.append(piece)
    assert all(_one_repository_record(n, repo)[1] in "".join(out) for n in range(1, 6))
