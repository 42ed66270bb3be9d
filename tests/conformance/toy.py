"""A small, correct adapter for a toy JSON API, written with the SDK only; and its fake.

`GET /api/series?modality=CT,MR&limit=&offset=` (or `&cursor=`) answers
`{"items": [...], "next": cursor-or-null}` sorted by series UID; the fake (respx) filters
modality exactly, refuses unknown parameters and limits above 50. The broken adapters of
test_kit_catches_broken.py each change one thing of these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyarrow as pa
import respx

from adapters.sdk import (
    MATCH_ALL,
    Capabilities,
    Compare,
    FieldMap,
    HttpAdapter,
    In,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SourceSettings,
    TerminalSourceError,
    Translation,
    Value,
    conjoin,
    credential,
    json_body,
    one_per_field,
    pushable_by,
    send,
    split_pushdown,
    to_json,
    walk_pages,
)

BASE = "https://toy.example.org"
ROWS: list[dict[str, Any]] = [
    {"uid": "1.2.3.1", "study": "1.2.1", "patient": {"id": "T-1", "sex": "F", "age": "062Y"},
     "collection": "Toy-Lung", "modality": "CT", "body": "chest", "date": "20190412",
     "title": "CT CHEST W/O CONTRAST", "images": 312, "licence": "CC BY 4.0"},
    {"uid": "1.2.3.2", "study": "1.2.1", "patient": {"id": "T-1", "sex": "F", "age": "062Y"},
     "collection": "Toy-Lung", "modality": "SEG", "body": "CHEST", "date": "20190412",
     "title": "Lung segmentation", "images": 1, "licence": "CC BY 4.0"},
    {"uid": "1.2.3.3", "study": "1.2.2", "patient": {"id": "T-2", "sex": "M", "age": "030M"},
     "collection": "Toy-Lung", "modality": "CT", "body": None, "date": "2020-01-03",
     "title": "CT ABDOMEN", "images": 120, "licence": "CC BY 4.0"},
    {"uid": "1.2.3.4", "study": "1.2.3", "patient": {"id": "T-3", "sex": "0000", "age": None},
     "collection": "Toy Brain", "modality": "MR", "body": "HEAD", "date": "not a date",
     "title": "MRI brain T1 axial", "images": 176, "licence": "CC BY 3.0"},
    {"uid": "1.2.3.5", "study": "1.2.3", "patient": {"id": "T-3", "sex": "0000", "age": None},
     "collection": "Toy Brain", "modality": "MR", "body": "HEAD", "date": None,
     "title": "MRI brain FLAIR", "images": 30, "licence": "CC BY 3.0"},
    {"uid": "1.2.3.6", "study": "1.2.4", "patient": {"id": "T-4", "sex": "o", "age": "45"},
     "collection": "Toy Brain", "modality": "PT", "body": "", "date": "20211130",
     "title": None, "images": "88", "licence": None},
    {"uid": "1.2.3.7", "study": "1.2.5", "patient": {"id": "T-5", "sex": "F", "age": "071Y"},
     "collection": "Toy-Lung", "modality": "CT", "body": "CHEST", "date": "20221224",
     "title": "Low dose CT chest screening", "images": 280, "licence": "CC BY 4.0"},
    {"uid": None, "study": "1.2.6", "patient": {"id": "T-6", "sex": "F", "age": "050Y"},
     "collection": "Toy-Lung", "modality": "CT", "body": "CHEST", "date": "20221224",
     "title": "a row without a series UID: skipped, never invented", "images": 1},
]  # fmt: skip
KNOWN = {"modality", "limit", "offset", "cursor"}


class ToyApi:
    """The toy API over ROWS, as respx side effect."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if request.url.path != "/api/series":
            return httpx.Response(404, json={"error": "no such endpoint"})
        if set(params) - KNOWN or int(params.get("limit", "10")) > 50:
            return httpx.Response(400, json={"error": "bad parameters"})
        wanted = params["modality"].split(",") if "modality" in params else None
        rows = [r for r in ROWS if wanted is None or r["modality"] in wanted]
        rows.sort(key=lambda r: r["uid"] or "")
        limit = int(params.get("limit", "10"))
        start = (
            int(params.get("cursor", "c0")[1:])
            if "cursor" in params
            else int(params.get("offset", "0"))
        )
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return httpx.Response(
            200, json={"items": page, "next": f"c{start + limit}" if more else None}
        )


