"""The HTTP app: GraphQL at `/graphql` (hub/api/graphql_http.py), `/healthz`, `/readyz`,
`/metrics`, and the REST and DICOMweb routers.

`create_app` is an app factory with a lifespan that owns the one `Hub` (its adapters
hold HTTP clients), so tests and servers each get their own. Nothing a caller sends
may produce a 500 with a traceback: bad JSON is a 400, an oversized body a 413, and
everything inside a GraphQL request comes back in the standard `errors` list.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.auth import AuthMiddleware, authenticator_for
from hub.api.errors import InternalErrors
from hub.api.graphql_http import router as graphql_router
from hub.api.qido import router as qido_router
from hub.api.rest_cohorts import router as cohorts_router
from hub.api.rest_export import router as export_router
from hub.api.spread import SpreadConnections
from hub.config import LIVE_THREADS, HubConfig, load_config
from hub.observability import metrics
from hub.observability.asgi import HttpMiddleware, TrackedSend
from hub.observability.logs import configure_logging
from hub.observability.middleware import ObservabilityMiddleware
from hub.observability.trim import freeze_startup_objects, start_trimming
from hub.registry.admin import SourcesAdmin
from hub.security.audit import AuditTrail
from hub.security.ratelimit import RateLimit
from hub.security.secrets import MIN_SECRET, secret_values
from hub.service import Hub
from hub.web import mount_web
from schema.errors import CallerError

MAX_BODY = 1024 * 1024
"""A cohort query with its filter is a few KiB; 1 MiB is generous and bounds parsing."""


class BodyTooLarge(Exception):
    """Raised from `receive` so the endpoint stops reading; turned into a 413 below."""


class BodyLimit(HttpMiddleware):
    """ASGI middleware: 413 for bodies over `limit`, whether declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            bad = JSONResponse({"error": "Content-Length is not a number"}, status_code=400)
            await bad(scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0
        tracked = TrackedSend(send)

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge:
            if tracked.started:
                raise
            await _too_large(self.limit)(scope, receive, send)


def _too_large(limit: int) -> Response:
    return JSONResponse({"error": f"request body larger than {limit} bytes"}, status_code=413)


def create_app(config: HubConfig | None = None, serving: bool = False) -> FastAPI:
    """A new app; the hub is built at startup from `config` (default: `load_config()`).
    `serving` (a worker of `imaging-hub serve`) also tends the process heap for a long
    life: startup objects frozen, freed memory trimmed (hub/observability/trim.py)."""
    settings = config if config is not None else load_config()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = Hub(settings)
        logs = configure_logging(hub.config.hub.log_level, hub.config.hub.log_format, _secrets(hub))
        hub.planner.loop = asyncio.get_running_loop()  # live fetches run on the server's loop
        threads = hub.config.hub.threads_for(hub.config.sources)
        app.state.on_loop = threads == 0
        # On the loop, threads serve only the other routes and questions to live sources
        # registered later, which wait on the network.
        to_thread.current_default_thread_limiter().total_tokens = threads or LIVE_THREADS
        app.state.metrics = _state_collector(hub)
        app.state.hub = hub
        app.state.authenticator = authenticator_for(hub)  # AuthMiddleware reads it
        watcher = SourcesAdmin.of(hub).start_watching()  # registry changes made by the CLI
        stop_trimming = await _tend_heap(hub) if serving else (lambda: None)
        try:
            yield
        finally:
            stop_trimming()
            watcher.cancel()
            await hub.aclose()
            metrics.process_exited()
            logs.flush()  # every line of this app's life written before it is gone

    app = FastAPI(title="Imaging Hub", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.add_middleware(RateLimit, settings=settings.limits)  # inside auth: keyed by the caller
    app.add_middleware(AuthMiddleware)  # request.state.caller for every route
    # logs every API answer, 401s too
    app.add_middleware(AuditTrail, settings=settings.audit, data_dir=settings.hub.data_dir)
    app.add_middleware(SpreadConnections, every=settings.hub.requests_per_connection)
    app.add_middleware(InternalErrors)  # a generic 500 with the request id, never a traceback
    app.add_middleware(ObservabilityMiddleware)  # outermost: request id, access log, metrics

    @app.exception_handler(CallerError)
    async def caller_error(_request: Request, exc: CallerError) -> JSONResponse:
        """Any route: the caller's mistake is a 400 with its text (and only that kind is)."""
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: an index generation is there to serve cohort questions (and, on a
        cluster, the cluster answers and the read alias's indices are not red). Asked
        afresh on every probe, so it turns ready again once the cause is gone."""
        hub: Hub = request.app.state.hub
        reason = await run_in_threadpool(_not_ready_reason, hub)
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus text exposition; a worker thread (it reads the index's files)."""
        state = getattr(request.app.state, "metrics", None)
        return Response(metrics.render(state), media_type=metrics.CONTENT_TYPE_LATEST)

    app.include_router(graphql_router)
    app.include_router(export_router)
    app.include_router(cohorts_router)
    app.include_router(qido_router)

    mount_web(app)  # the cohort builder page at `/`, its assets under `/web`
    return app


async def _tend_heap(hub: Hub) -> Callable[[], None]:
    if hub.config.hub.index == "embedded":  # the generation opened before the freeze
        await run_in_threadpool(hub.index.ready)
    freeze_startup_objects()
    return start_trimming()


def _not_ready_reason(hub: Hub) -> str | None:
    """The index's own reason when it gives one (`not_ready_reason`), else the generic."""
    index = hub.index
    explain = getattr(index, "not_ready_reason", None)
    if callable(explain):
        reason: str | None = explain()
        return reason
    if index.ready():
        return None
    return "no index generation to serve yet; run `imaging-hub harvest`"


def _state_collector(hub: Hub) -> metrics.HubStateCollector:
    """What `/metrics` reads at scrape time, asked of the hub each time: sources are
    registered and the index swapped while it runs."""
    return metrics.HubStateCollector(
        circuits=lambda: [
            (name, f.breaker.state, f.breaker.failures)
            for name, f in list(hub.planner.fetchers.items())
        ],
        snapshots=lambda: hub.index.snapshots(),
        stats=lambda: hub.index.stats(),
    )


def _secrets(hub: Hub) -> list[str]:
    """Values the logs must never show: every source's credentials and the cluster's."""
    values = [v for a in hub.adapters.values() for v in secret_values(a.settings)]
    cluster = hub.config.index.elasticsearch
    for env in (cluster.password_env, cluster.api_key_env) if cluster is not None else ():
        value = os.environ.get(env or "", "").strip()
        if len(value) >= MIN_SECRET:
            values.append(value)
    return values
