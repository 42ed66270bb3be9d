"""`python -m bench WHAT [--data-dir D] ...`; WHAT: harvest, query, federation, routing, scale,
ui, export, load, soak or all.

One module per thing measured: `harvest` and `query` (bench/harvest_and_query.py: the
embedded index against raw tantivy and DuckDB), `federation` (bench/federation.py: live
sources, one of them hanging), `export` (bench/exports.py), `scale` (bench/scale/),
`ui` (bench/facet_clicks.py), `load` and `soak` (bench/load/scenarios.py). `all` runs
harvest, query and federation.

`scale` (the Elasticsearch/OpenSearch backend) runs only when asked for by name:
it ingests the full corpus into a cluster, which takes minutes. So does `ui` (a facet
click to new counts in headless Chromium), which needs the Debian `chromium` package.
So do `load` and `soak` (the hub as a server under many clients; see
docs/load-testing.md): `load [--workers N] [--clients 32] [--seconds 60] [--faulty]`,
`soak [--minutes 10] [--rate 75]`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.exports import bench_export
from bench.facet_clicks import bench_ui
from bench.federation import bench_federation
from bench.harvest_and_query import bench_harvest, bench_query
from bench.load.report import dumps
from bench.load.scenarios import SOAK_WARMUP_S, bench_faulty, bench_load, bench_soak
from bench.routing import bench_routing
from bench.scale import STEPS, bench_scale, plan_for
from bench.scale.report import summary


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "what",
        choices=[
            "harvest",
            "query",
            "federation",
            "routing",
            "scale",
            "ui",
            "export",
            "load",
            "soak",
            "all",
        ],
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".hub-bench"))
    parser.add_argument("--runs", type=int, default=0, help="default: 3 for harvest, 30 for query")
    scale = parser.add_argument_group("scale")
    scale.add_argument("--only", help=f"scale: comma-separated steps of {','.join(STEPS)}")
    scale.add_argument("--small", action="store_true", help="scale: a few collections, short")
    scale.add_argument("--nodes", type=int, help="scale: cluster nodes (default 3)")
    scale.add_argument("--heap", help="scale: heap a node (default 2g; --small 512m)")
    load = parser.add_argument_group("load and soak")
    load.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    load.add_argument("--clients", type=int, default=32, help="concurrent clients (load)")
    load.add_argument("--seconds", type=float, default=60.0, help="measured seconds (load)")
    load.add_argument(
        "--warmup", type=float, help="unmeasured seconds first (default 5; soak 120: caches fill)"
    )
    load.add_argument("--minutes", type=float, default=10.0, help="soak length")
    load.add_argument("--rate", type=float, default=75.0, help="soak questions per second")
    load.add_argument("--seed", type=int, default=9, help="seed of the question mix")
    load.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    load.add_argument("--faulty", action="store_true", help="load: add failing live sources")
    load.add_argument("--profile", action="store_true", help="load: py-spy the workers")
    load.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    if args.what in ("load", "soak"):
        print(_load(args))
        return
    if args.what in ("harvest", "all"):
        print(json.dumps({"harvest": bench_harvest(args.data_dir, args.runs or 3)}, indent=2))
    if args.what in ("query", "all"):
        print(json.dumps({"query": bench_query(args.data_dir, args.runs or 30)}, indent=2))
    if args.what in ("federation", "all"):
        federation = bench_federation(args.data_dir, args.runs or 15)
        print(json.dumps({"federation": federation}, indent=2))
    if args.what in ("routing", "all"):
        print(json.dumps({"routing": bench_routing(args.data_dir, args.runs or 30)}, indent=2))
    if args.what == "scale":
        only = tuple(args.only.split(",")) if args.only else STEPS
        scaled = bench_scale(args.data_dir, only, plan_for(args.small, args.nodes, args.heap))
        print(json.dumps({"scale": scaled}, indent=2))
        print(summary(scaled))
    if args.what == "ui":
        print(json.dumps({"ui": bench_ui(args.data_dir, args.runs or 20)}, indent=2))
    if args.what == "export":  # exports of the whole corpus, in child processes
        print(json.dumps({"export": bench_export(args.data_dir)}, indent=2))


def _load(args: argparse.Namespace) -> str:
    soak = args.what == "soak"
    warmup = args.warmup if args.warmup is not None else (SOAK_WARMUP_S if soak else 5.0)
    common = {"warmup_s": warmup, "seed": args.seed, "timeout_s": args.timeout}
    if args.what == "soak":
        report = bench_soak(args.data_dir, args.workers, args.minutes, args.rate, **common)
    elif args.profile:
        report = bench_load(
            args.data_dir, args.workers, args.clients, args.seconds, profile=True, **common
        )
    elif args.faulty:
        report = bench_faulty(args.data_dir, args.workers, args.clients, args.seconds, **common)
    else:
        report = bench_load(args.data_dir, args.workers, args.clients, args.seconds, **common)
    text = dumps({args.what + ("_faulty" if args.faulty else ""): report})
    if args.out:
        args.out.write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
