"""The figures of a run, one line each beside its target, printed before the JSON."""

from __future__ import annotations

from typing import Any


def summary(out: dict[str, Any]) -> str:
    lines = [f"cluster: {out.get('cluster')}; {out.get('series', 0):,} series"]
    for step, render in RENDER.items():
        if step not in out:
            continue
        figures = out[step]
        if "error" in figures or "skipped" in figures:
            lines.append(f"{step}: {figures.get('error') or figures.get('skipped')}")
            continue
        try:
            lines.append(f"{step}: {render(figures)}")
        except (KeyError, TypeError, ValueError) as exc:
            lines.append(f"{step}: (cannot summarise: {exc!r})")
    return "\n".join(lines)


def _ingest(f: dict[str, Any]) -> str:
    return (
        f"hub {f['hub_s']} s ({f['hub_series_per_s']:,} series/s), raw _bulk {f['raw_bulk_s']} s "
        f"({f['raw_series_per_s']:,}/s): ratio {f['ratio_hub_over_raw']} (target <= 1.3)"
    )


def _correctness(f: dict[str, Any]) -> str:
    return f"{len(f['cohorts'])} cohorts, {f['mismatches']} mismatches (target 0)"


def _question(f: dict[str, Any]) -> str:
    c, e = f["cluster"], f["embedded"]
    return (
        f"cluster p50 {c['p50_ms']} ms p90 {c['p90_ms']} ms; embedded p50 {e['p50_ms']} ms "
        f"p90 {e['p90_ms']} ms (target cluster p50 < 150 ms); same answer: "
        f"{f['same_answer_on_both']}"
    )


def _paging(f: dict[str, Any]) -> str:
    parts = [
        f"{name} page 1 {f[name]['page_1_ms']} ms, worst deep page x{f[name]['worst_ratio']}"
        for name in ("cluster", "embedded")
        if name in f
    ]
    return "; ".join(parts) + f" ({f['page_size']} a page; target x2)"


def _node_loss(f: dict[str, Any]) -> str:
    phases = ", ".join(
        f"{p} p50 {f[p]['p50']} p99 {f[p]['p99']} ms" for p in ("before", "during", "after")
    )
    return (
        f"{f['questions']} questions, {f['failed']} failed (target 0), {f['degraded']} degraded; "
        f"{phases}; green {f['green_after_restart_s']} s after restart"
    )


def _killed(f: dict[str, Any]) -> str:
    return (
        f"killed after {f['killed_after_series']:,} series; counts unchanged after the kill: "
        f"{f['counts_unchanged_after_kill']}, after the next harvest: "
        f"{f['counts_unchanged_after_next_harvest']}; half-built index cleaned up: "
        f"{f['half_built_cleaned_up']}"
    )


RENDER = {
    "ingest": _ingest,
    "correctness": _correctness,
    "question": _question,
    "paging": _paging,
    "node-loss": _node_loss,
    "killed-harvest": _killed,
}
