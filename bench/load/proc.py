"""What /proc says about the server: resident memory, CPU time, threads and sockets.

Read straight from /proc (Linux) rather than through psutil: a handful of files a
second, no extra dependency, and the same numbers `ps` and `top` show.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive (zombies left out)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    if _stat(root) is None:
        return []
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def rss_mib(pid: int) -> float:
    """Resident set size (VmRSS) in MiB; 0 for a process that has gone."""
    fields = _stat(pid)
    return int(fields[21]) * PAGE / 2**20 if fields is not None else 0.0


def rollup_mib(pid: int) -> tuple[float, float]:
    """(PSS, anonymous) in MiB from /proc/PID/smaps_rollup. Workers share the index's
    mapped files, so summed RSS counts those pages once per worker and PSS splits them;
    anonymous memory (heap, caches) is where a leak would show."""
    pss = anon = 0.0
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    for line in lines:
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
        elif line.startswith("Anonymous:"):
            anon = int(line.split()[1]) / 1024
    return pss, anon


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields is not None else 0.0


def threads(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[17]) if fields is not None else 0


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    busy = user + nice + system + irq + softirq
    return busy / TICKS, (busy + idle + iowait) / TICKS


def established_to(port: int) -> int:
    """TCP connections in ESTABLISHED state whose remote end is loopback:`port`: requests
    the hub still has open to a source (a hanging source's queue, if it grew)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            remote, state = parts[2], parts[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@dataclass
class Sampler:
    """Samples a process tree once a second in a thread: summed RSS, PSS and anonymous
    memory, thread count, and (optionally) open connections to some ports. `mark` labels
    the current phase. The tree is looked up again every `rescan_s` (a scan of /proc);
    `cpu_s` is the sampler's own CPU time, kept apart from the load generator's."""

    root: int
    watch_ports: dict[str, int] = field(default_factory=dict)
    interval_s: float = 1.0
    samples: list[dict[str, float | int | str]] = field(default_factory=list)
    phase: str = "start"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = field(default_factory=time.monotonic)
    rescan_s: float = 5.0
    cpu_s: float = 0.0
    _pids: list[int] = field(default_factory=list)
    _scanned: float = 0.0

    def start(self) -> Sampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def mark(self, phase: str) -> None:
        self.phase = phase

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def sample(self) -> dict[str, float | int | str]:
        if time.monotonic() - self._scanned >= self.rescan_s or not all(map(alive, self._pids)):
            self._pids, self._scanned = tree(self.root), time.monotonic()
        pids = self._pids
        rollups = [rollup_mib(p) for p in pids]
        row: dict[str, float | int | str] = {
            "t": round(time.monotonic() - self._t0, 1),
            "phase": self.phase,
            "rss_mib": round(sum(rss_mib(p) for p in pids), 1),
            "pss_mib": round(sum(r[0] for r in rollups), 1),
            "anon_mib": round(sum(r[1] for r in rollups), 1),
            "processes": len(pids),
            "threads": sum(threads(p) for p in pids),
        }
        for name, port in self.watch_ports.items():
            row[f"open_to_{name}"] = established_to(port)
        return row

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.thread_time()
            self.samples.append(self.sample())
            self.cpu_s += time.thread_time() - started
            self._stop.wait(self.interval_s)
