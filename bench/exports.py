"""Streaming exports of the whole IDC corpus: wall time, and memory that stays flat.

  python -m bench export [--data-dir .hub-bench]

Each export runs in its own child process (`python -m bench.exports CHILD ...`) that opens
the hub, answers the cohort and writes the file; the parent reports the child's wall
time and peak resident memory (`ru_maxrss` from `wait4`, and the child's own `VmHWM`:
on Linux a child's ru_maxrss starts at its parent's RSS when forked, so the parent
stays small and any rebuild runs in a process of its own). Cohorts of ~10k, ~100k and
~1M series (LUNG, BREAST, everything) in NDJSON, CSV and as an s5cmd manifest show
whether memory grows with the cohort (`flatness`: each format's peak RSS at ~1M over its
peak at ~10k); a child that only answers the counts gives the baseline. If the index
generation predates `corpus.parquet`, it is rebuilt from the snapshot first.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CORPUS_FILE = "corpus.parquet"  # hub.index.embedded.build.CORPUS_FILE; not imported: see above

COHORTS: list[tuple[str, dict[str, Any]]] = [
    ("~10k: body_part LUNG", {"=": {"body_part": "LUNG"}}),
    ("~100k: body_part BREAST", {"=": {"body_part": "BREAST"}}),
    ("~1M: the whole IDC corpus", {}),
]
FORMATS = ("ndjson", "csv", "s5cmd")


def ensure_corpus(data_dir: Path) -> float | None:
    """Rebuild the generation (in a child) if it has no corpus.parquet; seconds, or None."""
    root = data_dir / "index"
    current = root / "CURRENT"
    if current.is_file() and (root / current.read_text().strip() / CORPUS_FILE).is_file():
        return None
    started = time.perf_counter()
    argv = [sys.executable, "-m", "bench.exports", "REBUILD", str(data_dir)]
    subprocess.run(argv, check=True)
    return round(time.perf_counter() - started, 1)


def rebuild(data_dir: Path) -> None:
    from hub.index.embedded.build import build_generation
    from hub.index.snapshots import SnapshotStore

    snapshots = SnapshotStore(data_dir).all()
    if not snapshots:
        raise SystemExit(f"no harvested snapshot under {data_dir}; run `python -m bench harvest`")
    build_generation(data_dir / "index", snapshots, {"idc": 100})


def _hwm_mb() -> float:
    """This process's own peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run_child(data_dir: Path, fmt: str, filter_json: dict[str, Any]) -> dict[str, Any]:
    """One export in a fresh process; its own timings plus the parent's wall and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = Path(tmp) / f"export.{fmt}"
        argv = [sys.executable, "-m", "bench.exports", "CHILD", str(data_dir), fmt]
        argv += [json.dumps(filter_json), str(out)]
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        report = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"export child failed ({child.returncode}): {argv}")
        figures: dict[str, Any] = json.loads(report)
    figures["wall_s_with_startup"] = round(wall, 2)
    figures["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is KiB on Linux
    return figures


def child_main(data_dir: str, fmt: str, filter_json: str, output: str) -> None:
    from adapters.spi import SourceSettings
    from hub.config import HubConfig, HubSettings
    from hub.export import prepare_export
    from hub.service import Hub

    sources = {"idc": SourceSettings(name="idc", adapter="idc", mode="harvest")}
    hub = Hub(HubConfig(hub=HubSettings(data_dir=Path(data_dir)), sources=sources))
    started = time.perf_counter()
    if fmt == "counts":  # the baseline: the hub open and the cohort answered, no export
        counts = hub.cohort(json.loads(filter_json), None).view.counts()
        cohort_s = round(time.perf_counter() - started, 2)
        print(json.dumps({"series": counts.series, "cohort_s": cohort_s, "vmhwm_mb": _hwm_mb()}))
        asyncio.run(hub.aclose())
        return
    export = prepare_export(hub, fmt, json.loads(filter_json))
    prepared = time.perf_counter()
    written = 0
    with open(output, "w", encoding="utf-8") as sink:
        for piece in export.text():
            sink.write(piece)
            written += len(piece)
    done = time.perf_counter()
    asyncio.run(hub.aclose())
    print(
        json.dumps(
            {
                "series": export.total,
                "written": export.tally.written,
                "mb_out": round(Path(output).stat().st_size / 1e6, 1),
                "cohort_s": round(prepared - started, 2),
                "export_s": round(done - prepared, 2),
                "series_per_s": round(export.total / max(done - prepared, 1e-9)),
                "vmhwm_mb": _hwm_mb(),
            }
        )
    )


def bench_export(data_dir: Path) -> dict[str, Any]:
    rebuilt = ensure_corpus(data_dir)
    results: dict[str, Any] = {"rebuilt_generation_s": rebuilt}
    results["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    results["baseline (hub open, counts only, whole corpus)"] = run_child(data_dir, "counts", {})
    peaks: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for label, filter_json in COHORTS:
        for fmt in FORMATS:
            figures = run_child(data_dir, fmt, filter_json)
            results[f"{label} · {fmt}"] = figures
            peaks[fmt].append(figures["peak_rss_mb"])
            print(f"{label} · {fmt}: {figures}", file=sys.stderr)
    results["flatness"] = {
        fmt: {"peak_rss_mb (10k, 100k, 1M)": p, "1M / 10k": round(p[-1] / p[0], 3)}
        for fmt, p in peaks.items()
    }
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "CHILD":
        child_main(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "REBUILD":
        rebuild(Path(sys.argv[2]))
    else:
        print(
            json.dumps(
                bench_export(Path(sys.argv[1] if len(sys.argv) > 1 else ".hub-bench")), indent=2
            )
        )
