"""Errors typed by what the caller should do, as marker classes every layer can mix in.

Three kinds, after dlt's Transient/Terminal marker mixins:

- `CallerError`: the question is wrong (a bad filter, an unknown field, a limit exceeded).
  Its text is written for the caller and is the only exception text an answer shows.
- `Transient`: trying again may help (a timeout, a dropped connection, a 429 or 5xx); the
  hub retries it, and reports it if retrying did not help.
- `Terminal`: trying again will not help; the hub reports it.

Anything else raised inside the hub is an internal error: it is converted at one boundary
(the source fetcher, the harvest, the API's error formatters) into a generic message that
carries the request id (`internal_message`), and its text and traceback go to the log only.
This module is a leaf (schema/ is the bottom layer), so adapters and the hub share it.
"""

from __future__ import annotations

__all__ = ["CallerError", "Terminal", "Transient", "internal_message", "is_caller_error"]


class CallerError(ValueError):
    """The caller's question is wrong; the message says what to change and is shown as is.

    A `ValueError`, so code that checks values (the CLI, the registry) keeps catching it;
    but a plain `ValueError` is never shown to a caller: only this marker is."""


class Transient(Exception):
    """Marker: trying the same thing again later may succeed."""


class Terminal(Exception):
    """Marker: trying the same thing again will fail the same way."""


def is_caller_error(exc: BaseException | None) -> bool:
    """Whether `exc`'s text may reach the caller."""
    return isinstance(exc, CallerError)


def internal_message(request_id: str | None, what: str = "internal error") -> str:
    """The generic text that stands in for an internal error: never the exception's own
    text (it may name a column, a file path or a host), but the id that finds it in the log."""
    if request_id:
        return f"{what} (request id {request_id}); see the server log"
    return f"{what}; see the server log"
