"""GraphQL over HTTP at `/graphql`, as the GraphQL-over-HTTP specification asks.

Two response media types, chosen from the request's `Accept`:

- `application/json`, for every client that names it, sends `*/*` or no `Accept` at all:
  the legacy type, answered as it always was. A well-formed request is 200 whatever its
  GraphQL errors (intermediaries may answer 4xx/5xx with JSON too, so the 200 is what tells
  the client the body is a GraphQL response).
- `application/graphql-response+json`, for clients that name it (Apollo, urql, graphql-http
  send it first): a request that fails before execution (it does not parse or validate, its
  operation cannot be chosen, its variables do not coerce) is 400 with no `data` entry;
  once execution began the answer is 200, `data` present even when null.

Either way, a request that is not a GraphQL-over-HTTP request at all is refused before
anything runs: 406 when neither type is acceptable, 415 for a POST body that is not
`application/json` in UTF-8 (a missing `Content-Type` included), 400 for a body or
parameters of the wrong shape, 405 for a mutation over GET.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mimeparse
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from starlette.concurrency import run_in_threadpool

from hub.api.encoding import dumps
from hub.api.graphql_documents import reads_index_only
from hub.api.graphql_schema import INTERNAL_ERROR, run_graphql, schema
from hub.observability import metrics
from hub.security.identity import caller_of
from hub.security.limits import parsed_document
from hub.service import Hub

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_CONTENT_TYPES = {
    GRAPHQL_RESPONSE: f"{GRAPHQL_RESPONSE}; charset=utf-8",
    JSON: JSON,  # exactly the header legacy clients always got
}
_UTF8 = frozenset({"utf-8", "utf8"})

router = APIRouter()


class Refused(Exception):
    """Not a request this endpoint can run: answered with `status` and `message` alone.
    `graphql` marks a well-formed GraphQL request refused (a mutation over GET): its
    answer is a GraphQL response in either media type."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        graphql: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.graphql = graphql


@dataclass(frozen=True)
class Params:
    """The parameters of one GraphQL-over-HTTP request, checked for shape."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


# --- media types ----------------------------------------------------------------------


def negotiate(accept: str | None) -> str:
    """The response media type for an `Accept` header; raises Refused (406) when neither
    is acceptable. Each type takes the quality of the most specific range that matches it
    (RFC 9110). Between equals, a client that names both types gets the newer one; one
    that only matches them by a wildcard (`*/*`, `application/*`) is an older client and
    gets `application/json`, as does a request with no `Accept` (or none that parses)."""
    ranges = _media_ranges(accept or "")
    if not ranges:
        return JSON
    utf8 = [r for r in ranges if r[2].get("charset", "utf-8").strip('"') in _UTF8]
    best: tuple[float, float, int] = (0.0, -1.0, 0)
    chosen: str | None = None
    for media in (JSON, GRAPHQL_RESPONSE):
        quality, fitness = mimeparse.quality_and_fitness_parsed(media, utf8)
        named = fitness >= 110  # type and subtype both matched without a wildcard
        preferred = int((media == GRAPHQL_RESPONSE) == named)
        key = (float(quality), float(fitness), preferred)
        if key[0] > 0 and key > best:
            best, chosen = key, media
    if chosen is None:
        served = f"accept {JSON} or {GRAPHQL_RESPONSE} (UTF-8)"
        raise Refused(406, f"none of the accepted media types is served; {served}")
    return chosen


def _media_ranges(accept: str) -> list[tuple[str, str, dict[str, str]]]:
    """The ranges of an `Accept` header that parse (media types are case-insensitive);
    one bad range leaves the others standing."""
    ranges = []
    for text in accept.lower().split(","):
        if text.strip():
            with contextlib.suppress(ValueError):  # mimeparse.MimeTypeParseException
                ranges.append(mimeparse.parse_media_range(text))
    return ranges


def require_json_body(content_type: str | None) -> None:
    """Raises Refused (415) unless a POST body is declared `application/json` in UTF-8."""
    if content_type is None or not content_type.strip():
        raise Refused(415, f"a POST needs a Content-Type; send the request as {JSON}")
    try:
        kind, subtype, params = mimeparse.parse_mime_type(content_type.lower())
    except ValueError:
        kind, subtype, params = "", "", {}
    if f"{kind}/{subtype}" != JSON:
        raise Refused(415, f"unsupported Content-Type; send the request as {JSON}")
    if params.get("charset", "utf-8").strip('"') not in _UTF8:
        raise Refused(415, f"unsupported charset; send {JSON} in UTF-8")


# --- request parameters -----------------------------------------------------------------


def post_params(body: bytes) -> Params:
    """The parameters of a JSON body; raises Refused (400) for any other shape."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Refused(400, "request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, 'request body must be a JSON object {"query": ..., "variables": ...}')
    return _checked(payload)


def get_params(params: Mapping[str, str]) -> Params:
    """The parameters of a GET's query string: `variables` and `extensions` are JSON text,
    an empty `operationName` is none."""
    payload: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        if name in payload:
            try:
                payload[name] = json.loads(payload[name])
            except (ValueError, RecursionError):
                raise Refused(400, f"`{name}` is not valid JSON") from None
    if payload.get("operationName") == "":
        payload["operationName"] = None
    return _checked(payload)


