"""A local OpenSearch cluster, one JVM per node, for operators and for the test suite.

`start()` plans the nodes, writes their files, spawns their JVMs and returns at once;
`wait_status("green")` waits for the cluster (and names the node that died, with its log,
or the nodes that joined when time runs out). The state file in the data directory lets
`stop_dir()` (the CLI's `stop`) end the nodes of that directory by PID from any process.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devcluster import processes
from devcluster.build import build
from devcluster.errors import ClusterError
from devcluster.layout import NodeSpec, State, log_tail, plan_nodes, write_node_files

STATUS_RANK = {"red": 0, "yellow": 1, "green": 2}


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


class RunningCluster:
    """The nodes of one data directory: their URLs and PIDs, and the means to end them."""

    def __init__(
        self, data_dir: Path, state: State, lib: Path | None, bound_to_parent: bool
    ) -> None:
        self.data_dir = data_dir
        self.state = state
        self._lib = lib
        self._bound = bound_to_parent
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- what the cluster is ------------------------------------------------------------
    @property
    def nodes(self) -> list[NodeSpec]:
        return list(self.state.nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.state.nodes]

    @property
    def pids(self) -> dict[str, int]:
        return dict(self.state.pids)

    def node(self, which: int | str) -> NodeSpec:
        """A node by its index (0-based) or name."""
        if isinstance(which, int):
            return self.state.nodes[which]
        for node in self.state.nodes:
            if node.name == which:
                return node
        raise ClusterError(f"no node {which!r}; nodes: {[n.name for n in self.state.nodes]}")

    def alive(self, which: int | str) -> bool:
        node = self.node(which)
        pid = self.state.pids.get(node.name)
        return pid is not None and processes.is_node_process(pid, node)

    # -- starting and ending nodes --------------------------------------------------------
    def _spawn(self, node: NodeSpec) -> None:
        if self._lib is None:
            self._lib = build()
        write_node_files(node, self.state.nodes)
        child = processes.spawn(node, self.state.heap, self._lib, self._bound)
        self._children[node.name] = child
        self.state.pids[node.name] = child.pid
        self.state.save(self.data_dir)

    def kill(self, which: int | str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to one node's JVM (SIGKILL: the node is lost, as in a crash)."""
        node = self.node(which)
        pid = self.state.pids.get(node.name)
        if pid is None or not processes.is_node_process(pid, node):
            return
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            child = self._children.get(node.name)
            if child is not None:
                child.wait(timeout=30)

    def restart(self, which: int | str) -> None:
        """Start a node again on its ports and data, ending it first if it still runs."""
        node = self.node(which)
        pid = self.state.pids.get(node.name)
        if pid is not None:
            processes.end(pid, node)
        self._spawn(node)

    def stop(self) -> None:
        """End every node (SIGTERM, then SIGKILL) and forget their PIDs."""
        for node in self.state.nodes:
            pid = self.state.pids.pop(node.name, None)
            if pid is not None:
                processes.end(pid, node)
            child = self._children.pop(node.name, None)
            if child is not None:
                child.poll()
        if (self.data_dir / "cluster.json").exists():
            self.state.save(self.data_dir)

    # -- health ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any] | None:
        """`_cluster/health` from the first node that answers, None if none does."""
        for node in self.state.nodes:
            if not self.alive(node.name):
                continue
            try:
                body: dict[str, Any] = _get_json(f"{node.url}/_cluster/health", timeout=3)
                return body
            except (OSError, ValueError):
                continue
        return None

    def joined(self) -> list[str]:
        """Names of the nodes the cluster has, as a live node sees it."""
        for node in self.state.nodes:
            if not self.alive(node.name):
                continue
            try:
                rows = _get_json(f"{node.url}/_cat/nodes?format=json&h=name", timeout=3)
                return sorted(row["name"] for row in rows)
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return []

    def _check_exited(self) -> None:
        for node in self.state.nodes:
            child = self._children.get(node.name)
            if child is not None and child.poll() is not None:
                raise ClusterError(
                    f"{node.name} exited with status {child.returncode} "
                    f"(home {node.home}):\n{log_tail(node)}"
                )

    def wait_status(
        self, status: str = "green", timeout: float = 180.0, nodes: int | None = None
    ) -> dict[str, Any]:
        """Wait until the cluster is at least `status` with `nodes` members (all by default).

        A node that exits meanwhile is an error with its log tail; so is the timeout, which
        names the nodes that had joined and the last status seen.
        """
        if status not in STATUS_RANK:
            raise ValueError(f"status must be one of {sorted(STATUS_RANK)}")
        expected = len(self.state.nodes) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            self._check_exited()
            last = self.health() or last
            if (
                last is not None
                and STATUS_RANK.get(str(last.get("status")), -1) >= STATUS_RANK[status]
                and int(last.get("number_of_nodes", 0)) >= expected
            ):
                return last
            if time.monotonic() >= deadline:
                seen = last.get("status") if last else "no node answering"
                raise ClusterError(
                    f"cluster in {self.data_dir} not {status} within {timeout:.0f} s "
                    f"(last status: {seen}; joined: {self.joined() or 'none'} of "
                    f"{[n.name for n in self.state.nodes]}); logs under each node-N/logs"
                )
            time.sleep(0.5)

    def rss_bytes(self) -> dict[str, int]:
        return {name: processes.rss_bytes(pid) for name, pid in self.state.pids.items()}


def _running_state(data_dir: Path) -> State | None:
    """The directory's state when any of its nodes still runs."""
    state = State.load(data_dir)
    if state is None:
        return None
    live = [n for n in state.nodes if processes.is_node_process(state.pids.get(n.name, -1), n)]
    return state if live else None


def start(
    data_dir: Path | str,
    nodes: int = 3,
    heap: str = "512m",
    base_http_port: int | None = None,
    bound_to_parent: bool = False,
) -> RunningCluster:
    """Spawn `nodes` nodes with data under `data_dir`; returns before they are up.

    Call `wait_status("green")` next. `bound_to_parent` ends the JVMs when this process
    dies (the test suite); the cluster is also stopped at this interpreter's exit then.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if _running_state(data_dir) is not None:
        raise ClusterError(
            f"a cluster already runs in {data_dir}: `python -m devcluster stop --data {data_dir}`"
        )
    lib = build()
    previous = State.load(data_dir)
    if previous is not None and len(previous.nodes) == nodes and base_http_port is None:
        specs = plan_nodes(data_dir, nodes, None)  # new free ports, same names and homes
    else:
        specs = plan_nodes(data_dir, nodes, base_http_port)
    cluster = RunningCluster(data_dir, State(heap=heap, nodes=specs, pids={}), lib, bound_to_parent)
    if bound_to_parent:
        atexit.register(cluster.stop)
    try:
        for spec in specs:
            cluster._spawn(spec)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def attach(data_dir: Path | str) -> RunningCluster:
    """The cluster a state file describes (another process started it)."""
    data_dir = Path(data_dir).resolve()
    state = State.load(data_dir)
    if state is None:
        raise ClusterError(f"no cluster state in {data_dir} (no cluster.json)")
    return RunningCluster(data_dir, state, None, bound_to_parent=False)


def stop_dir(data_dir: Path | str) -> list[str]:
    """End the nodes recorded in `data_dir` by PID; the names of those that were running."""
    cluster = attach(data_dir)
    running = [n.name for n in cluster.nodes if cluster.alive(n.name)]
    cluster.stop()
    return running


def probe(url: str) -> bool:
    try:
        _get_json(url, timeout=2)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True
