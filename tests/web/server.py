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


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, handed to uvicorn as is: no other process
    (another xdist worker) can take the port between choosing it and serving on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(config: HubConfig, startup_s: float = 30.0) -> Iterator[str]:
    """Serve a hub built from `config`; yields its base URL and stops it on exit."""
    sock = loopback_socket()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            log_config=None,  # its loggers propagate: pytest captures them with the hub's
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
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
        sock.close()
