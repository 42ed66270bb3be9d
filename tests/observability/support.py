"""Support for the observability tests: a source that records what it was sent, an app
over a copy of the small IDC index with live sources, and readers of /metrics and logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.spi import SourceSettings
from hub.api import create_app
from hub.config import HubConfig, HubSettings
from hub.observability.logs import hub_handler
from tests.federation.fault_server import FaultServer

COUNTS = "query Counts($f: JSON) { cohort(filter: $f) { counts { series } } }"


class RecordingServer(FaultServer):
    """A fault server that also keeps the headers of every request it was sent."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.seen: list[dict[str, str]] = []
        super().__init__(name, **kwargs)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        server = self

        class Recording(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                server.seen.append({k.lower(): v for k, v in self.headers.items()})
                super().do_GET()

        return Recording


def live(name: str, server: FaultServer, timeout_s: float = 2.0, **extra: Any) -> SourceSettings:
    return SourceSettings(
        name=name,
        adapter="dicomweb",
        mode="live",
        url=server.url,
        timeout_s=timeout_s,
        cache_ttl_s=0,
        collection=name,
        page_size=10,
        **extra,
    )


def config(data_dir: Path, *sources: SourceSettings, **hub: Any) -> HubConfig:
    everything = {"idc": SourceSettings(name="idc", adapter="idc")}
    everything.update({s.name: s for s in sources})
    return HubConfig(hub=HubSettings(data_dir=data_dir, **hub), sources=everything)


@contextmanager
def serving(cfg: HubConfig) -> Iterator[TestClient]:
    with TestClient(create_app(cfg)) as client:
        yield client


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics as {(name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_lines(err: str) -> list[dict[str, Any]]:
    """Parse every line of captured stderr as JSON (a line that is not JSON fails)."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def flush_logs() -> None:
    handler = hub_handler()
    assert handler is not None, "the app installs the hub's log handler at startup"
    handler.flush()
