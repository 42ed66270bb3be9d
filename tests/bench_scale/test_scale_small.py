"""`python -m bench scale --small` end to end, so the harness cannot rot unnoticed.

Every step runs over the small real-IDC corpus on a real cluster: a three-node
cluster of its own (512 MB a node), so the node-loss step may SIGKILL one without
disturbing the suite's cluster; with HUB_TEST_ELASTICSEARCH_URL set, on that cluster,
and node loss reports that it has no node to kill.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.scale import STEPS, bench_scale, plan_for
from bench.scale.cluster import URL_ENV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(small_data_dir: Path) -> dict[str, Any]:
    plan = replace(plan_for(small=True), ingest_runs=1)
    return bench_scale(small_data_dir, STEPS, plan)


def test_every_step_reports_figures(report: dict[str, Any]) -> None:
    for step in STEPS:
        assert step in report, step
        assert "error" not in report[step], (step, report[step])


def test_ingest_compares_the_hub_with_raw_bulk_on_the_same_documents(
    report: dict[str, Any],
) -> None:
    ingest = report["ingest"]
    assert ingest["documents_sent"] >= report["series"] > 0
    assert ingest["hub_s"] > 0 and ingest["raw_bulk_s"] > 0
    assert ingest["ratio_hub_over_raw"] == pytest.approx(
        ingest["hub_s"] / ingest["raw_bulk_s"], rel=0.05
    )


def test_reference_cohorts_agree_three_ways(report: dict[str, Any]) -> None:
    correctness = report["correctness"]
    assert len(correctness["cohorts"]) == 25
    assert correctness["mismatches"] == 0, [c for c in correctness["cohorts"] if c["differ"]]
    assert any(c["series"] > 0 for c in correctness["cohorts"])


def test_question_and_paging_answer_the_same_on_both_backends(report: dict[str, Any]) -> None:
    question, paging = report["question"], report["paging"]
    assert question["same_answer_on_both"]
    assert question["counts"]["series"] > 0
    for backend in ("cluster", "embedded"):
        assert question[backend]["p50_ms"] > 0
        assert paging[backend]["page_1_ms"] > 0
    assert paging["same_series_on_deep_pages"]


def test_node_loss_is_measured_through_the_kill(report: dict[str, Any]) -> None:
    loss = report["node-loss"]
    if os.environ.get(URL_ENV):
        assert "skipped" in loss
        return
    assert loss["failed"] == 0, loss["failures"]
    assert all(loss[phase]["n"] > 0 for phase in ("before", "during", "after"))
    assert loss["green_after_restart_s"] > 0  # wait_status saw green after the restart
    assert any(h.startswith("yellow") for h in loss["health"])


def test_killed_harvest_changes_no_count(report: dict[str, Any]) -> None:
    killed = report["killed-harvest"]
    assert 0 < killed["killed_after_series"] < report["series"]
    assert killed["counts_unchanged_after_kill"]
    assert killed["counts_unchanged_after_next_harvest"]
    assert killed["half_built_cleaned_up"]
