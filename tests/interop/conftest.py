"""The hub served for real: uvicorn on a free loopback port, over a writable copy of the
small real-IDC index, for clients that speak HTTP themselves (dicomweb-client, gql)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.api import create_app
from tests.conftest import hub_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def hub_url(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("served") / "hub"
    shutil.copytree(small_data_dir, data_dir)
    port = free_port()
    app = create_app(hub_config(data_dir))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="hub-server")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start within 30 s")
        time.sleep(0.05)
    assert httpx.get(f"{url}/readyz").status_code == 200
    yield url
    server.should_exit = True
    thread.join(timeout=10)
