"""Where the server's time goes: py-spy on every worker over the measured window.

Optional (`python -m bench load --profile`): py-spy samples the running workers from
outside (no change to the hub), and the raw stacks are folded here into the functions
that take the most samples, both on their own ("self") and with what they call
("inclusive"), as percentages of all samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 25


def py_spy() -> str | None:
    """The py-spy next to this Python (the venv), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(
    pids: list[int], seconds: float, folder: Path
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    exe = py_spy()
    if exe is None:
        return []
    runs = []
    for pid in pids:
        out = folder / f"py-spy-{pid}.txt"
        argv = [exe, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-f", "raw",
                "-o", str(out), "--nonblocking", "--rate", "50"]  # fmt: skip
        runs.append(
            (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)
        )
    return runs


def finish(runs: list[tuple[subprocess.Popen[bytes], Path]]) -> dict[str, Any]:
    """Wait for the recordings and fold them; {} when py-spy was not available."""
    if not runs:
        return {"error": "py-spy not found"}
    stacks: list[tuple[list[str], int]] = []
    for process, out in runs:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if out.exists():
            for line in out.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if count.isdigit():
                    stacks.append((stack.split(";"), int(count)))
    return fold(stacks)


def _name(frame: str) -> str:
    """`function (path/to/file.py:LINE)` without the line, so a function counts once."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.rsplit(':', 1)[0]})" if where else function


def fold(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    total = sum(n for _, n in stacks)
    if not total:
        return {"samples": 0}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        names = [_name(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n

    def share(counter: Counter[str]) -> dict[str, float]:
        return {k: round(v * 100 / total, 1) for k, v in counter.most_common(TOP)}

    hub_inclusive = Counter({k: v for k, v in inclusive.items() if "hub/" in k})
    return {
        "samples": total,
        "self_pct": share(own),
        "inclusive_pct_hub_functions": share(hub_inclusive),
    }
