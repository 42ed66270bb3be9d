"""Gen3 data commons (MIDRC, the BIH imaging hub, any Gen3 commons) through Guppy GraphQL.

Guppy is the query service behind every Gen3 explorer: its filter JSON, its `_aggregation`
counts and its 10,000-row window (beyond it: "please use download endpoint") hold for every
commons. Pages inside the window are GraphQL queries sorted on the series UID; a page that
would cross it is read from `/guppy/download` (one JSON array for the whole filter), skips
`offset` rows and is the last page. Real-source shapes: tests/fixtures/gen3/README.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pyarrow as pa

from adapters.sdk import (
    MATCH_ALL,
    And,
    Capabilities,
    Compare,
    HttpAdapter,
    In,
    IsMissing,
    Node,
    Or,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    SourceSettings,
    TerminalSourceError,
    TransientSourceError,
    Translation,
    Value,
    canonical_value,
    credential,
    json_body,
    send,
    split_pushdown,
    to_batch,
    to_json,
    validate_batch,
)
from adapters.sdk import normalize as norm

WINDOW = 10_000  # Guppy's SCROLL_PAGE_SIZE: GraphQL refuses offset + first beyond it
TOKEN_TTL_S = 3000  # Fence's access tokens live an hour at most (MAX_ACCESS_TOKEN_TTL)
NUMERIC = ("age", "instance_count", "size_bytes")
_GRAPHQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_STRING_OPS = frozenset(["=", "!=", "IN", "EXCLUDES", "is_missing"])
_NUMERIC_OPS = frozenset(["=", "IN", ">", ">=", "<", "<="])
_TEXT = ("race", "ethnicity", "study_description", "series_description", "manufacturer", "disease")
# fmt: off
_IDS = ("collection", "patient_id", "study_uid", "series_uid")
_MIDRC_SERIES_NODES = [f"{m}_series_file" for m in
                       ("ct", "cr", "dx", "mg", "mr", "nm", "pt", "rf", "us", "xa")]
PRESETS: dict[str, dict[str, Any]] = {
    "bih": {  # imaging-hub.data-commons.org: one `imaging_series` document per series
        "index": "imaging_series",
        "numeric_age": False,  # PatientAge holds DICOM age strings ("065Y") and bare numbers
        "value_map": {"female": ["Female", "F"], "male": ["Male", "M"]},
        "field_map": {
            "collection": "collection_id", "patient_id": "PatientID",
            "study_uid": "StudyInstanceUID", "series_uid": "SeriesInstanceUID",
            "modality": "Modality", "body_part": "BodyPartExamined", "sex": "PatientSex",
            "age": "PatientAge", "race": "race", "ethnicity": "EthnicGroup",
            "study_description": "StudyDescription", "series_description": "SeriesDescription",
            "manufacturer": "Manufacturer", "license": "license", "disease": "disease_type",
            "viewer_url": "dicom_viewer_url", "download_url": "object_ids",
        },
    },
    "midrc": {  # data.midrc.org: series files in `data_file`, study/case fields injected as sets
        "index": "data_file",
        "numeric_age": True,
        "value_map": {"female": ["Female"], "male": ["Male"]},
        "missing_values": ["<Undefined>"],
        "base_filter": {"IN": {"source_node": _MIDRC_SERIES_NODES}},
        "field_map": {
            "collection": "project_id", "patient_id": "case_ids", "study_uid": "study_uid",
            "series_uid": "series_uid",
            "modality": "modality",  # the series' own; `study_modality` is the study's set
            "body_part": "body_part_examined", "sex": "sex",
            "age": "age_at_imaging",  # at the study; `age_at_index` is at the index event
            "race": "race", "ethnicity": "ethnicity", "study_description": "study_description",
            "series_description": "series_description", "manufacturer": "manufacturer",
            "license": "license", "instance_count": "number_of_instances",
            "size_bytes": "file_size", "download_url": "object_id",
        },
    },
}
# fmt: on


class Gen3Adapter(HttpAdapter):
    """A Gen3 commons: live search over Guppy, and harvest through `/guppy/download`."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={"series_uid": _STRING_OPS},
        paging=PagingStyle.OFFSET,
        max_page_size=WINDOW,
    )
    """The least any field map allows; each instance declares its own (see __init__)."""

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        if not settings.url:
            raise TerminalSourceError(f"source {self.name!r}: the gen3 adapter needs a url")
        self.url = settings.url.rstrip("/")
        preset = PRESETS.get(settings.option("preset", "bih"))
        if preset is None:
            raise TerminalSourceError(f"source {self.name!r}: unknown preset")
        opt = {"missing_data_alias": "no data", "accessibility": "accessible", **preset}
        opt |= settings.model_extra or {}
        self.index: str = opt["index"]
        if self.index == "imaging_study":  # one document per study: no series to index
            raise TerminalSourceError(f"source {self.name!r}: use a series-level index")
        fields = {**preset["field_map"], **(settings.option("field_map") or {})}
        fields["collection"] = opt.get("collection_field") or fields.get("collection")
        self.fields: dict[str, str] = {k: v for k, v in fields.items() if v}
        self.value_map = {k: [v] if isinstance(v, str) else v for k, v in opt["value_map"].items()}
        self.numeric_age = bool(opt["numeric_age"])
        self.missing_values: list[str] = opt.get("missing_values") or []
        self.base_filter: dict[str, Any] | None = opt.get("base_filter")
        self.license: str | None = opt.get("license")
        self.alias: str | None = opt["missing_data_alias"] or None
        self.accessibility = opt["accessibility"]
        if self.accessibility not in ("accessible", "all", "unaccessible"):
            raise TerminalSourceError(f"source {self.name!r}: bad accessibility option")
        spliced = [self.index, *self.fields.values()]  # written into Guppy's GraphQL text
        if bad := [n for n in spliced if not isinstance(n, str) or not _GRAPHQL_NAME.match(n)]:
            raise TerminalSourceError(
                f"source {self.name!r}: {bad[0]!r} is not a GraphQL name; the index and the "
                "mapped fields must be (letters, digits and '_')"
            )
        self.guppy_url = (settings.option("guppy_url") or f"{self.url}/guppy").rstrip("/")
        self._origin = urlsplit(self.url)[:2]  # (scheme, host): where the bearer may go
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()
        # Pushdown depends on the field map and preset, so the instance declares its own.
        pushdown = {f: ops for f in self.fields if (ops := self._ops(f))}
        self.capabilities = replace(Gen3Adapter.capabilities, pushdown=pushdown)

    # -- translation --------------------------------------------------------------------

    def _numeric(self, field: str) -> bool:
        return field in NUMERIC and (field != "age" or self.numeric_age)

    def _ops(self, field: str) -> frozenset[str]:
        lossy = field in ("collection", "viewer_url", "download_url")  # no way back to raw
        if field not in self.fields or lossy or (field == "license" and self.license):
            return frozenset()
        if field in NUMERIC:
            return _NUMERIC_OPS if self._numeric(field) else frozenset()
        if field == "sex" or not self.alias:  # canonical sex is never missing: it is "unknown"
            return _STRING_OPS - {"is_missing"}
        return _STRING_OPS

    def _variants(self, field: str, value: Value) -> list[str] | None:
        """Raw values that normalise to `value`; None when Guppy cannot test them exactly."""
        placeholders = {v.lower() for v in [self.alias or "", *self.missing_values]}
        if not isinstance(value, str) or value.lower() in placeholders:
            return None
        if field == "sex":
            return self.value_map.get(value)
        if field in ("modality", "body_part"):
            if not value or value != value.strip().upper():
                return None  # the canonical value is upper case, so nothing matches
            return list(dict.fromkeys([value, value.title(), value.lower()]))
        return [value]

    def _pushable(self, node: Node) -> bool:
        if isinstance(node, IsMissing):
            return node.missing and "is_missing" in self._ops(node.field)
        if not isinstance(node, Compare | In):
            return False
        op, values = _leaf(node)
        if op not in self._ops(node.field):
            return False
        if self._numeric(node.field):
            return all(isinstance(v, int) for v in values)
        return all(self._variants(node.field, v) for v in values)

    def _compile(self, node: Node) -> dict[str, Any]:
        if isinstance(node, And | Or):
            return {type(node).__name__.upper(): [self._compile(c) for c in node.children]}
        if isinstance(node, IsMissing):  # Guppy turns its alias into "field does not exist"
            return {"IN": {self.fields[node.field]: [self.alias, "", *self.missing_values]}}
        assert isinstance(node, Compare | In)
        field, (op, values) = self.fields[node.field], _leaf(node)
        if self._numeric(node.field):
            if op == "IN":
                return {"OR": [_range(field, "=", v) for v in values if isinstance(v, int)]}
            value = values[0]
            assert isinstance(value, int)  # _pushable admitted only whole numbers
            return _range(field, op, value)
        raw = [r for v in values for r in self._variants(node.field, v) or []]
        raw = list(dict.fromkeys(raw))
        if op in ("!=", "EXCLUDES"):
            return {"!=": {field: raw}}  # Guppy maps each value to a must_not term
        return {"=": {field: raw[0]}} if len(raw) == 1 else {"IN": {field: raw}}

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, self._pushable)
        parts = [self.base_filter, None if pushed == MATCH_ALL else self._compile(pushed)]
        parts = [p for p in parts if p]
        gql_filter = parts[0] if len(parts) == 1 else ({"AND": parts} if parts else None)
        native = {
            "index": self.index,
            "filter": gql_filter,
            "sort": [{self.fields["series_uid"]: "asc"}],
            "fields": list(dict.fromkeys(self.fields.values())),
        }
        description = f"Guppy {self.index} at {self.guppy_url} where " + (
            "every document" if gql_filter is None else orjson.dumps(gql_filter).decode()
        )
        if residual is not None:
            description += f"; the hub applies {to_json(residual)}"
        return Translation(native=native, residual=residual, description=description)

    # -- fetching -----------------------------------------------------------------------

    async def search(self, translation: Translation, page: Page) -> PageResult:
        """One page: a GraphQL query inside the window; past it, the rest of the download,
        which is the last page. The next page is decided from the rows Guppy sent."""
        native = translation.native
        if page.offset + page.size > WINDOW:
            rows = (await self._download(native))[page.offset :]
            return PageResult(self._batches(rows, page.size))
        variables = {"filter": native["filter"], "sort": native["sort"]}
        variables |= {"first": page.size, "offset": page.offset}
        query = (
            f"query ($filter: JSON, $sort: JSON, $first: Int, $offset: Int) {{ {self.index}("
            "filter: $filter, sort: $sort, first: $first, offset: $offset, accessibility: "
            f"{self.accessibility}) {{ {' '.join(native['fields'])} }} }}"
        )
        rows = await self._graphql(query, variables)
        return PageResult(self._batches(rows, page.size), page.next_offset(len(rows)))

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        for batch in self._batches(await self._download(self.translate(MATCH_ALL).native), 5000):
            yield batch

    async def count(self, translation: Translation) -> int | None:
        """`_totalCount` of a translated filter; None when tiered access hides it (-1)."""
        query = (
            f"query ($filter: JSON) {{ _aggregation {{ {self.index}(filter: $filter, "
            f"accessibility: {self.accessibility}) {{ _totalCount }} }} }}"
        )
        data = await self._graphql(query, {"filter": translation.native["filter"]}, "_aggregation")
        total = data.get(self.index, {}).get("_totalCount") if isinstance(data, dict) else None
        return total if isinstance(total, int) and total >= 0 else None

    async def _graphql(self, query: str, variables: dict[str, Any], key: str = "") -> Any:
        body = {"query": query, "variables": variables}
        response = await self._post(f"{self.guppy_url}/graphql", body)
        payload = json_body(response, self.name)
        if not isinstance(payload, dict):
            raise TerminalSourceError(f"{self.name}: Guppy sent {type(payload).__name__}")
        if payload.get("errors"):
            token = self._token[0] if self._token else None
            _raise_graphql_error(self.name, payload["errors"], token)
        data = (payload.get("data") or {}).get(key or self.index)
        if data is None or (not key and not isinstance(data, list)):
            raise TerminalSourceError(f"{self.name}: Guppy answered without {key or self.index}")
        return data

    async def _download(self, native: dict[str, Any]) -> list[dict[str, Any]]:
        body = {k: native[k] for k in ("fields", "sort") if native.get(k)}
        body |= {"type": native["index"], "accessibility": self.accessibility}
        if native["filter"] is not None:
            body["filter"] = native["filter"]
        rows = json_body(await self._post(f"{self.guppy_url}/download", body), self.name, [])
        if not isinstance(rows, list):
            raise TerminalSourceError(f"{self.name}: /guppy/download did not send a JSON array")
        return [r for r in rows if isinstance(r, dict)]

    async def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        headers = {}
        if urlsplit(url)[:2] == self._origin and (token := await self._access_token()):
            headers["Authorization"] = f"Bearer {token}"  # never to another host
        request = self._http().build_request("POST", url, json=body, headers=headers)
        return await send(self._http(), self.name, request)

    async def _access_token(self) -> str | None:
        """Exchange the API key from `credentials_env` at Fence once; reuse until expiry."""
        env = self.settings.credentials_env
        if not env:
            return None
        async with self._token_lock:
            if self._token and self._token[1] > time.time():
                return self._token[0]
            secret = credential(self.settings) or ""
            try:
                key = orjson.loads(secret)
            except orjson.JSONDecodeError:
                key = {"api_key": secret}  # a raw key rather than credentials.json
            if not isinstance(key, dict) or not key.get("api_key"):
                raise TerminalSourceError(f"{self.name}: {env} holds no api_key")
            url = f"{self.url}/user/credentials/cdis/access_token"
            request = self._http().build_request("POST", url, json=key)
            answer = json_body(await send(self._http(), self.name, request), self.name)
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not isinstance(token, str) or not token:
                raise TerminalSourceError(f"{self.name}: Fence answered without an access_token")
            self._token = (token, time.time() + TOKEN_TTL_S)
            return token

    # -- records ------------------------------------------------------------------------

    def _batches(self, rows: list[dict[str, Any]], size: int) -> list[pa.RecordBatch]:
        """Canonical batches of at most `size` rows; rows that cannot be indexed are skipped."""
        step = max(size, 1)
        return [self._batch(rows[at : at + step]) for at in range(0, len(rows), step)]

    def _batch(self, rows: Iterable[dict[str, Any]]) -> pa.RecordBatch:
        now = dt.datetime.now(dt.UTC)
        records = [r for r in (self._record(row, now) for row in rows) if r is not None]
        return validate_batch(to_batch(records), self.name)

    def _get(self, row: dict[str, Any], field: str) -> Any:
        value = row.get(self.fields.get(field, ""))
        if isinstance(value, list):  # tube copies parent properties down as sets
            value = next((v for v in value if v not in (None, "")), None)
        if isinstance(value, str) and (value.strip() in self.missing_values or not value.strip()):
            return None
        return value

    def _text(self, row: dict[str, Any], field: str) -> str | None:
        value = self._get(row, field)
        return None if value is None else norm.normalize_text(str(value))

    def _record(self, row: dict[str, Any], now: dt.datetime) -> SeriesRecord | None:
        collection, patient, study, series = (self._text(row, f) for f in _IDS)
        if not (collection and patient and study and series):
            return None  # some commons hold series without a study UID: they cannot be indexed
        texts: dict[str, Any] = {f: self._text(row, f) for f in _TEXT}
        age = self._get(row, "age")
        age = math.floor(age) if isinstance(age, float) and math.isfinite(age) else age
        viewer = self._text(row, "viewer_url") or ""
        return SeriesRecord(
            source=self.name,
            collection=norm.normalize_collection(collection),
            patient_id=patient,
            study_uid=study,
            series_uid=series,
            modality=norm.normalize_code(self._text(row, "modality")),
            body_part=norm.normalize_code(self._text(row, "body_part")),
            sex=norm.normalize_sex(self._text(row, "sex")),
            age=norm.normalize_age(age if isinstance(age, str | int) else None),
            study_date=norm.normalize_date(self._text(row, "study_date")),
            license=self._text(row, "license") or self.license,
            instance_count=canonical_value("instance_count", self._get(row, "instance_count")),
            size_bytes=canonical_value("size_bytes", self._get(row, "size_bytes")),
            viewer_url=viewer if viewer.startswith(("https://", "http://")) else None,
            download_url=self._download_url(self._text(row, "download_url")),
            fetched_at=now,
            **texts,
        )

    def _download_url(self, object_id: str | None) -> str | None:
        if object_id is None or object_id.startswith(("https://", "http://", "drs://")):
            return object_id
        return f"{self.url}/ga4gh/drs/v1/objects/{object_id}"  # a GUID, served by indexd


