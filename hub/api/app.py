"""The HTTP app: GraphQL at `/graphql` (GraphiQL on GET), `/healthz`, `/readyz`, `/metrics`.

`create_app` is an app factory with a lifespan that owns the one `Hub` (its adapters
hold HTTP clients), so tests and servers each get their own. Nothing a caller sends
may produce a 500 with a traceback: bad JSON is a 400, an oversized body a 413, and
everything inside a GraphQL request comes back in the standard `errors` list.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.auth import AuthMiddleware, authenticator_for
from hub.api.graphql_documents import reads_index_only
from hub.api.graphql_schema import run_graphql, schema
from hub.api.qido import router as qido_router
from hub.api.rest_cohorts import router as cohorts_router
from hub.api.rest_export import router as export_router
from hub.api.spread import SpreadConnections
from hub.config import LIVE_THREADS, HubConfig, load_config
from hub.observability import metrics
from hub.observability.logs import configure_logging
from hub.observability.middleware import ObservabilityMiddleware
from hub.observability.trim import freeze_startup_objects, start_trimming
from hub.registry.admin import SourcesAdmin
from hub.security.audit import AuditTrail
from hub.security.identity import caller_of
from hub.security.ratelimit import RateLimit
from hub.security.secrets import MIN_SECRET, secret_values
from hub.service import Hub
from hub.web import mount_web

MAX_BODY = 1024 * 1024
"""A cohort query with its filter is a few KiB; 1 MiB is generous and bounds parsing."""


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


class BadRequest(Exception):
    """The request is not a GraphQL request at all (400)."""


class BodyTooLarge(Exception):
    """Raised from `receive` so the endpoint stops reading; turned into a 413 below."""


class BodyLimit:
    """ASGI middleware: 413 for bodies over `limit`, whether declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and not declared.isdigit():
            bad = JSONResponse({"error": "Content-Length is not a number"}, status_code=400)
            await bad(scope, receive, send)
            return
        if declared is not None and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
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
    app.add_middleware(ObservabilityMiddleware)  # outermost: request id, access log, metrics

    @app.exception_handler(BadRequest)
    async def bad_request(_request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: an index generation is there to serve cohort questions."""
        hub: Hub = request.app.state.hub
        if await run_in_threadpool(hub.index.ready):
            return JSONResponse({"status": "ready"})
        reason = "no index generation to serve yet; run `imaging-hub harvest`"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        """Prometheus text exposition; a worker thread (it reads the index's files)."""
        state = getattr(request.app.state, "metrics", None)
        return Response(metrics.render(state), media_type=metrics.CONTENT_TYPE_LATEST)

    @app.post("/graphql")
    async def graphql_post(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise BadRequest("request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest('request body must be a JSON object {"query": ..., "variables": ...}')
        return await _execute(request, payload)

    @app.get("/graphql", response_model=None)
    async def graphql_get(request: Request) -> Response:
        """GraphiQL for a browser; with `?query=` the query runs, as GraphQL-over-HTTP allows."""
        params = request.query_params
        if "query" not in params:
            return HTMLResponse(GRAPHIQL_HTML)
        payload: dict[str, Any] = dict(params)
        if "variables" in params:
            try:
                payload["variables"] = json.loads(params["variables"])
            except (ValueError, RecursionError):
                raise BadRequest("`variables` is not valid JSON") from None
        return await _execute(request, payload, allow_mutations=False)

    app.include_router(export_router)
    app.include_router(cohorts_router)
    app.include_router(qido_router)

    mount_web(app)  # the cohort builder page at `/`, its assets under `/web`
    return app


async def _execute(
    request: Request, payload: dict[str, Any], allow_mutations: bool = True
) -> Response:
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("`operationName` must be a string")
    hub: Hub = request.app.state.hub
    on_loop = request.app.state.on_loop and not hub.planner.live  # see `request_threads`
    if on_loop and reads_index_only(query, operation_name):
        result = _observed_graphql(hub, query, variables, operation_name, allow_mutations, request)
    else:
        result = await run_in_threadpool(
            _observed_graphql, hub, query, variables, operation_name, allow_mutations, request
        )
    # orjson: a tenth of json.dumps' time for a page of 50 series
    return Response(orjson.dumps(result), media_type="application/json")


async def _tend_heap(hub: Hub) -> Callable[[], None]:
    if hub.config.hub.index == "embedded":  # the generation opened before the freeze
        await run_in_threadpool(hub.index.ready)
    freeze_startup_objects()
    return start_trimming()


def _state_collector(hub: Hub) -> metrics.HubStateCollector:
    """What `/metrics` reads at scrape time, asked of the hub each time: sources are
    registered and the index swapped while it runs."""
    return metrics.HubStateCollector(
        circuits=lambda: [
            (name, f.breaker.state, f.breaker.failures)
            for name, f in list(hub.planner.fetchers.items())
        ],
        snapshots=lambda: hub.index.snapshots(),
        index_dir=hub.data_dir / "index",
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
