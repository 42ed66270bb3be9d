"""Opaque `after` cursors, bound to one cohort question, for both backends.

A cursor holds the position (for `hasNextPage`), the sort values of the last series
shown when the backend pages with `search_after` (none for the embedded index, which
pages by position), and a digest of the question (generation, filter, text, sort). A
cursor of another question, another generation or another backend is a QueryError.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hub.index.base import QueryError

FOREIGN = "the `after` cursor does not belong to this cohort query; start again without it"


@dataclass(frozen=True)
class Cursor:
    position: int
    search_after: list[Any]


def digest(signature: str) -> str:
    return hashlib.blake2b(signature.encode(), digest_size=8).hexdigest()


def encode(position: int, search_after: list[Any], signature: str) -> str:
    payload = {"p": position, "a": search_after, "s": digest(signature)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode(cursor: str, signature: str, width: int) -> Cursor:
    """The cursor's content; `width` is the number of sort values the question uses."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position, values = int(payload["p"]), payload["a"]
        if (
            payload["s"] != digest(signature)
            or position < 0
            or not isinstance(values, list)
            or len(values) != width
            or not all(v is None or isinstance(v, str | int | float) for v in values)
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError):  # JSONDecodeError is a ValueError
        raise QueryError(FOREIGN) from None
    return Cursor(position, values)
