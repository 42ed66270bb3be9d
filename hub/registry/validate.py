"""What a source must pass before it is registered at runtime: its settings, then a probe.

The same rules as the config file, plus what only runtime registration can check:
the settings validate as `SourceSettings` (adapters/spi.py); no secret is written
inline (`hub.config.SECRET_KEYS`, at any depth); a URL is http(s) with a host; the
adapter is installed (entry-point group `imaging_hub.adapters`); credentials are named
by environment variable (`credentials_env`) and that variable is set in the hub's
environment. Then the adapter answers one small question (`Adapter.probe`), so a wrong
URL or refused credentials never go live. Messages never contain a secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from adapters.spi import Adapter, AdapterError, SourceSettings
from hub.config import SECRET_KEYS
from hub.federation.route import mode_problem
from hub.index.elastic.settings import check_source_name
from hub.registry.store import RegistryError

log = logging.getLogger(__name__)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_SETTINGS = 64 * 1024
"""A source table is well under 1 KiB; bounding it bounds what is persisted."""


def check_settings(
    name: str, raw: Any, installed: Mapping[str, type[Adapter]], index: str = "embedded"
) -> SourceSettings:
    """Validated settings for source `name`, or RegistryError saying what to change."""
    if not isinstance(raw, dict):
        raise RegistryError('settings must be a JSON object, e.g. {"adapter": "dicomweb", ...}')
    if len(repr(raw)) > MAX_SETTINGS:
        raise RegistryError(f"settings are larger than {MAX_SETTINGS} characters")
    inline = _secret_keys(raw)
    if inline:
        raise RegistryError(
            f"source {name!r} writes a secret inline ({', '.join(inline)}); put it in an "
            "environment variable of the hub and name it with credentials_env"
        )
    given = raw.get("name", name)
    if given != name:
        raise RegistryError(f"settings name the source {given!r}, but it is registered as {name!r}")
    try:
        settings = SourceSettings.model_validate({**raw, "name": name})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise RegistryError(f"invalid settings for source {name!r}: {problems}") from None
    if index == "elasticsearch":
        try:
            check_source_name(name)
        except ValueError as exc:
            raise RegistryError(f"source {name!r}: {exc}") from None
    _check_url(settings)
    if settings.adapter not in installed:
        raise RegistryError(
            f"adapter {settings.adapter!r} is not installed; installed adapters: "
            f"{', '.join(sorted(installed)) or 'none'} (a package declares its adapter under "
            "the entry-point group imaging_hub.adapters)"
        )
    _check_credentials(settings)
    resource = settings.option("authz_resource")
    if resource is not None and not (
        isinstance(resource, str)
        or (isinstance(resource, list) and all(isinstance(r, str) for r in resource))
    ):
        raise RegistryError("authz_resource must be a string or a list of strings")
    return settings


def _secret_keys(table: Mapping[str, Any], path: str = "") -> list[str]:
    found = []
    for key, value in table.items():
        where = f"{path}{key}"
        if str(key).lower() in SECRET_KEYS:
            found.append(where)
        elif isinstance(value, Mapping):
            found += _secret_keys(value, where + ".")
    return found


def _check_url(settings: SourceSettings) -> None:
    if settings.url is None:
        return
    parts = urlsplit(settings.url)
    if parts.scheme not in ("http", "https"):
        raise RegistryError(
            f"source {settings.name!r}: url must start with http:// or https:// "
            f"(got scheme {parts.scheme or 'none'!r})"
        )
    if not parts.hostname:
        raise RegistryError(f"source {settings.name!r}: url has no host")
    if parts.username or parts.password:
        raise RegistryError(
            f"source {settings.name!r}: url carries credentials; name an environment "
            "variable with credentials_env instead"
        )


def _check_credentials(settings: SourceSettings) -> None:
    env = settings.credentials_env
    if env is None:
        return
    if not ENV_NAME.fullmatch(env):
        raise RegistryError(
            f"source {settings.name!r}: credentials_env must be the NAME of an environment "
            "variable (letters, digits, '_'), never the secret itself"
        )
    if not os.environ.get(env, "").strip():
        raise RegistryError(
            f"source {settings.name!r}: environment variable {env} is not set in the hub's "
            "environment; set it where the hub runs, then register again"
        )


def scrub(message: str, settings: SourceSettings) -> str:
    """The message with the source's secret blanked, should an adapter have leaked it."""
    secret = os.environ.get(settings.credentials_env or "", "").strip()
    return message.replace(secret, "***") if len(secret) >= 4 else message


def build(cls: type[Adapter], settings: SourceSettings) -> Adapter:
    """The adapter, or RegistryError when it refuses its settings or cannot serve their
    `mode` (live search, or harvesting)."""
    try:
        adapter = cls(settings)
    except AdapterError as exc:
        raise RegistryError(
            f"adapter {settings.adapter!r} refused the settings of {settings.name!r}: "
            f"{scrub(str(exc), settings)}"
        ) from None
    except Exception as exc:  # a plugin's bug: its text may name internals, so the log has it
        log.warning("adapter %s raised %s", settings.adapter, type(exc).__name__, exc_info=True)
        raise RegistryError(
            f"adapter {settings.adapter!r} could not start with the settings of "
            f"{settings.name!r}: it raised {type(exc).__name__} (see the hub's log)"
        ) from None
    problem = mode_problem(settings, adapter.capabilities)  # the config file's rule too
    if problem is not None:
        raise RegistryError(problem)
    return adapter


async def probe(adapter: Adapter) -> None:
    """Ask the source one small question; RegistryError with the adapter's own message
    (secrets scrubbed) when it cannot answer."""
    settings = adapter.settings
    try:
        await asyncio.wait_for(adapter.probe(), timeout=settings.timeout_s)
    except TimeoutError:
        raise RegistryError(
            f"probe of {settings.name!r} failed: no answer within {settings.timeout_s:g} s "
            "(timeout_s); the source was not changed"
        ) from None
    except AdapterError as exc:
        raise RegistryError(
            f"probe of {settings.name!r} failed: {scrub(str(exc), settings)}; "
            "the source was not changed"
        ) from None
    except Exception as exc:  # a plugin's bug must not surface as a traceback or a secret
        log.warning("probe of %s raised %s", settings.name, type(exc).__name__, exc_info=True)
        raise RegistryError(
            f"probe of {settings.name!r} failed: the adapter raised {type(exc).__name__}; "
            "the source was not changed (see the hub's log)"
        ) from None
