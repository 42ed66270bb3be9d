"""The REST faces' answer to an internal error: a generic message with the request id.

Only a `CallerError` is answered with its own text (a 4xx); anything else raised while
answering is logged here with its traceback (the log line carries the request id too) and
answered with `internal_message`, so a column name, a file path or a host never reaches
the caller. GraphQL does the same in `hub.api.graphql_schema._format_error`.
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from hub.observability.asgi import HttpMiddleware, TrackedSend
from hub.observability.context import current_request_id
from schema.errors import internal_message

log = logging.getLogger(__name__)


def internal_error(log: logging.Logger, what: str) -> JSONResponse:
    """Log the exception being handled (call inside `except`) and answer a generic 500."""
    log.exception("%s failed", what)
    request_id = current_request_id()
    body = {"error": internal_message(request_id), "request_id": request_id}
    return JSONResponse(body, status_code=500)


class InternalErrors(HttpMiddleware):
    """ASGI middleware, just inside the one that sets the request id: an exception that no
    route turned into an answer becomes `internal_error`'s generic 500 (with the request id
    in the body and the header), instead of reaching the server's own error page. Once a
    response has started it can only be cut short: it is logged and raised on."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if tracked.started:
                log.exception("%s %s failed while answering", scope["method"], scope["path"])
                raise
            response = internal_error(log, f"{scope['method']} {scope['path']}")
            await response(scope, receive, send)