def routes(router: respx.MockRouter) -> None:
    router.get(url__startswith=BASE).mock(side_effect=ToyApi())


class ToyAdapter(HttpAdapter):
    """The toy API: modality pushes down exactly; everything else is residual."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={"modality": frozenset(["=", "IN"])},
        paging=PagingStyle.OFFSET,
        max_page_size=50,
    )
    fields = FieldMap(
        {
            "series_uid": "uid",
            "study_uid": "study",
            "patient_id": "patient.id",
            "sex": "patient.sex",
            "age": "patient.age",
            "collection": "collection",
            "modality": "modality",
            "body_part": "body",
            "study_date": "date",
            "study_description": "title",
            "instance_count": "images",
            "license": "licence",
        }
    )

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        self.base = (settings.url or BASE).rstrip("/")

    def _pushable(self, node: Node) -> bool:
        if not isinstance(node, Compare | In) or not pushable_by(self.capabilities)(node):
            return False
        return all(isinstance(v, str) and v == v.upper() and "," not in v for v in _values(node))

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, self._pushable)
        slots, rest = one_per_field(pushed)
        params = {f: ",".join(map(str, _values(c))) for f, c in slots.items()}
        residual = conjoin([*rest, residual])
        description = f"GET {self.base}/api/series {params or ''}".strip()
        if residual is not None:
            description += f"; the hub applies {to_json(residual)}"
        return Translation({"params": params}, residual, description)

    async def search(self, translation: Translation, page: Page) -> PageResult:
        items, token = await self._page(translation.native["params"], page)
        batch = self._batch(items)
        return PageResult([batch] if batch.num_rows else [], self._next(page, len(items), token))

    def _next(self, page: Page, sent: int, token: str | None) -> Page | None:
        """The page after `page`, from what the API sent: its row count (offset paging)."""
        return page.next_offset(sent)

    def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        return walk_pages(self, self.translate(MATCH_ALL))

    def _paging_params(self, page: Page) -> dict[str, str]:
        return {"limit": str(page.size), "offset": str(page.offset)}

    async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
        client = self._http()
        headers = (
            {"Authorization": f"Bearer {token}"} if (token := credential(self.settings)) else {}
        )
        request = client.build_request(
            "GET",
            f"{self.base}/api/series",
            params={**params, **self._paging_params(page)},
            headers=headers,
        )
        body = json_body(await send(client, self.name, request), self.name)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise TerminalSourceError(f"{self.name}: /api/series did not answer {{items: [...]}}")
        return body["items"], body.get("next")

    def _batch(self, items: list[Any]) -> pa.RecordBatch:
        return self.fields.batch([i for i in items if isinstance(i, dict)], self.name)


class ToyCursorAdapter(ToyAdapter):
    """The same API paged by its continuation token instead of offsets."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={"modality": frozenset(["=", "IN"])},
        paging=PagingStyle.CURSOR,
        max_page_size=50,
    )

    def _paging_params(self, page: Page) -> dict[str, str]:
        return {"limit": str(page.size), **({"cursor": page.token} if page.token else {})}

    def _next(self, page: Page, sent: int, token: str | None) -> Page | None:
        return page.next_cursor(token)


def _values(node: Compare | In) -> tuple[Value, ...]:
    return node.values if isinstance(node, In) else (node.value,)


def settings(**extra: Any) -> dict[str, Any]:
    return {"name": "toy", "url": BASE, **extra}
