"""How hard each step pushes: the full run's figures, or `--small` ones for development.

One place for every knob, so the report can print them beside the figures they made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

STEPS = ("ingest", "correctness", "question", "paging", "node-loss", "killed-harvest")
"""What `--only` may name, in the order they run (each later step reuses the ingest)."""

SMALL_COLLECTIONS = (
    "tcga_luad",
    "tcga_brca",
    "c4kc_kits",
    "acrin_nsclc_fdg_pet",
    "icdc_glioma",
    "rms_mutation_prediction",
)
"""`--small`: the series of these collections only (tens of thousands, CT and CHEST among them)."""


@dataclass(frozen=True)
class Plan:
    small: bool = False
    nodes: int = 3
    heap: str = "2g"
    shards: int = 3
    replicas: int = 1
    bulk_chunk_docs: int = 5_000
    bulk_max_inflight: int = 2
    ingest_runs: int = 1
    """Full IDC takes minutes a load: one hub load and one raw load, in the same run."""
    question_runs: int = 30
    question_warmup: int = 5
    page_size: int = 50
    deep_pages: tuple[int, ...] = (2_000, 2_001, 2_002, 3_000, 4_000)
    page_repeats: int = 7
    load_clients: int = 8
    load_seconds: float = 60.0
    kill_at_s: float = 20.0
    restart_at_s: float = 40.0
    harvest_kill_at: float = 0.5

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


FULL = Plan()
SMALL = replace(
    FULL,
    small=True,
    heap="512m",
    bulk_chunk_docs=2_000,
    ingest_runs=3,
    question_runs=10,
    question_warmup=2,
    page_size=10,
    deep_pages=(200, 201, 300),
    page_repeats=3,
    load_clients=4,
    load_seconds=12.0,
    kill_at_s=4.0,
    restart_at_s=8.0,
)
"""Seconds, not minutes: pages of 10 keep page 200+ past the first 2,000 series."""
