"""One measured session: start the hub, learn its vocabulary, drive it, sample it, stop it.

The phases are marked on the /proc samples (`warmup`, `measure`, `drain`), so memory
and CPU are read over the measured window only; the warm-up lets every worker open
its index and fill its caches the way a running server has.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load import proc, profile
from bench.load.driver import Recording, closed_loop, open_loop
from bench.load.mix import Mix, Vocabulary
from bench.load.procs import HubServer, hub_toml
from bench.load.report import memory, source_statuses, summarise


@dataclass
class Plan:
    """What to run: closed loop with `clients`, or open loop at `rate` questions/s."""

    data_dir: Path
    workers: int = 1
    clients: int = 32
    seconds: float = 60.0
    warmup_s: float = 5.0
    rate: float | None = None  # open loop when set
    seed: int = 9
    timeout_s: float = 30.0
    invalid_share: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    idc: dict[str, Any] = field(default_factory=dict)
    watch_ports: dict[str, int] = field(default_factory=dict)
    profile: bool = False  # py-spy on the workers over the measured window


def fetch_vocabulary(url: str) -> Vocabulary:
    """The corpus's facet values and age range, asked of the hub under test."""
    answer = httpx.post(f"{url}/graphql", json={"query": Vocabulary.query()}, timeout=120)
    if answer.status_code != 200 or answer.json().get("errors"):
        raise RuntimeError(f"the hub refused the vocabulary query: {answer.text[:500]}")
    return Vocabulary.from_answer(answer.json())


def run(plan: Plan) -> dict[str, Any]:
    """Run the plan against a fresh server; the report, with the server's pids gone."""
    config = hub_toml(plan.data_dir, plan.limits, plan.live, plan.idc)
    server = HubServer(plan.data_dir, plan.workers, config)
    sampler: proc.Sampler | None = None
    try:
        server.start()
        ready_s = server.wait_ready()
        vocabulary = fetch_vocabulary(server.url)
        assert server.process is not None
        sampler = proc.Sampler(server.process.pid, plan.watch_ports)
        sampler.mark("warmup")
        sampler.start()
        recording, cpu, profiled = asyncio.run(_drive(plan, server, vocabulary, sampler))
        sampler.mark("drain")
        sampler.stop()
        samples = sampler.samples
    finally:
        if sampler is not None:
            sampler.stop()
        pids = server.stop()
    return {
        "workers": plan.workers,
        "mode": f"open loop at {plan.rate:g}/s" if plan.rate else f"{plan.clients} clients",
        "seconds": plan.seconds,
        "warmup_s": plan.warmup_s,
        "seed": plan.seed,
        "ready_s": round(ready_s, 1),
        "vocabulary": {k: len(v) for k, v in vocabulary.values.items()},
        "results": summarise(recording, plan.seconds),
        **({"sources": source_statuses(recording)} if plan.live else {}),
        "cpu": cpu,
        "memory": memory(samples),
        **({"profile": profiled} if plan.profile else {}),
        "server_pids": pids,
        "cleaned_up": not any(proc.alive(p) for p in pids),
    }


async def _drive(
    plan: Plan, server: HubServer, vocabulary: Vocabulary, sampler: proc.Sampler
) -> tuple[Recording, dict[str, Any], dict[str, Any]]:
    mixes = [
        Mix.for_client(vocabulary, plan.seed, i, plan.invalid_share) for i in range(plan.clients)
    ]
    before: dict[str, Any] = {}
    spying: list[tuple[Any, Path]] = []
    folder = tempfile.TemporaryDirectory(prefix="hub-profile-")

    async def at_measure_start() -> None:
        await asyncio.sleep(plan.warmup_s)
        sampler.mark("measure")
        before.update(_cpu_snapshot(server.pids()), sampler_cpu_s=sampler.cpu_s)
        if plan.profile:
            spying.extend(profile.start(server.pids(), plan.seconds, Path(folder.name)))

    marker = asyncio.create_task(at_measure_start())
    if plan.rate:
        recording = await open_loop(
            "127.0.0.1", server.port, mixes, plan.rate, plan.seconds, plan.warmup_s,
            plan.timeout_s,
        )  # fmt: skip
    else:
        recording = await closed_loop(
            "127.0.0.1", server.port, mixes, plan.seconds, plan.warmup_s, plan.timeout_s
        )
    await marker
    after = _cpu_snapshot(server.pids())
    recording.client_cpu_s -= sampler.cpu_s - before.get("sampler_cpu_s", 0.0)  # not the load
    profiled = await asyncio.to_thread(profile.finish, spying) if plan.profile else {}
    folder.cleanup()
    sampler_s = sampler.cpu_s - before.get("sampler_cpu_s", 0.0)
    return recording, _cpu_report(before, after, recording.client_cpu_s, sampler_s), profiled


def _cpu_snapshot(pids: list[int]) -> dict[str, Any]:
    busy, total = proc.machine_busy_s()
    return {
        "at": time.perf_counter(),
        "pids": {p: proc.cpu_s(p) for p in pids},
        "busy": busy,
        "total": total,
    }


def _cpu_report(
    before: dict[str, Any], after: dict[str, Any], client_s: float, sampler_s: float
) -> dict[str, Any]:
    """CPU seconds over the measured window: each server process, the client, the machine
    (and what is left: other processes on this shared machine)."""
    wall = after["at"] - before["at"]
    server = {str(p): round(after["pids"].get(p, 0.0) - s, 2) for p, s in before["pids"].items()}
    server_total = sum(server.values())
    busy = after["busy"] - before["busy"]
    return {
        "window_s": round(wall, 1),
        "server_s_by_pid": server,
        "server_s": round(server_total, 1),
        "server_cores": round(server_total / wall, 2) if wall else None,
        "client_s": round(client_s, 1),
        "client_cores": round(client_s / wall, 2) if wall else None,
        "machine_busy_cores": round(busy / wall, 2) if wall else None,
        "sampler_s": round(sampler_s, 2),
        "other_processes_cores": (
            round((busy - server_total - client_s - sampler_s) / wall, 2) if wall else None
        ),
    }
