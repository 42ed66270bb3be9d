"""Saved cohorts over REST: `POST /cohorts`, `GET /cohorts/{id}`, `GET /cohorts/{id}/rerun`.

A saved cohort is what a paper cites: its id names the question and the data versions
it was answered on (see `hub.saved_cohorts`); `/export?cohort=<id>` gives its manifest again.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub.api.encoding import error_response as _error
from hub.api.encoding import json_response, unavailable_response
from hub.index.base import IndexNotReady
from hub.saved_cohorts import CohortNotFound, CohortStore
from hub.service import Hub
from schema.errors import CallerError

router = APIRouter(tags=["cohorts"])


@router.post("/cohorts")
async def save_cohort(request: Request) -> Response:
    """Body `{"filter": {...}, "text": "..."}`; 201 with the saved cohort and its id."""
    try:
        payload = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):
        return _error("request body is not valid JSON", 400)
    if not isinstance(payload, dict) or set(payload) - {"filter", "text"}:
        return _error('request body must be a JSON object {"filter": ..., "text": ...}', 400)
    text = payload.get("text")
    if text is not None and not isinstance(text, str):
        return _error("`text` must be a string", 400)
    hub: Hub = request.app.state.hub
    return await _answer(lambda: CohortStore(hub).save(payload.get("filter"), text).to_json(), 201)


@router.get("/cohorts/{cohort_id}")
async def get_cohort(request: Request, cohort_id: str) -> Response:
    """The saved cohort as it was answered."""
    hub: Hub = request.app.state.hub
    return await _answer(lambda: CohortStore(hub).get(cohort_id).to_json())


@router.get("/cohorts/{cohort_id}/rerun")
async def rerun_cohort(request: Request, cohort_id: str) -> Response:
    """The saved question asked again: counts then and now, and which data changed."""
    hub: Hub = request.app.state.hub
    return await _answer(lambda: CohortStore(hub).rerun(cohort_id).to_json())


async def _answer(work: Any, status: int = 200) -> Response:
    try:
        return json_response(await run_in_threadpool(work), status)
    except CohortNotFound as exc:
        return _error(str(exc), 404)
    except IndexNotReady as exc:
        return unavailable_response(exc)
    except CallerError as exc:  # FilterError, a malformed id
        return _error(str(exc), 400)
