"""A stand-in Guppy server for respx: real filter semantics over fixture documents.

Filters are compiled the way uc-cdis/guppy `src/server/es/filter.js` compiles them into
Elasticsearch queries (operator spellings, the `no data` missing alias, `!=` mapping its
list to must_not terms, ranges under one AND/OR merged and dropped beyond two, unknown
fields refused), then evaluated with Elasticsearch semantics (a term matches any element
of an array, a missing or empty field does not exist). GraphQL answers follow Apollo:
resolver errors come back as HTTP 200 with `errors`, unknown fields as HTTP 400. The
10,000-row window is enforced as `es/index.js` does; `/download` answers one JSON array.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

WINDOW = 10_000
ALIAS = "no data"
Doc = dict[str, Any]


class GuppyError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _values(doc: Doc, field: str) -> list[Any]:
    value = doc.get(field)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


class FakeGuppy:
    def __init__(self, docs: list[Doc], index: str, mapping: list[Doc] | None = None) -> None:
        """`mapping`: more documents whose fields the index maps (its ES mapping)."""
        self.docs, self.index = docs, index
        self.types: dict[str, str] = {}
        for doc in [*(mapping or []), *docs]:
            for field in doc:
                numeric = any(
                    isinstance(v, int | float) and not isinstance(v, bool)
                    for v in _values(doc, field)
                )
                if numeric or field not in self.types:
                    self.types[field] = "number" if numeric else "keyword"
        self.graphql_queries: list[dict[str, Any]] = []
        self.downloads: list[dict[str, Any]] = []

    # -- filter.js --------------------------------------------------------------------

    def es_query(self, gql: dict[str, Any] | None) -> dict[str, Any] | None:
        if not gql:
            return None
        op = next(iter(gql))
        if op.lower() in ("and", "or"):
            items: list[dict[str, Any]] = []
            ranges: list[dict[str, Any]] = []
            for child in gql[op]:
                compiled = self.es_query(child)
                if compiled:
                    (ranges if "range" in compiled else items).append(compiled)
            if len(ranges) == 1:
                items.append(ranges[0])
            if len(ranges) == 2:  # mergeRangeOperations; a third range is silently lost
                merged = {**ranges[0]["range"]}
                for field, bounds in ranges[1]["range"].items():
                    merged[field] = {**merged.get(field, {}), **bounds}
                items.append({"range": merged})
            return {"bool": {"must" if op.lower() == "and" else "should": items}} if items else None
        if op.lower() in ("search", "nested"):
            raise GuppyError("BAD_USER_INPUT", f"{op} is not modelled by this fake")
        field, value = next(iter(gql[op].items()))
        if field not in self.types:
            raise GuppyError(
                "BAD_USER_INPUT", 'Please check your syntax for input "filter" argument'
            )
        if self.types[field] == "keyword":
            return self._string_item(op, field, value)
        return self._number_item(op, field, value)

    def _string_item(self, op: str, field: str, value: Any) -> dict[str, Any]:
        missing = {"bool": {"must_not": [{"exists": {"field": field}}]}}
        if op in ("=", "eq", "EQ"):
            return missing if value == ALIAS else {"term": {field: value}}
        if op in ("in", "IN", "contains_any", "CONTAINS_ANY"):
            if ALIAS in value:
                rest = [v for v in value if v != ALIAS]
                return {"bool": {"should": [missing, {"terms": {field: rest}}]}}
            return {"terms": {field: value}}
        if op in ("!=", "excludes_any", "EXCLUDES_ANY"):
            if not isinstance(value, list):  # filter.js calls value.map(...)
                raise GuppyError("INTERNAL_SERVER_ERROR", "value.map is not a function")
            return {"bool": {"must_not": [{"term": {field: v}} for v in value]}}
        raise GuppyError("BAD_USER_INPUT", f'Invalid operation "{op}" in filter argument.')

    def _number_item(self, op: str, field: str, value: Any) -> dict[str, Any]:
        ranges = {">": "gt", "gt": "gt", ">=": "gte", "gte": "gte", "<": "lt", "lt": "lt"}
        ranges |= {"<=": "lte", "lte": "lte", "GT": "gt", "GTE": "gte", "LT": "lt", "LTE": "lte"}
        if op in ranges:
            return {"range": {field: {ranges[op]: value}}}
        if op in ("=", "eq", "EQ"):
            return {"term": {field: value}}
        if op in ("IN", "in"):
            return {"terms": {field: value}}
        if op == "!=":
            gt, lt = {"range": {field: {"gt": value}}}, {"range": {field: {"lt": value}}}
            return {"bool": {"should": [gt, lt]}}
        raise GuppyError("BAD_USER_INPUT", f'Invalid numeric operation "{op}" for field "{field}"')

    # -- Elasticsearch ----------------------------------------------------------------

    def es_match(self, query: dict[str, Any] | None, doc: Doc) -> bool:
        if query is None:
            return True
        kind, body = next(iter(query.items()))
        if kind == "bool":
            return (
                all(self.es_match(q, doc) for q in body.get("must", []))
                and (not body.get("should") or any(self.es_match(q, doc) for q in body["should"]))
                and not any(self.es_match(q, doc) for q in body.get("must_not", []))
            )
        if kind == "exists":
            return bool(_values(doc, body["field"]))
        if kind == "term":
            field, value = next(iter(body.items()))
            return value in _values(doc, field)
        if kind == "terms":
            field, wanted = next(iter(body.items()))
            return any(v in wanted for v in _values(doc, field))
        if kind == "range":
            if len(body) != 1:
                raise GuppyError(
                    "INTERNAL_SERVER_ERROR", "[range] query doesn't support multiple fields"
                )
            field, bounds = next(iter(body.items()))
            tests = {
                "gt": lambda v, b: v > b,
                "gte": lambda v, b: v >= b,
                "lt": lambda v, b: v < b,
                "lte": lambda v, b: v <= b,
            }
            return any(
                all(tests[k](v, b) for k, b in bounds.items())
                for v in _values(doc, field)
                if isinstance(v, int | float)
            )
        raise AssertionError(kind)

    def select(self, gql: dict[str, Any] | None, sort: list[dict[str, str]] | None) -> list[Doc]:
        query = self.es_query(gql)
        hits = [d for d in self.docs if self.es_match(query, d)]
        for key in reversed(sort or []):
            field, order = next(iter(key.items()))
            present = [d for d in hits if _values(d, field)]
            absent = [d for d in hits if not _values(d, field)]
            present.sort(key=lambda d: min(_values(d, field)), reverse=order == "desc")
            hits = present + absent
        return hits

    # -- HTTP -------------------------------------------------------------------------

    def graphql(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        query, variables = body["query"], body.get("variables") or {}
        self.graphql_queries.append(body)
        try:
            if "_aggregation" in query:
                total = len(self.select(variables.get("filter"), None))
                return _data({"_aggregation": {self.index: {"_totalCount": total}}})
            fields = re.search(r"\{([^{}]*)\}\s*\}\s*$", query)
            names = fields.group(1).split() if fields else []
            unknown = [f for f in names if f not in self.types]
            if f" {self.index}(" not in query or unknown:
                message = f'Cannot query field "{(unknown or ["?"])[0]}".'
                errors = [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]
                return httpx.Response(400, json={"errors": errors})
            first, offset = variables.get("first", 10), variables.get("offset", 0)
            if offset + first > WINDOW:
                raise GuppyError(
                    "BAD_USER_INPUT",
                    f"Large graphql query forbidden for offset + size > {WINDOW},\n"
                    f"      offset = {offset} and size = {first},\n"
                    "      please use download endpoint for large data queries instead.",
                )
            hits = self.select(variables.get("filter"), variables.get("sort"))
            rows = [{f: d.get(f) for f in names} for d in hits[offset : offset + first]]
            return _data({self.index: rows})
        except GuppyError as exc:
            error = {"message": str(exc), "path": [self.index], "extensions": {"code": exc.code}}
            return httpx.Response(200, json={"errors": [error], "data": {self.index: None}})

    def download(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.downloads.append(body)
        if body.get("type") != self.index:
            return httpx.Response(400, text="Invalid es index or es type name")
        try:
            hits = self.select(body.get("filter"), body.get("sort"))
        except GuppyError as exc:
            return httpx.Response(500, text=str(exc))
        fields = body.get("fields") or []
        rows = [{f: d[f] for f in fields if f in d} if fields else d for d in hits]
        return httpx.Response(200, json=rows)


def _data(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data})
