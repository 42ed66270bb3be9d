"""Hub configuration: one TOML file, or a built-in default that needs no network.

`--config PATH` or env `HUB_CONFIG` names the file; `--data-dir` or env
`HUB_DATA_DIR` overrides where the index lives. Secrets are never written inline:
a source names the environment variable that holds them (`credentials_env`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.spi import SourceSettings
from hub.index.elastic.settings import ElasticSettings, check_source_name
from hub.security.audit_settings import AuditSettings
from hub.security.auth_settings import AuthSettings
from hub.security.limits import LimitsSettings
from hub.security.suppression import PrivacySettings
from schema.errors import CallerError

SECRET_KEYS = ("password", "token", "api_key", "apikey", "secret", "credentials")

DEFAULT_CONFIG: dict[str, Any] = {
    "hub": {"data_dir": ".hub", "index": "embedded"},
    "sources": {"idc": {"adapter": "idc", "mode": "harvest"}},
}


class ConfigError(CallerError):
    """The configuration cannot be used; the message says what to change."""


LIVE_THREADS = 32
"""Questions a worker answers at once when they wait on live sources (see below)."""


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Path(".hub")
    index: Literal["embedded", "elasticsearch"] = "embedded"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    """Log lines as JSON objects (one a line) or as text for people (hub/observability)."""
    tracing: bool = False
    """OpenTelemetry spans per cohort query and source fetch; needs `imaging-hub[otel]`."""
    query_deadline_s: float = Field(default=10.0, gt=0, le=300)
    request_threads: int | None = Field(default=None, ge=0, le=256)
    """Questions a worker process answers at once; the rest wait their turn in order.
    0 answers each on the server's event loop, one after another, with no thread at all.

    Default: 0 with the embedded index when every source is harvested, 2 with
    Elasticsearch, 32 when a source answers live. Answering from the embedded index is
    CPU-bound under one interpreter lock: threads only take turns on it, and each turn
    the event loop waits for the lock too (measured on full IDC, 2 workers, 32 clients:
    8 threads 147 questions/s; 2 threads 187/s; on the loop, about 10% more again). A
    question asking live sources or a cluster mostly waits on the network, so several
    run at once. A live source registered at runtime makes questions use threads from
    then on, as the event loop must be free to fetch from it."""
    requests_per_connection: int = Field(default=100, ge=0, le=1_000_000)
    """About one answer in this many asks the client to reconnect (`Connection: close`),
    so kept-alive connections spread evenly over `serve --workers`; 0 never asks."""

    def threads_for(self, sources: dict[str, SourceSettings]) -> int:
        if self.request_threads is not None:
            return self.request_threads
        if any(s.mode == "live" for s in sources.values()):
            return LIVE_THREADS
        return 0 if self.index == "embedded" else 2


class IndexTables(BaseModel):
    """`[index.<backend>]` tables: settings of the non-default index backends."""

    model_config = ConfigDict(extra="forbid")

    elasticsearch: ElasticSettings | None = None


class HubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hub: HubSettings = Field(default_factory=HubSettings)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    index: IndexTables = Field(default_factory=IndexTables)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)


def load_config(path: str | Path | None = None, data_dir: str | Path | None = None) -> HubConfig:
    """Read, validate and apply overrides; every problem becomes one ConfigError."""
    path = path or os.environ.get("HUB_CONFIG") or None
    if path is None:
        raw: dict[str, Any] = {k: dict(v) for k, v in DEFAULT_CONFIG.items()}
        raw["sources"] = {k: dict(v) for k, v in DEFAULT_CONFIG["sources"].items()}
    else:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    sources = raw.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError("[sources] must be a table of source tables")
    for name, table in sources.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[sources.{name}] must be a table")
        inline = [k for k in table if k.lower() in SECRET_KEYS]
        if inline:
            raise ConfigError(
                f"[sources.{name}] writes a secret inline ({', '.join(inline)}); "
                "put it in an environment variable and name it with credentials_env"
            )
        table.setdefault("name", name)
    _check_index_tables(raw.get("index", {}))
    override = data_dir or os.environ.get("HUB_DATA_DIR")
    if override:
        raw.setdefault("hub", {})["data_dir"] = str(override)
    try:
        config = HubConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    if config.hub.index == "elasticsearch" and config.index.elasticsearch is None:
        raise ConfigError(
            'index = "elasticsearch" needs an [index.elasticsearch] table with at least '
            'url = "https://..."'
        )
    if config.hub.index == "elasticsearch":
        for name in config.sources:
            try:
                check_source_name(name)
            except ValueError as exc:
                raise ConfigError(f"[sources.{name}]: {exc}") from None
    return config


def _check_index_tables(tables: Any) -> None:
    if not isinstance(tables, dict):
        raise ConfigError("[index] must be a table of backend tables, e.g. [index.elasticsearch]")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[index.{name}] must be a table")
        inline = [k for k in table if k.lower() in SECRET_KEYS]
        if inline:
            raise ConfigError(
                f"[index.{name}] writes a secret inline ({', '.join(inline)}); put it in an "
                "environment variable and name it with password_env or api_key_env"
            )
