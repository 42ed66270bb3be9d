"""DICOMweb QIDO-RS servers (Orthanc, dcm4chee, Google Cloud Healthcare): live and harvest.

One series-level search (`GET {url}/series`) per page, paged with limit/offset, with
`includefield` asking for the patient and study attributes a canonical record needs.
QIDO-RS can only AND one match per attribute, so pushdown is per top-level conjunct;
everything else (OR, EXCLUDES, !=, is_missing, sex, age, text) stays residual.

What Orthanc 1.10 with DICOMweb plugin 1.7 (Debian 12) does, found against a real server:

- matching ignores case (`PatientID=p-07` also returns `P-07`, `Modality=ct` returns CT);
- a value with a space never matches (`Manufacturer=GE MEDICAL SYSTEMS` → nothing), and
  `*`/`?` are wildcards that match inconsistently (`PatientID=P*1` → nothing): such values
  are never sent;
- lists are comma-separated (`Modality=CT,MR`); a backslash list matches nothing;
- `ModalitiesInStudy` matches nothing at series level, so series use `Modality`;
- StudyDate ranges compare strings, so the impossible `20210230` falls inside 2021;
- `limit=0` means no limit; study-level attributes are copied down to series answers.

So modality and the UIDs (upper-case/numeric values) are exact; patient_id, manufacturer
and study_date are sent as a pre-filter returning a superset, and re-checked by the hub.
Pushing study_date assumes DA (`YYYYMMDD`) values: drop it from `match_keys` for archives
holding ACR-NEMA `YYYY.MM.DD` dates, which a range would miss.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pyarrow as pa

from adapters.sdk import (
    DICOM_STUDY_LEVEL,
    DICOM_TAGS,
    MATCH_ALL,
    And,
    Capabilities,
    Compare,
    DicomJson,
    HttpAdapter,
    In,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    SourceSettings,
    TerminalSourceError,
    Translation,
    conjuncts,
    credential,
    decode_series,
    dicom_element,
    dicom_text,
    json_body,
    normalize_collection,
    send,
    split_pushdown,
    to_batch,
    to_json,
    validate_batch,
    walk_pages,
)

QIDO_KEYS = {
    "modality": "Modality",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "patient_id": "PatientID",
    "study_date": "StudyDate",
    "body_part": "BodyPartExamined",
    "manufacturer": "Manufacturer",
}
"""Canonical fields a QIDO-RS server may match on, and the attribute each is sent as."""
DEFAULT_MATCH_KEYS = ("modality", "study_date", "patient_id", "study_uid", "series_uid")
RECHECK = frozenset(["patient_id", "manufacturer", "study_date"])
"""Pushed as a superset pre-filter, then re-checked by the hub (case-insensitive matching;
string-compared date ranges). body_part is exact only on case-insensitive servers or clean
data, so it is opt-in through `match_keys`."""
INCLUDE = tuple(DICOM_TAGS)
STUDY_BATCH = 50  # study UIDs per `/studies` lookup when a server omits study attributes
_UNSAFE = re.compile(r'[*?\\,"\s]|^$')  # wildcards, lists, quotes, whitespace, empty
MAX_LIST = 2000  # characters of one comma-separated list; longer IN lists stay residual
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_ORDERED = frozenset(["=", "IN"])
_DATE_OPS = frozenset(["=", ">", ">=", "<", "<="])  # sent as one StudyDate range


class DicomwebAdapter(HttpAdapter):
    """A QIDO-RS endpoint: every search is a series-level query, paged by limit/offset."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={f: _ORDERED for f in ("modality", "study_uid", "series_uid")},
        paging=PagingStyle.OFFSET,
        max_page_size=1000,
    )
    """Default `match_keys`; each instance declares its own (see __init__)."""

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        url = settings.url or ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TerminalSourceError(f"source {self.name!r}: dicomweb needs an http(s) url")
        if parts.username or parts.password or parts.query:
            raise TerminalSourceError(
                f"source {self.name!r}: put no credentials or query in the url; "
                "name an environment variable in credentials_env instead"
            )
        self.base = url.rstrip("/")
        origin = httpx.URL(self.base)
        self._origin = (origin.scheme, origin.host, origin.port)  # where a bearer may go
        self.collection = normalize_collection(settings.option("collection") or self.name)
        self.license: str | None = settings.option("license")
        keys = settings.option("match_keys", list(DEFAULT_MATCH_KEYS))
        if not isinstance(keys, list) or not set(keys) <= set(QIDO_KEYS):
            raise TerminalSourceError(
                f"source {self.name!r}: match_keys must be a list drawn from {sorted(QIDO_KEYS)}"
            )
        self.match_keys = frozenset(keys)
        self.list_matching = bool(settings.option("list_matching", True))
        self.page_size: int = settings.option("page_size", 1000)
        self.join_studies: str = settings.option("join_studies", "auto")
        if (
            not isinstance(self.page_size, int)
            or self.page_size < 1
            or self.join_studies not in ("auto", "always", "never")
        ):
            raise TerminalSourceError(
                f"source {self.name!r}: page_size must be >= 1 and join_studies "
                "one of auto, always, never"
            )
        self.viewer: str | None = settings.option("viewer_url")
        try:
            _ = self.viewer and self.viewer.format(study_uid="1", series_uid="1")
        except (KeyError, IndexError, ValueError):
            raise TerminalSourceError(
                f"source {self.name!r}: viewer_url may use only {{study_uid}} and {{series_uid}}"
            ) from None
        ops = _ORDERED if self.list_matching else frozenset(["="])
        pushdown = {f: ops for f in self.match_keys - RECHECK}
        prefilter = {f: _DATE_OPS if f == "study_date" else ops for f in self.match_keys & RECHECK}
        self.capabilities = replace(
            DicomwebAdapter.capabilities,
            pushdown=pushdown,
            prefilter=prefilter,
            max_page_size=self.page_size,
        )

    # -- translation --------------------------------------------------------------------

    def _sendable(self, field: str, value: Any) -> bool:
        if not isinstance(value, str) or _UNSAFE.search(value):
            return False
        if field in ("study_uid", "series_uid"):
            return bool(_UID.match(value)) and len(value) <= 64
        if field in ("modality", "body_part"):
            return value == value.upper()  # canonical codes are upper case
        return True

    def _pushable(self, node: Node) -> bool:
        if not isinstance(node, Compare | In) or node.field not in self.match_keys:
            return False
        if node.field == "study_date":
            return isinstance(node, Compare) and _bounds(node) is not None
        if isinstance(node, In):
            return (
                (self.list_matching or len(node.values) == 1)
                and not node.negated
                and all(self._sendable(node.field, v) for v in node.values)
                and len(",".join(map(str, node.values))) <= MAX_LIST
            )
        return node.op == "=" and self._sendable(node.field, node.value)

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, self._pushable)
        params: dict[str, Any] = {}
        rest: list[Node] = []
        low: dt.date | None = None
        high: dt.date | None = None
        for conjunct in conjuncts(pushed):
            if isinstance(conjunct, Compare) and conjunct.field == "study_date":
                a, b = _bounds(conjunct) or (None, None)  # never None: see _pushable
                low = a if low is None or (a is not None and a > low) else low
                high = b if high is None or (b is not None and b < high) else high
                rest.append(conjunct)  # re-checked: the server compares date strings
            elif isinstance(conjunct, Compare | In) and QIDO_KEYS[conjunct.field] not in params:
                values = conjunct.values if isinstance(conjunct, In) else (conjunct.value,)
                params[QIDO_KEYS[conjunct.field]] = ",".join(dict.fromkeys(map(str, values)))
                if conjunct.field in RECHECK:
                    rest.append(conjunct)
            else:  # an OR, or a second match on one attribute: QIDO has one slot for each
                rest.append(conjunct)
        if low is not None or high is not None:
            params["StudyDate"] = _range(low, high)
        rest += [] if residual is None else [residual]
        final = rest[0] if len(rest) == 1 else (And(tuple(rest)) if rest else None)
        matches = "&".join(f"{k}={v}" for k, v in params.items())
        description = f"QIDO-RS GET {self.base}/series" + (f"?{matches}" if matches else "")
        description += ", paged by limit/offset"
        if final is not None:
            description += f"; the hub applies {to_json(final)}"
        native = {"path": "/series", "params": {**params, "includefield": list(INCLUDE)}}
        return Translation(native=native, residual=final, description=description)

    # -- fetching -----------------------------------------------------------------------

    async def search(self, translation: Translation, page: Page) -> PageResult:
        """One page: `limit` is capped at `page_size` (never 0, which Orthanc reads as all)."""
        native = translation.native
        if not isinstance(native, Mapping) or native.get("path") != "/series":
            raise TerminalSourceError(f"{self.name}: not a dicomweb translation")
        asked = Page(size=max(1, min(page.size, self.page_size)), offset=page.offset)
        params = {**native["params"], "limit": str(asked.size), "offset": str(asked.offset)}
        rows = await self._with_studies(await self._get(native["path"], params))
        fetched_at = dt.datetime.now(dt.UTC)
        batch = to_batch(self._record(row, fetched_at) for row in rows)
        batches = [validate_batch(batch, self.name)] if rows else []
        return PageResult(batches, asked.next_offset(len(rows)))

    def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        """Every series, page after page of an unfiltered series-level search."""
        return walk_pages(self, self.translate(MATCH_ALL), self.page_size)

    def _record(self, row: DicomJson, fetched_at: dt.datetime) -> SeriesRecord:
        fields = decode_series(row)
        study, series = fields["study_uid"], fields["series_uid"]
        if not study or not series:
            raise TerminalSourceError(
                f"{self.name} sent a series without StudyInstanceUID or SeriesInstanceUID"
            )
        fields["patient_id"] = fields["patient_id"] or ""  # type 2: may be empty
        viewer = self.viewer.format(study_uid=study, series_uid=series) if self.viewer else None
        return SeriesRecord(
            source=self.name,
            collection=self.collection,
            license=self.license,
            sources=[self.name],
            download_url=f"{self.base}/studies/{quote(study)}/series/{quote(series)}",
            viewer_url=viewer,
            fetched_at=fetched_at,
            **fields,
        )

    async def _with_studies(self, rows: list[DicomJson]) -> list[DicomJson]:
        """Copy patient/study attributes down from `/studies` when the server left them out
        of series answers (`join_studies`: auto = when PatientID is absent), in batches."""
        if not rows or self.join_studies == "never":
            return rows
        if self.join_studies == "auto" and all(
            dicom_element(r, "PatientID") is not None for r in rows
        ):
            return rows
        uids = sorted({u for r in rows if (u := dicom_text(r, "StudyInstanceUID"))})
        batch = STUDY_BATCH if self.list_matching else 1
        tags = {DICOM_TAGS[k][0] for k in DICOM_STUDY_LEVEL}
        studies: dict[str, dict[str, Any]] = {}
        for i in range(0, len(uids), batch):
            chunk = uids[i : i + batch]
            params = {"StudyInstanceUID": ",".join(chunk), "includefield": [*DICOM_STUDY_LEVEL]}
            for study in await self._get("/studies", {**params, "limit": str(len(chunk))}):
                if (uid := dicom_text(study, "StudyInstanceUID")) is not None:
                    studies[uid] = {k.upper(): v for k, v in study.items() if k.upper() in tags}
        return [{**r, **studies.get(dicom_text(r, "StudyInstanceUID") or "", {})} for r in rows]

    async def _get(self, path: str, params: Mapping[str, Any]) -> list[DicomJson]:
        client = self._http()
        request = client.build_request("GET", f"{self.base}{path}", params=dict(params))
        request.headers["Accept"] = "application/dicom+json"
        where = (request.url.scheme, request.url.host, request.url.port)
        if where == self._origin and (token := credential(self.settings)):
            request.headers["Authorization"] = f"Bearer {token}"
        rows = json_body(await send(client, self.name, request), self.name, empty=[])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TerminalSourceError(f"{self.name}: {path} did not answer a DICOM JSON array")
        return rows


def _bounds(node: Compare) -> tuple[dt.date | None, dt.date | None] | None:
    """Inclusive (low, high) of a date comparison; None when QIDO cannot express it."""
    day = node.value
    if not isinstance(day, dt.date) or node.op == "!=":
        return None
    try:
        if node.op == ">":
            return day + dt.timedelta(days=1), None
        if node.op == "<":
            return None, day - dt.timedelta(days=1)
    except OverflowError:  # after 9999-12-31 or before 0001-01-01
        return None
    return {"=": (day, day), ">=": (day, None), "<=": (None, day)}[node.op]


def _range(low: dt.date | None, high: dt.date | None) -> str:
    def da(day: dt.date | None) -> str:
        return day.isoformat().replace("-", "") if day else ""

    return da(low) if low is not None and low == high else f"{da(low)}-{da(high)}"
