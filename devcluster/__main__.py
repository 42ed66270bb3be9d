"""`python -m devcluster start|stop|status --data DIR`: the local cluster command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devcluster.cluster import attach, start, stop_dir
from devcluster.errors import ClusterError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster",
        description="A real OpenSearch cluster on 127.0.0.1, one JVM per node.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="start the nodes, wait for green, print URLs")
    begin.add_argument("--data", type=Path, required=True, help="directory for data and logs")
    begin.add_argument("--nodes", type=int, default=3)
    begin.add_argument("--heap", default="512m", help="each node's JVM heap (-Xms/-Xmx)")
    begin.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="HTTP on BASE+i, transport on BASE+100+i (default: free ports)",
    )
    begin.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for green")
    for name, text in (("stop", "end the nodes of DIR by PID"), ("status", "show DIR's nodes")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--data", type=Path, required=True)
    return parser


def _start(args: argparse.Namespace) -> int:
    began = time.monotonic()
    cluster = start(args.data, nodes=args.nodes, heap=args.heap, base_http_port=args.base_port)
    try:
        cluster.wait_status("green", timeout=args.timeout)
    except BaseException:
        cluster.stop()
        raise
    print(
        f"green: {len(cluster.nodes)} nodes in {time.monotonic() - began:.1f} s, "
        f"heap {args.heap} each, data under {cluster.data_dir}"
    )
    for node in cluster.nodes:
        print(f"  {node.name}  {node.url}  pid {cluster.pids[node.name]}")
    print(f"urls: {','.join(cluster.urls)}")
    print(f"stop: python -m devcluster stop --data {cluster.data_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = attach(args.data)
    health = cluster.health()
    print(f"status: {health['status'] if health else 'not answering'}")
    for node in cluster.nodes:
        state = "running" if cluster.alive(node.name) else "stopped"
        print(f"  {node.name}  {node.url}  {state}")
    return 0 if health else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "start":
            return _start(args)
        if args.command == "stop":
            ended = stop_dir(args.data)
            print(f"stopped: {', '.join(ended) if ended else 'nothing was running'}")
            return 0
        return _status(args)
    except ClusterError as error:
        print(f"devcluster: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
