"""`imaging-hub source add|update|disable|enable|remove|harvest` and `imaging-hub auth new-key`.

The source commands act on the same persisted registry as the admin GraphQL mutations
(`<data_dir>/registry/sources.json`, see hub/registry/), through the same
`SourcesAdmin`, so validation, probing and persistence are identical. They need no
token: the CLI is local and trusted, and whoever can run it with write access to the
data directory already controls the hub. A running server on the same data directory
applies the change within a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from adapters.spi import AdapterError
from hub.config import ConfigError, load_config
from hub.registry.admin import SourceChange, SourcesAdmin
from hub.security.apikeys import new_key
from hub.service import Hub

err = Console(stderr=True)
console = Console()
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config (env HUB_CONFIG).")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (env HUB_DATA_DIR, default ./.hub)."),
]
NameArg = Annotated[str, typer.Argument(help="The source's name, as in [sources.NAME].")]
SettingsOpt = Annotated[
    str | None,
    typer.Option("--settings", help='Settings as a JSON object, e.g. \'{"adapter": "dicomweb"}\'.'),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="KEY=VALUE (repeatable); VALUE is JSON when it parses, else text."),
]

source_app = typer.Typer(
    help="Register, change, disable, remove and harvest sources at runtime (local, trusted: "
    "needs write access to the data directory).",
    no_args_is_help=True,
)
auth_app = typer.Typer(help="Credentials for the hub's API.", no_args_is_help=True)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)


@contextmanager
def _admin(config: Path | None, data_dir: Path | None) -> Iterator[SourcesAdmin]:
    try:
        hub = Hub(load_config(config, data_dir))
    except (ConfigError, AdapterError) as exc:
        raise _fail(f"config error: {exc}", 2) from None
    try:
        yield SourcesAdmin.of(hub)
    except ValueError as exc:  # RegistryError, ConfigError: the message says what to change
        raise _fail(str(exc), 2) from None
    finally:
        asyncio.run(hub.aclose())


def _settings(settings: str | None, pairs: list[str] | None) -> dict[str, Any]:
    table: dict[str, Any] = {}
    if settings:
        try:
            table = json.loads(settings)
        except ValueError:
            raise _fail("--settings is not valid JSON", 2) from None
        if not isinstance(table, dict):
            raise _fail("--settings must be a JSON object", 2)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--set takes KEY=VALUE, got {pair!r}", 2)
        try:
            table[key.strip()] = json.loads(value)
        except ValueError:
            table[key.strip()] = value
    return table


def _report(change: SourceChange) -> None:
    console.print(change.message, markup=False)


def _run(
    action: Callable[[SourcesAdmin], SourceChange], config: Path | None, data: Path | None
) -> None:
    with _admin(config, data) as admin:
        change = action(admin)
    _report(change)


@source_app.command("add")
def add(
    name: NameArg,
    settings: SettingsOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Register a source: validated, probed, then live (harvest it next if mode=harvest)."""
    table = _settings(settings, set_)
    _run(lambda a: a.register(name, table), config, data_dir)


@source_app.command("update")
def update(
    name: NameArg,
    settings: SettingsOpt = None,
    set_: SetOpt = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change a registered source (given keys replace the current ones; null removes one)."""
    table = _settings(settings, set_)
    _run(lambda a: a.update(name, table), config, data_dir)


@source_app.command("disable")
def disable(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Skip a source (config-file ones too); answers report it as disabled."""
    _run(lambda a: a.set_enabled(name, False), config, data_dir)


@source_app.command("enable")
def enable(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Serve a disabled source again (probed first)."""
    _run(lambda a: a.set_enabled(name, True), config, data_dir)


@source_app.command("remove")
def remove(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Remove a source registered at runtime (config-file sources can only be disabled)."""
    _run(lambda a: a.remove(name), config, data_dir)


@source_app.command("harvest")
def harvest(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Harvest one source and rebuild the index (returns when done)."""
    _run(lambda a: a.harvest(name), config, data_dir)


@auth_app.command("new-key")
def new_key_command(
    name: Annotated[str, typer.Argument(help="Key name, shown in the audit log.")],
    role: Annotated[str, typer.Option(help="reader or admin.")] = "reader",
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="A controlled source this key may read (repeatable)."),
    ] = None,
) -> None:
    """Print a fresh random API key ONCE, and the config table holding only its hash."""
    if role not in ("reader", "admin"):
        raise _fail(f"--role must be reader or admin, got {role!r}", 2)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise _fail("key names use letters, digits, '-' and '_' (at most 64)", 2)
    made = new_key()
    console.print(f"API key {name!r} (shown once; the hub keeps only its hash):", markup=False)
    console.print(f"  {made.key}", markup=False, soft_wrap=True)
    console.print("\nAdd to the hub config:\n", markup=False)
    console.print(made.config_table(name, role, source), markup=False, soft_wrap=True)
    console.print("\nCallers send it as: Authorization: Bearer <key>", markup=False)
