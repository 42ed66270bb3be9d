"""Runtime source administration: register, update, enable/disable, remove, harvest.

Every operation follows the same path: check (the caller's role is checked before, by
the API; the CLI is local and trusted), validate and probe a new or changed source
(`validate.py`), persist the change in the registry (`store.py`), then `sync`, which
brings the running hub's adapters and the planner's live sources in line with config +
registry under a lock. Dicts are swapped whole, so a cohort in flight finishes on the
sources it started with. When the set of harvested sources the index should hold
changes (a harvested source disabled, enabled or removed), the index is rebuilt from
the last good snapshots before the operation returns, so the next answer reflects it.

A server also runs `watch`, which applies changes another process (the CLI) wrote to
the registry within a few seconds; that process already rebuilt the index.

`harvest` returns when the harvest has finished (and the index is rebuilt): the caller
learns success or the adapter's error in the answer. Harvests are serialised; a long
one (full IDC: a minute) holds its request open that long, which is why a scheduled
harvest (`imaging-hub harvest`, the deploy CronJob) remains the way to refresh big
sources.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from adapters.registry import discover_adapters
from adapters.spi import Adapter, AdapterError, SourceSettings
from hub.registry.store import (
    DisabledSource,
    Entry,
    RegistryError,
    RegistryStore,
    merge_registry,
    now,
)
from hub.registry.validate import build, check_settings, probe, scrub
from hub.service import Hub

log = logging.getLogger(__name__)
CLOSE_GRACE_S = 30.0
"""Adapters that left are closed this long after, so a query in flight can finish."""


@dataclass(frozen=True)
class SourceChange:
    """What an operation did, for the API and the CLI."""

    source: str
    action: str
    message: str
    enabled: bool = True
    series: int | None = None


class SourcesAdmin:
    """One per hub (`SourcesAdmin.of(hub)`): its lock serialises changes in this process,
    the registry's file lock serialises them across processes."""

    _admins: ClassVar[weakref.WeakKeyDictionary[Hub, SourcesAdmin]] = weakref.WeakKeyDictionary()
    _admins_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = RegistryStore(hub.data_dir)
        self._lock = threading.RLock()
        self._harvest_lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None  # a registry file: sync at first watch
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, hub: Hub) -> SourcesAdmin:
        with cls._admins_lock:
            admin = cls._admins.get(hub)
            if admin is None:
                admin = cls._admins[hub] = cls(hub)
            return admin

    # --- operations ----------------------------------------------------------------

    def register(self, name: str, settings: Any) -> SourceChange:
        """Add a source: validated, probed, persisted, live at once (harvest it next)."""
        with self._lock:
            self._follow()
            self._refuse_config_source(name, "registered again")
            if self._runtime_entry(name) is not None:
                raise RegistryError(
                    f"source {name!r} is already registered; change it with updateSource "
                    f"or `imaging-hub source update {name}`"
                )
            valid = self._checked_and_probed(name, settings)
            with self.store.edit() as entries:
                if name in entries and entries[name].origin == "runtime":
                    raise RegistryError(f"source {name!r} was registered meanwhile")
                entries[name] = Entry("runtime", True, _persisted(valid), added_at=now())
            self.sync(reindex=True)
        then = "harvest it next" if valid.mode == "harvest" else "it answers live queries now"
        return SourceChange(name, "registered", f"registered {name!r} ({valid.adapter}); {then}")

    def update(self, name: str, changes: Any) -> SourceChange:
        """Change a registered source's settings: `changes` are laid over the current ones
        (a key set to null is removed); the result is validated and probed like a new one."""
        with self._lock:
            self._follow()
            self._refuse_config_source(name, "changed at runtime")
            entry = self._runtime_entry(name)
            if entry is None or entry.settings is None:
                raise self._unknown(name)
            if not isinstance(changes, dict):
                raise RegistryError("settings must be a JSON object of the keys to change")
            merged = {k: v for k, v in {**entry.settings, **changes}.items() if v is not None}
            valid = (
                self._checked_and_probed(name, merged)
                if entry.enabled
                else check_settings(name, merged, discover_adapters(), self.hub.config.hub.index)
            )
            with self.store.edit() as entries:
                entries[name] = Entry(
                    "runtime", entry.enabled, _persisted(valid), added_at=entry.added_at
                )
            self.sync(reindex=True)
        return SourceChange(name, "updated", f"updated {name!r}", entry.enabled)

    def set_enabled(self, name: str, enabled: bool) -> SourceChange:
        """Disable (skipped, and reported as disabled) or enable (probed first) a source,
        config-file sources included."""
        with self._lock:
            self._follow()
            in_config = name in self.hub.config.sources
            entry = self._runtime_entry(name)
            if entry is None and not in_config:
                raise self._unknown(name)
            was = name not in self.hub.disabled
            if was == enabled:
                state = "enabled" if enabled else "disabled"
                return SourceChange(name, state, f"{name!r} is already {state}", enabled)
            if enabled and entry is not None:
                self._checked_and_probed(name, entry.settings)
            elif enabled:  # the config file's settings were validated when it was loaded
                self._probed(self.hub.config.sources[name])
            with self.store.edit() as entries:
                if entry is not None and entry.settings is not None:
                    entries[name] = Entry(
                        "runtime", enabled, entry.settings, added_at=entry.added_at
                    )
                elif enabled:
                    entries.pop(name, None)  # a config-file source enabled is just the file again
                else:
                    entries[name] = Entry("config", False)
            self.sync(reindex=True)
        state = "enabled" if enabled else "disabled"
        return SourceChange(name, state, f"{state} {name!r}", enabled)

    def remove(self, name: str) -> SourceChange:
        """Forget a runtime source: its registry entry, its live answers and its snapshot."""
        with self._lock:
            self._follow()
            if name in self.hub.config.sources and self._runtime_entry(name) is None:
                raise RegistryError(
                    f"source {name!r} is defined in the config file and cannot be removed at "
                    f"runtime; disable it (setSourceEnabled(name: {name!r}, enabled: false) or "
                    f"`imaging-hub source disable {name}`), or delete [sources.{name}] from the "
                    "config file"
                )
            if self._runtime_entry(name) is None:
                raise self._unknown(name)
            with self.store.edit() as entries:
                entries.pop(name, None)
            self.sync(reindex=True)
            if name not in self.hub.adapters and name not in self.hub.disabled:
                shutil.rmtree(self.hub.snapshots.root / name, ignore_errors=True)
        return SourceChange(name, "removed", f"removed {name!r}", False)

    def harvest(self, name: str) -> SourceChange:
        """Harvest one source into its snapshot and rebuild the index; returns when done.
        A failed harvest keeps the previous snapshot and says why."""
        self._follow()
        adapter = self.hub.adapters.get(name)
        if adapter is None:
            if name in self.hub.disabled:
                raise RegistryError(f"source {name!r} is disabled; enable it before harvesting")
            raise self._unknown(name)
        settings = adapter.settings
        if settings.mode != "harvest" or not adapter.capabilities.harvest:
            raise RegistryError(
                f"source {name!r} is not harvested (mode = {settings.mode!r}, adapter harvest "
                f"support: {adapter.capabilities.harvest}); live sources are asked per query"
            )
        with self._harvest_lock:
            fresh = type(adapter)(settings)  # its own client, on this thread's own loop
            try:
                snap = _run(self._harvest_into_snapshot(fresh))
            except AdapterError as exc:
                raise RegistryError(
                    f"harvest of {name!r} failed: {scrub(str(exc), settings)}; the previous "
                    "copy is kept"
                ) from None
            with self._lock:
                self.reindex()
        return SourceChange(
            name, "harvested", f"harvested {snap:,} series from {name!r}", True, snap
        )

    # --- applying the registry to the running hub -------------------------------------

    def sync(self, reindex: bool = False) -> bool:
        """Bring the hub's adapters in line with config + registry; True if any changed.
        With `reindex`, rebuild the index when the harvested sources it should hold
        changed (the process that made a change does; a watcher only follows)."""
        with self._lock:
            stamp = self.store.stamp()
            installed = discover_adapters()
            merged = merge_registry(self.hub.config, installed)
            before = self._indexed()
            old, new = self.hub.adapters, {}
            disabled = dict(merged.disabled)
            for name, settings in merged.enabled.items():
                current = old.get(name)
                if current is not None and current.settings == settings:
                    new[name] = current
                    continue
                try:
                    new[name] = build(installed[settings.adapter], settings)
                except RegistryError as exc:
                    disabled[name] = DisabledSource(settings, str(exc))
            left = [a for n, a in old.items() if new.get(n) is not a]
            self.hub.adapters = new
            self.hub.disabled = disabled
            self.hub.planner.set_sources(new)
            self._stamp = stamp
            # both backends: drop the live answers of live sources that left
            self.hub.index.reopen({a.name for a in left if a.settings.mode == "live"})
            self._close_later(left)
            if reindex and self._indexed() != before:
                self.reindex()
            return bool(left) or set(new) != set(old)

    def _follow(self) -> None:
        """Catch up with changes another process made, before acting on the hub's view."""
        if self.store.stamp() != self._stamp:
            self.sync()

    async def watch(self, interval_s: float = 2.0) -> None:
        """Follow registry changes written by other processes (the CLI), until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            if self.store.stamp() == self._stamp:
                continue
            try:
                await asyncio.to_thread(self.sync)
            except Exception:  # a bad registry edit must not stop the watcher
                log.exception("could not apply the changed source registry")

    def start_watching(self, interval_s: float = 2.0) -> asyncio.Task[None]:
        """`watch` as a task on the running loop (the server's lifespan cancels it)."""
        return asyncio.get_running_loop().create_task(self.watch(interval_s), name="registry")

    def reindex(self) -> None:
        """Rebuild the index from the last good snapshots of the enabled sources (what
        `Hub.harvest` does after fetching), so a disabled or removed source leaves it."""
        hub = self.hub
        snapshots = [s for s in hub.snapshots.all() if s.source in hub.adapters]
        priorities = {n: a.settings.priority for n, a in hub.adapters.items()}
        _run(hub.index.publish(snapshots, priorities))

    # --- helpers -----------------------------------------------------------------------

    def _checked_and_probed(self, name: str, raw: Any) -> SourceSettings:
        settings = check_settings(name, raw, discover_adapters(), self.hub.config.hub.index)
        self._probed(settings)
        return settings

    @staticmethod
    def _probed(settings: SourceSettings) -> None:
        installed = discover_adapters()
        if settings.adapter not in installed:
            raise RegistryError(f"adapter {settings.adapter!r} is not installed")
        adapter = build(installed[settings.adapter], settings)
        try:
            _run(probe(adapter))
        finally:
            _run(adapter.aclose())

    async def _harvest_into_snapshot(self, adapter: Adapter) -> int:
        try:
            snap = await self.hub.snapshots.write(
                adapter.name, adapter.harvest(), adapter.data_version()
            )
        finally:
            await adapter.aclose()
        return snap.series

    def _indexed(self) -> dict[str, int]:
        """The harvested sources the index should hold, with their priorities."""
        return {
            n: a.settings.priority
            for n, a in self.hub.adapters.items()
            if self.hub.snapshots.get(n) is not None
        }

    def _runtime_entry(self, name: str) -> Entry | None:
        entry = self.store.load().get(name)
        return entry if entry is not None and entry.origin == "runtime" else None

    def _refuse_config_source(self, name: str, verb: str) -> None:
        if name in self.hub.config.sources and self._runtime_entry(name) is None:
            raise RegistryError(
                f"source {name!r} is defined in the config file and cannot be {verb}; edit "
                "the config file (at runtime a config-file source can only be disabled or "
                "enabled)"
            )

    def _unknown(self, name: str) -> RegistryError:
        known = sorted({*self.hub.adapters, *self.hub.disabled})
        return RegistryError(f"no source named {name!r}; known sources: {', '.join(known)}")

    def _close_later(self, adapters: list[Adapter]) -> None:
        loop = self.hub.planner.loop
        if loop is None or not loop.is_running():
            for adapter in adapters:
                self.hub.planner.run(adapter.aclose())
            return

        def close(adapter: Adapter) -> None:
            task = loop.create_task(adapter.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

        for adapter in adapters:
            loop.call_soon_threadsafe(loop.call_later, CLOSE_GRACE_S, close, adapter)


def _persisted(settings: SourceSettings) -> dict[str, Any]:
    """What the registry keeps of validated settings: what was given, minus the name."""
    dumped: dict[str, Any] = settings.model_dump(mode="json", exclude_unset=True)
    dumped.pop("name", None)
    return dumped


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on a loop of this thread's own: admin calls come from a worker thread (API) or
    the CLI's main thread, never from inside the server's loop."""
    return asyncio.run(coro)
