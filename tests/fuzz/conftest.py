"""Fuzzing fixtures: an app over a copy of the small corpus, and a tally of every case run.

Every fuzz test records each case it sends (hypothesis example, schemathesis call) with
the HTTP status or outcome it got; at the end of the session the tally is printed, so a
run states "N cases, zero 5xx" in numbers rather than by the absence of a failure.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.config import HubConfig
from hub.security.audit import AuditSettings
from hub.security.limits import LimitsSettings
from tests.conftest import hub_config


class Tally:
    """Cases per fuzz target and outcome ('2xx', '4xx', '5xx', 'FilterError', ...)."""

    def __init__(self) -> None:
        self.cases: Counter[tuple[str, str]] = Counter()

    def record(self, target: str, outcome: int | str) -> None:
        if isinstance(outcome, int):
            outcome = f"{outcome // 100}xx"
        self.cases[(target, outcome)] += 1

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


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.cases:
        terminalreporter.section("fuzzing cases")
        for line in TALLY.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fuzz_data_dir(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the small corpus: fuzzed mutations save cohorts, never into the shared one."""
    target = tmp_path_factory.mktemp("fuzz") / "hub"
    shutil.copytree(small_data_dir, target, ignore=shutil.ignore_patterns("audit"))
    return target


def fuzz_config(data_dir: Path) -> HubConfig:
    """No rate limit (fuzzing is a flood by design); the audit log stays on, elsewhere."""
    config = hub_config(data_dir)
    config.limits = LimitsSettings(rate_limit=False)
    config.audit = AuditSettings(directory=data_dir / "audit")
    return config


@pytest.fixture(scope="session")
def fuzz_app(fuzz_data_dir: Path) -> FastAPI:
    return create_app(fuzz_config(fuzz_data_dir))


@pytest.fixture(scope="session")
def fuzz_client(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:
        yield client
