"""From a facet click to updated counts, in a real browser.

python -m bench ui   serve the hub over the full IDC index of the data directory
                     (default .hub-bench) with uvicorn on loopback, open the cohort page
                     in headless Chromium, and click facet values: even clicks tick a
                     value of the next panel (round-robin over all seven), odd clicks
                     untick it. Each time `performance.now()` runs from the click event
                     to the page's `cohort:rendered` event (the new counts are in the
                     DOM) and to the frame after it (painted); the browser's resource
                     timing gives the GraphQL request's share.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import hub_config
from tests.web.browser import launch
from tests.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

FACETS = ["source", "collection", "modality", "body_part", "sex", "license", "disease"]
WARM_UP = 4

INSTRUMENT = """() => {
  const bench = { t0: null, times: [] };
  window.__bench = bench;
  document.addEventListener("click", () => {
    if (bench.t0 === null) bench.t0 = performance.now();  // a label click fires two
  }, true);
  document.addEventListener("cohort:rendered", () => {
    const t0 = bench.t0;
    if (t0 === null) return;
    bench.t0 = null;
    const dom = performance.now() - t0;
    const ok = document.body.dataset.state === "ready";
    const series = document.querySelector("#counts dd[data-count=series]").textContent;
    const fetches = performance.getEntriesByType("resource")
      .filter((e) => e.name.endsWith("/graphql"));
    const request = fetches.length ? fetches.at(-1).duration : null;
    requestAnimationFrame(() => setTimeout(() => {
      bench.times.push({ dom, frame: performance.now() - t0, request, ok, series });
    }));
  });
}"""


def bench_ui(data_dir: Path, clicks: int = 20) -> dict[str, Any]:
    if not (data_dir / "index" / "CURRENT").is_file():
        raise SystemExit(f"no index in {data_dir}; run `python -m bench harvest` first")
    with serve(hub_config(data_dir), startup_s=120) as url, launch() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        corpus = page.inner_text("#counts dd[data-count=series]")
        page.evaluate(INSTRUMENT)
        for step in range(WARM_UP):  # first answers read the index from disk
            _click(page, step)
        page.evaluate("window.__bench.times = []")
        for step in range(clicks):
            _click(page, WARM_UP + step)
        times: list[dict[str, Any]] = page.evaluate("window.__bench.times")
    failed = [t for t in times if not t["ok"]]
    if failed:
        raise SystemExit(f"{len(failed)} clicks ended in an error state: {failed}")
    dom = [t["dom"] for t in times]
    return {
        "corpus_series": corpus,
        "clicks": len(times),
        "click_to_counts_ms": _summary(dom),
        "click_to_next_frame_ms": _summary([t["frame"] for t in times]),
        "graphql_request_ms": _summary([t["request"] for t in times if t["request"]]),
        "tick_median_ms": round(statistics.median(dom[0::2]), 1),
        "untick_median_ms": round(statistics.median(dom[1::2]), 1),
        "target_ms": 300,
        "meets_target": statistics.median(dom) < 300,
    }


def _click(page: Page, step: int) -> None:
    """Tick a value of the next panel on even steps; untick it on odd ones."""
    field = FACETS[(step // 2) % len(FACETS)]
    ticked = page.locator(f"#facet-{field} input:checked")
    if step % 2 and ticked.count():
        box = ticked.first
    else:
        choices = page.locator(f"#facet-{field} input:not(:checked)")
        box = choices.nth(min(step // (2 * len(FACETS)), choices.count() - 1))
    before = page.evaluate("window.__bench.times.length")
    page.click(f"label[for='{box.get_attribute('id')}']")
    page.wait_for_function(f"window.__bench.times.length > {before}", timeout=60_000)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }
