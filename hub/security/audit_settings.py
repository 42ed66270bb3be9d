"""The `[audit]` table, on its own so that reading the configuration loads no web framework
(the middleware that writes the log lives in `hub.security.audit`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class AuditSettings(BaseModel):
    """The `[audit]` table."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    directory: Path | None = None
    """Where the daily files go; default `<data_dir>/audit`."""
