"""Record chunks in, text chunks out: CSV, NDJSON and each repository's download manifest.

Every writer is a generator over chunks of records (see `records.py`), so it holds one
chunk at a time and can be tested without an index. The manifests are the formats the
repositories' own tools read:

- IDC: an `s5cmd` run file, one `cp s3://<bucket>/<crdc_series_uuid>/* .` per series
  (`s5cmd --no-sign-request --endpoint-url https://s3.amazonaws.com run FILE`);
- TCIA: a `.tcia` manifest for the NBIA Data Retriever (header block, then
  `ListOfSeriesToDownload=` and one SeriesInstanceUID per line);
- Gen3: the JSON object manifest `gen3 drs-pull manifest` reads (`object_id`,
  `subject_id`, `commons_url`);
- DICOMweb: WADO-RS series URLs, one per line (`text/uri-list`).

A series whose `sources` lists several repositories appears in the manifest of each of
them; a series none of the chosen repositories holds is counted in `Tally.skipped`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson

from hub.export.records import Record
from schema.record import RECORD_COLUMNS

Chunks = Iterable[list[Record]]
TCIA_DOWNLOAD_SERVER = "https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet"
DRS_PATH = "/ga4gh/drs/v1/objects/"
_COLUMNS = list(RECORD_COLUMNS)


@dataclass
class Tally:
    """What a writer did: series written, and series no chosen repository serves."""

    written: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Repository:
    """One configured source, as far as a download manifest needs to know it."""

    name: str
    kind: str  # the adapter's entry-point name: idc, tcia, gen3, dicomweb, ...
    url: str | None = None  # TCIA API, DICOMweb root or Gen3 commons
    download_server: str | None = None  # TCIA: the NBIA download servlet


def pieces(chunks: Chunks, render: Callable[[list[Record]], str]) -> Iterator[str]:
    """`render(chunk)` of each chunk, skipping empty text. Neither a chunk nor its text
    is held while the next chunk is made (a `for` loop would hold both until the next
    one arrives), so a writer holds one chunk at a time, never two."""
    chunk_iter = iter(chunks)
    while (text := _render_next(chunk_iter, render)) is not None:
        if text:
            yield text
        del text


def _render_next(
    chunk_iter: Iterator[list[Record]], render: Callable[[list[Record]], str]
) -> str | None:
    chunk = next(chunk_iter, None)
    return None if chunk is None else render(chunk)


def csv_text(chunks: Chunks, tally: Tally | None = None) -> Iterator[str]:
    """The canonical columns; `sources` joined with `;`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    sources = RECORD_COLUMNS.index("sources")

    def render(chunk: list[Record]) -> str:
        rows = [
            list(r.values()) if list(r) == _COLUMNS else [r.get(n) for n in RECORD_COLUMNS]
            for r in chunk
        ]
        for row in rows:
            row[sources] = ";".join(row[sources] or [])
        writer.writerows(rows)  # None is written as an empty field
        if tally is not None:
            tally.written += len(chunk)
        return _drain(buffer)

    writer.writerow(RECORD_COLUMNS)
    yield _drain(buffer)
    yield from pieces(chunks, render)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def ndjson_text(chunks: Chunks, tally: Tally | None = None) -> Iterator[str]:
    """One JSON object per line, the canonical columns in their order (a record that
    already has exactly those keys, in that order, is written as it is). Lines go
    straight into one buffer: orjson gives each result an 8 KB block, so a list of a
    chunk's lines would cost ten times its text."""

    def render(chunk: list[Record]) -> str:
        text = bytearray()
        for r in chunk:
            line = r if list(r) == _COLUMNS else {n: r.get(n) for n in RECORD_COLUMNS}
            text += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        if tally is not None:
            tally.written += len(chunk)
        return text.decode()

    return pieces(chunks, render)


def location(record: Record, repo: Repository) -> str | None:
    """Where `repo` serves the series, if the record says so."""
    for found in record.get("locations") or []:
        if found["source"] == repo.name:
            url: str | None = found["url"]
            return url
    if record.get("source") == repo.name:
        url = record.get("download_url")
        return url
    return None


