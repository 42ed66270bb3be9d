"""The Cancer Imaging Archive through the NBIA REST API v4 (public data, no token needed).

NBIA's `getSeries` answers one JSON array (no paging), filtered by equality on Collection,
PatientID, StudyInstanceUID, SeriesInstanceUID, Modality, BodyPartExamined and Manufacturer,
one value each: an IN, or an OR of such equalities, becomes several requests whose answers
are merged. Sex, age, study date and description live on `getPatientStudy`, fetched per
patient (or per collection when many patients are needed) and cached. NBIA answers an empty
body, not `[]`, when nothing matches, and HTTP 400 for a parameter it does not know. Its
DateRangeCriteria is a release date, not a study date, so study dates stay residual.
Real-source shapes: tests/fixtures/tcia/README.md.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa

from adapters.sdk import (
    And,
    Capabilities,
    Compare,
    HttpAdapter,
    In,
    Node,
    Or,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    SourceSettings,
    TerminalSourceError,
    Translation,
    Value,
    canonical_value,
    fields_used,
    json_body,
    send,
    split_pushdown,
    to_batch,
    to_json,
    validate_batch,
)
from adapters.sdk import normalize as norm

BASE_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v4"
VIEWER_URL = "https://nbia.cancerimagingarchive.net/viewer/?series={series_uid}"
PARAMS = {
    "collection": "Collection",
    "patient_id": "PatientID",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "manufacturer": "Manufacturer",
}
RECHECK = frozenset(["patient_id", "manufacturer"])
"""Pushed as a pre-filter, then re-checked by the hub: NBIA (MySQL) may compare them without
regard to case, while canonical values keep the repository's case."""
MAX_REQUESTS = 200
"""Most getSeries requests one translated filter fans out to (an IN becomes one request per
value); conditions that would need more stay residual, and the hub applies them."""
PATIENTS_PER_CALL = 10  # above this many patients of one collection, ask for the collection
_CC = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)")
Request = dict[str, Any]


