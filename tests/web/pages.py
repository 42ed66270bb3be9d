"""What the end-to-end tests do with the cohort page, in one place: wait for an answer to
be drawn, read counts off the page, and ask the hub's GraphQL directly to compare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Page

COUNTS = """query($f: JSON, $t: String, $fields: [String!]!) {
  cohort(filter: $f, text: $t) {
    counts { patients studies series }
    facets(fields: $fields, size: 300) { field buckets { key count } missing }
  }
}"""


def settled(page: Page, action: Callable[[], Any], timeout_ms: float = 15_000) -> None:
    """Run `action` (a click, a key) and wait until the page has drawn the answer to it."""
    before = int(page.get_attribute("body", "data-seq") or 0)
    action()
    page.wait_for_function(
        "n => Number(document.body.dataset.seq) > n && document.body.dataset.state !== 'loading'",
        arg=before,
        timeout=timeout_ms,
    )


def load(page: Page, query: str = "") -> None:
    """Open the page (optionally with a cohort in its query string) and wait for it."""
    page.goto("/" + query)
    page.wait_for_function("document.body.dataset.state === 'ready'", timeout=15_000)


def shown_counts(page: Page) -> dict[str, int | None]:
    """The cohort counts on the page; None where it shows a suppressed count."""
    out: dict[str, int | None] = {}
    for what in ("patients", "studies", "series"):
        cell = page.locator(f"#counts dd[data-count={what}]")
        text = cell.inner_text().strip()
        out[what] = None if text == "suppressed" else int(text.replace(",", ""))
    return out


def facet_count(page: Page, field: str, value: str) -> int:
    label = page.locator(f"#facet-{field} li", has=page.locator(f"input[data-value='{value}']"))
    return int(label.locator(".count").inner_text().replace(",", ""))


def tick(page: Page, field: str, value: str) -> None:
    """Click a facet value's label, as a person would, and wait for the new answer."""
    box = page.locator(f"#facet-{field} input[data-value='{value}']")
    settled(page, lambda: page.click(f"label[for='{box.get_attribute('id')}']"))


def graphql(base_url: str, filter_: Any, text: str | None = None, fields: Any = ()) -> Any:
    """The hub's own answer, fetched directly (not through the page)."""
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": COUNTS, "variables": {"f": filter_, "t": text, "fields": list(fields)}},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["cohort"]


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=False)
