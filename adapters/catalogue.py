"""Static catalogue: repositories with no query API (e.g. Stanford AIMI shared datasets).

The repository maintainer writes one file (TOML or JSON, chosen by extension; settings
option `path`) listing datasets. We do not invent series a file does not list, so each
catalogue entry becomes ONE dataset-level record, not per-series records:

- `series_uid`, `study_uid` and `patient_id` are all `catalogue:{source}:{id}`, so in the
  hub's counts a catalogue source contributes one series, one study and one patient per
  DATASET. Those counts are dataset counts, not imaging counts.
- The dataset's declared patient/study/series counts are written into
  `series_description` ("Dataset-level entry; declared counts: ..."), its title into
  `study_description`; `instance_count`/`size_bytes` are copied when declared.
- `sex` is `unknown`, age/date/race fields are missing, `viewer_url` is None and
  `download_url` is the dataset's landing or download URL.

The file is validated strictly (unknown keys, wrong types, non-DICOM codes and duplicate
ids are rejected). It is read lazily and parsed again whenever its content changes, so a
bad edit is reported for this source (TerminalSourceError naming file, entry and key)
instead of stopping the hub. Filters are evaluated in memory with `schema.evaluate.matches`, the
reference semantics, so every field and operator pushes down and nothing is residual.

File shape (JSON: the same keys in an object)::

    version = "2025-01"            # optional; data_version() falls back to a content digest
    [[datasets]]
    id = "chexpert"                # required: letters, digits, '.', '_', '-'
    collection = "CheXpert"        # required (normalised like every collection)
    title = "CheXpert"             # required
    license = "Stanford ..."       # required
    url = "https://..."            # required, http(s)
    modality = "CR"                # optional, also body_part, disease, description,
    patients = 65240               # patients, studies, series, instance_count, size_bytes
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.sdk import (
    FIELDS,
    MATCH_ALL,
    Adapter,
    Capabilities,
    FieldKind,
    FilterError,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    SourceSettings,
    TerminalSourceError,
    Translation,
    local_errors,
    matches,
    normalize_code,
    normalize_collection,
    normalize_text,
    parse_filter,
    pushable_by,
    split_pushdown,
    to_batch,
    to_json,
    validate_batch,
)

_EQUALITY = frozenset(["=", "!=", "IN", "EXCLUDES", "is_missing"])
_RANGES = frozenset([">", ">=", "<", "<="])
_DICOM_CODE = re.compile(r"[A-Z0-9_ ]{1,16}")  # DICOM CS: upper case, digits, '_', space
_MAX_ERRORS = 5


class CatalogueEntry(BaseModel):
    """One dataset as the maintainer declares it; strict, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    collection: str
    title: str
    license: str
    url: str
    modality: str | None = None
    body_part: str | None = None
    disease: str | None = None
    description: str | None = None
    patients: int | None = Field(default=None, ge=0)
    studies: int | None = Field(default=None, ge=0)
    series: int | None = Field(default=None, ge=0)
    instance_count: int | None = Field(default=None, ge=0)
    size_bytes: int | None = Field(default=None, ge=0)

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str) -> str:
        normal = normalize_collection(value)
        if not normal:
            raise ValueError("collection needs at least one letter or digit")
        return normal

    @field_validator("title", "license")
    @classmethod
    def _required_text(cls, value: str) -> str:
        text = normalize_text(value)
        if text is None:
            raise ValueError("must not be empty")
        return text

    @field_validator("disease", "description")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        return normalize_text(value)

    @field_validator("modality", "body_part")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        code = normalize_code(value)
        if code is not None and not _DICOM_CODE.fullmatch(code):
            raise ValueError(
                f"{value!r} is not a DICOM code string (A-Z, 0-9, '_' or space; 1-16 chars)"
            )
        return code

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+\S*", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class CatalogueFile(BaseModel):
    """The whole file: an optional version and the list of datasets."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: str | None = None
    datasets: list[CatalogueEntry]


@dataclass(frozen=True)
class _Loaded:
    """One validated reading of the file, kept until the file changes."""

    digest: str
    version: str
    batch: pa.RecordBatch
    rows: list[dict[str, Any]]


class CatalogueAdapter(Adapter):
    """A maintainer-written dataset list, filtered in memory with the reference evaluator."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={
            name: _EQUALITY
            | (_RANGES if spec.kind in (FieldKind.INTEGER, FieldKind.DATE) else frozenset())
            | (frozenset(["search"]) if spec.kind is FieldKind.TEXT else frozenset())
            for name, spec in FIELDS.items()
        },
        paging=PagingStyle.NONE,
        text_search=True,
    )

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        path = settings.option("path")
        if not isinstance(path, str) or not path.strip():
            raise TerminalSourceError(
                f"[sources.{settings.name}] needs `path`, the catalogue file (.toml or .json)"
            )
        self.path = Path(path).expanduser()
        if self.path.suffix.lower() not in (".toml", ".json"):
            raise TerminalSourceError(
                f"catalogue file {self.path}: the name must end in .toml or .json"
            )
        self._loaded: _Loaded | None = None

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, pushable_by(self.capabilities))
        native = {"file": self.path.name, "filter": to_json(pushed)}
        description = f"dataset-level entries of catalogue file {self.path.name}, " + (
            "every entry" if pushed == MATCH_ALL else f"filtered in memory by {to_json(pushed)}"
        )
        if residual is not None:  # unreachable with full pushdown; kept for subclasses
            description += f"; the hub applies {to_json(residual)}"
        return Translation(native=native, residual=residual, description=description)

    async def search(self, translation: Translation, page: Page) -> PageResult:
        """Every matching entry in one batch: paging is NONE, so `page` is unused."""
        node = self._filter_of(translation)
        loaded = self._load()
        keep = [i for i, row in enumerate(loaded.rows) if matches(node, row)]
        return PageResult([loaded.batch.take(pa.array(keep, pa.int64()))] if keep else [])

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        loaded = self._load()
        if loaded.batch.num_rows:
            yield loaded.batch

    def data_version(self) -> str:
        return self._load().version

    def estimated_total(self) -> int | None:
        try:
            return int(self._load().batch.num_rows)
        except TerminalSourceError:
            return None  # only for progress bars; harvest reports the error itself

    def _filter_of(self, translation: Translation) -> Node:
        try:
            return parse_filter(translation.native["filter"])
        except (FilterError, KeyError, TypeError) as exc:
            raise TerminalSourceError(
                f"source {self.name!r}: not a catalogue translation ({exc})"
            ) from None

    def _load(self) -> _Loaded:
        """The validated file, parsed again only when its content changed (it is small)."""
        with local_errors(self.name, f"catalogue file {self.path.name}"):
            data = self.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if self._loaded is not None and self._loaded.digest == digest:
            return self._loaded
        catalogue = self._parse(data)
        now = dt.datetime.now(dt.UTC)
        batch = validate_batch(
            to_batch(self._record(e, now) for e in catalogue.datasets), self.name
        )
        version = catalogue.version or f"sha256:{digest[:16]}"
        self._loaded = _Loaded(digest, version, batch, batch.to_pylist())
        return self._loaded

    def _parse(self, data: bytes) -> CatalogueFile:
        try:
            text = data.decode("utf-8")
            if self.path.suffix.lower() == ".toml":
                raw: Any = tomllib.loads(text)
            else:
                raw = json.loads(
                    text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant
                )
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
            raise TerminalSourceError(f"catalogue file {self.path}: not valid: {exc}") from None
        try:
            catalogue = CatalogueFile.model_validate(raw)
        except ValidationError as exc:
            problems = [_describe(err, raw) for err in exc.errors()[:_MAX_ERRORS]]
            more = exc.error_count() - len(problems)
            raise TerminalSourceError(
                f"catalogue file {self.path}: "
                + "; ".join(problems)
                + (f"; and {more} more problems" if more > 0 else "")
            ) from None
        seen: dict[str, int] = {}
        for i, entry in enumerate(catalogue.datasets):
            if entry.id in seen:
                raise TerminalSourceError(
                    f"catalogue file {self.path}: datasets[{i}] (id {entry.id!r}): "
                    f"id already used by datasets[{seen[entry.id]}]"
                )
            seen[entry.id] = i
        return catalogue

    def _record(self, entry: CatalogueEntry, fetched_at: dt.datetime) -> SeriesRecord:
        uid = f"catalogue:{self.name}:{entry.id}"
        return SeriesRecord(
            source=self.name,
            collection=entry.collection,
            patient_id=uid,
            study_uid=uid,
            series_uid=uid,
            modality=entry.modality,
            body_part=entry.body_part,
            study_description=entry.title,
            series_description=_summary(entry),
            license=entry.license,
            disease=entry.disease,
            instance_count=entry.instance_count,
            size_bytes=entry.size_bytes,
            sources=[self.name],
            viewer_url=None,
            download_url=entry.url,
            fetched_at=fetched_at,
        )


