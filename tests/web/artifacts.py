"""Screenshots of the cohort page's main states, and the summary line that lists them.

A pytest plugin (the root conftest loads it): under xdist the browser tests run in a
worker, but the summary is written by the controller, so it looks at the directory
rather than at what one process took.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
"""Screenshots of the main states (ignored by git)."""


class _Run:
    started = time.time()


def pytest_sessionstart(session: pytest.Session) -> None:
    _Run.started = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    taken = [shot for shot in shots if shot.stat().st_mtime >= _Run.started]
    if taken:
        terminalreporter.write_line(f"cohort page screenshots ({len(taken)}): {ARTIFACTS}")
