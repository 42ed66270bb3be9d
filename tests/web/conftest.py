"""Fixtures for the cohort page's end-to-end tests: the real app under uvicorn over the
small real-IDC index, and Debian's headless Chromium driven by playwright.

A missing browser FAILS these tests (with how to install it): they are the only check
that the page works at all. Screenshots of the main states go to tests/web/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import hub_config
from tests.web.artifacts import ARTIFACTS
from tests.web.browser import BrowserMissing, launch, require
from tests.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def browser(small_data_dir: Path) -> Iterator[Browser]:
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop running on this thread while the browser
    is open, and `asyncio.run` (which session fixtures such as `small_data_dir` use)
    refuses to start inside it: so the data is built first, and the browser closes at
    the end of each module, before any other module's fixtures run.
    """
    try:
        require()
    except BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with launch() as browser:
        yield browser


@pytest.fixture(scope="session")
def hub_url(small_data_dir: Path) -> Iterator[str]:
    """The hub over the small real-IDC index, with the page at `/`."""
    with serve(hub_config(small_data_dir)) as url:
        yield url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def open_page(browser: Browser, base_url: str) -> tuple[Page, list[str]]:
    """A fresh browser context and page; the list collects uncaught page errors."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


@pytest.fixture()
def page(browser: Browser, hub_url: str) -> Iterator[Page]:
    page, errors = open_page(browser, hub_url)
    yield page
    page.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
