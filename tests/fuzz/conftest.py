"""Fuzzing fixtures: an app over a copy of the small corpus, and a tally of every case run.

Every fuzz test records each case it sends (hypothesis example, schemathesis call) with
the HTTP status or outcome it got; at the end of the run the tally (tests/fuzz/tally.py,
added up over the xdist workers) is printed, so a run states "N cases, zero 5xx" in
numbers rather than by the absence of a failure.
"""

from __future__ import annotations

import shutil
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
from tests.fuzz.tally import TALLY, Tally


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


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