def _held(record: Record, repos: list[Repository]) -> list[Repository]:
    sources = record.get("sources") or [record.get("source")]
    return [repo for repo in repos if repo.name in sources]


def s5cmd_text(chunks: Chunks, repos: list[Repository], tally: Tally) -> Iterator[str]:
    """IDC: `cp s3://.../* .` per series (the `series_aws_url` IDC publishes)."""

    def render(chunk: list[Record]) -> str:
        lines: list[str] = []
        for record in chunk:
            urls = {location(record, repo) for repo in _held(record, repos)}
            s3 = sorted(u for u in urls if u is not None and u.startswith("s3://"))
            if not s3:
                tally.skipped += 1
                continue
            tally.written += 1
            lines += [f"cp {url} .\n" for url in s3]
        return "".join(lines)

    return pieces(chunks, render)


def tcia_text(chunks: Chunks, repo: Repository, basket: str, tally: Tally) -> Iterator[str]:
    """TCIA: the NBIA Data Retriever's manifest (version 3.0)."""

    def render(chunk: list[Record]) -> str:
        uids = [r["series_uid"] for r in chunk if _held(r, [repo])]
        tally.written += len(uids)
        tally.skipped += len(chunk) - len(uids)
        return "".join(f"{uid}\n" for uid in uids)

    yield (
        f"downloadServerUrl={repo.download_server or TCIA_DOWNLOAD_SERVER}\n"
        "includeAnnotation=true\n"
        "noOfrRetry=4\n"
        f"databasketId={basket}\n"
        "manifestVersion=3.0\n"
        "ListOfSeriesToDownload=\n"
    )
    yield from pieces(chunks, render)


def drs_object_id(url: str) -> str | None:
    """The DRS object id of a Gen3 download URL (`.../ga4gh/drs/v1/objects/<id>`),
    a `drs://` URI as it is, or None for anything else."""
    if DRS_PATH in url:
        return unquote(url.split(DRS_PATH, 1)[1]) or None
    if url.startswith("drs://"):
        return url
    return None


def gen3_text(chunks: Chunks, repos: list[Repository], tally: Tally) -> Iterator[str]:
    """Gen3: a JSON list of `{object_id, subject_id, commons_url}`, streamed."""

    def render(chunk: list[Record]) -> str:
        entries = bytearray()
        for record in chunk:
            found = 0
            for repo in _held(record, repos):
                url = location(record, repo)
                object_id = drs_object_id(url) if url else None
                if object_id is None:
                    continue
                entry: dict[str, Any] = {"object_id": object_id}
                if record.get("patient_id"):
                    entry["subject_id"] = record["patient_id"]
                if repo.url:
                    entry["commons_url"] = urlsplit(repo.url).hostname
                entries += b",\n  " + orjson.dumps(entry)
                found += 1
            tally.written += int(found > 0)
            tally.skipped += int(found == 0)
        return entries.decode()

    yield "["
    first = True
    for text in pieces(chunks, render):  # each starts ",\n  ", the first without a comma
        yield text[1:] if first else text
        first = False
    yield "\n]\n" if not first else "]\n"


def wadors_text(chunks: Chunks, repos: list[Repository], tally: Tally) -> Iterator[str]:
    """DICOMweb: the WADO-RS URL of each series, CRLF-separated as `text/uri-list` is."""

    def render(chunk: list[Record]) -> str:
        lines: list[str] = []
        for record in chunk:
            urls = {_wado_url(record, repo) for repo in _held(record, repos)}
            found = sorted(u for u in urls if u)
            tally.written += int(bool(found))
            tally.skipped += int(not found)
            lines += [f"{url}\r\n" for url in found]
        return "".join(lines)

    return pieces(chunks, render)


def _wado_url(record: Record, repo: Repository) -> str | None:
    url = location(record, repo)
    if url is None and repo.url:  # the DICOMweb adapter's own rule
        study, series = quote(record["study_uid"]), quote(record["series_uid"])
        url = f"{repo.url.rstrip('/')}/studies/{study}/series/{series}"
    return url
