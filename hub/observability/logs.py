"""Structured logs: one JSON object per line, with the request id, and no secrets.

Every record leaving the hub's handler carries `time`, `level`, `logger`, `message`,
`request_id` (the request being served, if any), any `extra={...}` fields and, for
errors, `exc`. Text is scrubbed twice over: patterns (bearer tokens, `Authorization`
and `api_key=`/`token=`/`password=` values, JWTs, hub API keys, passwords in URLs) and
the exact secret values the configured sources name (hub/security/secrets.py).

The handler only queues records (a `QueueHandler`: formatting is a dict and a queue
put); a listener thread formats and writes them, so a slow stderr never stalls the
event loop. `configure_logging` installs it on the root logger once per process (later
calls adjust the level, format and secrets); `uvicorn_log_config` gives uvicorn the
same handler, so its own lines are JSON too and its access log is replaced by the hub's.
Each line goes to the `sys.stderr` of the moment it was logged; test runs use
`divert_uncaptured` to keep lines logged between tests off the runner's output.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Iterable
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Literal, TextIO

import orjson

from adapters.http import REQUEST_ID

__all__ = [
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "divert_uncaptured",
    "scrub",
    "uvicorn_log_config",
]

LogFormat = Literal["json", "text"]
QUIET_LOGGERS = ("httpx", "httpcore")

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"://([^/\s:@]+):[^@\s/]+@"), r"://\1:***@"),  # user:password@host
    (  # key: value and key=value, the value with its scheme (`Authorization: Bearer x`)
        re.compile(
            r"(?i)\b(authorization|x-api-key|api[_-]?key|apikey|access[_-]?token|token|"
            r"password|passwd|secret|client[_-]?secret)(\"?'?\s*[:=]\s*\"?'?)"
            r"(?:(?:bearer|basic)\s+)?(?!\*\*\*)[^\s\"'&,;}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{4,}"), r"\1 ***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "***"),  # JWT
    (re.compile(r"\bihk_[A-Za-z0-9_-]{8,}"), "ihk_***"),  # hub API keys
]
_CHEAP_CHECK = re.compile(r"(?i)://[^/\s]*@|bearer|basic|eyJ|ihk_|auth|key|token|pass|secret")


class _Secrets:
    """Exact secret values to mask, shared by every formatter of the process."""

    values: tuple[str, ...] = ()


def scrub(text: str) -> str:
    """`text` without tokens, keys, passwords or the configured sources' secrets."""
    for secret in _Secrets.values:
        if secret in text:
            text = text.replace(secret, "***")
    if _CHEAP_CHECK.search(text) is None:  # the common line: nothing that looks secret
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def set_secret_values(values: Iterable[str]) -> None:
    """Exact values to mask (longest first, so overlapping secrets mask whole)."""
    _Secrets.values = tuple(sorted(set(values), key=len, reverse=True))


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "color_message",
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields become keys; everything scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        exc = record.exc_text or (
            self.formatException(record.exc_info) if record.exc_info else None
        )
        if exc:
            entry["exc"] = scrub(exc)
        if record.stack_info:
            entry["stack"] = scrub(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """The human format, `time level logger [request id] message`, scrubbed the same way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return scrub(super().format(record))


def _iso(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to the `sys.stderr` of the moment it was logged.

    Test runners swap `sys.stderr` per test, and the listener thread writes a little
    later: by then the runner may have put the terminal back, so a line resolved at
    write time would land between its progress dots instead of in the test's capture."""

    uncaptured: TextIO | None = None
    """Where lines logged onto the process's own stderr go instead (None: there)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        stream: TextIO | None = getattr(record, "_stderr", None)
        if stream is None or stream.closed:  # that capture has ended since
            stream = sys.stderr
        if stream is sys.__stderr__ and self.uncaptured is not None:
            stream = self.uncaptured
        try:
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except Exception:
            self.handleError(record)


class HubLogHandler(QueueHandler):
    """Queues records with what only the emitting thread knows (message, request id,
    traceback text); `listener` writes them from its own thread."""

    def __init__(self, log_format: LogFormat = "json") -> None:
        self.queue_: queue.Queue[logging.LogRecord] = queue.Queue(-1)
        super().__init__(self.queue_)
        self.output = _Stderr()
        self.set_format(log_format)
        self.listener = QueueListener(self.queue_, self.output, respect_handler_level=False)
        self.listener.start()
        self.stopped = False  # after close (interpreter exit): write in the caller's thread

    def set_format(self, log_format: LogFormat) -> None:
        self.log_format = log_format
        self.output.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        message = record.getMessage()
        record = copy.copy(record)  # other handlers (a test's capture) see it unchanged
        record.message = message
        record.msg, record.args = record.message, None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
            record.exc_info = None
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        record._stderr = sys.stderr  # where the line belongs, see `_Stderr`
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if self.stopped:
            self.output.handle(self.prepare(record))
        else:
            super().emit(record)

    def flush(self) -> None:
        """Wait until every queued record is written (tests; shutdown)."""
        thread = getattr(self.listener, "_thread", None)
        if thread is None or not thread.is_alive():
            self._drain()
        elif threading.current_thread() is not thread:
            self.queue_.join()
        self.output.flush()

    def _drain(self) -> None:
        while True:
            try:
                record = self.queue_.get_nowait()
            except queue.Empty:
                return
            if record is not None:  # QueueListener's stop sentinel
                self.output.handle(record)
            self.queue_.task_done()

    def close(self) -> None:
        """Called by `logging.shutdown` at exit: write what is queued, stop the thread."""
        self.stopped = True
        if getattr(self.listener, "_thread", None) is not None:
            self.listener.stop()
        self._drain()
        super().close()

    def restart(self) -> None:
        """In a forked child: the parent's listener thread did not come along."""
        self.queue_ = self.queue = queue.Queue(-1)
        self.stopped = False
        self.listener = QueueListener(self.queue_, self.output, respect_handler_level=False)
        self.listener.start()


def _after_fork() -> None:
    handler = hub_handler()
    if handler is not None:
        handler.restart()


os.register_at_fork(after_in_child=_after_fork)


def divert_uncaptured(stream: TextIO | None) -> TextIO | None:
    """Test runs: send lines logged while no test captures output (a server thread that
    logs its access line after the test has its answer, a session fixture's teardown) to
    `stream` rather than onto the runner's progress output. None restores the default;
    returns the previous diversion."""
    previous, _Stderr.uncaptured = _Stderr.uncaptured, stream
    return previous


def hub_handler() -> HubLogHandler | None:
    """The handler `configure_logging` installed on the root logger, if any."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, HubLogHandler):
            return handler
    return None


def configure_logging(
    level: str = "info", log_format: LogFormat = "json", secrets: Iterable[str] = ()
) -> HubLogHandler:
    """Route the process's logs through the hub's handler at `level` (idempotent).

    Other root handlers (a test runner's capture) are left alone."""
    handler = hub_handler()
    if handler is None:
        handler = HubLogHandler(log_format)
        logging.getLogger().addHandler(handler)
    elif handler.log_format != log_format:
        handler.set_format(log_format)
    logging.getLogger().setLevel(level.upper())
    quiet = "DEBUG" if level.upper() == "DEBUG" else "WARNING"
    for chatty in QUIET_LOGGERS:  # a line per source call, full URL: only when debugging
        logging.getLogger(chatty).setLevel(quiet)
    set_secret_values(secrets)
    return handler


def handler_factory(log_format: LogFormat = "json") -> logging.Handler:
    """For `logging.config.dictConfig` (uvicorn's `log_config`): the process's handler."""
    return hub_handler() or HubLogHandler(log_format)


def uvicorn_log_config(level: str = "info", log_format: LogFormat = "json") -> dict[str, Any]:
    """uvicorn's `log_config`: its loggers go through the hub's handler; its access log is
    off (the hub writes its own access lines, see hub/observability/middleware.py)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "hub": {"()": f"{__name__}.handler_factory", "log_format": log_format},
        },
        "root": {"handlers": ["hub"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }
