"""HTTP for adapters: one place that turns transport outcomes into typed errors.

Like httpx's own `map_httpcore_exceptions`, every adapter converts at this one
boundary: timeouts, dropped connections, 429 and 5xx are transient (the hub retries,
honouring Retry-After); other 4xx and unreadable bodies are terminal. Messages name
the source and the URL path only, never query strings, headers or tokens.
"""

from __future__ import annotations

import email.utils
import functools
import os
import ssl
import time
from contextvars import ContextVar
from typing import Any

import httpx
import orjson

from adapters.spi import Adapter, SourceSettings, TerminalSourceError, TransientSourceError

REQUEST_ID: ContextVar[str | None] = ContextVar("imaging_hub_request_id", default=None)
"""The id of the hub request being served (set by hub/observability); every source call
carries it as `X-Request-ID`, so a source's own logs can be matched to the hub's."""


class HttpAdapter(Adapter):
    """An adapter speaking HTTP: one lazily created client per source, closed with it.

    Created on first use so it belongs to the event loop the hub fetches on."""

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.timeout_s,
                verify=_tls(),
                event_hooks={"request": [propagate_request_id]},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def propagate_request_id(request: httpx.Request) -> None:
    """httpx request hook: send the current hub request id along (a contextvar read)."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        request.headers["X-Request-ID"] = request_id


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~40 ms each time."""
    return httpx.create_ssl_context()


def _where(source: str, request: httpx.Request) -> str:
    return f"{source} ({request.method} {request.url.host}{request.url.path})"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def send(client: httpx.AsyncClient, source: str, request: httpx.Request) -> httpx.Response:
    """Send a request; raise TransientSourceError / TerminalSourceError for failures."""
    try:
        response = await client.send(request)
    except httpx.TimeoutException:
        raise TransientSourceError(f"{_where(source, request)} timed out") from None
    except httpx.TransportError as exc:
        kind = type(exc).__name__
        raise TransientSourceError(f"{_where(source, request)} failed: {kind}") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientSourceError(
            f"{_where(source, request)} answered HTTP {status}",
            retry_after_s=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status in (401, 403):
        raise TerminalSourceError(
            f"{_where(source, request)} refused the credentials (HTTP {status})"
        )
    if status >= 400:
        raise TerminalSourceError(f"{_where(source, request)} answered HTTP {status}")
    if status >= 300:  # followed, it could carry the bearer to another host; unfollowed, the
        raise TerminalSourceError(  # body is no answer: either way the url needs changing
            f"{_where(source, request)} answered HTTP {status}, a redirect; redirects are "
            "not followed (credentials stay on the source's host): configure the final url"
        )
    return response


def json_body(response: httpx.Response, source: str, empty: Any = None) -> Any:
    """Parse a JSON body; an empty body gives `empty` (TCIA answers 'no results' that way)."""
    if not response.content.strip():
        return empty
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise TerminalSourceError(
            f"{_where(source, response.request)} sent a body that is not valid JSON"
        ) from None


def credential(settings: SourceSettings) -> str | None:
    """The secret in the environment variable `credentials_env` names; None when it names none.

    Raises TerminalSourceError naming only the variable (never a value) when it is empty:
    the config names secrets, it never holds them.
    """
    env = settings.credentials_env
    if not env:
        return None
    value = os.environ.get(env, "").strip()
    if not value:
        raise TerminalSourceError(f"{settings.name}: environment variable {env} is empty")
    return value
