"""Where each node lives under the data directory, its ports, and the files it is given.

DIR/cluster.json     the state file: node names, ports, PIDs (what `stop` reads)
DIR/node-N/config/   opensearch.yml and log4j2.properties, written before each start
DIR/node-N/data/     the node's shards (kept across restarts)
DIR/node-N/logs/     node.log (log4j2) and console.log (the JVM's own output)
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from devcluster.errors import ClusterError

STATE_FILE = "cluster.json"
CLUSTER_NAME = "imaging-hub-dev"
TRANSPORT_OFFSET = 100
"""With a base port, node i listens on base+i (HTTP) and base+100+i (transport)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node's fixed identity: its name, home directory and ports."""

    name: str
    home: str
    http_port: int
    transport_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def logs(self) -> Path:
        return Path(self.home) / "logs"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now (held together, so they are distinct)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def plan_nodes(data_dir: Path, nodes: int, base_http_port: int | None) -> list[NodeSpec]:
    """Names, homes and ports for `nodes` nodes; a taken port is an error naming it."""
    if nodes < 1:
        raise ClusterError("a cluster needs at least one node")
    if base_http_port is None:
        ports = _free_ports(2 * nodes)
        http, transport = ports[:nodes], ports[nodes:]
    else:
        http = [base_http_port + i for i in range(nodes)]
        transport = [base_http_port + TRANSPORT_OFFSET + i for i in range(nodes)]
        taken = [port for port in http + transport if not _port_is_free(port)]
        if taken:
            raise ClusterError(
                f"ports taken on 127.0.0.1: {', '.join(map(str, taken))}; choose another "
                "base port, or none to pick free ports"
            )
    return [
        NodeSpec(f"node-{i + 1}", str(data_dir / f"node-{i + 1}"), http[i], transport[i])
        for i in range(nodes)
    ]


def opensearch_yml(node: NodeSpec, all_nodes: list[NodeSpec]) -> str:
    """The node's settings: loopback only, every node a seed, every name a first manager."""
    home = Path(node.home)
    lines = [
        f"cluster.name: {CLUSTER_NAME}",
        f"node.name: {node.name}",
        f"path.data: {home / 'data'}",
        f"path.logs: {home / 'logs'}",
        "network.host: 127.0.0.1",
        f"http.port: {node.http_port}",
        f"transport.port: {node.transport_port}",
        # A developer's disk is often fuller than the 85% watermark: allocate regardless.
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "bootstrap.memory_lock: false",
        "action.destructive_requires_name: false",
    ]
    if len(all_nodes) == 1:
        lines.append("discovery.type: single-node")
    else:
        seeds = ", ".join(f'"127.0.0.1:{other.transport_port}"' for other in all_nodes)
        names = ", ".join(f'"{other.name}"' for other in all_nodes)
        lines += [
            f"discovery.seed_hosts: [{seeds}]",
            f"cluster.initial_cluster_manager_nodes: [{names}]",
        ]
    return "\n".join(lines) + "\n"


LOG4J2 = """\
# Written by devcluster: the node's log goes to node.log in its logs directory,
# warnings also to the console (console.log, with the JVM's own output).
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}node.log
appender.file.filePattern = ${sys:opensearch.logs.base_path}${sys:file.separator}node-%i.log.gz
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name] %m%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 64MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.file.ref = file
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
"""


def write_node_files(node: NodeSpec, all_nodes: list[NodeSpec]) -> None:
    home = Path(node.home)
    for sub in ("config", "data", "logs", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "config" / "opensearch.yml").write_text(opensearch_yml(node, all_nodes))
    (home / "config" / "log4j2.properties").write_text(LOG4J2)


def log_tail(node: NodeSpec, lines: int = 30) -> str:
    """The last lines of the node's console and log files, for an error message."""
    parts = []
    for name in ("console.log", "node.log"):
        path = node.logs / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no log under {node.logs})"


@dataclass
class State:
    """What cluster.json holds: enough for another process to find and end the nodes."""

    heap: str
    nodes: list[NodeSpec]
    pids: dict[str, int]

    def save(self, data_dir: Path) -> None:
        body = {"heap": self.heap, "nodes": [asdict(n) for n in self.nodes], "pids": self.pids}
        tmp = data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(data_dir / STATE_FILE)

    @classmethod
    def load(cls, data_dir: Path) -> State | None:
        path = data_dir / STATE_FILE
        if not path.is_file():
            return None
        body = json.loads(path.read_text())
        nodes = [NodeSpec(**n) for n in body["nodes"]]
        pids = {name: int(pid) for name, pid in body["pids"].items()}
        return cls(heap=body["heap"], nodes=nodes, pids=pids)
