"""Start and stop the hub (and fault sources) as real processes on loopback.

Each runs in a session of its own, so stopping it stops every process it forked (the
uvicorn supervisor, its workers, the multiprocessing resource tracker) and nothing is
left behind when a run fails halfway.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load.proc import alive, tree

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def hub_toml(
    data_dir: Path,
    limits: dict[str, Any] | None = None,
    live: dict[str, dict[str, Any]] | None = None,
    idc: dict[str, Any] | None = None,
) -> str:
    """A hub config: the harvested IDC source, optional live sources, and `[limits]`
    (the per-client rate limit off unless `limits` says otherwise: the load generator
    is one client address for all its connections)."""
    lines = [
        "[hub]",
        f"data_dir = {_toml_value(data_dir.resolve())}",
        'log_level = "warning"',
        "",
        "[limits]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in {"rate_limit": False, **(limits or {})}.items()]
    lines += ["", "[sources.idc]", 'adapter = "idc"', 'mode = "harvest"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in (idc or {}).items()]
    for name, table in (live or {}).items():
        lines += ["", f"[sources.{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@dataclass
class HubServer:
    """`python -m hub serve --workers N` on a free loopback port, with its own config."""

    data_dir: Path
    workers: int = 1
    config_text: str = ""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HubServer:
        if not (self.data_dir / "index" / "CURRENT").is_file():
            raise SystemExit(f"no index in {self.data_dir}; harvest it first")
        self._tmp = tempfile.TemporaryDirectory(prefix="hub-load-")
        folder = Path(self._tmp.name)
        config = folder / "hub.toml"
        config.write_text(self.config_text or hub_toml(self.data_dir))
        self.log_path = folder / "serve.log"
        argv = [
            sys.executable, "-m", "hub", "serve", "--no-harvest",
            "--port", str(self.port), "--workers", str(self.workers),
            "--config", str(config), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds until /readyz says ready; the server's log in the error if it died."""
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() - started < timeout_s:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"the hub exited before it was ready:\n{self.log()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"the hub was not ready in {timeout_s:g} s:\n{self.log()}")

    def pids(self) -> list[int]:
        """The supervisor and every process under it (the workers)."""
        return tree(self.process.pid) if self.process is not None else []

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> list[int]:
        """SIGTERM to the whole session, SIGKILL after 15 s; returns the pids it had."""
        pids = self.pids()
        if self.process is not None:
            _stop_group(self.process)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)  # killed workers take a moment to go (init reaps them)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return pids

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class FaultSources:
    """Real QIDO-RS fault servers (tests/federation/fault_server.py) in a process of
    their own, so their threads do not share the load generator's GIL."""

    specs: list[str]  # NAME:MODE:DELAY_S[:FAILURES]
    urls: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None

    def __enter__(self) -> FaultSources:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load.faults", *self.specs],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        for spec in self.specs:
            line = self.process.stdout.readline().strip()
            if not line:
                _stop_group(self.process)
                raise RuntimeError("the fault servers did not start")
            self.urls[spec.split(":")[0]] = line
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            _stop_group(self.process)


def _stop_group(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError):  # workers the supervisor left behind
        os.killpg(process.pid, signal.SIGKILL)