def _summary(entry: CatalogueEntry) -> str:
    """The description plus the declared counts, said plainly to be dataset counts."""
    counts = [
        f"{value:,} {label}"
        for label, value in (
            ("patients", entry.patients),
            ("studies", entry.studies),
            ("series", entry.series),
            ("images", entry.instance_count),
        )
        if value is not None
    ]
    tail = (
        "Dataset-level entry; declared counts: " + ", ".join(counts) + "."
        if counts
        else "Dataset-level entry; counts not declared."
    )
    return f"{entry.description} {tail}" if entry.description else tail


def _describe(err: Any, raw: Any) -> str:
    """One pydantic error as 'datasets[2] (id 'x'): unknown key 'modalty' (...)'."""
    loc = tuple(err["loc"])
    where, key = "top level", loc[0] if loc else None
    if len(loc) >= 2 and loc[0] == "datasets" and isinstance(loc[1], int):
        where = f"datasets[{loc[1]}]"
        entries = raw.get("datasets") if isinstance(raw, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            where += f" (id {entry['id']!r})"
        key = loc[2] if len(loc) > 2 else None
    if err["type"] == "extra_forbidden":
        allowed = (
            CatalogueEntry.model_fields if where != "top level" else CatalogueFile.model_fields
        )
        return f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})"
    if err["type"] == "missing":
        return f"{where}: required key {key!r} is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if key is None else f"{where}: key {key!r}: {message}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON silently keeps the last of two equal keys; TOML refuses, and so do we."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
