"""Real `imaging-hub serve` processes, one on each backend, and the GraphQL questions.

The cohort question is the one `python -m bench query` asks (CT AND CHEST: counts, five
facets, an age histogram, the first 50 series), plus how each source answered, so a
degraded answer is seen rather than timed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harvest_and_query import FILTER, GRAPHQL
from bench.load.procs import HubServer, hub_toml

QUESTION = GRAPHQL.rstrip().removesuffix("}").rstrip().removesuffix("}") + (
    "  bySource { source status message }\n} }"
)
PAGE = """query($filter: JSON, $first: Int, $after: String) { cohort(filter: $filter) {
  series(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { seriesUid } }
} }"""


def embedded_server(data_dir: Path) -> HubServer:
    return HubServer(data_dir, config_text=hub_toml(data_dir))


def cluster_server(data_dir: Path, table: dict[str, Any]) -> HubServer:
    text = hub_toml(data_dir).replace("[hub]\n", '[hub]\nindex = "elasticsearch"\n', 1)
    lines = ["", "[index.elasticsearch]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return HubServer(data_dir, config_text=text + "\n".join(lines) + "\n")


def question_body(filter_json: Any = FILTER) -> dict[str, Any]:
    return {"query": QUESTION, "variables": {"filter": filter_json}}


def page_body(filter_json: Any, first: int, after: str | None) -> dict[str, Any]:
    return {"query": PAGE, "variables": {"filter": filter_json, "first": first, "after": after}}


def ask(client: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(milliseconds, the answer's `data.cohort`); an HTTP or GraphQL error raises."""
    t = time.perf_counter()
    answer = client.post("/graphql", json=body)
    ms = (time.perf_counter() - t) * 1000
    answer.raise_for_status()
    payload = answer.json()
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    cohort: dict[str, Any] = payload["data"]["cohort"]
    return ms, cohort


def same_answer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Counts, facets, histogram and the first page's series are the same (latencies and
    source messages aside)."""
    keys = ("counts", "facets", "histogram")
    uids = [[n["seriesUid"] for n in x["series"]["nodes"]] for x in (a, b)]
    return all(a[k] == b[k] for k in keys) and uids[0] == uids[1]
