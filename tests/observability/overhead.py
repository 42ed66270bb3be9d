"""What observability costs per request: `python -m tests.observability.overhead`.

Times the middleware (request id, HTTP metrics, one queued access-log line, formatted as
JSON by the listener thread, which shares the GIL and so is counted too) around an ASGI
app that does nothing, and the per-request metric updates of GraphQL and source fetches.
Not a test: a figure to quote and to watch (about 60 µs a request on the 2-core box,
under 1% of a core at 150 requests per second).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from starlette.types import ASGIApp

from hub.observability import metrics
from hub.observability.logs import configure_logging, hub_handler
from hub.observability.middleware import ObservabilityMiddleware

N = 20_000
QUERY = "query Counts($f: JSON) { cohort(filter: $f) { counts { series } } }"


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(message: Any) -> None:
    pass


def _scope() -> dict[str, Any]:
    return {
        "type": "http", "method": "POST", "path": "/graphql", "state": {},
        "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"abc-123")],
        "client": ("127.0.0.1", 50000),
    }  # fmt: skip


async def _per_request(app: ASGIApp) -> float:
    started = time.perf_counter()
    for _ in range(N):
        await app(_scope(), _receive, _send)
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    out = sys.stdout
    sys.stderr = open("/dev/null", "w")  # noqa: SIM115 - the log lines go nowhere
    handler = configure_logging("info", "json")
    bare = asyncio.run(_per_request(_nothing))
    wrapped = asyncio.run(_per_request(ObservabilityMiddleware(_nothing)))
    handler.flush()
    metrics.OPERATIONS.root_fields = frozenset({"cohort"})
    started = time.perf_counter()
    for _ in range(N):
        metrics.observe_graphql(*metrics.OPERATIONS.of(QUERY, None), 0.01, True)
    graphql = (time.perf_counter() - started) / N * 1e6
    started = time.perf_counter()
    for _ in range(N):
        metrics.observe_fetch("src", "ok", 0.05, 0, 10)
    fetch = (time.perf_counter() - started) / N * 1e6
    assert hub_handler() is handler
    print(
        f"middleware + access log: {wrapped - bare:.1f} µs/request; "
        f"GraphQL labels + metrics: {graphql:.1f} µs; source fetch metrics: {fetch:.1f} µs",
        file=out,
    )


if __name__ == "__main__":
    main()
