"""Per-client rate limits: a token bucket per caller, answering 429 with Retry-After.

Each client has a bucket of `burst` tokens refilled at `requests_per_minute`; a request
to an API path takes one token, and a client with none left gets 429 and the number of
whole seconds until a token is back. The client is the authenticated identity when the
auth middleware has set one (so callers behind one NAT are told apart, and one key on
many machines shares a budget), otherwise the client address.

In memory and per process, like the index cache: with N replicas a client may get up
to N times the rate, which is what a per-replica limit is for (protecting the replica).
The `limits` package on PyPI (well kept) was considered; it offers fixed, moving and
sliding windows but no token bucket, and "a steady rate plus a burst" is exactly two
bucket parameters, so the bucket is the thirty lines below.

The middleware must sit inside the auth middleware to see the caller (Starlette: add it
before); outside it, every client is keyed by address, which is still a limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.security.identity import caller_of
from hub.security.limits import API_PREFIXES, LimitsSettings


class TokenBuckets:
    """One bucket per client key, at most `max_clients` of them (least recent dropped:
    a dropped bucket comes back full, so dropping only ever errs towards allowing)."""

    def __init__(
        self,
        requests_per_minute: float,
        burst: int,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = requests_per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for `key`: 0.0 when allowed, else seconds until one is back."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait


def client_key(scope: Scope) -> str:
    """The caller's identity when authenticated, else the client address."""
    caller = caller_of(scope.get("state") or {})
    if caller.identity:
        return f"id:{caller.identity}"
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"


def is_api_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in API_PREFIXES)


class RateLimit:
    """ASGI middleware applying `[limits]` to the API paths (not probes or metrics),
    built with those settings."""

    def __init__(self, app: ASGIApp, settings: LimitsSettings) -> None:
        self.app = app
        self.settings = settings
        self.buckets = TokenBuckets(
            settings.requests_per_minute, settings.burst, settings.max_clients
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        if scope["type"] != "http" or not settings.rate_limit or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_key(scope))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        refusal = JSONResponse(
            {
                "error": f"rate limit exceeded: {settings.requests_per_minute:g} requests per "
                f"minute with bursts of {settings.burst}; retry after {seconds} s"
            },
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
        await refusal(scope, receive, send)
