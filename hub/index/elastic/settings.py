"""The `[index.elasticsearch]` table of the hub TOML, validated.

Secrets are never written in the file: `password_env` / `api_key_env` name the
environment variables that hold them (the hub-wide SECRET_KEYS rule), and they are
read only when the client is built, so a message never needs to quote them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
RESERVED = ("all", "live", "empty")
"""Words the index layout uses after the prefix (`<prefix>-all`, ...): no source is so named."""


def check_source_name(source: str) -> str:
    """Source names become index names: lower case, digits and `_` only. Here, with the
    settings, so the configuration checks it without loading the Elasticsearch client."""
    if not SOURCE_NAME.match(source) or source in RESERVED:
        raise ValueError(
            f"source name {source!r} cannot name an Elasticsearch index: use lower case "
            f"letters, digits and '_' (and not {', '.join(RESERVED)})"
        )
    return source


class CredentialsMissing(ValueError):
    """A variable named by `password_env` / `api_key_env` is not set."""


class ElasticSettings(BaseModel):
    """Where the cluster is, how to authenticate, and how hard to push bulk ingest.

    `urls` names every node the client may use, so that losing one loses no question:
    a request that fails to connect (or gets 502/503/504) is retried on another node,
    and a failed node is rested before it is tried again. `url` is the one-node form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: tuple[str, ...]
    mode: Literal["auto", "elasticsearch", "opensearch"] = "auto"
    username: str | None = None
    password_env: str | None = None
    api_key_env: str | None = None
    verify_certs: bool = True
    ca_certs: Path | None = None
    index_prefix: str = "imaging-hub"
    request_timeout_s: float = Field(default=30.0, gt=0, le=600)
    bulk_chunk_docs: int = Field(default=5_000, ge=1, le=100_000)
    bulk_max_inflight: int = Field(default=2, ge=1, le=64)
    shards: int = Field(default=1, ge=1, le=1024)
    replicas: int = Field(default=1, ge=0, le=16)
    max_retries: int = Field(default=3, ge=0, le=10)
    """Further nodes a failed request is sent to (connection errors, timeouts, 429,
    502/503/504), each within `request_timeout_s`; questions are also bounded by the
    hub's `query_deadline_s` as a whole."""
    dead_node_backoff_s: float = Field(default=1.0, gt=0, le=60)
    """How long a node that failed rests before it is tried again (doubling while it
    keeps failing, up to 30 s)."""
    sniff: bool = False
    """Ask the cluster for its nodes at start and after a node fails. Off by default: on
    Kubernetes or behind a proxy the addresses nodes publish are often not reachable."""

    @model_validator(mode="before")
    @classmethod
    def _one_url(cls, data: Any) -> Any:
        """`url = "..."` is `urls = ["..."]`; giving both is ambiguous."""
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            if "urls" in data:
                raise ValueError("give url (one node) or urls (every node), not both")
            url = data.pop("url")
            data["urls"] = [url] if isinstance(url, str) else url
        return data

    @field_validator("urls", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return value  # pydantic says what is wrong with it
        if not value:
            raise ValueError("must name at least one node")
        urls = [_node_url(v) for v in value]
        schemes = {urlsplit(u).scheme for u in urls}
        if len(schemes) > 1:
            raise ValueError("mixes http:// and https:// nodes: a cluster speaks one of them")
        if len(set(urls)) < len(urls):
            raise ValueError("names a node twice")
        return tuple(urls)

    @property
    def url(self) -> str:
        """The first node: the one messages and logs name when one is named."""
        return self.urls[0]

    @property
    def where(self) -> str:
        """The nodes, as a message names them."""
        return self.urls[0] if len(self.urls) == 1 else f"the cluster at {', '.join(self.urls)}"

    @property
    def https(self) -> bool:
        return self.url.startswith("https:")

    @field_validator("index_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not PREFIX_RE.match(value):
            raise ValueError("must be lower case letters, digits, '_' or '-' (index names)")
        return value

    @field_validator("password_env", "api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_RE.match(value):
            raise ValueError("must be the name of an environment variable, not its value")
        return value

    @field_validator("ca_certs")
    @classmethod
    def _ca(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _auth(self) -> ElasticSettings:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        if self.api_key_env is not None and self.username is not None:
            raise ValueError("give either username + password_env or api_key_env, not both")
        return self

    def basic_auth(self) -> tuple[str, str] | None:
        if self.username is None or self.password_env is None:
            return None
        return self.username, _env(self.password_env, "password_env")

    def api_key(self) -> str | None:
        return None if self.api_key_env is None else _env(self.api_key_env, "api_key_env")

    def credential_hint(self) -> str:
        """Which setting to check when the server refuses us (never the secret itself)."""
        if self.api_key_env:
            return f"the API key in ${self.api_key_env}"
        if self.username:
            return f"user {self.username!r} and the password in ${self.password_env}"
        return "credentials (none are configured: set username + password_env or api_key_env)"


def _node_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use username + password_env")
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


def _env(name: str, key: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CredentialsMissing(
            f"[index.elasticsearch] {key} names ${name}, which is not set in the environment"
        )
    return value
