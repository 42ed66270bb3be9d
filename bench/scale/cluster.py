"""The cluster the benchmark runs on: given by HUB_TEST_ELASTICSEARCH_URL, or started here.

Started here, it is the project's own local cluster (`devcluster`: one JVM per node, data
under the benchmark's temporary directory), so a node can be SIGKILLed and restarted.
A given cluster is used as it is; the node-loss step needs one it can kill, and says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

URL_ENV = "HUB_TEST_ELASTICSEARCH_URL"


@dataclass
class Cluster:
    urls: list[str]
    what: str
    kill: Callable[[int], None] | None = None
    restart: Callable[[int], None] | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.urls[0]

    def health(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """`_cluster/health` from the first node that answers ({"status": "unreachable"})."""
        for url in self.urls:
            try:
                answer = httpx.get(f"{url}/_cluster/health", timeout=timeout_s)
                body: dict[str, Any] = answer.json()
                return body
            except (httpx.HTTPError, ValueError):
                continue
        return {"status": "unreachable"}

    def wait_status(self, status: str, timeout_s: float = 300.0) -> float:
        """Seconds until the cluster reports `status` (green, or yellow or better)."""
        wanted = ("green",) if status == "green" else ("green", "yellow")
        t = time.perf_counter()
        while time.perf_counter() - t < timeout_s:
            if self.health().get("status") in wanted:
                return time.perf_counter() - t
            time.sleep(0.25)
        raise TimeoutError(f"the cluster was not {status} after {timeout_s:.0f} s")


@contextlib.contextmanager
def cluster(work: Path, nodes: int, heap: str) -> Iterator[Cluster]:
    given = os.environ.get(URL_ENV)
    if given:
        urls = [u.strip().rstrip("/") for u in given.split(",") if u.strip()]
        yield Cluster(urls, f"{URL_ENV} ({', '.join(urls)})")
        return
    import devcluster

    started = devcluster.start(work / "cluster", nodes=nodes, heap=heap, bound_to_parent=True)
    try:
        urls = list(started.urls)
        found = Cluster(
            urls,
            f"devcluster: {nodes} OpenSearch nodes, heap {heap} each",
            kill=started.kill,
            restart=started.restart,
        )
        found.facts = {"version": _version(urls[0]), "nodes": nodes, "heap": heap}
        yield found
    finally:
        started.stop()


def _version(url: str) -> str:
    try:
        body = httpx.get(url, timeout=5).json()
        return f"{body['version'].get('distribution', 'elasticsearch')} {body['version']['number']}"
    except (httpx.HTTPError, ValueError, KeyError):
        return "unknown"
