"""Building a cohort in the page, in real headless Chromium, over the small real-IDC index.

Every count the page shows is compared with the hub's own GraphQL answer for the same
filter, fetched directly; the URL must reproduce the cohort and back/forward must walk it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.web.pages import (
    facet_count,
    graphql,
    load,
    settled,
    shot,
    shown_counts,
    tick,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

CT = {"IN": {"modality": ["CT"]}}
FEMALE = {"IN": {"sex": ["female"]}}


def test_clicking_facets_builds_the_cohort_graphql_counts(
    page: Page, hub_url: str, artifacts: Path
) -> None:
    load(page)
    everything = graphql(hub_url, None)["counts"]
    assert shown_counts(page) == everything
    shot(page, artifacts, "01-everything")

    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/graphql") else None)
    tick(page, "modality", "CT")
    tick(page, "sex", "female")
    assert len(requests) == 2, "one GraphQL request per change"

    both = {"AND": [CT, FEMALE]}
    answer = graphql(hub_url, both)
    assert shown_counts(page) == answer["counts"]
    assert answer["counts"]["series"] < everything["series"]
    # Panels with a tick count without their own tick (values in one panel are OR-ed).
    modality = graphql(hub_url, {"AND": [FEMALE]}, fields=["modality"])["facets"][0]
    for bucket in modality["buckets"][:3]:
        assert facet_count(page, "modality", bucket["key"]) == bucket["count"]
    licences = graphql(hub_url, both, fields=["license"])["facets"][0]
    for bucket in licences["buckets"]:
        assert facet_count(page, "license", bucket["key"]) == bucket["count"]
    assert "modality=CT" in page.url and "sex=female" in page.url
    assert page.locator("#series tbody tr").count() == min(50, answer["counts"]["series"])
    shot(page, artifacts, "02-ct-female")

    # The link reproduces the cohort in a fresh page.
    link = page.url
    load(page, "?" + link.split("?", 1)[1])
    assert shown_counts(page) == answer["counts"]
    assert page.is_checked("#facet-sex input[data-value=female]")

    # Back and forward walk through the cohorts.
    settled(page, page.go_back)
    assert shown_counts(page) == graphql(hub_url, {"AND": [CT]})["counts"]
    assert not page.is_checked("#facet-sex input[data-value=female]")
    settled(page, page.go_forward)
    assert shown_counts(page) == answer["counts"]


def test_age_histogram_and_date_range(page: Page, hub_url: str, artifacts: Path) -> None:
    load(page)
    settled(page, lambda: page.click("#age-bar-60"))
    assert page.input_value("#age-min") == "60" and page.input_value("#age-max") == "69"
    ages = {"AND": [{">=": {"age": 60}}, {"<=": {"age": 69}}]}
    assert shown_counts(page) == graphql(hub_url, ages)["counts"]
    assert page.get_attribute("#age-bar-60", "aria-pressed") == "true"

    page.fill("#date-from", "2000-01-01")
    settled(page, lambda: page.dispatch_event("#date-from", "change"))
    dated = {"AND": [*ages["AND"], {">=": {"study_date": "2000-01-01"}}]}
    assert shown_counts(page) == graphql(hub_url, dated)["counts"]
    assert "age=60-69" in page.url and "from=2000-01-01" in page.url
    shot(page, artifacts, "03-age-and-date")


def test_free_text_then_paging_and_sorting(page: Page, hub_url: str, artifacts: Path) -> None:
    load(page, "?modality=CT")
    settled(page, lambda: page.locator("#text").press_sequentially("lung", delay=20))
    # On a slow machine a pause mid-word may send "lu" first: wait for the whole word.
    page.wait_for_function(
        "new URLSearchParams(location.search).get('q') === 'lung'"
        " && document.body.dataset.state === 'ready'"
    )
    answer = graphql(hub_url, {"AND": [CT]}, text="lung")
    assert shown_counts(page) == answer["counts"]
    assert answer["counts"]["series"] > 100, "the paging below needs three pages"
    assert "q=lung" in page.url
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Relevance")

    first = page.locator("#series tbody tr").first.get_attribute("data-series")
    settled(page, lambda: page.click("#next-page"))
    assert "Series 51–100" in page.inner_text("#page-status")
    second = page.locator("#series tbody tr").first.get_attribute("data-series")
    assert second != first
    settled(page, lambda: page.click("#next-page"))
    assert "Series 101–" in page.inner_text("#page-status")
    shot(page, artifacts, "04-text-page-3")
    settled(page, lambda: page.click("#prev-page"))
    assert page.locator("#series tbody tr").first.get_attribute("data-series") == second
    settled(page, lambda: page.click("#prev-page"))
    assert page.locator("#series tbody tr").first.get_attribute("data-series") == first
    assert page.is_disabled("#prev-page")

    settled(page, lambda: page.click("#sort-age"))
    assert page.get_attribute("th:has(#sort-age)", "aria-sort") == "ascending"
    headers = [h.strip() for h in page.locator("#series thead th").all_inner_texts()]
    column = next(i for i, h in enumerate(headers) if h.startswith("Age")) + 1
    cells = page.locator(f"#series tbody tr > :nth-child({column})").all_inner_texts()
    ages = [int(a) for a in cells if a]
    assert ages == sorted(ages) and ages
    assert "sort=age" in page.url


def test_a_facet_with_the_keyboard_only(page: Page, hub_url: str, artifacts: Path) -> None:
    load(page)
    target = page.locator("#facet-modality input[type=checkbox]").first
    target_id = target.get_attribute("id")
    value = target.get_attribute("data-value")
    for _ in range(120):  # Tab through the page, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == target_id:
            break
    else:
        raise AssertionError(f"Tab never reached the first modality checkbox {target_id}")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"

    settled(page, lambda: page.keyboard.press("Space"))
    assert target.is_checked()
    assert page.evaluate("document.activeElement.id") == target_id, "focus survives the redraw"
    one = {"AND": [{"IN": {"modality": [value]}}]}
    assert shown_counts(page) == graphql(hub_url, one)["counts"]
    announced = page.inner_text("#announce")
    assert f"{shown_counts(page)['series']:,} series" in announced

    page.keyboard.press("Tab")
    second = page.evaluate("document.activeElement.dataset.value")
    settled(page, lambda: page.keyboard.press("Enter"))
    assert page.is_checked(f"#facet-modality input[data-value='{second}']")
    both = {"AND": [{"IN": {"modality": [value, second]}}]}
    assert shown_counts(page) == graphql(hub_url, both)["counts"]
    shot(page, artifacts, "05-keyboard")
