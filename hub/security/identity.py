"""The caller of one request: who they are, their role, and which restricted sources
their token authorises. Everything that decides what a caller may see or do takes a
`Caller`; nothing else reads tokens.

The HTTP layer authenticates once per request and puts the caller on
`request.state.caller` and into the GraphQL context as `context["caller"]`; code that
finds none treats the request as anonymous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    ANONYMOUS = 0
    READER = 1
    ADMIN = 2


@dataclass(frozen=True)
class Caller:
    identity: str | None = None
    """A stable name for logs and the audit trail (API key name or token subject)."""
    role: Role = Role.ANONYMOUS
    authorized_sources: frozenset[str] = field(default_factory=frozenset)
    """Controlled sources whose records this caller's token grants."""

    @property
    def authenticated(self) -> bool:
        return self.role >= Role.READER

    def may(self, role: Role) -> bool:
        return self.role >= role


ANONYMOUS = Caller()


def caller_of(context: Any) -> Caller:
    """The caller in a GraphQL context or on a request's state; anonymous when absent."""
    if isinstance(context, dict):
        found = context.get("caller")
    else:
        found = getattr(getattr(context, "state", None), "caller", None)
    return found if isinstance(found, Caller) else ANONYMOUS
