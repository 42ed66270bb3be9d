"""Headless Chromium for the end-to-end tests and `python -m bench ui`, through playwright.

The browser is Debian's `chromium` package (scripts/install-system-deps installs it);
playwright only drives it, so nothing is downloaded at test time (`playwright install` is
never run). `HUB_CHROMIUM` names another executable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CANDIDATES = ("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
MISSING = (
    "headless Chromium is needed for the cohort page's end-to-end tests and was not found "
    "({what}); run scripts/install-system-deps (it runs `apt-get install -y chromium`) "
    "or set HUB_CHROMIUM to a Chromium executable"
)


class BrowserMissing(RuntimeError):
    """Chromium or the playwright driver is not installed; the message says how to fix it."""


def chromium_path() -> str:
    """The Chromium executable to drive, or BrowserMissing saying how to install one."""
    given = os.environ.get("HUB_CHROMIUM")
    if given:
        if not Path(given).is_file():
            raise BrowserMissing(MISSING.format(what=f"HUB_CHROMIUM={given} does not exist"))
        return given
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing(MISSING.format(what=f"none of {', '.join(CANDIDATES)} on PATH"))


def require() -> str:
    """Check Chromium and the playwright driver are there; the executable to drive."""
    executable = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise BrowserMissing(
            "the `playwright` Python package is missing; run scripts/bootstrap "
            '(it installs the ".[test]" extra)'
        ) from exc
    return executable


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless Chromium browser, closed on exit."""
    executable = require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()
