"""Deep paging: page 1 and pages 2,000 and beyond, following `endCursor` (search_after
on the cluster), each deep page timed against page 1 on the same backend.

The cursor of each page wanted is found by walking from page 1 (in big steps, see
WALK_PAGE); then page 1 and each deep page are asked several times and their medians
compared, and the deep pages' series must be the same on both backends.
"""

from __future__ import annotations

import statistics
from typing import Any

import httpx

from bench.load.procs import HubServer
from bench.scale.plan import Plan
from bench.scale.serve import ask, page_body

COHORT = {"=": {"modality": "CT"}}
TARGET_RATIO = 2.0
WALK_PAGE = 1_000
"""The cursors of the deep pages are reached in steps of this many series: a cursor holds
the position and the last series' sort values, not the page size, so the cursor after
row 99,950 is the same whichever pages led there, and 2,000 pages of 50 need 100 asks."""


def bench_paging(servers: dict[str, HubServer], plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cohort": COHORT,
        "page_size": plan.page_size,
        "pages": list(plan.deep_pages),
        "repeats": plan.page_repeats,
        "target_ratio": TARGET_RATIO,
    }
    uids: dict[str, list[list[str]]] = {}
    for name, server in servers.items():
        with httpx.Client(base_url=server.url, timeout=120) as client:
            out[name], uids[name] = _one(client, plan, name)
    first, *others = uids.values()
    out["same_series_on_deep_pages"] = all(o == first for o in others)
    return out


def _one(client: httpx.Client, plan: Plan, name: str) -> tuple[dict[str, Any], list[list[str]]]:
    wanted = sorted(plan.deep_pages)
    cursors: dict[int, str | None] = {1: None}
    after: str | None = None
    row = 0
    for page in wanted:
        while row < (page - 1) * plan.page_size:
            step = min(WALK_PAGE, (page - 1) * plan.page_size - row)
            _, cohort = ask(client, page_body(COHORT, step, after))
            after = cohort["series"]["pageInfo"]["endCursor"]
            if after is None:
                raise RuntimeError(f"{name}: the cohort ends before page {page}")
            row += step
        cursors[page] = after
        print(f"    {name}: cursor of page {page} found", flush=True)

    def median_ms(page: int) -> tuple[float, list[str]]:
        times, nodes = [], []
        for _ in range(plan.page_repeats):
            ms, cohort = ask(client, page_body(COHORT, plan.page_size, cursors[page]))
            times.append(ms)
            nodes = [n["seriesUid"] for n in cohort["series"]["nodes"]]
        return statistics.median(times), nodes

    page1_ms, _ = median_ms(1)
    result: dict[str, Any] = {"page_1_ms": round(page1_ms, 1)}
    seen = []
    for page in wanted:
        ms, nodes = median_ms(page)
        seen.append(nodes)
        result[f"page_{page}_ms"] = round(ms, 1)
        result[f"page_{page}_vs_page_1"] = round(ms / page1_ms, 2)
    result["worst_ratio"] = max(v for k, v in result.items() if k.endswith("_vs_page_1"))
    return result, seen
