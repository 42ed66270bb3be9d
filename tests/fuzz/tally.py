"""The tally of fuzz cases, gathered across xdist workers for the run's summary.

A pytest plugin (the root conftest loads it, so the xdist controller has it too): each
worker sends its counts when its session ends, the controller adds them up and prints
one "N cases, zero 5xx" section for the whole run. Without xdist the one process does
both halves.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

WORKER_KEY = "fuzz_cases"


class Tally:
    """Cases per fuzz target and outcome ('2xx', '4xx', '5xx', 'FilterError', ...)."""

    def __init__(self) -> None:
        self.cases: Counter[tuple[str, str]] = Counter()

    def record(self, target: str, outcome: int | str) -> None:
        if isinstance(outcome, int):
            outcome = f"{outcome // 100}xx"
        self.cases[(target, outcome)] += 1

    def dump(self) -> list[list[Any]]:
        """The counts as plain lists, which execnet can carry between processes."""
        return [[target, outcome, n] for (target, outcome), n in self.cases.items()]

    def add(self, dumped: list[list[Any]]) -> None:
        for target, outcome, n in dumped:
            self.cases[(str(target), str(outcome))] += int(n)

    def lines(self) -> list[str]:
        targets = sorted({t for t, _ in self.cases})
        out = []
        for target in targets:
            outcomes = {o: n for (t, o), n in sorted(self.cases.items()) if t == target}
            total = sum(outcomes.values())
            detail = ", ".join(f"{o}: {n}" for o, n in outcomes.items())
            out.append(f"{target}: {total} cases ({detail})")
        total = sum(self.cases.values())
        server_errors = sum(n for (_, o), n in self.cases.items() if o == "5xx")
        out.append(f"fuzzing total: {total} cases, {server_errors} with a 5xx answer")
        return out


TALLY = Tally()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput[WORKER_KEY] = TALLY.dump()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent under `-p no:xdist`
def pytest_testnodedown(node: Any, error: Any) -> None:
    TALLY.add(getattr(node, "workeroutput", {}).get(WORKER_KEY, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.cases:
        terminalreporter.section("fuzzing cases")
        for line in TALLY.lines():
            terminalreporter.write_line(line)
