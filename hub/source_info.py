"""What the `sources` listing says about one source.

On its own, below the service, so that the disclosure rules (which round a counts-only
source's size in that listing) can name it without importing the service that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class SourceInfo:
    name: str
    adapter: str
    mode: str
    access: str
    status: str
    message: str
    capabilities: dict[str, Any]
    series: int | None = None
    harvested_at: str | None = None
    data_version: str | None = None
    route: str | None = None
    """How a question with no filter reaches it (hub/federation/route.py)."""
