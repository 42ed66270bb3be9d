"""Keeping a source's credentials out of what the hub says: the last line of defence.

Adapters are written never to put a secret in a message (adapters/http.py names only
the host and path), but a source's own error text is passed on to people, and a server
may echo the credentials it received (a Guppy error quoting the bearer, a proxy's debug
page). So whatever an adapter raises is scrubbed here of the values its settings point
at before it becomes a `bySource` message or a log line: the environment variable's
value and, when that value is JSON (a Gen3 `credentials.json`), every string in it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from adapters.spi import SourceSettings

MASK = "***"
MIN_SECRET = 6
"""Shorter values are not replaced: masking every "abc" would garble messages and a
secret that short protects nothing."""


def secret_values(settings: SourceSettings) -> list[str]:
    """The secrets a source's settings name, longest first (so overlaps mask whole)."""
    raw = os.environ.get(settings.credentials_env or "", "").strip()
    if not raw:
        return []
    found = {raw}
    with contextlib.suppress(ValueError, RecursionError):  # not JSON: one plain secret
        found.update(_strings(json.loads(raw)))
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


def redact(text: str, settings: SourceSettings) -> str:
    """`text` with every secret of the source replaced by `***`."""
    for secret in secret_values(settings):
        text = text.replace(secret, MASK)
    return text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
