"""Turn a recording and the /proc samples into the figures of the report (JSON-ready)."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from typing import Any

from bench.load.driver import Recording

Sample = dict[str, float | int | str]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50), 1),
        "p90": round(percentile(ordered, 90), 1),
        "p99": round(percentile(ordered, 99), 1),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


def summarise(recording: Recording, seconds: float) -> dict[str, Any]:
    """Throughput, latency of every answer and of each kind, errors by kind."""
    rows = recording.rows
    outcomes = Counter(r[3] for r in rows)
    ok = outcomes.pop("ok", 0)
    by_kind: dict[str, list[float]] = {}
    for kind, _, ms, outcome in rows:
        if outcome == "ok":
            by_kind.setdefault(kind, []).append(ms)
    requests = len(rows)
    return {
        "requests": requests,
        "ok": ok,
        "qps": round(requests / seconds, 1) if seconds else None,
        "ok_qps": round(ok / seconds, 1) if seconds else None,
        "latency_ms": latency([r[2] for r in rows if r[3] == "ok"]),
        "latency_ms_all_answers": latency([r[2] for r in rows]),
        "latency_ms_by_kind": {k: latency(v) for k, v in sorted(by_kind.items())},
        "errors": dict(outcomes),
        "error_count": sum(outcomes.values()),
        "error_samples": recording.samples,
        "slowest": [
            {
                "ms": round(ms, 1),
                "kind": kind,
                "at_s": round(at, 1),
                "outcome": outcome,
                **({"sources": sources} if sources else {}),
            }
            for ms, kind, at, outcome, sources in sorted(recording.slowest, reverse=True)
        ],
        "distinct_requests": len(recording.distinct),
        "client_in_flight_max": recording.in_flight_max,
        "client_cpu_s": round(recording.client_cpu_s, 2),
        "client_cpu_ms_per_request": (
            round(recording.client_cpu_s * 1000 / requests, 2) if requests else None
        ),
    }


def source_statuses(recording: Recording) -> dict[str, dict[str, int]]:
    """How each source answered, counted over every answer's `bySource`."""
    out: dict[str, dict[str, int]] = {}
    for (source, status), n in sorted(recording.source_status.items()):
        out.setdefault(source, {})[status] = n
    return out


def memory(samples: list[Sample], measured: str = "measure") -> dict[str, Any]:
    """RSS (summed over the server's processes) over time: the series, start/end/max of
    the measured phase, growth from its first to its last sample, and the soak's figure:
    the median of the last minute against the median of the first (runs of two minutes
    or more; None for shorter ones)."""
    series = [[s["t"], s["rss_mib"]] for s in samples]
    window = [float(s["rss_mib"]) for s in samples if s["phase"] == measured]
    if not window:
        return {"series_t_s_rss_mib": series}
    start, end = window[0], window[-1]
    first, last = window[:60], window[-60:]
    first_median = statistics.median(first) if len(window) >= 120 else None
    last_median = statistics.median(last) if len(window) >= 120 else None  # minutes apart
    out: dict[str, Any] = {
        "start_mib": start,
        "end_mib": end,
        "max_mib": max(window),
        "growth_pct": round((end - start) / start * 100, 1) if start else None,
        "first_minute_median_mib": first_median,
        "last_minute_median_mib": last_median,
        "growth_median_pct": (
            round((last_median - first_median) / first_median * 100, 1)
            if first_median and last_median is not None
            else None
        ),
        "pss_mib": _span([float(s["pss_mib"]) for s in samples if s["phase"] == measured]),
        "anon_mib": _span([float(s["anon_mib"]) for s in samples if s["phase"] == measured]),
        "processes": max(int(s["processes"]) for s in samples if s["phase"] == measured),
        "threads_max": max(int(s["threads"]) for s in samples if s["phase"] == measured),
        "series_t_s_rss_mib": series,
        "series_t_s_anon_mib": [[s["t"], s["anon_mib"]] for s in samples],
    }
    for key in samples[0]:
        if key.startswith("open_to_"):
            values = [int(s[key]) for s in samples if s["phase"] == measured]
            out[f"{key}_max"] = max(values)
            out[f"{key}_series"] = values
    return out


def _span(values: list[float]) -> dict[str, float | None]:
    """Start, end, max and growth of one memory measure over the window, and the soak's
    last-minute against first-minute medians when the window is two minutes or more."""
    start, end = values[0], values[-1]
    long = len(values) >= 120
    first = statistics.median(values[:60]) if long else None
    last = statistics.median(values[-60:]) if long else None
    return {
        "start": start,
        "end": end,
        "max": max(values),
        "growth_pct": round((end - start) / start * 100, 1) if start else None,
        "growth_median_pct": round((last - first) / first * 100, 1) if first and last else None,
    }


def dumps(report: Any) -> str:
    """JSON with two-space indents, but each list of plain values on one line (the
    per-second series would otherwise take a line a number)."""
    return _dump(report, 0)


def _dump(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_dump(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + _dump(v, depth + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, separators=(", ", ": "))
