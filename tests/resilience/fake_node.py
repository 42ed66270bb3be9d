"""A fake cluster node on loopback (uvicorn), answering as the test scripts it.

The transport's node classes speak real HTTP, so a real server is the honest way to
show them a dead node, a red cluster, a partial search or a node that never answers.
`script` maps a path prefix to a list of answers given in turn (the last one repeats);
each answer is `(status, body)` or `("hang", seconds)`. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Answer = tuple[Any, Any]

INFO = {"version": {"distribution": "opensearch", "number": "2.19.6"}, "tagline": "fake"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class FakeNode:
    def __init__(self, script: dict[str, list[Answer]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.requests: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        self.requests.append(path)
        for prefix in sorted(self.script, key=len, reverse=True):
            if path.startswith(prefix):
                queue = self.script[prefix]
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                break
        else:
            status, body = (200, INFO) if path == "/" else (404, {"error": "not scripted"})
        if status == "hang":
            await asyncio.sleep(float(body))
            status, body = 200, {}
        return JSONResponse(body, status_code=int(status))

    def searches(self) -> int:
        return sum(1 for path in self.requests if path.endswith("/_search"))


@contextmanager
def serving(*nodes: FakeNode) -> Iterator[None]:
    """Run the nodes' servers for the duration of the block."""
    servers = []
    for node in nodes:
        app = Starlette(
            routes=[Route("/{path:path}", node._answer, methods=["GET", "POST", "PUT", "HEAD"])]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=node.port, log_level="error")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
    for server, _ in servers:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
    try:
        yield
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)


def mapping_answer(prefix: str, source: str = "idc") -> dict[str, Any]:
    """`GET <prefix>-*/_mapping` of one harvested index behind the read alias."""
    name = f"{prefix}-{source}-1"
    meta = {"hub": "imaging-hub", "prefix": prefix, "kind": "harvest", "source": source}
    return {name: {"mappings": {"_meta": meta}}}


def alias_answer(prefix: str, source: str = "idc") -> dict[str, Any]:
    name = f"{prefix}-{source}-1"
    return {name: {"aliases": {f"{prefix}-all": {}, f"{prefix}-{source}": {}}}}


def search_answer(total: int, failed: int = 0) -> dict[str, Any]:
    shards: dict[str, Any] = {"total": 2, "successful": 2 - failed, "skipped": 0, "failed": failed}
    if failed:
        shards["failures"] = [
            {
                "shard": 0,
                "index": "hub-idc-1",
                "reason": {"type": "node_not_connected_exception", "reason": "Node not connected"},
            }
        ]
    return {
        "took": 1,
        "timed_out": False,
        "_shards": shards,
        "hits": {"total": {"value": total, "relation": "eq"}, "hits": []},
    }
