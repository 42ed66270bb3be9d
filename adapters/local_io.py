"""Local reads for adapters that are not HTTP: files and DuckDB, mapped in one place.

What `send()` in adapters/http.py does for HTTP, `local_errors` does for a file read or a
DuckDB query: an OSError or a DuckDB error becomes a `TransientSourceError` when trying
again may help (an interrupted or busy read, DuckDB out of memory or interrupted) or a
`TerminalSourceError` when it will not (a missing or unreadable file, a query DuckDB
refuses). Messages name the source, the step and the kind of failure only: never a path,
a SQL text or DuckDB's own message, which quotes both. Anything else passes through
untouched: it is a bug, and the hub's fetch boundary reports it generically.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from adapters.spi import TerminalSourceError, TransientSourceError

log = logging.getLogger(__name__)

TRANSIENT_ERRNOS = frozenset(
    code
    for name in ("EAGAIN", "EINTR", "EBUSY", "ETIMEDOUT", "EIO", "EMFILE", "ENFILE", "ESTALE")
    if (code := getattr(errno, name, None)) is not None
)
"""Errors of a read that may well succeed when tried again (including a stale NFS handle)."""

TRANSIENT_DUCKDB: tuple[type[duckdb.Error], ...] = (
    duckdb.OutOfMemoryException,
    duckdb.InterruptException,
    duckdb.ResourceInUseException,
    duckdb.ConnectionException,
    duckdb.TransactionException,
    duckdb.SerializationException,
    duckdb.HTTPException,
)
"""DuckDB failures of the moment, not of the query or the file."""


@contextmanager
def local_errors(source: str, what: str) -> Iterator[None]:
    """Map OSError and DuckDB errors raised inside to typed source errors (see module)."""
    try:
        yield
    except OSError as exc:
        log.debug("%s: %s: %r", source, what, exc)  # the path, for whoever reads the log
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        message = f"{source}: {what}: cannot read it ({reason})"
        if exc.errno in TRANSIENT_ERRNOS:
            raise TransientSourceError(message) from exc
        raise TerminalSourceError(message) from exc
    except duckdb.Error as exc:
        log.debug("%s: %s: %r", source, what, exc)
        message = f"{source}: {what} failed (DuckDB {type(exc).__name__})"
        if isinstance(exc, TRANSIENT_DUCKDB):
            raise TransientSourceError(message) from exc
        if isinstance(exc, duckdb.IOException):
            message = f"{source}: {what}: cannot read it (DuckDB {type(exc).__name__})"
        raise TerminalSourceError(message) from exc
