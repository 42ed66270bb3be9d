"""The failure checks: errors typed by what the hub should do, and secrets kept secret.

The kit drives the adapter's HTTP layer with respx: every request it makes answers one
fault (503, 429, a timeout, a refused connection, 400, 401, 404). The hub retries
`TransientSourceError` and reports `TerminalSourceError`, so a bare exception, the wrong
type, or a failure turned into an empty answer each misleads it. Adapters never retry
themselves (the hub does, once, with backoff), so a request sent twice is a failure too.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import respx

from adapters.conformance.case import ConformanceCase, Sample, collect, show
from adapters.conformance.checks import capabilities, fail_if, filters_to_check
from adapters.spi import (
    Adapter,
    AdapterError,
    Capabilities,
    Page,
    TerminalSourceError,
    TransientSourceError,
)
from schema.filters import MATCH_ALL

Operation = Callable[[Adapter], Awaitable[object]]


@dataclass(frozen=True)
class Fault:
    """One way a source fails, and the error type the hub needs to see for it."""

    label: str
    respond: Callable[[httpx.Request], httpx.Response]
    expected: type[AdapterError]
    retry_after_s: float | None = None


def _raising(
    kind: type[httpx.TransportError], message: str
) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        raise kind(message, request=request)

    return respond


FAULTS = (
    Fault(
        "HTTP 503", lambda r: httpx.Response(503, text="Service Unavailable"), TransientSourceError
    ),
    Fault(
        "HTTP 429 with Retry-After: 3",
        lambda r: httpx.Response(429, headers={"Retry-After": "3"}, text="Too Many Requests"),
        TransientSourceError,
        retry_after_s=3.0,
    ),
    Fault("a read timeout", _raising(httpx.ReadTimeout, "timed out"), TransientSourceError),
    Fault("a refused connection", _raising(httpx.ConnectError, "refused"), TransientSourceError),
    Fault(
        "HTTP 400",
        lambda r: httpx.Response(400, json={"error": "bad request"}),
        TerminalSourceError,
    ),
    Fault(
        "HTTP 401",
        lambda r: httpx.Response(401, json={"error": "unauthorized"}),
        TerminalSourceError,
    ),
    Fault("HTTP 404", lambda r: httpx.Response(404, text="Not Found"), TerminalSourceError),
)


def errors_are_typed(case: ConformanceCase, sample: Sample) -> None:
    """503/429/timeouts raise TransientSourceError, 400/401/404 TerminalSourceError, no retries."""
    problems = []
    for label, operation in operations(capabilities(case)):
        for fault in FAULTS:
            error, requests = inject(case, fault, operation)
            where = f"{label} when the source answers {fault.label}"
            if error is None:
                problems.append(f"{where}: no error (a failure must not become an empty answer)")
            elif not isinstance(error, fault.expected):
                problems.append(
                    f"{where}: raised {type(error).__name__}: {error}; "
                    f"expected {fault.expected.__name__}"
                )
            elif (
                fault.retry_after_s is not None
                and getattr(error, "retry_after_s", None) != fault.retry_after_s
            ):
                problems.append(
                    f"{where}: retry_after_s is not {fault.retry_after_s} (use adapters.http.send)"
                )
            sent = Counter((r.method, str(r.url), r.content) for r in requests)
            again = [f"{m} {u}" for (m, u, _), n in sent.items() if n > 1]
            if again and fault.expected is TransientSourceError:
                problems.append(
                    f"{where}: sent {again[0]} again; adapters never retry, the hub does"
                )
    fail_if(problems, "errors are not typed by what the hub should do")


def no_secrets_in_messages(case: ConformanceCase, sample: Sample) -> None:
    """The credential never appears in an error message, a log record or a translation."""
    overrides = {"credentials_env": case.secret_env}
    texts: list[tuple[str, str]] = []
    with _environment(case.secret_env, case.secret), _captured_logs() as records:
        caps = capabilities(case)
        nodes = filters_to_check(case, sample)

        async def translations(adapter: Adapter) -> list[tuple[str, str]]:
            plans = [(n, adapter.translate(n)) for n in nodes]
            return [
                (f"translation of {show(n)}", f"{t.native!r} {t.description}") for n, t in plans
            ]

        texts += case.use(translations, **overrides)
        with case.serving():
            for label, operation in operations(caps):
                try:
                    case.use(operation, **overrides)
                except Exception as exc:
                    texts.append((f"{label} against the stand-in source", _text(exc)))
        if case.speaks_http():
            for label, operation in operations(caps):
                for fault in FAULTS:
                    error, _ = inject(case, fault, operation, **overrides)
                    if error is not None:
                        texts.append(
                            (f"{label} when the source answers {fault.label}", _text(error))
                        )
        texts += [(f"log record of {r.name}", _format(r)) for r in records]
    leaks = [
        f"{where}: ...{_around(text, case.secret)}..."
        for where, text in texts
        if case.secret in text
    ]
    fail_if(leaks, f"the secret in ${case.secret_env} leaked")


def operations(caps: Capabilities) -> list[tuple[str, Operation]]:
    """What the hub asks of a source: one page of a live search, and a harvest."""
    found: list[tuple[str, Operation]] = []
    if caps.live_search:
        found.append(("search", _first_page))
    if caps.harvest:
        found.append(("harvest", _harvest))
    return found


def inject(
    case: ConformanceCase, fault: Fault, operation: Operation, **overrides: object
) -> tuple[Exception | None, list[httpx.Request]]:
    """Run `operation` with every HTTP request answering `fault`; the error and the requests."""
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(side_effect=fault.respond)
        try:
            case.use(operation, **overrides)
        except Exception as exc:
            return exc, [call.request for call in router.calls]
        return None, [call.request for call in router.calls]


async def _first_page(adapter: Adapter) -> object:
    return await adapter.search(adapter.translate(MATCH_ALL), Page(size=10))


async def _harvest(adapter: Adapter) -> object:
    return await collect(adapter.harvest())


def _text(error: BaseException) -> str:
    """Everything a log line or a traceback of the error would show, causes included."""
    return "".join(traceback.format_exception(error)) + repr(error)


def _format(record: logging.LogRecord) -> str:
    try:
        return logging.Formatter("%(name)s %(message)s").format(record)
    except Exception:  # a record whose arguments do not fit its format: show them raw
        return f"{record.msg!r} {record.args!r}"


def _around(text: str, secret: str) -> str:
    at = text.index(secret)
    return text[max(0, at - 60) : at + len(secret) + 20].replace("\n", " ")


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextmanager
def _captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record, DEBUG included, while the block runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root, handler = logging.getLogger(), Keep(logging.DEBUG)
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
