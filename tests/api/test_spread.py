"""Kept-alive connections are asked, now and then, to reconnect (`requests_per_connection`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from tests.conftest import hub_config


@pytest.mark.parametrize(("every", "closing"), [(1, 20), (0, 0)])
def test_answers_ask_to_reconnect_as_configured(
    small_data_dir: Path, every: int, closing: int
) -> None:
    config = hub_config(small_data_dir)
    config.hub.requests_per_connection = every
    with TestClient(create_app(config)) as client:
        answers = [client.get("/healthz") for _ in range(20)]
    assert all(a.status_code == 200 for a in answers)
    assert sum(a.headers.get("connection") == "close" for a in answers) == closing


def test_about_one_answer_in_every_asks(small_data_dir: Path) -> None:
    config = hub_config(small_data_dir)
    config.hub.requests_per_connection = 10
    with TestClient(create_app(config)) as client:
        closing = sum(
            client.get("/healthz").headers.get("connection") == "close" for _ in range(600)
        )
    assert 25 <= closing <= 110  # 60 expected; binomial(600, 0.1) stays well inside
