"""`imaging-hub source ...` edits the same registry, and a running hub follows it.

The "running hub" is a `Hub` whose `SourcesAdmin.watch` task runs, as the server's
lifespan starts it; each CLI command is a separate `Hub` over the same data directory,
as a separate process would be.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.config import HubConfig
from hub.registry.admin import SourcesAdmin
from hub.service import Hub
from tests.federation.fault_server import FaultServer
from tests.registry.support import SERIES, dicomweb, series


@pytest.fixture()
def config_file(config: HubConfig, tmp_path: Path) -> Path:
    cfg = config.sources["cfg"]
    path = tmp_path / "hub.toml"
    path.write_text(
        f'[hub]\ndata_dir = "{config.hub.data_dir}"\n\n[sources.cfg]\nadapter = "dicomweb"\n'
        f'mode = "harvest"\nurl = "{cfg.url}"\ncollection = "cfg_ct"\npage_size = 10\n'
    )
    return path


def cli(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv))
    return result.exit_code, result.output


def follow(hub: Hub, done: Callable[[], bool]) -> bool:
    """Run the hub's registry watcher until `done()` (at most 5 s)."""

    async def run() -> bool:
        task = asyncio.create_task(SourcesAdmin.of(hub).watch(interval_s=0.05))
        try:
            for _ in range(100):
                if done():
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            task.cancel()

    return asyncio.run(run())


def test_cli_changes_reach_a_running_hub(
    make_hub: Callable[[], Hub], config_file: Path, server: FaultServer
) -> None:
    running = make_hub()
    opts = ["--config", str(config_file)]
    code, out = cli("source", "add", "acme", "--settings", json.dumps(dicomweb(server.url)), *opts)
    assert code == 0, out
    assert "registered 'acme' (dicomweb)" in out
    assert follow(running, lambda: "acme" in running.adapters)
    assert series(running) == SERIES  # the watcher put it in the planner's live sources

    code, out = cli("source", "update", "acme", "--set", "timeout_s=4", *opts)
    assert code == 0, out
    assert follow(running, lambda: running.adapters["acme"].settings.timeout_s == 4)

    code, out = cli("source", "disable", "acme", *opts)
    assert (code, out.strip()) == (0, "disabled 'acme'")
    assert follow(running, lambda: "acme" in running.disabled)
    assert series(running) == 0

    restarted = {s.name: s.status for s in make_hub().sources()}
    assert restarted == {"cfg": "ready", "acme": "disabled"}

    code, out = cli("source", "remove", "cfg", *opts)
    assert code == 2 and "cannot be removed at runtime" in out

    code, out = cli("source", "harvest", "cfg", *opts)
    assert (code, out.strip()) == (0, "harvested 12 series from 'cfg'")

    code, out = cli("source", "remove", "acme", *opts)
    assert code == 0, out
    assert follow(running, lambda: "acme" not in running.disabled)
    assert "acme" not in running.adapters


def test_cli_refusals_are_one_line_messages(config_file: Path) -> None:
    opts = ["--config", str(config_file)]
    code, out = cli("source", "add", "x", "--settings", "{not json", *opts)
    assert (code, out.strip()) == (2, "--settings is not valid JSON")
    code, out = cli(
        "source", "add", "x", "--set", "adapter=dicomweb", "--set", "url=ftp://h/", *opts
    )
    assert code == 2 and "url must start with http:// or https://" in out
    assert "Traceback" not in out
    code, out = cli("source", "enable", "nope", *opts)
    assert code == 2 and "no source named 'nope'" in out
