"""The persisted source registry: `<data_dir>/registry/sources.json`.

It holds the sources registered at runtime (their full settings) and the runtime state
of config-file sources (only `enabled`: a config-file source is changed by editing the
config file, and cannot be removed at runtime). At startup `merge_registry` lays it over
the config file's `[sources]`, so a restart keeps every runtime change.

Writes are atomic (a temporary file in the same directory, fsync, `os.replace`) and
read-modify-write cycles hold an exclusive `flock` on `sources.json.lock`, so the CLI
and a running server can both edit it without losing each other's changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from adapters.spi import SourceSettings
from hub.config import ConfigError, HubConfig
from schema.errors import CallerError

log = logging.getLogger(__name__)
VERSION = 1


class RegistryError(CallerError):
    """A registry operation is refused; the message says why and what to do instead."""


@dataclass
class Entry:
    """One source's record in the registry."""

    origin: Literal["runtime", "config"]
    enabled: bool = True
    settings: dict[str, Any] | None = None
    """The full settings table of a runtime source; None for a config-file source."""
    updated_at: str = field(default_factory=lambda: now())
    added_at: str | None = None


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RegistryStore:
    """Reads and atomically rewrites `sources.json` under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "registry" / "sources.json"

    def stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced (what the server's watcher compares): every
        write is a new file, so its inode, modification time or size differ."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    def load(self) -> dict[str, Entry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RegistryError(
                f"the source registry {self.path} cannot be read ({exc}); fix or remove it"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise RegistryError(f"the source registry {self.path} is not a version-{VERSION} file")
        try:
            return {str(n): Entry(**e) for n, e in raw.get("sources", {}).items()}
        except (TypeError, AttributeError):
            raise RegistryError(f"the source registry {self.path} has a malformed entry") from None

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Entry]]:
        """Load under an exclusive lock, let the caller change the entries, write them back
        atomically if the block ends without an exception."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".json.lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self.load()
            yield entries
            self._write(entries)

    def _write(self, entries: dict[str, Entry]) -> None:
        body = {"version": VERSION, "sources": {n: asdict(e) for n, e in sorted(entries.items())}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".sources-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(body, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)


@dataclass(frozen=True)
class DisabledSource:
    settings: SourceSettings
    reason: str


@dataclass
class Merged:
    """The sources a hub serves: config file plus registry."""

    enabled: dict[str, SourceSettings]
    disabled: dict[str, DisabledSource]
    runtime: set[str]
    """Names whose settings come from the registry (the rest are the config file's)."""


def merge_registry(config: HubConfig, installed: Collection[str] | None = None) -> Merged:
    """The config file's sources with the registry laid over them.

    A runtime source whose adapter is no longer installed is served as disabled (so the
    hub still starts and `imaging-hub source remove` can clean up); an unknown adapter
    of a config-file source stays the config error it always was."""
    try:
        entries = RegistryStore(config.hub.data_dir).load()
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    enabled = dict(config.sources)
    disabled: dict[str, DisabledSource] = {}
    runtime: set[str] = set()
    for name, entry in entries.items():
        if entry.origin == "runtime":
            if entry.settings is None:
                raise ConfigError(f"the source registry's entry {name!r} has no settings")
            if name in config.sources:
                log.warning("registered source %r overrides the config file's", name)
            try:
                settings = SourceSettings.model_validate({**entry.settings, "name": name})
            except ValidationError as exc:
                raise ConfigError(
                    f"the source registry's entry {name!r} is invalid: {exc}"
                ) from None
            enabled[name] = settings
            runtime.add(name)
            if installed is not None and settings.adapter not in installed:
                reason = (
                    f"adapter {settings.adapter!r} is not installed; install it or remove {name}"
                )
                disabled[name] = DisabledSource(enabled.pop(name), reason)
                continue
        elif name not in config.sources:
            continue  # a config-file source since deleted from the file
        if not entry.enabled and name in enabled:
            reason = (
                f"disabled by an admin at {entry.updated_at}; enable it with setSourceEnabled "
                f"or `imaging-hub source enable {name}`"
            )
            disabled[name] = DisabledSource(enabled.pop(name), reason)
    return Merged(enabled, disabled, runtime)
