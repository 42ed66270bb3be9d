"""Saved cohorts: the question, its answer, and the data it was answered on, under an id
a paper can cite.

The id is a content hash of the canonical filter, the text and the data version of every
configured repository, so the same cohort asked of the same data gets the same id (and
saving it twice writes one file), while the same question after a new data release gets
a new one. A repository's data version is what its adapter reports (`idc-index-data
22.1.0`); a repository that reports none is identified by its harvest time, and a live
repository by `live` (its answers are as of the moment asked: such a cohort can be
re-run, not reproduced). Files live under `<data_dir>/cohorts/<id>.json`, written
atomically; ids are 32 hex digits and nothing else is ever joined to a path.

Anyone holding the id may read a saved cohort, and the id does not depend on who saved
it, so a saved cohort keeps (and a re-run reports) the counts an anonymous caller gets:
restricted repositories' small counts suppressed, the others rounded (hub/security).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.security.suppression import ReleasedCounts
from hub.service import Cohort, Hub
from schema.errors import CallerError
from schema.filters import MATCH_ALL, And, In, Node, Or, to_json

COHORT_ID = re.compile(r"[0-9a-f]{32}")


class CohortNotFound(CallerError, LookupError):
    """No saved cohort has that id (404)."""


@dataclass(frozen=True)
class DataVersion:
    """What one configured repository held when the cohort was answered."""

    source: str
    mode: str
    data_version: str | None
    harvested_at: str | None

    @property
    def key(self) -> str:
        """The part that identifies the data (see the module docstring)."""
        if self.mode == "live":
            return "live"
        return self.data_version or self.harvested_at or "not harvested"


@dataclass(frozen=True)
class SavedCohort:
    id: str
    filter: dict[str, Any]
    text: str | None
    counts: ReleasedCounts
    by_source: dict[str, int | None]
    data_versions: list[DataVersion]
    created_at: str

    @property
    def sources(self) -> list[str]:
        """Repositories holding at least one series of the cohort."""
        return [name for name, count in self.by_source.items() if count]

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["sources"] = self.sources
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SavedCohort:
        return cls(
            id=data["id"],
            filter=data["filter"],
            text=data["text"],
            counts=ReleasedCounts.from_json(data["counts"]),
            by_source=dict(data["by_source"]),
            data_versions=[DataVersion(**v) for v in data["data_versions"]],
            created_at=data["created_at"],
        )


@dataclass(frozen=True)
class Rerun:
    """A saved cohort asked again now: counts then and now, and what data changed."""

    saved: SavedCohort
    counts: ReleasedCounts
    by_source: dict[str, int | None]
    data_versions: list[DataVersion]
    changed_sources: list[str] = field(default_factory=list)

    @property
    def data_changed(self) -> bool:
        return bool(self.changed_sources)

    @property
    def counts_changed(self) -> bool:
        return self.counts != self.saved.counts

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.saved.id,
            "then": {
                "counts": dataclasses.asdict(self.saved.counts),
                "by_source": self.saved.by_source,
            },
            "now": {"counts": dataclasses.asdict(self.counts), "by_source": self.by_source},
            "counts_changed": self.counts_changed,
            "data_changed": self.data_changed,
            "changed_sources": self.changed_sources,
            "data_versions": [dataclasses.asdict(v) for v in self.data_versions],
        }


def canonical(filter_json: Any, text: str | None) -> tuple[dict[str, Any], str | None]:
    """The filter as Guppy JSON in one canonical form (IN values and AND/OR children
    sorted), and the text stripped; raises FilterError/ValueError like `Hub.parse`."""
    query = Hub.parse(filter_json, text)
    node = _sorted(query.filter)
    return ({} if node == MATCH_ALL else to_json(node)), (query.text or "").strip() or None


def _sorted(node: Node) -> Node:
    if isinstance(node, And | Or):
        children = sorted((_sorted(c) for c in node.children), key=_dump)
        return And(tuple(children)) if isinstance(node, And) else Or(tuple(children))
    if isinstance(node, In):
        values = sorted(set(node.values), key=lambda v: (type(v).__name__, str(v)))
        return In(node.field, tuple(values), node.negated)
    return node


def _dump(node: Node) -> str:
    return json.dumps(to_json(node), sort_keys=True)


def data_versions(hub: Hub) -> list[DataVersion]:
    return [
        DataVersion(s.name, s.mode, s.data_version, s.harvested_at)
        for s in sorted(hub.sources(), key=lambda s: s.name)
    ]


def cohort_id(filter_json: dict[str, Any], text: str | None, versions: list[DataVersion]) -> str:
    """The content hash that names a cohort (arguments already canonical)."""
    content = {"filter": filter_json, "text": text, "data": {v.source: v.key for v in versions}}
    payload = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def check_id(value: str) -> str:
    if not isinstance(value, str) or COHORT_ID.fullmatch(value) is None:
        raise CallerError("a cohort id is 32 lower-case hex digits, as saveCohort returned it")
    return value


class CohortStore:
    """Saved cohorts of one hub, under `<data_dir>/cohorts/`."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.root = Path(hub.data_dir) / "cohorts"

    def save(self, filter_json: Any, text: str | None) -> SavedCohort:
        """Answer the cohort now and keep it; the same cohort on the same data is kept once."""
        canonical_filter, canonical_text = canonical(filter_json, text)
        versions = data_versions(self.hub)
        ident = cohort_id(canonical_filter, canonical_text, versions)
        path = self.root / f"{ident}.json"
        if path.is_file():
            return self.get(ident)
        cohort = self.hub.cohort(canonical_filter, canonical_text)
        saved = SavedCohort(
            id=ident,
            filter=canonical_filter,
            text=canonical_text,
            counts=cohort.disclosure.counts(),
            by_source=_by_source(self.hub, cohort),
            data_versions=versions,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        self._write(path, saved)
        return saved

    def get(self, ident: str) -> SavedCohort:
        path = self.root / f"{check_id(ident)}.json"
        try:
            return SavedCohort.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise CohortNotFound(f"no saved cohort {ident}") from None

    def rerun(self, ident: str) -> Rerun:
        """Ask the saved question again, on the data the hub holds now."""
        saved = self.get(ident)
        cohort = self.hub.cohort(saved.filter, saved.text)
        now = data_versions(self.hub)
        then = {v.source: v.key for v in saved.data_versions}
        current = {v.source: v.key for v in now}
        changed = sorted(s for s in then.keys() | current.keys() if then.get(s) != current.get(s))
        counts = cohort.disclosure.counts()
        return Rerun(saved, counts, _by_source(self.hub, cohort), now, changed)

    def _write(self, path: Path, saved: SavedCohort) -> None:
        """Write to a temporary file beside it, then rename: readers never see half."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{saved.id}.", suffix=".partial")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(saved.to_json(), handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _by_source(hub: Hub, cohort: Cohort) -> dict[str, int | None]:
    """Series per configured repository, as released (None: suppressed)."""
    cells = cohort.disclosure.by_source(list(hub.adapters))
    return {name: cell.value for name, cell in cells.items()}
