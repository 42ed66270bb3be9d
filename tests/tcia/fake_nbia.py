"""A stand-in NBIA v4 server for respx, answering from the fixture rows like the real one.

`getSeries` and `getPatientStudy` filter by equality on the parameters they know (compared
without regard to case, as NBIA's MySQL collation does) and answer HTTP 400 for any other
parameter; an answer with no rows is an empty body, not `[]` (tcia_utils checks
`response.content.strip()` for exactly this).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tcia"
BASE = "https://services.cancerimagingarchive.net/nbia-api/services/v4"
KNOWN = {
    "getSeries": {
        "Collection",
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "BodyPartExamined",
        "Manufacturer",
        "ManufacturerModelName",
    },
    "getPatientStudy": {"Collection", "PatientID", "StudyInstanceUID"},
    "getCollectionValues": set(),
}


def load(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return rows


class FakeNbia:
    def __init__(self) -> None:
        self.tables = {
            "getSeries": load("getSeries.json"),
            "getPatientStudy": load("getPatientStudy.json"),
            "getCollectionValues": load("getCollectionValues.json"),
        }
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.rsplit("/", 1)[-1]
        params = dict(request.url.params)
        self.calls.append((endpoint, params))
        if endpoint not in KNOWN:
            return httpx.Response(404, text="Not Found")
        unknown = set(params) - KNOWN[endpoint]
        if unknown:
            return httpx.Response(400, text=f"Invalid parameter(s): {', '.join(sorted(unknown))}")
        rows = [
            row
            for row in self.tables[endpoint]
            if all(str(row.get(k, "")).lower() == v.lower() for k, v in params.items())
        ]
        if not rows:
            return httpx.Response(200, content=b"", headers={"Content-Type": "application/json"})
        return httpx.Response(200, json=rows)

    def count(self, endpoint: str) -> int:
        return sum(1 for e, _ in self.calls if e == endpoint)
