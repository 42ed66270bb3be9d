"""Run the real hub app under uvicorn on a free loopback port, in a background thread.

Shared by the end-to-end tests and `python -m bench ui`: the browser must talk to a real
HTTP server, exactly as a researcher's would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from hub.api import create_app
from hub.config import HubConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(config: HubConfig, startup_s: float = 30.0) -> Iterator[str]:
    """Serve a hub built from `config`; yields its base URL and stops it on exit."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=free_port(),
            log_level="warning",
            log_config=None,  # its loggers propagate: pytest captures them with the hub's
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    deadline = time.monotonic() + startup_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {url}")
        time.sleep(0.02)
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200, "hub has no index"
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
