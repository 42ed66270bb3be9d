"""The cohort page over a hub whose only repository gives anonymous callers counts only:
the real server's suppressed and rounded answers (not a mocked response) are drawn as
such, no series are listed, and the repository row says it gives counts only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.security.restricted import K, idc_only
from tests.web.conftest import open_page
from tests.web.pages import load, shot, shown_counts
from tests.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def controlled_url(small_data_dir: Path) -> Iterator[str]:
    with serve(idc_only(small_data_dir, "controlled")) as url:
        yield url


def test_counts_only_repository_on_the_page(
    browser: Browser, controlled_url: str, artifacts: Path
) -> None:
    page, errors = open_page(browser, controlled_url)
    try:
        load(page, "?collection=c4kc_kits")
        counts = shown_counts(page)
        assert counts["series"] == 620  # 621 series, rounded down to a multiple of k
        assert all(n is None or n % K == 0 for n in counts.values())
        rows = page.locator("#series tbody tr")
        assert rows.count() == 1 and rows.locator("td.empty").count() == 1, "no series listed"
        assert "you may see as records" in rows.inner_text()
        row = page.locator("#sources tr[data-source=idc]")
        assert row.get_attribute("data-granularity") == "count"
        assert "counts only" in (row.get_attribute("title") or "")
        suppressed = page.locator("#facet-modality .suppressed")  # a complementary one
        assert suppressed.count() >= 1
        assert (
            suppressed.first.get_attribute("aria-label") == "count suppressed: too small to publish"
        )
        shot(page, artifacts, "09-counts-only")
    finally:
        page.context.close()
    assert not errors
