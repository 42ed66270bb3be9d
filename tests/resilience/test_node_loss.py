"""A node SIGKILLed while questions are asked; a cluster turned red, then healed.

On the package's own 3-node cluster (conftest.py). With one replica, losing any one node
loses no data: every answer during and after the loss must equal the answer before it,
none may fail. With no replica, losing a node that holds a shard turns the read alias red:
questions must fail fast with a clear message (never a partial answer, never a hang) and
`/readyz`'s reason must say so, until the node is back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import RunningCluster
from hub.index.base import CohortQuery
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.errors import ElasticUnavailable
from hub.index.snapshots import SnapshotStore
from schema.filters import parse_filter
from tests.resilience.conftest import QUESTIONS, answers, settings_for, shard_nodes

DEADLINE_S = 8.0


@pytest.fixture(scope="module")
def replicated(own_cluster: RunningCluster, small_data_dir: Path) -> Iterator[ElasticIndex]:
    index = ElasticIndex(settings_for(own_cluster, replicas=1), query_deadline_s=DEADLINE_S)
    asyncio.run(index.publish(SnapshotStore(small_data_dir).all(), {"idc": 100}))
    own_cluster.wait_status("green", timeout=120)
    try:
        yield index
    finally:
        index.drop()
        index.close()


def test_a_killed_node_loses_no_question(
    own_cluster: RunningCluster, replicated: ElasticIndex
) -> None:
    before = answers(replicated)
    assert before[0][0].series > 0  # the questions select something
    results: list[tuple[float, Any]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                results.append((time.monotonic(), answers(replicated)))
            except BaseException as exc:  # every failure is a test failure
                failures.append(exc)

    asker = threading.Thread(target=ask, name="asker")
    asker.start()
    try:
        time.sleep(3)
        killed_at = time.monotonic()
        own_cluster.kill(1)  # SIGKILL: no goodbye to the cluster
        time.sleep(15)
        assert replicated.not_ready_reason() is None  # yellow still serves everything
        own_cluster.restart(1)
        own_cluster.wait_status("green", timeout=240)
        healed_at = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        asker.join(timeout=120)
    assert not failures, f"{len(failures)} questions failed, first: {failures[0]!r}"
    during = [a for t, a in results if killed_at <= t < healed_at]
    after = [a for t, a in results if t >= healed_at]
    assert during and after, f"{len(during)} answers during the loss, {len(after)} after"
    for answer in (a for _, a in results):
        assert answer == before
    assert replicated.not_ready_reason() is None


@pytest.fixture(scope="module")
def unreplicated(own_cluster: RunningCluster, small_data_dir: Path) -> Iterator[ElasticIndex]:
    settings = settings_for(own_cluster, replicas=0, shards=3)
    index = ElasticIndex(settings, query_deadline_s=DEADLINE_S)
    asyncio.run(index.publish(SnapshotStore(small_data_dir).all(), {"idc": 100}))
    own_cluster.wait_status("green", timeout=120)
    try:
        yield index
    finally:
        index.drop()
        index.close()


def test_a_red_cluster_is_reported_in_time_and_recovers(
    own_cluster: RunningCluster, unreplicated: ElasticIndex
) -> None:
    before = answers(unreplicated)
    assert unreplicated.not_ready_reason() is None
    prefix = unreplicated.settings.index_prefix
    held = shard_nodes(own_cluster, prefix)
    victim = next(
        n.name
        for n in own_cluster.nodes
        if any(i.startswith(f"{prefix}-idc-") for i in held.get(n.name, ()))
    )
    own_cluster.kill(victim)
    try:
        deadline = time.monotonic() + 60
        reason = unreplicated.not_ready_reason()
        while reason is None and time.monotonic() < deadline:
            time.sleep(0.5)  # the cluster notices the node is gone
            reason = unreplicated.not_ready_reason()
        assert reason is not None and "red" in reason and "idc" in reason, reason
        for question in QUESTIONS:
            started = time.monotonic()
            with pytest.raises(ElasticUnavailable) as failed:
                unreplicated.cohort(CohortQuery(parse_filter(question))).counts()
            took = time.monotonic() - started
            assert took < DEADLINE_S + 2, f"the failure took {took:.1f} s"
            assert "no partial answer" in str(failed.value) or "red" in str(failed.value)
            assert "idc" in failed.value.sources, failed.value.sources
    finally:
        own_cluster.restart(victim)
    own_cluster.wait_status("green", timeout=240)
    deadline = time.monotonic() + 30
    while unreplicated.not_ready_reason() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert unreplicated.not_ready_reason() is None
    assert answers(unreplicated) == before