def _leaf(node: Compare | In) -> tuple[str, tuple[Value, ...]]:
    if isinstance(node, In):
        return ("EXCLUDES" if node.negated else "IN"), node.values
    return node.op, (node.value,)


def _range(field: str, op: str, value: int) -> dict[str, Any]:
    """A whole-number comparison as ranges on a possibly fractional field, in its own AND:
    Guppy merges the ranges directly under one AND/OR and drops them all beyond two."""
    low = {">=": value, ">": value + 1, "=": value}.get(op)
    high = {"<": value, "<=": value + 1, "=": value + 1}.get(op)
    bounds = [(">=", low), ("<", high)]
    return {"AND": [{o: {field: v}} for o, v in bounds if v is not None]}


def _raise_graphql_error(source: str, errors: Any, token: str | None = None) -> None:
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}
    code = str((first.get("extensions") or {}).get("code", ""))
    message = " ".join(str(first.get("message", "")).split())
    if token:  # a Guppy that quotes the bearer it was sent must not pass it on
        message = message.replace(token, "***")
    message = message[:300]
    if code in ("401", "403", "UNAUTHENTICATED", "FORBIDDEN"):
        raise TerminalSourceError(f"{source}: Guppy refused access ({code}): {message}")
    if code == "INTERNAL_SERVER_ERROR":
        raise TransientSourceError(f"{source}: Guppy failed: {message}")
    raise TerminalSourceError(f"{source}: Guppy rejected the query ({code or 'error'}): {message}")
