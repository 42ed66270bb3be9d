"""`imaging-hub`: serve, harvest, list sources, and ask cohort questions from a terminal."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.spi import AdapterError
from hub.cli_export import cohort_app, export_command
from hub.cli_sources import auth_app, source_app
from hub.config import ConfigError, HubConfig, load_config
from hub.index.base import IndexFailure, IndexNotReady, QueryError
from hub.scaffold import ScaffoldError, new_adapter
from hub.security.access import operator
from hub.service import Hub
from schema.filters import FilterError

app = typer.Typer(
    help="Imaging Hub: one cohort query across imaging repositories.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config (env HUB_CONFIG).")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Index directory (env HUB_DATA_DIR, default ./.hub)."),
]


def _config(config: Path | None, data_dir: Path | None) -> HubConfig:
    try:
        return load_config(config, data_dir)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def _hub(config: HubConfig) -> Hub:
    try:
        return Hub(config)
    except (ConfigError, AdapterError) as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def harvest(
    source: Annotated[
        str | None, typer.Argument(help="One source; default: every harvest-mode source.")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Copy sources into the index. A failed harvest keeps the last good copy."""
    hub = _hub(_config(config, data_dir))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                label = (
                    f"fetching {stage.split(':', 1)[1]}"
                    if stage.startswith("fetch:")
                    else "indexing"
                )
                tasks[stage] = bar.add_task(label, total=total)
            bar.advance(tasks[stage], done)

        try:
            asyncio.run(hub.harvest([source] if source else None, progress))
        except (AdapterError, ConfigError, IndexNotReady, IndexFailure) as exc:
            err.print(f"[red]harvest failed:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            asyncio.run(hub.aclose())
    for info in hub.sources():
        console.print(f"{info.name}: {info.message}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Worker processes; each holds its own hub (use one per core)."
        ),
    ] = 1,
    harvest_first: Annotated[
        bool | None,
        typer.Option(
            "--harvest/--no-harvest",
            help="Harvest before serving. Default: only when an embedded index is empty; "
            "never into Elasticsearch (a shared cluster is filled by `imaging-hub harvest`).",
        ),
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Serve GraphQL at /graphql (GraphiQL in a browser). Harvests first if the embedded
    index is empty."""
    import uvicorn

    cfg = _config(config, data_dir)
    hub = _hub(cfg)
    if harvest_first is None:
        harvest_first = cfg.hub.index == "embedded" and not hub.index.ready()
    asyncio.run(hub.aclose())
    if harvest_first:
        console.print(f"Harvesting {', '.join(hub.harvestable())} into the index first.")
        # A child process does the harvest so the server starts with a small heap.
        argv = [sys.executable, "-m", "hub", "harvest", "--data-dir", str(cfg.hub.data_dir)]
        if config:
            argv += ["--config", str(config)]
        if subprocess.run(argv, check=False).returncode != 0:
            err.print("[red]the first harvest failed; not serving an empty index[/red]")
            raise typer.Exit(1)
    elif cfg.hub.index == "elasticsearch":
        console.print("Not harvesting into Elasticsearch on start (pass --harvest to).")
    # Each worker builds its app from the environment (hub.api.asgi), after the fork.
    if config:
        os.environ["HUB_CONFIG"] = str(Path(config).resolve())
    os.environ["HUB_DATA_DIR"] = str(Path(cfg.hub.data_dir).resolve())
    console.print(f"Imaging Hub on http://{host}:{port}/graphql ({workers} worker(s))")
    uvicorn.run(
        "hub.api.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=cfg.hub.log_level,
    )


@app.command()
def sources(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List configured sources, their capabilities and last harvest."""
    hub = _hub(_config(config, data_dir))
    table = Table(
        "source",
        "adapter",
        "mode",
        "route",
        "access",
        "status",
        "series",
        "harvested",
        "data version",
    )
    for s in hub.sources():
        table.add_row(
            s.name,
            s.adapter,
            s.mode,
            s.route or "-",
            s.access,
            s.status,
            f"{s.series:,}" if s.series is not None else "-",
            s.harvested_at or "-",
            s.data_version or "-",
        )
    console.print(table)


@app.command()
def query(
    filter_json: Annotated[
        str, typer.Argument(help='Guppy-style filter, e.g. \'{"=": {"modality": "CT"}}\'.')
    ] = "{}",
    text: Annotated[str | None, typer.Option(help="Free text, ranked by BM25.")] = None,
    facet: Annotated[list[str] | None, typer.Option(help="Facet field (repeatable).")] = None,
    size: Annotated[int, typer.Option(help="Buckets per facet.")] = 10,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print counts and facets of a cohort."""
    hub = _hub(_config(config, data_dir))
    fields = facet or ["source", "collection", "modality", "body_part", "sex", "license"]
    try:
        parsed = json.loads(filter_json)
    except json.JSONDecodeError as exc:
        err.print(f"[red]filter is not valid JSON:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        cohort = hub.cohort(parsed, text, operator(hub.adapters))
        counts = cohort.view.counts()
        facets = cohort.view.facets(fields, size)
    except (FilterError, QueryError, ValueError) as exc:
        err.print(f"[red]bad query:[/red] {exc}")
        raise typer.Exit(2) from None
    except IndexNotReady as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    summary = Table("patients", "studies", "series", title="Cohort")
    summary.add_row(f"{counts.patients:,}", f"{counts.studies:,}", f"{counts.series:,}")
    console.print(summary)
    for f in facets:
        table = Table(f.field, "series", title=f"{f.field} (missing {f.missing:,})")
        for b in f.buckets:
            table.add_row(b.key, f"{b.count:,}")
        console.print(table)
    asyncio.run(hub.aclose())


adapter_app = typer.Typer(
    help="Connect a new repository: write an adapter package to start from.",
    no_args_is_help=True,
)
app.add_typer(adapter_app, name="adapter")


@adapter_app.command("new")
def adapter_new(
    name: Annotated[str, typer.Argument(help="Adapter name, e.g. 'acme' or 'city-pacs'.")],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Directory to write (default ./imaging-hub-NAME)."),
    ] = None,
) -> None:
    """Write an adapter package: entry point, adapter module, respx fixtures, conformance
    tests. It installs and passes its tests as written; then make it speak your API."""
    try:
        path = new_adapter(name, directory)
    except ScaffoldError as exc:
        err.print(f"[red]cannot create the adapter:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"Wrote the {name!r} adapter package to {path}. Next:", markup=False)
    console.print(f"  cd {path} && pip install -e '.[test]' && pytest", markup=False)
    console.print("  then see docs/maintainers-guide.md to make it speak your archive's API")


app.command("export")(export_command)
app.add_typer(cohort_app, name="cohort")
app.add_typer(source_app, name="source")
app.add_typer(auth_app, name="auth")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
