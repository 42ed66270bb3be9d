"""A read-only DICOMweb QIDO-RS face: `/dicomweb/studies`, `/dicomweb/series` and
`/dicomweb/studies/{study}/series`, so DICOMweb clients (dicomweb-client, OHIF) search
every repository of the hub as one archive.

Answers are DICOM JSON (`application/dicom+json`); no match is `200` with `[]`, as
Orthanc answers and DICOM CP-2473 asks (a `204` with an empty body is what PS3.18 said
before, and clients that parse every body as JSON, Orthanc's own, fail on it); a request
the hub cannot answer as asked is a 400 whose JSON `error` says why. A
response holds at most `MAX_RESULTS` datasets; when more match than a response carried
and the caller set no smaller `limit`, a `Warning: 299` header says so, as PS3.18 asks.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub.api.encoding import dumps, unavailable_response
from hub.api.encoding import error_response as _error
from hub.index.base import IndexNotReady
from hub.qido.params import Level, QidoQuery, parse_qido
from hub.qido.search import QidoAnswer, search_series, search_studies
from hub.security.identity import Caller, caller_of
from hub.service import Hub
from schema.errors import CallerError

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])
MEDIA_TYPE = "application/dicom+json"
MORE = "There are additional results that can be requested."


@router.get("/studies", response_model=None)
async def studies(request: Request) -> Response:
    """QIDO-RS Search for Studies."""
    return await _search(request, "study", search_studies)


@router.get("/series", response_model=None)
async def series(request: Request) -> Response:
    """QIDO-RS Search for Series, across all studies."""
    return await _search(request, "series", search_series)


@router.get("/studies/{study}/series", response_model=None)
async def study_series(request: Request, study: str) -> Response:
    """QIDO-RS Search for Series of one study."""
    return await _search(
        request, "series", lambda hub, q, who: search_series(hub, q, who, scoped=True), study
    )


async def _search(
    request: Request,
    level: Level,
    answer: Callable[[Hub, QidoQuery, Caller], QidoAnswer],
    study: str | None = None,
) -> Response:
    accept = request.headers.get("accept", "*/*")
    if not any(t in accept for t in ("json", "*/*", "application/*")):
        return _error(f"this server answers {MEDIA_TYPE} only", 406)
    hub: Hub = request.app.state.hub
    try:
        query = parse_qido(request.query_params.multi_items(), level, study)
        result = await run_in_threadpool(answer, hub, query, caller_of(request))
    except IndexNotReady as exc:
        return unavailable_response(exc)
    except CallerError as exc:  # QidoError, and FilterError for values over the hub's limits
        return _error(str(exc), 400)
    warnings = list(result.warnings)
    if result.more and query.capped:
        warnings.append(MORE)
    headers = {"Warning": ", ".join(f'299 imaging-hub "{w}"' for w in warnings)} if warnings else {}
    return Response(dumps(result.datasets), media_type=MEDIA_TYPE, headers=headers)