class TciaAdapter(HttpAdapter):
    """TCIA radiology collections: harvest collection by collection, or search live."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={
            f: frozenset(["=", "IN"])
            for f in ("collection", "study_uid", "series_uid", "modality", "body_part")
        },
        paging=PagingStyle.NONE,
        prefilter={f: frozenset(["=", "IN"]) for f in RECHECK},
    )

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        self.base = (settings.url or BASE_URL).rstrip("/")
        self.viewer: str | None = settings.option("viewer_url", VIEWER_URL) or None
        self._names: tuple[float, dict[str, str]] | None = None
        self._studies: dict[tuple[str, str], tuple[float, dict[str, dict[str, Any]]]] = {}

    # -- translation --------------------------------------------------------------------

    def _pushable(self, node: Node) -> bool:
        if not isinstance(node, Compare | In) or node.field not in PARAMS:
            return False
        if isinstance(node, In):
            return not node.negated and all(_sendable(node.field, v) for v in node.values)
        return node.op == "=" and _sendable(node.field, node.value)

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, self._pushable)
        conjuncts = list(pushed.children) if isinstance(pushed, And) else [pushed]
        kept, demoted, total = [], [], 1
        for conjunct in sorted(conjuncts, key=lambda c: len(_dnf(c))):
            if total * len(_dnf(conjunct)) <= MAX_REQUESTS:
                kept.append(conjunct)
                total *= len(_dnf(conjunct))
            else:  # too many requests: the hub filters this part instead
                demoted.append(conjunct)
        kept = [c for c in conjuncts if c in kept]
        recheck = [c for c in kept if fields_used(c) & RECHECK]
        rest = [*demoted, *recheck, *([residual] if residual is not None else [])]
        residual = rest[0] if len(rest) == 1 else (And(tuple(rest)) if rest else None)
        requests = [
            {
                "collection": terms.get("collection"),
                "params": {PARAMS[f]: v for f, v in terms.items() if f != "collection"},
            }
            for terms in _dnf(And(tuple(kept)))
        ]
        native = {"endpoint": "getSeries", "requests": requests}
        description = "NBIA getSeries " + (
            "for every collection"
            if requests == [{"collection": None, "params": {}}]
            else " + ".join(_describe(r) for r in requests) or "(nothing can match)"
        )
        if residual is not None:
            description += f"; the hub applies {to_json(residual)}"
        return Translation(native=native, residual=residual, description=description)

    # -- fetching -----------------------------------------------------------------------

    async def search(self, translation: Translation, page: Page) -> PageResult:
        """Every request of the translation in turn: NBIA does not page, so this one page
        holds the whole answer (`page` is unused) and nothing follows it."""
        names = await self._collection_names()
        seen: set[str] = set()
        batches: list[pa.RecordBatch] = []
        for request in translation.native["requests"]:
            collections: list[str | None] = [None]
            if request["collection"] is not None:
                collections = [names.get(request["collection"])]
                if collections == [None]:
                    continue  # no such collection at TCIA
            elif not request["params"]:
                collections = [*sorted(names.values())]
            for name in collections:
                params = {**request["params"], **({"Collection": name} if name else {})}
                rows = [r for r in await self._get("getSeries", params) if _new(r, seen)]
                if rows:
                    batches.append(await self._batch(rows))
        return PageResult(batches)

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        for name in sorted((await self._collection_names()).values()):
            rows = await self._get("getSeries", {"Collection": name})
            if rows:
                yield await self._batch(rows)

    async def probe(self) -> None:
        """The collection list: one small request proves the URL and the server, where the
        default's MATCH_ALL page would ask getSeries of every collection."""
        await self._collection_names()

    async def _collection_names(self) -> dict[str, str]:
        """Canonical collection id → NBIA's own name (`lidc_idri` → `LIDC-IDRI`), cached."""
        if self._names is None or self._names[0] < time.monotonic():
            rows = await self._get("getCollectionValues", {})
            names = {norm.normalize_collection(r["Collection"]): r["Collection"] for r in rows}
            self._names = (time.monotonic() + self.settings.cache_ttl_s, names)
        return self._names[1]

    async def _get(self, endpoint: str, params: dict[str, str]) -> list[dict[str, Any]]:
        client = self._http()
        request = client.build_request("GET", f"{self.base}/{endpoint}", params=params)
        try:
            response = await send(client, self.name, request)
        except TerminalSourceError as exc:
            if not str(exc).endswith("HTTP 400"):
                raise
            raise TerminalSourceError(
                f"{exc}: NBIA rejected the parameters {sorted(params)} "
                "(it answers 400 for any parameter or value it does not accept)"
            ) from None
        rows = json_body(response, self.name, empty=[])  # an empty body means no results
        if not isinstance(rows, list):
            raise TerminalSourceError(f"{self.name}: {endpoint} did not answer a JSON array")
        return [r for r in rows if isinstance(r, dict)]

    async def _study_rows(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """getPatientStudy rows by StudyInstanceUID for the patients of `rows`, cached."""
        patients: dict[str, set[str]] = {}
        for row in rows:
            if isinstance(row.get("Collection"), str) and isinstance(row.get("PatientID"), str):
                patients.setdefault(row["Collection"], set()).add(row["PatientID"])
        now = time.monotonic()
        if len(self._studies) > 200_000:
            self._studies.clear()
        for collection, wanted in patients.items():
            missing = {p for p in wanted if self._studies.get((collection, p), (0.0,))[0] < now}
            if len(missing) > PATIENTS_PER_CALL:
                found = await self._get("getPatientStudy", {"Collection": collection})
                self._remember(collection, missing, found)
            else:
                for patient in sorted(missing):
                    query = {"Collection": collection, "PatientID": patient}
                    self._remember(collection, {patient}, await self._get("getPatientStudy", query))
        studies: dict[str, dict[str, Any]] = {}
        for collection, wanted in patients.items():
            for patient in wanted:
                studies.update(self._studies[(collection, patient)][1])
        return studies

    def _remember(self, collection: str, patients: set[str], found: list[dict[str, Any]]) -> None:
        by_patient: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in patients}
        for study in found:
            if isinstance(study.get("StudyInstanceUID"), str):
                by_patient.setdefault(str(study.get("PatientID")), {})[
                    study["StudyInstanceUID"]
                ] = study
        expires = time.monotonic() + self.settings.cache_ttl_s
        for patient, studies in by_patient.items():
            self._studies[(collection, patient)] = (expires, studies)

    # -- records ------------------------------------------------------------------------

    async def _batch(self, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        studies = await self._study_rows(rows)
        now = dt.datetime.now(dt.UTC)
        records = [self._record(r, studies.get(r.get("StudyInstanceUID") or ""), now) for r in rows]
        return validate_batch(to_batch([r for r in records if r is not None]), self.name)

    def _record(
        self, row: dict[str, Any], study: dict[str, Any] | None, now: dt.datetime
    ) -> SeriesRecord | None:
        study = study or {}
        collection, patient, study_uid, series_uid = (
            _text(row.get(k))
            for k in ("Collection", "PatientID", "StudyInstanceUID", "SeriesInstanceUID")
        )
        if not (collection and patient and study_uid and series_uid):
            return None
        date = _text(study.get("StudyDate") or row.get("StudyDate")) or ""
        uri = str(row.get("LicenseURI") or "")
        cc = _CC.search(uri)
        return SeriesRecord(
            source=self.name,
            collection=norm.normalize_collection(collection),
            patient_id=patient,
            study_uid=study_uid,
            series_uid=series_uid,
            modality=norm.normalize_code(_text(row.get("Modality"))),
            body_part=norm.normalize_code(_text(row.get("BodyPartExamined"))),
            sex=norm.normalize_sex(_text(study.get("PatientSex"))),
            age=norm.normalize_age(_text(study.get("PatientAge"))),
            ethnicity=_text(study.get("EthnicGroup")),
            study_date=norm.normalize_date(date[:10]),  # NBIA sends "2000-01-01 00:00:00.0"
            study_description=_text(study.get("StudyDescription") or row.get("StudyDesc")),
            series_description=_text(row.get("SeriesDescription")),
            manufacturer=_text(row.get("Manufacturer")),
            license=f"CC {cc[1].upper()} {cc[2]}" if cc else _text(row.get("LicenseName")),
            instance_count=canonical_value("instance_count", row.get("ImageCount")),
            size_bytes=canonical_value("size_bytes", row.get("FileSize")),
            viewer_url=self.viewer.format(series_uid=series_uid) if self.viewer else None,
            download_url=f"{self.base}/getImage?SeriesInstanceUID={series_uid}",
            fetched_at=now,
        )


def _sendable(field: str, value: Value) -> bool:
    """True when NBIA's equality on the raw value selects exactly this canonical value."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    if field == "collection":
        return value == norm.normalize_collection(value)
    return value == value.upper() if field in ("modality", "body_part") else True


def _dnf(node: Node) -> list[dict[str, str]]:
    """A pushed filter as alternative sets of equalities, one getSeries request each."""
    if isinstance(node, Compare):
        return [{node.field: str(node.value)}]
    if isinstance(node, In):
        return [{node.field: str(v)} for v in dict.fromkeys(node.values)]
    if isinstance(node, Or):
        return list({tuple(sorted(t.items())): t for c in node.children for t in _dnf(c)}.values())
    combos: list[dict[str, str]] = [{}]
    for child in node.children if isinstance(node, And) else ():
        combos = [
            {**a, **b}
            for a in combos
            for b in _dnf(child)
            if all(a.get(f, v) == v for f, v in b.items())  # a contradiction asks nothing
        ]
    return list({tuple(sorted(t.items())): t for t in combos}.values())


def _describe(request: Request) -> str:
    params = dict(request["params"])
    if request["collection"]:
        params = {"Collection": f"<{request['collection']}>", **params}
    return "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "(all)"


def _new(row: dict[str, Any], seen: set[str]) -> bool:
    uid = row.get("SeriesInstanceUID")
    if uid in seen:
        return False
    seen.add(str(uid))
    return True


def _text(value: Any) -> str | None:
    return norm.normalize_text(str(value)) if isinstance(value, str | int) else None
