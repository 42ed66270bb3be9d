"""From `imaging-hub adapter new` to a cohort answer, in one test.

An adapter generated from the template is installed (`pip install -e`, offline) into a
fresh virtual environment that sees the hub's own packages; there its generated tests pass,
and a separate process finds it through its `imaging_hub.adapters` entry point, configures
it as a live source pointing at a real HTTP server on loopback (serving the template's own
fixture through the template's fake API), and answers a cohort query through `hub.service.Hub`.

The second test does the same with no config entry at all: `imaging-hub serve` runs in the
fresh venv, an admin registers the adapter at runtime through the `registerSource`
mutation over HTTP (the server validates it, finds the adapter by its entry point and
probes the loopback API), and the next cohort query over HTTP answers from it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.security.apikeys import new_key
from tests.dicomweb.conftest import free_port

QUERY = {"AND": [{"=": {"modality": "CT"}}, {"=": {"sex": "female"}}]}
# In tests/fixtures/series.json of the template: LS-001's CT series (062Y, "F") and LS-003's
# two CT series ("female", "071"); the SEG of LS-001, LS-002 (male) and LS-004 (sex "") are not.
EXPECTED = {"patients": 2, "studies": 2, "series": 3}

SCRIPT = """
import asyncio, json, sys
from adapters.registry import discover_adapters
from hub.config import load_config
from hub.service import Hub

found = discover_adapters()
hub = Hub(load_config(sys.argv[1]))
try:
    asyncio.run(hub.harvest())  # no harvest-mode source: builds the empty index live answers join
    cohort = hub.cohort(json.loads(sys.argv[2]), None)
    counts = cohort.view.counts()
    print(json.dumps({
        "adapter": f"{found['acme'].__module__}.{found['acme'].__name__}",
        "counts": {"patients": counts.patients, "studies": counts.studies, "series": counts.series},
        "status": {r.source: r.status for r in hub.by_source(cohort)},
    }))
finally:
    asyncio.run(hub.aclose())
"""


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("generated_fake_api", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The generated package, and the URL of a loopback server answering as its fake API."""
    package = tmp_path / "imaging-hub-acme"
    result = CliRunner().invoke(app, ["adapter", "new", "acme", "--dir", str(package)])
    assert result.exit_code == 0, result.output
    fake = _load(package / "tests" / "fake_api.py")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            status, body = fake.answer(url.path, dict(parse_qsl(url.query)))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield package, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _venv(root: Path) -> Path:
    """A fresh venv whose interpreter also sees the hub's site-packages (no network)."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    hub_site = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "_imaging_hub.pth").write_text(f"import site; site.addsitedir({hub_site!r})\n")
    return python


def _run(argv: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HUB_CONFIG")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_generated_adapter_installs_passes_its_tests_and_answers_a_cohort(
    archive: tuple[Path, str], tmp_path: Path
) -> None:
    package, url = archive
    python = _venv(tmp_path / "venv")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    installed = _run([*pip, "--no-index", "-e", package], tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    tests = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], package)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "11 passed" in tests.stdout  # 7 conformance checks + 4 adapter tests, none skipped

    config = tmp_path / "hub.toml"
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[sources.acme]\nadapter = "acme"\nmode = "live"\nurl = "{url}"\ncache_ttl_s = 0\n'
    )
    script = tmp_path / "ask.py"
    script.write_text(SCRIPT)
    asked = _run([python, script, config, json.dumps(QUERY)], tmp_path)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    answer = json.loads(asked.stdout.strip().splitlines()[-1])
    assert answer["adapter"] == "acme_adapter.adapter.AcmeAdapter"
    assert answer["status"] == {"acme": "ok"}
    assert answer["counts"] == EXPECTED


REGISTER = """mutation($s: JSON!) {
  registerSource(name: "acme", settings: $s) { action message } }"""
COHORT = """query($f: JSON) { cohort(filter: $f) {
  counts { patients studies series } bySource { source status } } }"""


def _serve(python: Path, config: Path, port: int, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HUB_CONFIG")}
    argv = [python, "-m", "hub", "serve", "--config", config, "--port", str(port)]
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_until_up(server: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    pytest.fail(f"the hub did not start: {server.communicate()[0][-3000:]}")


def test_generated_adapter_registered_at_runtime_answers_a_cohort(
    archive: tuple[Path, str], tmp_path: Path
) -> None:
    package, api = archive
    python = _venv(tmp_path / "venv")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    installed = _run([*pip, "--no-index", "-e", package], tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    admin = new_key()
    config = tmp_path / "hub.toml"  # no source at all: acme arrives at runtime
    config.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[auth.api_keys.ops]\nhash = "{admin.hash}"\nrole = "admin"\n'
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(python, config, port, tmp_path)
    try:
        _wait_until_up(server, url)
        with httpx.Client(base_url=url, timeout=30) as client:
            settings = {"adapter": "acme", "url": api, "mode": "live", "cache_ttl_s": 0}
            body = {"query": REGISTER, "variables": {"s": settings}}
            refused = client.post("/graphql", json=body).json()
            assert refused["errors"][0]["message"].startswith("admin role required")

            headers = {"Authorization": f"Bearer {admin.key}"}
            registered = client.post("/graphql", json=body, headers=headers).json()
            assert "errors" not in registered, registered
            assert registered["data"]["registerSource"]["action"] == "registered"

            asked = client.post("/graphql", json={"query": COHORT, "variables": {"f": QUERY}})
            cohort = asked.json()["data"]["cohort"]
            assert cohort["counts"] == EXPECTED
            assert cohort["bySource"] == [{"source": "acme", "status": "ok"}]
            listed = client.post("/graphql", json={"query": "{ sources { name adapter } }"})
            assert listed.json()["data"]["sources"] == [{"name": "acme", "adapter": "acme"}]
    finally:
        server.terminate()
        server.communicate(timeout=30)
    registry = json.loads((tmp_path / "data" / "registry" / "sources.json").read_text())
    assert registry["sources"]["acme"]["settings"]["adapter"] == "acme"
