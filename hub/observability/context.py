"""The request id: taken from a sane `X-Request-ID`, or made up, and kept in a contextvar.

The contextvar lives in `adapters.http` (adapters never import the hub) so that the
adapters' HTTP clients can send it along on every source call; the hub sets it here.
Context variables follow the request into worker threads (Starlette's threadpool) and
into the tasks the planner starts on the server's loop, so one id covers everything a
request causes.
"""

from __future__ import annotations

import random
import re

from adapters.http import REQUEST_ID

__all__ = [
    "MAX_REQUEST_ID",
    "REQUEST_ID",
    "current_request_id",
    "new_request_id",
    "request_id_from",
]

MAX_REQUEST_ID = 128
_SANE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
"""What a caller's id may look like: bounded, and nothing that could split a log line or
a header (no spaces, quotes, control characters or non-ASCII)."""


def new_request_id() -> str:
    """A fresh random id: 128 bits as 32 hex digits. An id only has to be unique, not
    unguessable, so it comes from `random` rather than the kernel (os.urandom was 2% of
    the server's time under load)."""
    return f"{random.getrandbits(128):032x}"


def request_id_from(header: bytes | None) -> str:
    """The caller's id when it is sane, else a new one (an insane one is never echoed)."""
    if header is not None and _SANE.fullmatch(header):
        return header.decode("ascii")
    return new_request_id()


def current_request_id() -> str | None:
    return REQUEST_ID.get()