def _checked(payload: dict[str, Any]) -> Params:
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    extensions = payload.get("extensions")
    if not isinstance(query, str) or not query.strip():
        raise Refused(400, "`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise Refused(400, "`variables` must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise Refused(400, "`operationName` must be a string")
    if extensions is not None and not isinstance(extensions, dict):
        raise Refused(400, "`extensions` must be a JSON object")
    return Params(query, variables, operation_name)


def refuse_mutation_over_get(params: Params) -> None:
    """Raises Refused (405) when the operation a GET would run is a mutation. A text that
    does not parse, or whose operation cannot be chosen, is left to the GraphQL errors."""
    try:
        document = parsed_document(params.query)
    except RecursionError:
        return
    if isinstance(document, GraphQLError):
        return
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if params.operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == params.operation_name]
    if len(operations) == 1 and operations[0].operation is OperationType.MUTATION:
        raise Refused(405, "mutations must be sent with POST", {"Allow": "POST"}, graphql=True)


# --- answers ------------------------------------------------------------------------------


def status_of(result: dict[str, Any], media: str) -> int:
    """The HTTP status of a GraphQL result served as `media`."""
    if media == JSON:
        return 200
    if "data" in result and not failed_before_execution(result):
        return 200
    messages = [str(e.get("message", "")) for e in result.get("errors", ())]
    if messages and all(m.startswith(INTERNAL_ERROR) for m in messages):
        return 500  # the hub's fault, not the request's
    return 400


def failed_before_execution(result: dict[str, Any]) -> bool:
    """Whether the request failed before execution began: no `data`, or `data` null with
    no error located in the response. graphql-core reports a variable that does not coerce,
    or an operation it cannot choose, with `data` null and no `path`; every error raised
    while executing carries the path of the field it nulled."""
    if "data" not in result:
        return True
    errors = result.get("errors") or ()
    return result["data"] is None and bool(errors) and all("path" not in e for e in errors)


def answer(result: dict[str, Any], media: str) -> Response:
    status = status_of(result, media)
    if media == GRAPHQL_RESPONSE and status != 200:
        result = {k: v for k, v in result.items() if k != "data"}  # not executed: no data
    return _response(result, media, status)


def refusal(refused: Refused, media: str) -> Response:
    """A refused request's answer: the GraphQL `errors` shape for the new type or a GraphQL
    request, else the hub's own `{"error": ...}` (what `application/json` clients read)."""
    body: dict[str, Any] = (
        {"errors": [{"message": refused.message}]}
        if media == GRAPHQL_RESPONSE or refused.graphql
        else {"error": refused.message}
    )
    return _response(body, media, refused.status, refused.headers)


def _response(
    body: dict[str, Any], media: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    content = dumps(body)  # orjson, with a fallback for strings that are not valid Unicode
    response = Response(content, status_code=status, media_type=_CONTENT_TYPES[media])
    response.headers.update(headers or {})
    response.headers["Vary"] = "Accept"  # the same URL answers in either type
    return response


# --- the routes ---------------------------------------------------------------------------


@router.post("/graphql")
async def graphql_post(request: Request) -> Response:
    """A GraphQL request as a JSON body."""
    media = JSON
    try:
        media = negotiate(request.headers.get("accept"))
        require_json_body(request.headers.get("content-type"))
        params = post_params(await request.body())
    except Refused as refused:
        return refusal(refused, media)
    return answer(await _execute(request, params, allow_mutations=True), media)


@router.get("/graphql", response_model=None)
async def graphql_get(request: Request) -> Response:
    """GraphiQL for a browser; with `?query=` the query runs, mutations excepted."""
    if "query" not in request.query_params:
        return HTMLResponse(GRAPHIQL_HTML)
    media = JSON
    try:
        media = negotiate(request.headers.get("accept"))
        params = get_params(request.query_params)
        refuse_mutation_over_get(params)
    except Refused as refused:
        return refusal(refused, media)
    return answer(await _execute(request, params, allow_mutations=False), media)


async def _execute(request: Request, params: Params, allow_mutations: bool) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    on_loop = request.app.state.on_loop and not hub.planner.live  # see `request_threads`
    args = (hub, params.query, params.variables, params.operation_name, allow_mutations, request)
    if on_loop and reads_index_only(params.query, params.operation_name):
        return _observed_graphql(*args)
    return await run_in_threadpool(_observed_graphql, *args)


_ROOTS = (schema.graphql_schema.query_type, schema.graphql_schema.mutation_type)
metrics.OPERATIONS.root_fields = frozenset(f for t in _ROOTS if t is not None for f in t.fields)


def _observed_graphql(
    hub: Hub,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    allow_mutations: bool,
    request: Request,
) -> dict[str, Any]:
    """`run_graphql`, timed and counted per (bounded) operation label (in a worker
    thread, or on the loop when `request_threads` is 0)."""
    operation, field = metrics.OPERATIONS.of(query, operation_name)
    started = time.perf_counter()
    result = run_graphql(hub, query, variables, operation_name, allow_mutations, caller_of(request))
    ok = not result.get("errors")
    metrics.observe_graphql(operation, field, time.perf_counter() - started, ok)
    return result


GRAPHIQL_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Imaging Hub · GraphiQL</title>
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
  <script>
    const query = `{
  cohort(filter: {AND: [{IN: {modality: ["CT"]}}, {IN: {body_part: ["CHEST"]}}]}) {
    counts { patients studies series }
    facets(fields: ["collection", "sex"]) { field buckets { key count } missing }
    series(first: 5) { nodes { collection patientId seriesDescription viewerUrl } }
  }
}`;
    const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, { fetcher, defaultQuery: query }));
  </script>
</body>
</html>
"""
