"""`imaging-hub export` and `imaging-hub cohort {save,show,rerun}`.

Kept out of `hub/cli.py`, which registers them, so the exports' options and messages
read in one place. Every mistake a person can make is a one-line message and exit
status 2 (a bad filter, format, source, cohort id) or 1 (no index yet, a file that
cannot be written), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.spi import AdapterError
from hub.config import ConfigError, load_config
from hub.export import FORMATS, Export, prepare_export
from hub.index.base import IndexNotReady
from hub.saved_cohorts import CohortNotFound, CohortStore
from hub.security.access import operator
from hub.service import Hub

err = Console(stderr=True)
console = Console()
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config (env HUB_CONFIG).")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Index directory (env HUB_DATA_DIR, default ./.hub)."),
]
cohort_app = typer.Typer(help="Saved cohorts: a stable id for a cohort and its data versions.")


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)


@contextmanager
def _hub(config: Path | None, data_dir: Path | None) -> Iterator[Hub]:
    """A hub for one command, closed after; problems become messages, not tracebacks."""
    try:
        hub = Hub(load_config(config, data_dir))
    except (ConfigError, AdapterError) as exc:
        raise _fail(f"config error: {exc}", 2) from None
    try:
        yield hub
    except IndexNotReady as exc:
        raise _fail(str(exc), 1) from None
    except CohortNotFound as exc:
        raise _fail(str(exc), 2) from None
    except ValueError as exc:  # FilterError, QueryError, ExportError, a malformed id
        raise _fail(f"bad request: {exc}", 2) from None
    finally:
        asyncio.run(hub.aclose())


def _filter(filter_json: str) -> Any:
    try:
        return json.loads(filter_json)
    except json.JSONDecodeError as exc:
        raise _fail(f"filter is not valid JSON: {exc}", 2) from None


def export_command(
    filter_json: Annotated[
        str, typer.Argument(help='Guppy-style filter, e.g. \'{"=": {"modality": "CT"}}\'.')
    ] = "{}",
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
    ] = "ndjson",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    text: Annotated[str | None, typer.Option(help="Free text, as in `query`.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only this repository's manifest (manifest formats).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many series.")] = None,
    cohort: Annotated[
        str | None, typer.Option(help="A saved cohort's id instead of FILTER_JSON/--text.")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Export a cohort's records (csv, ndjson) or a repository's download manifest
    (s5cmd for IDC, tcia, gen3, wadors), streamed with a progress bar."""
    parsed = _filter(filter_json)
    with _hub(config, data_dir) as hub:
        name = None
        if cohort is not None:
            if filter_json != "{}" or text is not None:
                raise _fail("give either --cohort or FILTER_JSON/--text, not both", 2)
            saved = CohortStore(hub).get(cohort)
            parsed, text, name = saved.filter, saved.text, f"cohort-{saved.id}"
        export = prepare_export(
            hub,
            format,
            parsed,
            text,
            source=source,
            limit=limit,
            name=name,
            caller=operator(hub.adapters),
        )
        try:
            with _sink(output) as sink, _progress(export) as advance:
                for piece in export.text(advance):
                    sink.write(piece)
        except OSError as exc:
            raise _fail(f"cannot write {output}: {exc.strerror or exc}", 1) from None
    where = str(output) if output else "stdout"
    err.print(f"{export.tally.written:,} series written to {escape(where)}")
    if export.tally.skipped:
        kinds = ", ".join(r.name for r in export.repositories)
        err.print(
            f"[yellow]{export.tally.skipped:,} series of the cohort are not held by "
            f"{escape(kinds)} and are not in this manifest[/yellow]"
        )


@contextmanager
def _sink(output: Path | None) -> Iterator[TextIO]:
    """stdout, or a file that appears only once complete (written beside it, renamed)."""
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextmanager
def _progress(export: Export) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=False) as bar:
        task = bar.add_task(f"exporting {export.format.name}", total=export.total)
        yield lambda n: bar.advance(task, n)


@cohort_app.command("save")
def cohort_save(
    filter_json: Annotated[str, typer.Argument(help="Guppy-style filter.")] = "{}",
    text: Annotated[str | None, typer.Option(help="Free text.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Answer a cohort and keep it; prints its id (same cohort, same data: same id)."""
    parsed = _filter(filter_json)
    with _hub(config, data_dir) as hub:
        saved = CohortStore(hub).save(parsed, text)
    console.print(saved.id)
    c = saved.counts
    err.print(f"{c.patients:,} patients, {c.studies:,} studies, {c.series:,} series")


@cohort_app.command("show")
def cohort_show(
    cohort_id: Annotated[str, typer.Argument(help="A saved cohort's id.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a saved cohort as JSON."""
    with _hub(config, data_dir) as hub:
        saved = CohortStore(hub).get(cohort_id)
    console.print_json(data=saved.to_json())


@cohort_app.command("rerun")
def cohort_rerun(
    cohort_id: Annotated[str, typer.Argument(help="A saved cohort's id.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Ask a saved cohort again: counts then and now, and whether the data changed."""
    with _hub(config, data_dir) as hub:
        rerun = CohortStore(hub).rerun(cohort_id)
    console.print_json(data=rerun.to_json())
