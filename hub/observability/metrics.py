"""Prometheus metric families of the hub and the `/metrics` rendering.

Families are module globals (prometheus-client's default registry), updated where the
work happens: the HTTP middleware, the GraphQL endpoint, source fetches and harvests.
What is on disk (series per source, last harvest, index bytes) is read at scrape time by
`HubStateCollector`, so every worker reports the same figures however the index was built.

Labels stay bounded whatever a client sends: routes are route templates, GraphQL
operations are named by `OperationLabels` (at most MAX_OPERATION_NAMES distinct names,
the rest `other`), sources come from the configuration.

With `PROMETHEUS_MULTIPROC_DIR` set (uvicorn --workers N), prometheus-client keeps
values in memory-mapped files in that directory and `render` merges every worker's;
the directory must exist, be empty when the server starts, and be private to it.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Generic, TypeVar

from graphql import FieldNode, GraphQLError, OperationDefinitionNode
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.index.base import SourceSnapshotInfo
from hub.index.protocol import IndexStats
from hub.security.limits import parsed_document

__all__ = ["CONTENT_TYPE_LATEST", "OPERATIONS", "render"]

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "hub_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)  # fmt: skip
HTTP_DURATION = Histogram(
    "hub_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
    ["route"], buckets=REQUEST_BUCKETS,
)  # fmt: skip
GRAPHQL_REQUESTS = Counter(
    "hub_graphql_requests",
    "GraphQL requests by operation name (bounded), top-level field and outcome (ok|error).",
    ["operation", "field", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "hub_graphql_request_duration_seconds", "Time to execute a GraphQL request.",
    ["operation", "field"], buckets=REQUEST_BUCKETS,
)  # fmt: skip
SOURCE_FETCHES = Counter(
    "hub_source_fetches",
    "Live source answers by status: ok, partial, timeout, error, skipped (circuit open) "
    "or cached (a fresh earlier answer was reused).",
    ["source", "status"],
)
SOURCE_FETCH_DURATION = Histogram(
    "hub_source_fetch_duration_seconds", "Time a live source fetch took, retries included.",
    ["source"], buckets=FETCH_BUCKETS,
)  # fmt: skip
SOURCE_RETRIES = Counter(
    "hub_source_retries", "Pages asked again after a transient failure.", ["source"]
)
SOURCE_SERIES = Counter(
    "hub_source_series_fetched", "Series received from live sources.", ["source"]
)
CIRCUIT_STATE = Gauge(
    "hub_source_circuit_state",
    "Circuit breaker of a live source: 0 closed, 1 half-open, 2 open (highest of the workers).",
    ["source"], multiprocess_mode="livemax",
)  # fmt: skip
CIRCUIT_FAILURES = Gauge(
    "hub_source_consecutive_failures", "Failed fetches in a row (the breaker opens at 3).",
    ["source"], multiprocess_mode="livemax",
)  # fmt: skip
HARVEST_RUNNING = Gauge(
    "hub_harvest_running", "1 while a source is being harvested by this process.",
    ["source"], multiprocess_mode="livemax",
)  # fmt: skip
HARVEST_ROWS = Gauge(
    "hub_harvest_rows_fetched", "Series fetched so far by the running (or last) harvest.",
    ["source"], multiprocess_mode="livemostrecent",
)  # fmt: skip
HARVEST_EXPECTED = Gauge(
    "hub_harvest_rows_expected", "Series the source said it holds when the harvest began.",
    ["source"], multiprocess_mode="livemostrecent",
)  # fmt: skip
HARVESTS = Counter(
    "hub_harvests", "Harvests finished, by outcome (ok|error).", ["source", "status"]
)
HARVEST_LAST_SUCCESS = Gauge(
    "hub_harvest_last_success_timestamp_seconds",
    "When this process last harvested the source successfully (Unix time).",
    ["source"], multiprocess_mode="max",
)  # fmt: skip

CIRCUIT_CODES = {"closed": 0, "half-open": 1, "open": 2}

M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """A metric's labelled children, remembered: `labels()` validates and locks on every
    call, a dictionary lookup does not. As bounded as the labels themselves."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        return child


http_requests = Children(HTTP_REQUESTS)
http_duration = Children(HTTP_DURATION)
graphql_requests = Children(GRAPHQL_REQUESTS)
graphql_duration = Children(GRAPHQL_DURATION)
source_fetches = Children(SOURCE_FETCHES)
source_duration = Children(SOURCE_FETCH_DURATION)


def observe_fetch(source: str, status: str, seconds: float, retries: int, series: int) -> None:
    source_fetches(source, status).inc()
    source_duration(source).observe(seconds)
    if retries:
        SOURCE_RETRIES.labels(source).inc(retries)
    if series:
        SOURCE_SERIES.labels(source).inc(series)


def observe_circuit(source: str, state: str, failures: int) -> None:
    CIRCUIT_STATE.labels(source).set(CIRCUIT_CODES.get(state, 2))
    CIRCUIT_FAILURES.labels(source).set(failures)


