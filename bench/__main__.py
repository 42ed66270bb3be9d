"""`python -m bench {harvest,query,federation,scale,ui,export,all} [--data-dir D] [--runs N]`.

`scale` (issue 4, the Elasticsearch/OpenSearch backend) runs only when asked for by name:
it ingests the full corpus into a cluster, which takes minutes. So does `ui` (issue 8,
facet click to counts in headless Chromium), which needs the Debian `chromium` package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.issue2 import bench_harvest, bench_query
from bench.issue3 import bench_federation
from bench.issue4 import bench_scale
from bench.issue7 import bench_export
from bench.issue8 import bench_ui


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "what", choices=["harvest", "query", "federation", "scale", "ui", "export", "all"]
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".hub-bench"))
    parser.add_argument("--runs", type=int, default=0, help="default: 3 for harvest, 30 for query")
    args = parser.parse_args()
    if args.what in ("harvest", "all"):
        print(json.dumps({"harvest": bench_harvest(args.data_dir, args.runs or 3)}, indent=2))
    if args.what in ("query", "all"):
        print(json.dumps({"query": bench_query(args.data_dir, args.runs or 30)}, indent=2))
    if args.what in ("federation", "all"):
        federation = bench_federation(args.data_dir, args.runs or 15)
        print(json.dumps({"federation": federation}, indent=2))
    if args.what == "scale":
        print(json.dumps({"scale": bench_scale(args.data_dir)}, indent=2))
    if args.what == "ui":
        print(json.dumps({"ui": bench_ui(args.data_dir, args.runs or 20)}, indent=2))
    if args.what == "export":  # issue 7: exports of the whole corpus, in child processes
        print(json.dumps({"export": bench_export(args.data_dir)}, indent=2))


if __name__ == "__main__":
    main()
