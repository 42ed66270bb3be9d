"""Correctness: the reference cohorts on the cluster, the embedded index and DuckDB.

Counts (patients, studies, series), the facet buckets (and missing counts) of the
reference test's fields, and the age histogram must be identical three ways. The
DuckDB side is the reference test's own evaluator over the raw IDC parquet (with
`--small`, cut to the series the subset holds).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hub.index.base import CohortQuery
from hub.index.protocol import CohortView
from schema.filters import parse_filter
from tests.hub.test_reference import COHORTS, FACET_FIELDS, FACET_SIZE
from tests.reference import Reference

Answer = dict[str, Any]


def answer_of(view: CohortView) -> Answer:
    counts = view.counts()
    facets = {
        f.field: ({b.key: b.count for b in f.buckets}, f.missing)
        for f in view.facets(FACET_FIELDS, FACET_SIZE)
    }
    ages = {int(float(b.key)): b.count for b in view.histogram("age", 10) if b.count}
    return {
        "counts": (counts.patients, counts.studies, counts.series),
        "facets": facets,
        "age_histogram": ages,
    }


def reference_answer(ref: Reference, where: str) -> Answer:
    counts = ref.counts(where)
    return {
        "counts": (counts.patients, counts.studies, counts.series),
        "facets": {f: ref.facet(f, where) for f in FACET_FIELDS},
        "age_histogram": ref.histogram("age", 10, where),
    }


def restricted_reference(snapshot: Path | None) -> Reference:
    """The reference over the raw corpus, or over the series of `snapshot` only."""
    ref = Reference()
    if snapshot is not None:
        ref.con.execute(
            "DELETE FROM ref WHERE series_uid NOT IN (SELECT series_uid FROM read_parquet(?))",
            [str(snapshot)],
        )
    return ref


def compare(cluster: Any, embedded: Any, ref: Reference) -> dict[str, Any]:
    """One row per cohort: counts, which parts differ, and each side's time."""
    rows, mismatches = [], 0
    for cid, guppy, where in COHORTS:
        query = CohortQuery(parse_filter(guppy))
        timed = {
            "cluster": _timed(answer_of, cluster.cohort(query)),
            "embedded": _timed(answer_of, embedded.cohort(query)),
            "duckdb": _timed(reference_answer, ref, where),
        }
        expected = timed["duckdb"][0]
        differ = [
            f"{side}.{part}"
            for side in ("cluster", "embedded")
            for part in expected
            if timed[side][0][part] != expected[part]
        ]
        mismatches += len(differ)
        patients, studies, series = timed["cluster"][0]["counts"]
        rows.append(
            {
                "cohort": cid,
                "patients": patients,
                "studies": studies,
                "series": series,
                "identical": not differ,
                "differ": differ,
                **{f"{side}_ms": round(ms) for side, (_, ms) in timed.items()},
            }
        )
        print(f"    {_line(rows[-1])}", flush=True)
    return {
        "cohorts": rows,
        "mismatches": mismatches,
        "compared": ["counts", "facets", "age_histogram"],
    }


def _timed(fn: Any, *args: Any) -> tuple[Answer, float]:
    t = time.perf_counter()
    answer: Answer = fn(*args)
    return answer, (time.perf_counter() - t) * 1000


def _line(row: dict[str, Any]) -> str:
    mark = "same" if row["identical"] else "DIFFER " + ",".join(row["differ"])
    return (
        f"{row['cohort']:<24} {row['patients']:>8,} {row['studies']:>9,} {row['series']:>10,}"
        f"  {mark}  (cluster {row['cluster_ms']} ms, embedded {row['embedded_ms']} ms,"
        f" duckdb {row['duckdb_ms']} ms)"
    )
