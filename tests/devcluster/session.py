"""One real OpenSearch cluster (3 nodes, 512m heap each) for the whole test run.

The run's first process (the xdist controller, or the only process) spawns the nodes in
`pytest_configure` when the selected tests use the cluster, so the JVMs start while tests
are collected; it tells the workers where the cluster is through the environment (workers
inherit it) and stops it in `pytest_unconfigure`. The nodes are also ended at interpreter
exit and, by the kernel, if the controller dies (see devcluster.processes.spawn).

`HUB_TEST_ELASTICSEARCH_URL` (one URL, or several separated by commas) points the suite at
an existing cluster instead: then nothing is started. A cluster that fails to start is an
error in every test that needs it, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devcluster
from devcluster.cluster import RunningCluster

URL_ENV = "HUB_TEST_ELASTICSEARCH_URL"
DIR_ENV = "HUB_TEST_DEVCLUSTER_DIR"
"""Set by the controller for its workers: the running cluster's data directory."""
ERROR_ENV = "HUB_TEST_DEVCLUSTER_ERROR"
"""Set by the controller when the cluster could not be started: the reason."""
NODES = 3
HEAP = "512m"
GREEN_TIMEOUT_S = 300.0
USES_CLUSTER = ("es_url", "es_urls", "make_elastic", "elastic_small")
"""Fixture names whose mention in a test module or conftest means the run needs the cluster."""

_started: dict[str, Any] = {}


def _selected_files(config: pytest.Config) -> Iterator[Path]:
    args = [a for a in config.args if not a.startswith("-")] or [str(config.rootpath / "tests")]
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if path.is_file():
            yield path
            for parent in path.parents:  # the conftests that apply to it
                if (parent / "conftest.py").is_file():
                    yield parent / "conftest.py"
                if parent == config.rootpath:
                    break
        elif path.is_dir():
            yield from path.rglob("test_*.py")
            yield from path.rglob("conftest.py")


def wants_cluster(config: pytest.Config) -> bool:
    """Do the selected test files (or their conftests) use one of the cluster fixtures?"""
    for path in _selected_files(config):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if any(name in text for name in USES_CLUSTER):
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(URL_ENV) or os.environ.get(DIR_ENV):
        return  # a worker, or a cluster is already given
    if config.option.collectonly or not wants_cluster(config):
        return
    data_dir = Path(tempfile.mkdtemp(prefix="hub-devcluster-"))
    _started["dir"] = data_dir
    try:
        cluster = devcluster.start(data_dir, nodes=NODES, heap=HEAP, bound_to_parent=True)
    except devcluster.ClusterError as error:
        os.environ[ERROR_ENV] = str(error)
        return
    _started["cluster"] = cluster
    os.environ[DIR_ENV] = str(data_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster: RunningCluster | None = _started.pop("cluster", None)
    if cluster is not None:
        cluster.stop()
        os.environ.pop(DIR_ENV, None)
    data_dir: Path | None = _started.pop("dir", None)
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


def _data_nodes(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_cluster/health", timeout=10) as answer:
        return int(json.loads(answer.read()).get("number_of_data_nodes", 1))


@pytest.fixture(scope="session")
def session_cluster() -> Iterator[RunningCluster | None]:
    """The run's cluster, green; None when HUB_TEST_ELASTICSEARCH_URL names another one.

    Without a controller's cluster (a run whose selection did not look like it needed
    one), this process starts its own for its session."""
    if os.environ.get(URL_ENV):
        yield None
        return
    if os.environ.get(ERROR_ENV):
        pytest.fail(f"the test cluster did not start: {os.environ[ERROR_ENV]}", pytrace=False)
    own: Path | None = None
    if os.environ.get(DIR_ENV):
        cluster = devcluster.attach(os.environ[DIR_ENV])
    else:
        own = Path(tempfile.mkdtemp(prefix="hub-devcluster-"))
        cluster = devcluster.start(own, nodes=NODES, heap=HEAP, bound_to_parent=True)
    try:
        cluster.wait_status("green", timeout=GREEN_TIMEOUT_S)
    except devcluster.ClusterError as error:
        pytest.fail(f"the test cluster is not green: {error}", pytrace=False)
    yield cluster
    if own is not None:
        cluster.stop()
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def es_urls(session_cluster: RunningCluster | None) -> list[str]:
    """Every node's URL (the external cluster's, from HUB_TEST_ELASTICSEARCH_URL)."""
    if session_cluster is None:
        return [u.strip().rstrip("/") for u in os.environ[URL_ENV].split(",") if u.strip()]
    return session_cluster.urls


@pytest.fixture(scope="session")
def es_replicas(es_urls: list[str]) -> int:
    """1 replica on a cluster with more than one data node (as in production), else 0."""
    return 1 if _data_nodes(es_urls[0]) > 1 else 0
