"""A passing test run shows pytest's progress and nothing else: no hub log lines.

The hub's handler writes from a listener thread, and servers in threads log a request
after its client has the answer; both used to land between pytest's dots. A line belongs
to the capture of the test that logged it, and one logged between tests goes to a file.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.observability.logs import HubLogHandler, divert_uncaptured

ROOT = Path(__file__).resolve().parents[2]
BETWEEN = "GET /between-tests 200"
DURING = "GET /during-a-test 200"


@pytest.fixture()
def logger() -> Iterator[tuple[logging.Logger, HubLogHandler]]:
    """A logger of its own with a hub handler of its own (the root's is left alone)."""
    handler = HubLogHandler("json")
    log = logging.getLogger("tests.quiet-runs")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)
    handler.close()


def test_a_line_goes_where_stderr_was_when_it_was_logged(
    logger: tuple[logging.Logger, HubLogHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, handler = logger
    during, after = io.StringIO(), io.StringIO()
    handler.listener.stop()  # the listener is slow: the line is written after the swap
    monkeypatch.setattr(sys, "stderr", during)
    log.info("answered")
    monkeypatch.setattr(sys, "stderr", after)
    handler.listener.start()
    handler.flush()
    assert json.loads(during.getvalue())["message"] == "answered"
    assert after.getvalue() == ""


def test_a_line_logged_on_the_process_stderr_goes_to_the_diversion(
    logger: tuple[logging.Logger, HubLogHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, handler = logger
    sink = io.StringIO()
    previous = divert_uncaptured(sink)
    try:
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        log.info("between tests")
        handler.flush()
    finally:
        divert_uncaptured(previous)
    assert json.loads(sink.getvalue())["message"] == "between tests"


INNER_CONFTEST = f'''
import logging

def pytest_runtest_logreport(report):
    """pytest reports with capture suspended: the moment a server thread's line leaks."""
    if report.when == "call":
        logging.getLogger("hub.access").info("{BETWEEN}")
'''

INNER_TESTS = f'''
import logging
import os

from hub.observability.logs import configure_logging

def test_serves():
    configure_logging("info", "json")
    logging.getLogger("hub.access").info("{DURING}")
    assert os.environ.get("INNER_FAILS") != "1"

def test_serves_again():
    logging.getLogger("hub.access").info("{DURING}")
'''


def run_inner(tmp_path: Path, *args: str, fails: bool = False) -> tuple[int, str, Path]:
    """pytest over two tests that log during and between tests, with the suite's plugin
    (tests/quiet_logs.py); its exit code, everything it printed, and its base temp."""
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    basetemp = tmp_path / "basetemp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INNER_FAILS": "1" if fails else "0"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.quiet_logs", "-p", "no:cacheprovider",
         f"--basetemp={basetemp}", *args, "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, basetemp


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["one", "xdist"])
def test_a_passing_run_prints_no_log_line(tmp_path: Path, workers: list[str]) -> None:
    code, output, basetemp = run_inner(tmp_path, *workers)
    assert code == 0, output
    assert "2 passed" in output
    assert DURING not in output and BETWEEN not in output and '"logger"' not in output, output
    kept = "".join(p.read_text() for p in basetemp.rglob("logged-outside-tests.log"))
    assert BETWEEN in kept and DURING not in kept


def test_a_failing_run_shows_its_lines_and_names_the_file(tmp_path: Path) -> None:
    code, output, basetemp = run_inner(tmp_path, "-p", "no:xdist", fails=True)
    assert code == 1, output
    assert DURING in output  # the failing test's capture, shown with its failure
    assert f"hub log lines logged between tests: {basetemp / 'logged-outside-tests.log'}" in (
        output
    )
