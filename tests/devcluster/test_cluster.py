"""The local cluster command: real OpenSearch nodes turn green, survive losing one, stop.

The run's session cluster is reused to check what a started cluster looks like; the
node-loss test kills a node, so it has a cluster of its own (other tests share the
session one).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devcluster
from devcluster.cluster import RunningCluster
from devcluster.layout import STATE_FILE
from devcluster.processes import is_node_process

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _send(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devcluster", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A 3-node cluster for the tests that kill and stop nodes (each leaves it green or
    stopped-and-started-again, so neither depends on the other's order)."""
    data_dir = tmp_path_factory.mktemp("own-cluster")
    cluster = devcluster.start(data_dir, nodes=3, heap="384m", bound_to_parent=True)
    yield cluster
    cluster.stop()


def test_the_session_cluster_is_green_with_every_node_on_its_own_url(
    session_cluster: RunningCluster | None,
) -> None:
    if session_cluster is None:
        pytest.skip("HUB_TEST_ELASTICSEARCH_URL names an outside cluster; none was started")
    health = _get(session_cluster.urls[0] + "/_cluster/health")
    assert health["status"] == "green" and health["number_of_nodes"] == 3
    names = [_get(url)["name"] for url in session_cluster.urls]
    assert names == [node.name for node in session_cluster.nodes]
    assert len(set(session_cluster.urls)) == 3
    assert _get(session_cluster.urls[1])["version"]["distribution"] == "opensearch"
    state = json.loads((session_cluster.data_dir / STATE_FILE).read_text())
    assert state["pids"] == session_cluster.pids
    for node in session_cluster.nodes:
        assert is_node_process(session_cluster.pids[node.name], node)


def test_status_reads_the_state_file_from_another_process(
    session_cluster: RunningCluster | None,
) -> None:
    if session_cluster is None:
        pytest.skip("HUB_TEST_ELASTICSEARCH_URL names an outside cluster; none was started")
    done = _cli("status", "--data", str(session_cluster.data_dir))
    assert done.returncode == 0, done.stderr
    assert "status: green" in done.stdout
    assert done.stdout.count("running") == 3


def test_a_killed_node_leaves_the_cluster_yellow_and_its_restart_makes_it_green(
    own_cluster: RunningCluster,
) -> None:
    own_cluster.wait_status("green", timeout=300)
    first = own_cluster.urls[0]
    _send("PUT", first + "/lost", {"settings": {"number_of_shards": 3, "number_of_replicas": 1}})
    bulk = "".join(f'{{"index":{{"_id":"{i}"}}}}\n{{"n":{i}}}\n' for i in range(200))
    request = urllib.request.Request(
        first + "/lost/_bulk?refresh=true",
        data=bulk.encode(),
        method="POST",
        headers={"content-type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert json.loads(answer.read())["errors"] is False
    own_cluster.wait_status("green", timeout=120)

    victim = own_cluster.node(2)
    victim_pid = own_cluster.pids[victim.name]
    own_cluster.kill(2, signal.SIGKILL)
    assert not own_cluster.alive(2)
    assert not is_node_process(victim_pid, victim)
    deadline = time.monotonic() + 120
    health = _get(first + "/_cluster/health")
    while health["number_of_nodes"] != 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        health = _get(first + "/_cluster/health")
    assert health["number_of_nodes"] == 2
    assert health["status"] == "yellow"  # every primary has a copy left; replicas are missing
    assert _get(first + "/lost/_count")["count"] == 200

    own_cluster.restart(2)
    assert own_cluster.pids[victim.name] != victim_pid
    health = own_cluster.wait_status("green", timeout=300)
    assert health["number_of_nodes"] == 3
    assert _get(victim.url)["name"] == victim.name  # same ports after the restart
    assert _get(victim.url + "/lost/_count")["count"] == 200


def test_stop_from_another_process_ends_every_node_and_a_new_start_keeps_the_urls(
    own_cluster: RunningCluster,
) -> None:
    own_cluster.wait_status("green", timeout=300)
    pids, urls = own_cluster.pids, own_cluster.urls
    done = _cli("stop", "--data", str(own_cluster.data_dir))
    assert done.returncode == 0, done.stderr
    assert "stopped: node-1, node-2, node-3" in done.stdout
    for node in own_cluster.nodes:
        assert not is_node_process(pids[node.name], node)
        # Gone, or ended and waiting for this process (its parent) to collect its status.
        assert not Path(f"/proc/{pids[node.name]}").exists() or _is_zombie(pids[node.name])
    state = json.loads((own_cluster.data_dir / STATE_FILE).read_text())
    assert state["pids"] == {}
    again = _cli("stop", "--data", str(own_cluster.data_dir))
    assert "nothing was running" in again.stdout

    restarted = devcluster.start(own_cluster.data_dir, nodes=3, heap="384m", bound_to_parent=True)
    own_cluster.state = restarted.state  # the fixture's teardown stops these nodes too
    with pytest.raises(devcluster.ClusterError, match=r"not green within .*joined"):
        restarted.wait_status("green", timeout=0.1)  # the JVMs are still starting
    restarted.wait_status("green", timeout=300)
    assert restarted.urls == urls


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_node_that_cannot_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    cluster = devcluster.start(tmp_path, nodes=1, heap="1k", bound_to_parent=True)
    try:
        with pytest.raises(devcluster.ClusterError) as error:
            cluster.wait_status("green", timeout=60)
    finally:
        cluster.stop()
    message = str(error.value)
    assert "node-1 exited with status" in message
    assert "heap" in message.lower()  # the JVM's own complaint, from console.log


def test_taken_ports_and_a_running_directory_are_refused(
    session_cluster: RunningCluster | None, tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(devcluster.ClusterError, match=f"ports taken on 127.0.0.1: {port}"):
            devcluster.start(tmp_path / "taken", nodes=2, base_http_port=port)
    assert not (tmp_path / "taken" / STATE_FILE).exists()
    if session_cluster is None:
        return
    with pytest.raises(devcluster.ClusterError, match="already runs"):
        devcluster.start(session_cluster.data_dir)


def test_every_node_is_seeded_with_every_other_and_all_may_bootstrap(tmp_path: Path) -> None:
    from devcluster.layout import opensearch_yml, plan_nodes

    nodes = plan_nodes(tmp_path, 3, None)
    assert len({p for n in nodes for p in (n.http_port, n.transport_port)}) == 6
    text = opensearch_yml(nodes[1], nodes)
    for node in nodes:
        assert f"127.0.0.1:{node.transport_port}" in text and f'"{node.name}"' in text
    assert f"http.port: {nodes[1].http_port}" in text and "network.host: 127.0.0.1" in text
    single = opensearch_yml(nodes[0], nodes[:1])
    assert "discovery.type: single-node" in single and "seed_hosts" not in single
