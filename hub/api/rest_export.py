"""`GET/POST /export`: a cohort's records or download manifest, streamed.

Parameters (query string, or a JSON object body on POST, whose keys win): `format`
(csv, ndjson, s5cmd, tcia, gen3, wadors), `filter` (Guppy JSON; a JSON string in the
query string), `text`, `source` (one repository's manifest), `limit`, or `cohort` (a
saved cohort's id instead of filter and text: the manifest a paper cites). Everything is
checked and the cohort answered before streaming starts, so every mistake is a 400 with
a JSON `error`; the body then streams in chunks from a worker thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hub.api.encoding import error_response as _error
from hub.api.encoding import unavailable_response
from hub.export import Export, prepare_export
from hub.index.base import IndexNotReady
from hub.saved_cohorts import CohortNotFound, CohortStore, data_versions
from hub.security.identity import Caller, caller_of
from hub.service import Hub
from schema.errors import CallerError
from schema.quoting import quote

log = logging.getLogger(__name__)
router = APIRouter(tags=["export"])
PARAMS = ("format", "filter", "text", "source", "limit", "cohort")


class ParamError(CallerError):
    """A parameter that cannot even be read (400)."""


@router.get("/export", response_model=None)
async def export_get(request: Request) -> Response:
    """Stream a cohort export; see the module docstring for the parameters."""
    try:
        params = _query_params(request)
    except ParamError as exc:
        return _error(str(exc), 400)
    return await _export(request, params)


@router.post("/export", response_model=None)
async def export_post(request: Request) -> Response:
    """Like GET; a JSON object body may carry the parameters (a filter as an object)."""
    try:
        params = _query_params(request)
        body = await request.body()
        if body.strip():
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                raise ParamError("request body is not valid JSON") from None
            if not isinstance(payload, dict):
                raise ParamError(f"request body must be a JSON object with keys {PARAMS}")
            params.update(payload)
    except ParamError as exc:
        return _error(str(exc), 400)
    return await _export(request, params)


def _query_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    if "filter" in params:
        try:
            params["filter"] = json.loads(params["filter"]) if params["filter"].strip() else None
        except (ValueError, RecursionError):
            raise ParamError("`filter` is not valid JSON") from None
    if "limit" in params:
        try:
            params["limit"] = int(params["limit"])
        except ValueError:
            given = quote(params["limit"])
            raise ParamError(f"limit must be a whole number, got {given}") from None
    return params


async def _export(request: Request, params: dict[str, Any]) -> Response:
    hub: Hub = request.app.state.hub
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        known = ", ".join(PARAMS)
        return _error(f"unknown parameter(s) {quote(unknown)}; export takes {known}", 400)
    for key in ("format", "text", "source", "cohort"):
        if params.get(key) is not None and not isinstance(params[key], str):
            return _error(f"`{key}` must be a string", 400)
    try:
        export, changed = await run_in_threadpool(_prepare, hub, params, caller_of(request))
    except CohortNotFound as exc:
        return _error(str(exc), 404)
    except IndexNotReady as exc:
        return unavailable_response(exc)
    except CallerError as exc:  # ExportError, FilterError, QueryError, ParamError
        return _error(str(exc), 400)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename}"',
        "X-Cohort-Series": str(export.total),
    }
    if changed is not None:
        headers["X-Cohort-Data-Changed"] = "true" if changed else "false"
    return StreamingResponse(_logged(export), media_type=export.format.media_type, headers=headers)


def _prepare(hub: Hub, params: dict[str, Any], caller: Caller) -> tuple[Export, bool | None]:
    """The checked export (of what `caller` may see as records), and for a saved cohort
    whether the data changed since."""
    if "format" not in params:
        raise ParamError("`format` is required: csv, ndjson, s5cmd, tcia, gen3 or wadors")
    cohort_id = params.get("cohort")
    if cohort_id is None:
        export = prepare_export(
            hub,
            params["format"],
            params.get("filter"),
            params.get("text"),
            source=params.get("source"),
            limit=params.get("limit"),
            caller=caller,
        )
        return export, None
    if params.get("filter") is not None or params.get("text") is not None:
        raise ParamError("give either `cohort` (a saved cohort) or `filter`/`text`, not both")
    saved = CohortStore(hub).get(cohort_id)
    export = prepare_export(
        hub,
        params["format"],
        saved.filter,
        saved.text,
        source=params.get("source"),
        limit=params.get("limit"),
        name=f"cohort-{saved.id}",
        caller=caller,
    )
    now = {v.source: v.key for v in data_versions(hub)}
    return export, now != {v.source: v.key for v in saved.data_versions}


def _logged(export: Export) -> Iterator[str]:
    """The body; a failure half-way can only cut the stream, so it is logged here."""
    try:
        yield from export.text()
    except Exception:
        log.exception("export %s failed while streaming", export.filename)
        raise
