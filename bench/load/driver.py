"""Closed-loop and open-loop drivers: many clients on one asyncio loop, every answer timed.

Closed loop (`load`): N clients, each sends its next question as soon as the last is
answered; throughput is what the server sustains at that concurrency.
Open loop (`soak`): questions leave at a fixed rate whatever the server does, a new
connection opened when every kept one is busy; latency is timed from the moment a
question was due (so a slow server is not hidden by sending less), and the connections
in use are capped (`max_in_flight`; a question beyond it counts as an error).

Every answer is classified: ok, `http_<status>`, `graphql` (an `errors` list),
`timeout` (no answer within `timeout_s`), `connection`, `bad_json`.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.load.mix import Mix, Request
from bench.load.wire import Connection, WireError

SAMPLES_PER_KIND = 3
SLOWEST = 5


@dataclass
class Recording:
    """Every measured answer: (kind, started at s, latency ms, outcome)."""

    rows: list[tuple[str, float, float, str]] = field(default_factory=list)
    samples: dict[str, list[str]] = field(default_factory=dict)
    source_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    distinct: set[bytes] = field(default_factory=set)
    window: tuple[float, float] = (0.0, 0.0)
    client_cpu_s: float = 0.0
    in_flight_max: int = 0
    slowest: list[tuple[float, str, float, str, str]] = field(default_factory=list)
    """The SLOWEST answers: (ms, kind, started at s, outcome, how sources answered)."""

    def add(self, kind: str, started: float, latency_ms: float, outcome: str, note: str) -> None:
        self.rows.append((kind, started, latency_ms, outcome))
        if outcome != "ok":
            seen = self.samples.setdefault(outcome, [])
            if len(seen) < SAMPLES_PER_KIND and note not in seen:
                seen.append(note[:300])


def classify(status: int, body: bytes) -> tuple[str, str, dict[str, Any] | None]:
    """(outcome, note, parsed answer) of one HTTP answer."""
    if status != 200:
        return f"http_{status}", body[:200].decode(errors="replace"), None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "bad_json", body[:200].decode(errors="replace"), None
    if not isinstance(answer, dict):
        return "bad_json", "not a JSON object", None
    if answer.get("errors"):
        return "graphql", str(answer["errors"][0].get("message", "")), answer
    return "ok", "", answer


class Exchange:
    """Sends one request on a connection and records the answer."""

    def __init__(self, recording: Recording, timeout_s: float, measure_from: float) -> None:
        self.recording = recording
        self.timeout_s = timeout_s
        self.measure_from = measure_from

    async def send(
        self, conn: Connection, mix: Mix, request: Request, due: float | None = None
    ) -> None:
        started = time.perf_counter()
        body = request.body()
        try:
            answer = await asyncio.wait_for(conn.post("/graphql", body), self.timeout_s)
            outcome, note, parsed = classify(answer.status, answer.body)
        except TimeoutError:
            await conn.close()  # a half-read answer: the connection is unusable
            outcome, note, parsed = "timeout", f"no answer in {self.timeout_s:g} s", None
        except (WireError, OSError, asyncio.IncompleteReadError) as exc:
            await conn.close()
            outcome, note, parsed = "connection", f"{type(exc).__name__}: {exc}", None
        finished = time.perf_counter()
        mix.answered(request, parsed)
        origin = started if due is None else due
        if origin < self.measure_from:
            return  # warm-up
        latency_ms = (finished - origin) * 1000
        self.recording.add(request.kind, origin, latency_ms, outcome, note)
        self.recording.distinct.add(body)
        sources = []
        if parsed is not None:
            cohort = (parsed.get("data") or {}).get("cohort") or {}
            for row in cohort.get("bySource") or []:
                self.recording.source_status[(row["source"], row["status"])] += 1
                sources.append(f"{row['source']}:{row['status']}:{row.get('latencyMs')}")
        slowest = self.recording.slowest
        if len(slowest) < SLOWEST or latency_ms > slowest[0][0]:
            row = (latency_ms, request.kind, origin - self.measure_from, outcome, " ".join(sources))
            heapq.heappush(slowest, row)
            if len(slowest) > SLOWEST:
                heapq.heappop(slowest)


def _begin(
    seconds: float, warmup_s: float, timeout_s: float
) -> tuple[Recording, Exchange, float, float]:
    """A recording whose window starts after the warm-up, from now: (recording, its
    exchange, when measuring starts, when the run ends) on the perf_counter clock."""
    recording = Recording()
    measure_from = time.perf_counter() + warmup_s
    end = measure_from + seconds
    recording.window = (measure_from, end)
    return recording, Exchange(recording, timeout_s, measure_from), measure_from, end


async def closed_loop(
    host: str,
    port: int,
    mixes: list[Mix],
    seconds: float,
    warmup_s: float,
    timeout_s: float = 30.0,
) -> Recording:
    """len(mixes) clients, each on its own kept-alive connection, for warm-up + seconds."""
    recording, exchange, measure_from, end = _begin(seconds, warmup_s, timeout_s)
    cpu = {"warm": 0.0}

    async def client(mix: Mix, stagger_s: float) -> None:
        await asyncio.sleep(stagger_s)  # connections arrive one by one, as users do
        conn = Connection(host, port)
        try:
            while time.perf_counter() < end:
                await exchange.send(conn, mix, mix.next())
        finally:
            await conn.close()

    async def mark_warm() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu["warm"] = time.process_time()

    stagger = min(0.02, warmup_s / max(1, len(mixes)) / 2)
    await asyncio.gather(mark_warm(), *(client(m, i * stagger) for i, m in enumerate(mixes)))
    recording.client_cpu_s = time.process_time() - cpu["warm"]
    recording.in_flight_max = len(mixes)
    return recording


async def open_loop(
    host: str,
    port: int,
    mixes: list[Mix],
    rate: float,
    seconds: float,
    warmup_s: float,
    timeout_s: float = 30.0,
    max_in_flight: int = 256,
) -> Recording:
    """One question every 1/rate s, round-robin over the mixes (virtual users)."""
    recording, exchange, measure_from, end = _begin(seconds, warmup_s, timeout_s)
    idle: list[Connection] = []
    tasks: set[asyncio.Task[None]] = set()
    cpu_warm: float | None = None

    async def one(mix: Mix, request: Request, due: float) -> None:
        conn = idle.pop() if idle else Connection(host, port)
        try:
            await exchange.send(conn, mix, request, due)
        finally:
            idle.append(conn)

    i = 0
    while (due := measure_from - warmup_s + i / rate) < end:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if cpu_warm is None and due >= measure_from:
            cpu_warm = time.process_time()
        mix = mixes[i % len(mixes)]
        request = mix.next()
        if len(tasks) >= max_in_flight:
            if due >= measure_from:
                recording.add(request.kind, due, 0.0, "client_backlog", "max_in_flight reached")
        else:
            task = asyncio.create_task(one(mix, request, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            recording.in_flight_max = max(recording.in_flight_max, len(tasks))
        i += 1
    if tasks:
        await asyncio.wait(tasks)
    for conn in idle:
        await conn.close()
    recording.client_cpu_s = time.process_time() - (cpu_warm or time.process_time())
    return recording
