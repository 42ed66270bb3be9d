"""Which export a request asks for, checked before the first byte is sent.

`prepare_export` validates everything a caller can get wrong (format, filter, text,
repository, limit) and answers the cohort, so the HTTP layer can turn every mistake into
a 400 and only then start streaming. `Export.text()` then yields the file in chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hub.export.records import MANIFEST_COLUMNS, RECORD_FILE_COLUMNS, Record, record_chunks
from hub.export.writers import (
    Chunks,
    Repository,
    Tally,
    csv_text,
    gen3_text,
    ndjson_text,
    s5cmd_text,
    tcia_text,
    wadors_text,
)
from hub.saved_cohorts import canonical, cohort_id, data_versions
from hub.security.identity import ANONYMOUS, Caller
from hub.service import Cohort, Hub
from schema.errors import CallerError
from schema.quoting import quote


class ExportError(CallerError):
    """An export request the caller got wrong; the message says what to change."""


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    kind: str | None  # the adapter whose repositories the manifest is for; None: records
    description: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "text/csv; charset=utf-8", "csv", None, "canonical records as CSV"),
        Format(
            "ndjson", "application/x-ndjson", "ndjson", None, "canonical records, one JSON a line"
        ),
        Format("s5cmd", "text/plain; charset=utf-8", "s5cmd", "idc", "IDC s5cmd run file"),
        Format(
            "tcia", "text/plain; charset=utf-8", "tcia", "tcia", "TCIA NBIA Data Retriever manifest"
        ),
        Format("gen3", "application/json", "json", "gen3", "Gen3 object manifest (object_id)"),
        Format("wadors", "text/uri-list; charset=utf-8", "txt", "dicomweb", "WADO-RS series URLs"),
    )
}


def repositories(hub: Hub) -> list[Repository]:
    """Every configured source as a manifest sees it (base URL from its adapter)."""
    found = []
    for name, adapter in hub.adapters.items():
        settings = adapter.settings
        url = getattr(adapter, "base", None) or getattr(adapter, "url", None) or settings.url
        server = settings.option("download_server_url")
        found.append(
            Repository(
                name,
                settings.adapter,
                url if isinstance(url, str) else None,
                server if isinstance(server, str) else None,
            )
        )
    return found


@dataclass
class Export:
    """One checked export: the cohort, the repositories its manifest is for, and sizes."""

    format: Format
    cohort: Cohort
    repositories: list[Repository]
    total: int
    name: str
    limit: int | None = None
    tally: Tally = field(default_factory=Tally)

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format.extension}"

    def chunks(self, progress: Callable[[int], Any] | None = None) -> Chunks:
        columns = RECORD_FILE_COLUMNS if self.format.kind is None else MANIFEST_COLUMNS
        chunks = record_chunks(self.cohort.view, self.limit, columns=columns)
        plan = self.cohort.disclosure.plan
        if plan.restricted:  # visible series only (the view), without counts-only sources
            chunks = _scrubbed(chunks, plan.scrub)
        return chunks if progress is None else _counted(chunks, progress)

    def text(self, progress: Callable[[int], Any] | None = None) -> Iterator[str]:
        """The file, chunk by chunk; `progress(n)` after each n series read."""
        chunks, tally, repos = self.chunks(progress), self.tally, self.repositories
        match self.format.name:
            case "csv":
                return csv_text(chunks, tally)
            case "ndjson":
                return ndjson_text(chunks, tally)
            case "s5cmd":
                return s5cmd_text(chunks, repos, tally)
            case "tcia":
                return tcia_text(chunks, repos[0], f"{self.name}.tcia", tally)
            case "gen3":
                return gen3_text(chunks, repos, tally)
            case _:
                return wadors_text(chunks, repos, tally)


def _scrubbed(chunks: Chunks, scrub: Callable[[Record], Record]) -> Iterator[list[Record]]:
    for chunk in chunks:
        yield [scrub(r) for r in chunk]
        del chunk  # one chunk at a time (see writers.pieces)


def _counted(chunks: Chunks, progress: Callable[[int], Any]) -> Iterator[list[Record]]:
    for chunk in chunks:
        yield chunk
        size = len(chunk)
        del chunk
        progress(size)


def prepare_export(
    hub: Hub,
    format: str,
    filter_json: Any = None,
    text: str | None = None,
    *,
    source: str | None = None,
    limit: int | None = None,
    name: str | None = None,
    caller: Caller = ANONYMOUS,
) -> Export:
    """Check the request and answer the cohort as `caller` may see it (only series some
    source gives them as records); raises ExportError, FilterError, QueryError (all
    CallerErrors) or IndexNotReady."""
    spec = FORMATS.get(format) if isinstance(format, str) else None
    if spec is None:
        raise ExportError(f"unknown export format {quote(format)}; formats: {', '.join(FORMATS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ExportError(f"limit must be a whole number of series, at least 1; got {quote(limit)}")
    repos = _repositories_for(hub, spec, source)
    if source is not None and source not in hub.access_plan(caller).visible:
        raise ExportError(f"source {quote(source)} gives you counts only, not records to download")
    canonical_filter, canonical_text = canonical(filter_json, text)
    cohort = hub.cohort(canonical_filter, canonical_text, caller)
    total = cohort.view.counts().series
    if name is None:
        name = "cohort-" + cohort_id(canonical_filter, canonical_text, data_versions(hub))
    total = total if limit is None else min(total, limit)
    return Export(spec, cohort, repos, total, name, limit)


def _repositories_for(hub: Hub, spec: Format, source: str | None) -> list[Repository]:
    every = repositories(hub)
    if spec.kind is None:
        if source is not None:
            raise ExportError(
                f"`source` selects a repository's manifest; {spec.name} lists records"
            )
        return []
    configured = ", ".join(f"{r.name} ({r.kind})" for r in every) or "none"
    if source is not None:
        chosen = [r for r in every if r.name == source]
        if not chosen:
            raise ExportError(f"unknown source {quote(source)}; configured sources: {configured}")
        if chosen[0].kind != spec.kind:
            raise ExportError(
                f"source {quote(source)} uses the {chosen[0].kind} adapter; a {spec.name} manifest "
                f"is for {spec.kind} sources"
            )
        return chosen
    chosen = [r for r in every if r.kind == spec.kind]
    if not chosen:
        raise ExportError(
            f"a {spec.name} manifest is for {spec.kind} sources, and none is configured "
            f"(configured sources: {configured})"
        )
    if spec.name == "tcia" and len(chosen) > 1:
        names = ", ".join(r.name for r in chosen)
        raise ExportError(f"a .tcia manifest names one download server; choose a source: {names}")
    return chosen
