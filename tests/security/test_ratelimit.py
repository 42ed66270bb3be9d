"""Per-client rate limits: the token bucket on a fake clock, then the middleware over HTTP.

The bucket must allow `burst` requests at once, refill at `requests_per_minute`, never
hold more than `burst`, and say how long to wait. Over HTTP, the API paths answer 429
with Retry-After once a client's bucket is empty, while probes stay reachable; clients
are told apart by identity when authenticated and by address otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.config import HubConfig
from hub.security.apikeys import hash_key
from hub.security.auth_settings import ApiKeySettings
from hub.security.identity import Caller, Role
from hub.security.limits import LimitsSettings
from hub.security.ratelimit import TokenBuckets, client_key
from tests.conftest import hub_config

KEY = "ihk_rate-limit-test-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(requests_per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)  # one token a second
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)  # a refused request takes nothing
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(1.0)


def test_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(requests_per_minute=600, burst=5, clock=clock)
    buckets.take("a")
    clock.now += 3600  # an hour idle refills to `burst`, not to 36,000
    assert sum(buckets.take("a") == 0.0 for _ in range(10)) == 5


def test_clients_have_their_own_buckets_and_old_ones_are_dropped() -> None:
    clock = Clock()
    buckets = TokenBuckets(requests_per_minute=60, burst=1, max_clients=2, clock=clock)
    assert buckets.take("a") == 0.0 and buckets.take("b") == 0.0
    assert buckets.take("a") > 0 and buckets.take("b") > 0
    assert buckets.take("c") == 0.0  # a third client drops the least recent ("a")
    assert len(buckets._buckets) == 2
    assert buckets.take("a") == 0.0  # back full: dropping only ever errs towards allowing


def test_client_key_prefers_the_identity() -> None:
    scope: dict[str, Any] = {"client": ("10.1.2.3", 5555), "state": {}}
    assert client_key(scope) == "ip:10.1.2.3"
    scope["state"]["caller"] = Caller("alice", Role.READER)
    assert client_key(scope) == "id:alice"
    assert client_key({"client": None}) == "ip:unknown"


# --- over HTTP ------------------------------------------------------------------------


def _config(small_data_dir: Path, rate_limit: bool = True) -> HubConfig:
    config = hub_config(small_data_dir)
    config.limits = LimitsSettings(rate_limit=rate_limit, requests_per_minute=1, burst=3)
    config.auth.api_keys = {"alice": ApiKeySettings(hash=hash_key(KEY))}
    return config


@pytest.fixture
def client(small_data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_config(small_data_dir))) as client:
        yield client


QUERY = {"query": "{ sources { name } }"}


def test_api_paths_answer_429_with_retry_after(client: TestClient) -> None:
    assert client.post("/graphql", json=QUERY).status_code == 200
    assert client.get("/dicomweb/studies", params={"limit": "1"}).status_code == 200
    assert client.get("/cohorts/nope").status_code == 400  # a malformed id still counts
    refused = client.post("/graphql", json=QUERY)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"  # one request a minute
    assert refused.json() == {
        "error": "rate limit exceeded: 1 requests per minute with bursts of 3; retry after 60 s"
    }
    for path in ("/export?format=csv", "/dicomweb/series", "/cohorts/nope"):
        assert client.get(path).status_code == 429, path


def test_probes_are_never_limited(client: TestClient) -> None:
    for _ in range(10):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
    assert client.post("/graphql", json=QUERY).status_code == 200


def test_authenticated_callers_and_addresses_are_counted_apart(small_data_dir: Path) -> None:
    app = create_app(_config(small_data_dir))
    bearer = {"Authorization": f"Bearer {KEY}"}
    with (
        TestClient(app, client=("10.0.0.1", 1)) as first,
        TestClient(app, client=("10.0.0.2", 1)) as second,
    ):
        for _ in range(3):
            assert first.post("/graphql", json=QUERY).status_code == 200
        assert first.post("/graphql", json=QUERY).status_code == 429
        # The same key from two addresses shares one budget; another address has its own.
        assert first.post("/graphql", json=QUERY, headers=bearer).status_code == 200
        assert second.post("/graphql", json=QUERY, headers=bearer).status_code == 200
        assert second.post("/graphql", json=QUERY).status_code == 200
        assert first.post("/graphql", json=QUERY, headers=bearer).status_code == 200
        assert second.post("/graphql", json=QUERY, headers=bearer).status_code == 429


def test_rate_limit_can_be_turned_off(small_data_dir: Path) -> None:
    with TestClient(create_app(_config(small_data_dir, rate_limit=False))) as client:
        assert all(client.post("/graphql", json=QUERY).status_code == 200 for _ in range(6))