# --- GraphQL operation labels ----------------------------------------------------------

MAX_OPERATION_NAMES = 64
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class OperationLabels:
    """(operation, field) labels of a GraphQL request, bounded and cheap.

    `operation` is the operation's name while fewer than MAX_OPERATION_NAMES distinct
    names have been seen (later ones are `other`), `anonymous` when unnamed, `invalid`
    when the document does not parse or names no single operation. `field` is the first
    top-level field when the schema has it, `__introspection` for `__schema`/`__type`,
    else `other`. Labels are remembered per query text (an LRU keyed by hash and
    length), so clients repeating their queries cost one dictionary lookup."""

    def __init__(self, max_names: int = MAX_OPERATION_NAMES, cache_size: int = 1024) -> None:
        self.max_names = max_names
        self.cache_size = cache_size
        self.root_fields: frozenset[str] = frozenset()
        self._names: set[str] = set()
        self._cache: OrderedDict[tuple[int, int, str | None], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, query: str, operation_name: str | None) -> tuple[str, str]:
        key = (hash(query), len(query), operation_name)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        labels = self._compute(query, operation_name)
        with self._lock:
            self._cache[key] = labels
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return labels

    def _compute(self, query: str, operation_name: str | None) -> tuple[str, str]:
        try:
            document = parsed_document(query)
        except RecursionError:
            return "invalid", "other"
        if isinstance(document, GraphQLError):
            return "invalid", "other"
        operations = [
            d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
            and (operation_name is None or (d.name is not None and d.name.value == operation_name))
        ]
        if len(operations) != 1:
            return "invalid", "other"
        operation = operations[0]
        first = next((s for s in operation.selection_set.selections if isinstance(s, FieldNode)),
                     None)  # fmt: skip
        field = "other"
        if first is not None and first.name.value in self.root_fields:
            field = first.name.value
        elif first is not None and first.name.value in ("__schema", "__type"):
            field = "__introspection"
        if operation.name is None:
            return "anonymous", field
        return self._bounded(operation.name.value), field

    def _bounded(self, name: str) -> str:
        if not _NAME.fullmatch(name) or name in ("anonymous", "invalid", "other"):
            return "other"
        with self._lock:
            if name in self._names:
                return name
            if len(self._names) < self.max_names:
                self._names.add(name)
                return name
        return "other"


OPERATIONS = OperationLabels()


def observe_graphql(operation: str, field: str, seconds: float, ok: bool) -> None:
    graphql_requests(operation, field, "ok" if ok else "error").inc()
    graphql_duration(operation, field).observe(seconds)


# --- what is on disk, read at scrape time ----------------------------------------------


Circuits = Callable[[], Iterable[tuple[str, str, int]]]
"""Each live source's circuit breaker now: source, state, consecutive failures."""


class HubStateCollector(Collector):
    """Series per source and last harvest from the index, and the size of what it serves
    (`IndexBackend.stats`); also refreshes this process's
    circuit-breaker gauges, whose half-open state comes with time, not with a fetch.

    It is given what to read as callables, asked at every scrape (sources come and go,
    the index is swapped), not the hub itself: metrics stay below the service."""

    def __init__(
        self,
        circuits: Circuits,
        snapshots: Callable[[], list[SourceSnapshotInfo]],
        stats: Callable[[], IndexStats],
    ) -> None:
        self.circuits = circuits
        self.snapshots = snapshots
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, state, failures in self.circuits():
            observe_circuit(name, state, failures)
        series = GaugeMetricFamily(
            "hub_index_series", "Series (documents) in the index, per source.", labels=["source"]
        )
        harvested = GaugeMetricFamily(
            "hub_index_last_harvest_timestamp_seconds",
            "When the source's snapshot in the index was harvested (Unix time).",
            labels=["source"],
        )
        try:
            snapshots = self.snapshots()
        except Exception:  # an index being rebuilt or a cluster away: no figures, no error
            snapshots = []
        for snap in snapshots:
            series.add_metric([snap.source], snap.series)
            when = _timestamp(snap.harvested_at)
            if when is not None:
                harvested.add_metric([snap.source], when)
        yield series
        yield harvested
        try:
            stats = self.stats()
        except Exception:  # an index being rebuilt or a cluster away: no figures, no error
            return
        if stats.bytes is not None:
            family = GaugeMetricFamily(
                "hub_index_bytes", "Bytes of the index being served (on disk, or in the cluster)."
            )
            family.add_metric([], stats.bytes)
            yield family


def _timestamp(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# --- rendering -------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(state: HubStateCollector | None = None) -> bytes:
    """The text exposition: this process's (or every worker's) families plus the hub's
    state. Blocking (reads files): call it from a worker thread."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if state is None:
        return body
    registry = CollectorRegistry(auto_describe=False)
    registry.register(state)
    return body + generate_latest(registry)


def process_exited() -> None:
    """Tell multiprocess mode this worker is gone, so its `live*` gauges stop counting."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
