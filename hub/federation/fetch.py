"""Fetching from live sources: retries, deadlines and circuit breaking, in one place.

Adapters only say whether a failure is transient or terminal. Here tenacity retries
transient failures with exponential backoff (honouring Retry-After), a page that
fails is retried and the walk resumes from the last good page, each source has a
deadline, and a circuit breaker skips a source that keeps failing until it has had
time to recover. A fetch never raises: it returns what arrived and a status.

This is the boundary where an adapter's exceptions are converted, as httpx's
`map_httpcore_exceptions` converts transport ones. An `AdapterError` (transient or
terminal) keeps its redacted message. Anything else an adapter raises (a plain
ValueError, KeyError, a pydantic ValidationError: a bug, not a source failure) becomes a
terminal `error` status with a generic message holding the request id; the exception and
its traceback go to the log, and the breaker counts it. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from adapters.spi import (
    Adapter,
    AdapterError,
    Page,
    PageResult,
    TerminalSourceError,
    TransientSourceError,
    Translation,
)
from hub.federation.route import circuit_open_message
from hub.federation.status import SourceState
from hub.observability import metrics, tracing
from hub.observability.context import current_request_id
from hub.security.secrets import redact
from schema.errors import internal_message
from schema.filters import Node

log = logging.getLogger(__name__)


@dataclass
class FetchResult:
    """What one source answered: its records, a status and a message for people."""

    source: str
    status: SourceState
    batches: list[pa.RecordBatch] = field(default_factory=list)
    message: str = ""
    latency_ms: float = 0.0
    retries: int = 0

    @property
    def count(self) -> int:
        return sum(b.num_rows for b in self.batches)


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failed fetches; half-opens after `cooldown_s`."""

    threshold: int = 3
    cooldown_s: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    probe_at: float | None = None
    """Half-open lets one question through to try the source; the others still skip it
    until that one has answered, so they do not all queue behind a source still hanging.
    A probe that never answers (its question was cancelled) gives way after a cooldown."""

    def allows(self) -> bool:
        """Whether to ask the source now; when half-open, True for the one probe only."""
        if self.opened_at is None:
            return True
        now = time.monotonic()
        probing = self.probe_at is not None and now - self.probe_at < self.cooldown_s
        if probing or not self._cooled_down():
            return False
        self.probe_at = now
        return True

    def record(self, ok: bool) -> None:
        self.probe_at = None
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()

    def _cooled_down(self) -> bool:
        return self.opened_at is not None and time.monotonic() - self.opened_at >= self.cooldown_s

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._cooled_down() else "open"


@dataclass
class RetryPolicy:
    attempts: int = 4
    initial_s: float = 0.05
    max_s: float = 2.0


class SourceFetcher:
    """Fetches one source's answer to a translated filter, page by page."""

    def __init__(self, adapter: Adapter, policy: RetryPolicy | None = None) -> None:
        self.adapter = adapter
        self.policy = policy or RetryPolicy()
        self.breaker = CircuitBreaker()
        self.concurrency = asyncio.Semaphore(4)

    async def fetch(self, translation: Translation, deadline_s: float) -> FetchResult:
        """Fetch, counted in the metrics and traced as a `source.fetch` span."""
        with tracing.fetch_span(self.adapter.name) as span:
            result = await self._fetch(translation, deadline_s)
            tracing.set_attributes(
                span,
                status=result.status,
                latency_ms=result.latency_ms,
                series=result.count,
                retries=result.retries,
            )
            tracing.set_outcome(span, result.status.answered, result.message)
        seconds = result.latency_ms / 1000
        metrics.observe_fetch(result.source, result.status, seconds, result.retries, result.count)
        metrics.observe_circuit(result.source, self.breaker.state, self.breaker.failures)
        return result

    async def _fetch(self, translation: Translation, deadline_s: float) -> FetchResult:
        name = self.adapter.name
        if not self.breaker.allows():
            return FetchResult(name, SourceState.SKIPPED, message=circuit_open_message(name))
        started = time.perf_counter()
        result = FetchResult(name, SourceState.OK)

        async def bounded_walk() -> None:  # waiting for a slot counts against the deadline
            async with self.concurrency:
                await self._walk(translation, result)

        try:
            await asyncio.wait_for(bounded_walk(), timeout=deadline_s)
        except TimeoutError:
            result.status = SourceState.PARTIAL if result.batches else SourceState.TIMEOUT
            result.message = f"{name} did not finish within {deadline_s:g} s" + (
                f"; {result.count} series arrived before the deadline" if result.batches else ""
            )
        except AdapterError as exc:
            result.status = SourceState.PARTIAL if result.batches else SourceState.ERROR
            result.message = redact(str(exc), self.adapter.settings)  # a server's echo
        except Exception:  # a bug in the adapter: its half answer is not trusted either
            result.batches.clear()
            result.status, result.message = SourceState.ERROR, self._internal("search")
        result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        self.breaker.record(result.status is SourceState.OK)
        if result.status is SourceState.OK:
            result.message = f"{result.count} series from {name}" + (
                f" after {result.retries} retries" if result.retries else ""
            )
        else:
            log.warning("source %s: %s (%s)", name, result.status, result.message)
        return result

    def translate(self, node: Node, counted: bool = True) -> Translation | FetchResult:
        """The adapter's translation of `node`; when its translate raises, the `error`
        result to report instead (nothing is asked). `counted`: the failure counts for the
        breaker and the fetch metrics, as when the source was to be asked; a listing
        (`explain`, `sources`) asks nothing. Whether its circuit lets it be asked is the
        route's to say (hub/federation/route.py), not this method's."""
        name = self.adapter.name
        try:
            return self.adapter.translate(node)
        except Exception as exc:
            if isinstance(exc, AdapterError):
                message = redact(str(exc), self.adapter.settings)
                log.warning("source %s: translate failed (%s)", name, message)
            else:
                message = self._internal("translate")
            if counted:
                self.breaker.record(False)
                metrics.observe_fetch(name, SourceState.ERROR, 0.0, 0, 0)
            return FetchResult(name, SourceState.ERROR, message=message)

    def _internal(self, step: str) -> str:
        """Log the exception being handled with its traceback; the generic message for it."""
        name = self.adapter.name
        log.error(
            "source %s: the adapter's %s raised an unexpected error", name, step, exc_info=True
        )
        return internal_message(current_request_id(), f"{name}: internal error in its adapter")

    async def _walk(self, translation: Translation, result: FetchResult) -> None:
        """Every page in turn, each naming the next; a failed page is retried, then the walk
        resumes from it."""
        page: Page | None = Page(size=self.adapter.capabilities.max_page_size or 1000)
        while page is not None:
            answer = await self._page_with_retries(translation, page, result)
            result.batches.extend(answer.batches)
            page = answer.next_page

    async def _page_with_retries(
        self, translation: Translation, page: Page, result: FetchResult
    ) -> PageResult:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientSourceError),
            stop=stop_after_attempt(self.policy.attempts),
            wait=_wait_honouring_retry_after(self.policy),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    result.retries += 1
                answer = await self.adapter.search(translation, page)
                if not isinstance(answer, PageResult):
                    raise TerminalSourceError(
                        f"{self.adapter.name}: search answered {type(answer).__name__}, "
                        "not a PageResult"
                    )
                return answer
        raise AssertionError("unreachable")  # pragma: no cover


def _wait_honouring_retry_after(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s)

    def wait(state: RetryCallState) -> float:
        base = float(backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientSourceError) and exc.retry_after_s is not None:
            return max(base, min(exc.retry_after_s, 30.0))
        return base

    return wait
