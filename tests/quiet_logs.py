"""Hub log lines stay off pytest's progress output (a pytest plugin; the root conftest
loads it, and `-p tests.quiet_logs` loads it into any other pytest run).

Lines logged during a test are in that test's capture (shown with its failure). A
server thread logs a request's access line after its client has the answer, so the test
may be over and pytest writing its dots: such lines go to a file per worker instead,
which the summary of a failing run names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.observability.logs import divert_uncaptured, hub_handler

UNCAPTURED_LOG = "logged-outside-tests.log"
"""Per worker, under its base temp dir: hub log lines no test's capture was there to hold."""


@pytest.fixture(scope="session", autouse=True)
def _uncaptured_logs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """This worker's file holds the lines logged between tests, for the whole session."""
    if request.config.getoption("capture") == "no":  # `-s`: the caller wants to see them
        yield
        return
    with (tmp_path_factory.getbasetemp() / UNCAPTURED_LOG).open("a") as sink:
        divert_uncaptured(sink)
        try:
            yield
        finally:
            handler = hub_handler()
            if handler is not None:
                handler.flush()
            divert_uncaptured(None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if exitstatus == 0:
        return
    base = terminalreporter.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    logs = [p for p in (base / UNCAPTURED_LOG, *base.glob(f"*/{UNCAPTURED_LOG}")) if p.exists()]
    for path in (p for p in logs if p.stat().st_size):
        terminalreporter.write_line(f"hub log lines logged between tests: {path}")
