"""`orthanc`: a real Orthanc with its DICOMweb plugin, loaded with the files of `generate`.

One throw-away instance per test session on a free loopback port (the DICOM port is
disabled), with its storage and index in a temporary directory, so it never meets the
Debian service. `scripts/install-system-deps` installs the `orthanc` and
`orthanc-dicomweb` packages; without them these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.dicomweb.generate import write_files

PLUGIN_PACKAGE = "orthanc-dicomweb"
FALLBACK_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dicomweb_plugin() -> Path | None:
    """libOrthancDicomWeb.so as the Debian package installed it."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", PLUGIN_PACKAGE], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        listing = []
    found = [Path(p) for p in listing if Path(p).name == "libOrthancDicomWeb.so"]
    found += [FALLBACK_PLUGIN] if FALLBACK_PLUGIN.exists() else []
    return next((p for p in found if p.exists()), None)


def _config(
    root: Path, port: int, plugin: Path, servers: dict[str, list[str]] | None = None
) -> Path:
    dicomweb: dict[str, object] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": False}
    if servers:  # remote DICOMweb servers this Orthanc can ask (/dicom-web/servers/...)
        dicomweb["Servers"] = servers
    config = {
        "Name": "imaging-hub-tests",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),  # unused while the DICOM server is disabled
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "SaveJobs": False,
        "HttpThreadsCount": 8,
        "Plugins": [str(plugin)],
        "DicomWeb": dicomweb,
    }
    path = root / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _wait_until_up(process: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_orthanc(root: Path, servers: dict[str, list[str]] | None = None) -> Iterator[str]:
    """A throw-away Orthanc with its DICOMweb plugin under `root`, knowing `servers`;
    yields its base URL, `http://127.0.0.1:PORT`, and stops it after."""
    binary, plugin = shutil.which("Orthanc"), dicomweb_plugin()
    if binary is None or plugin is None:
        pytest.fail(  # not a skip: a suite that did not talk to Orthanc has not passed
            "Orthanc or its DICOMweb plugin is not installed: run scripts/install-system-deps"
        )
    log = root / "orthanc.log"
    for _attempt in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [binary, str(_config(root, port, plugin, servers))], stdout=sink, stderr=sink
            )
        if _wait_until_up(process, url):
            break
        _stop(process)
    else:
        pytest.fail(f"Orthanc did not start; its log:\n{log.read_text()[-3000:]}")
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the DICOMweb root, `http://127.0.0.1:PORT/dicom-web`."""
    root = tmp_path_factory.mktemp("orthanc")
    files = write_files(root / "files")
    with running_orthanc(root) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for path in files:
                answer = client.post("/instances", content=path.read_bytes())
                assert answer.status_code == 200, f"Orthanc refused {path.name}: {answer.text}"
        yield f"{url}/dicom-web"
