"""A small typed client for partners calling a hub over HTTP (GraphQL plus `/export`).

    with HubClient("https://hub.example.org") as hub:
        print(hub.counts({"=": {"modality": "CT"}}))
        for series in hub.series({"=": {"modality": "CT"}}, fields=["seriesUid"]):
            ...
        hub.export("ct.s5cmd", "s5cmd", {"=": {"modality": "CT"}})

Only `httpx` is needed; docs/partners.md shows the same calls with `gql` and raw httpx.
Errors the hub reports (a bad filter, an unknown field) raise `HubError` with the
hub's own message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

DEFAULT_FIELDS = ("seriesUid", "studyUid", "patientId", "collection", "modality", "sources")

COUNTS = """query($filter: JSON, $text: String) {
  cohort(filter: $filter, text: $text) { counts { patients studies series } } }"""
FACETS = """query($filter: JSON, $text: String, $fields: [String!]!, $size: Int) {
  cohort(filter: $filter, text: $text) {
    facets(fields: $fields, size: $size) { field missing buckets { key count } } } }"""
SERIES = """query($filter: JSON, $text: String, $first: Int, $after: String) {
  cohort(filter: $filter, text: $text) {
    series(first: $first, after: $after) {
      totalCount nodes { %s } pageInfo { hasNextPage endCursor } } } }"""
EXPLAIN = """query($filter: JSON, $text: String) {
  explain(filter: $filter, text: $text) { source route native residual description } }"""
SAVE = """mutation($filter: JSON, $text: String) {
  saveCohort(filter: $filter, text: $text) {
    id filter text createdAt counts { patients studies series }
    dataVersions { source mode dataVersion harvestedAt } } }"""


class HubError(RuntimeError):
    """The hub answered with errors (GraphQL `errors`, or a 4xx/5xx with a JSON `error`)."""


@dataclass(frozen=True)
class Counts:
    patients: int
    studies: int
    series: int


@dataclass(frozen=True)
class Facet:
    field: str
    buckets: dict[str, int]
    missing: int


class HubClient:
    """One hub; reuses its HTTP connection. `transport` is for tests and proxies."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, headers=headers, transport=transport
        )

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run any GraphQL query; its `data`, or HubError with the hub's messages."""
        response = self._http.post("/graphql", json={"query": query, "variables": variables})
        _check(response)
        payload = response.json()
        if payload.get("errors"):
            raise HubError("; ".join(e.get("message", "?") for e in payload["errors"]))
        data: dict[str, Any] = payload["data"]
        return data

    def counts(self, filter: Any = None, text: str | None = None) -> Counts:
        data = self.execute(COUNTS, {"filter": filter, "text": text})
        return Counts(**data["cohort"]["counts"])

    def facets(
        self, fields: Sequence[str], filter: Any = None, text: str | None = None, size: int = 50
    ) -> list[Facet]:
        variables = {"filter": filter, "text": text, "fields": list(fields), "size": size}
        found = self.execute(FACETS, variables)["cohort"]["facets"]
        return [
            Facet(f["field"], {b["key"]: b["count"] for b in f["buckets"]}, f["missing"])
            for f in found
        ]

    def series(
        self,
        filter: Any = None,
        text: str | None = None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Every series of the cohort, page by page (cursor paging, no window limit)."""
        if not fields or not all(f.isidentifier() for f in fields):
            raise ValueError("fields must be GraphQL field names such as 'seriesUid'")
        query = SERIES % " ".join(fields)
        after: str | None = None
        while True:
            variables = {"filter": filter, "text": text, "first": page_size, "after": after}
            page = self.execute(query, variables)["cohort"]["series"]
            yield from page["nodes"]
            if not page["pageInfo"]["hasNextPage"] or not page["nodes"]:
                return
            after = page["pageInfo"]["endCursor"]

    def explain(self, filter: Any = None, text: str | None = None) -> list[dict[str, Any]]:
        plans: list[dict[str, Any]] = self.execute(EXPLAIN, {"filter": filter, "text": text})[
            "explain"
        ]
        return plans

    def save_cohort(self, filter: Any = None, text: str | None = None) -> dict[str, Any]:
        saved: dict[str, Any] = self.execute(SAVE, {"filter": filter, "text": text})["saveCohort"]
        return saved

    def export(
        self,
        path: str | Path,
        format: str,
        filter: Any = None,
        text: str | None = None,
        *,
        source: str | None = None,
        cohort: str | None = None,
    ) -> int:
        """Stream an export (`/export`) to `path`; returns the bytes written."""
        params: dict[str, str] = {"format": format}
        if cohort is not None:
            params["cohort"] = cohort
        else:
            params["filter"] = json.dumps(filter or {})
        if text is not None:
            params["text"] = text
        if source is not None:
            params["source"] = source
        written = 0
        with self._http.stream("GET", "/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                _check(response)
            with Path(path).open("wb") as handle:
                for piece in response.iter_bytes():
                    handle.write(piece)
                    written += len(piece)
        return written


def _check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        message = response.json().get("error") or response.text
    except ValueError:
        message = response.text
    raise HubError(f"{response.status_code}: {message}")
