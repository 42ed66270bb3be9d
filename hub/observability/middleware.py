"""Per request: the request id, HTTP metrics and one access-log line. Pure ASGI, outermost.

Outermost so that every answer is covered, the auth middleware's 401s and the rate
limiter's 429s included. The work per request is a clock read, a contextvar, a header
scan and a queued log record: no I/O on the event loop (logs/metrics do theirs elsewhere).
"""

from __future__ import annotations

import logging
import time

from starlette.types import Message, Receive, Scope, Send

from hub.observability.asgi import HttpMiddleware
from hub.observability.context import REQUEST_ID, request_id_from
from hub.observability.metrics import http_duration, http_requests
from hub.security.identity import caller_of
from hub.security.limits import API_PREFIXES

access_log = logging.getLogger("hub.access")

HEADER = b"x-request-id"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The matched route's template (`/cohorts/{cohort_id}`), never the raw path: a
    label that callers cannot multiply. Mounted apps count as their mount point; a
    request answered before routing (401, 413, 429) as its API prefix."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    root = scope.get("root_path") or ""
    app_root = scope.get("app_root_path") or ""
    mount = root[len(app_root) :] if root.startswith(app_root) else ""
    if mount:
        return mount
    asked = scope["path"]
    return next((p for p in API_PREFIXES if asked == p or asked.startswith(p + "/")), "unmatched")


class ObservabilityMiddleware(HttpMiddleware):
    """Sets the request id (header in, contextvar, header out), times the request,
    counts it by route and status, and logs one access line when it is answered."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value
                break
        request_id = request_id_from(given)
        encoded = request_id.encode("ascii")
        token = REQUEST_ID.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, encoded))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            http_requests(method, route, str(status)).inc()
            http_duration(route).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                self._log(scope, route, status, seconds, request_id)
            REQUEST_ID.reset(token)

    @staticmethod
    def _log(scope: Scope, route: str, status: int, seconds: float, request_id: str) -> None:
        caller = caller_of(scope.get("state") or {})
        client = scope.get("client")
        method, path = scope["method"], scope["path"]  # never the query string: keys go there
        fields = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "caller": caller.identity,
            "role": caller.role.name.lower(),
            "client": client[0] if client else None,
        }
        # makeRecord + handle: `info()` would also walk the stack to find the caller
        record = access_log.makeRecord(
            access_log.name, logging.INFO, __file__, 0, "%s %s %d", (method, path, status),
            None, extra=fields,
        )  # fmt: skip
        access_log.handle(record)
