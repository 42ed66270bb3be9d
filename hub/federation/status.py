"""What became of one source in one question, as one enum every layer compares."""

from __future__ import annotations

from enum import StrEnum


class SourceState(StrEnum):
    """A source's status in a cohort answer (`bySource.status`, metrics, traces).

    A `StrEnum`, so it serialises as its value in JSON, GraphQL and metric labels."""

    OK = "ok"
    """Answered in full: from the index, the cache or live."""
    PARTIAL = "partial"
    """Answered in part: some pages arrived before a deadline or a failure."""
    TIMEOUT = "timeout"
    """Did not answer within its deadline; nothing arrived."""
    ERROR = "error"
    """Failed; nothing arrived. The message says why, or gives a request id."""
    SKIPPED = "skipped"
    """Not asked: excluded by the filter, circuit open or not harvested yet."""
    DISABLED = "disabled"
    """Disabled in the source registry."""

    @property
    def answered(self) -> bool:
        """Whether records from this source are in the answer."""
        return self in (SourceState.OK, SourceState.PARTIAL)
