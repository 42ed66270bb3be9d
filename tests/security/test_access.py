"""Per-source access levels: who gets records, who gets counts, and that no record of a
counts-only source reaches series pages, exports, the QIDO face or text ranking."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.api.graphql_schema import run_graphql
from hub.export import ExportError, prepare_export
from hub.qido.params import parse_qido
from hub.qido.search import search_series, search_studies
from hub.saved_cohorts import CohortStore
from hub.security.access import Granularity, granularity, plan_access
from hub.security.identity import ANONYMOUS, Caller, Role
from hub.service import Hub
from schema.filters import parse_filter
from tests.security.restricted import (
    GRANTED_KEY,
    READER,
    READER_KEY,
    K,
    Mixed,
    controlled_hub,
    granted,
    mixed,
    mixed_config,
    registered_hub,
    truth,
)

__all__ = ["controlled_hub", "mixed", "registered_hub"]  # fixtures, used by name

KITS = {"=": {"collection": "c4kc_kits"}}
COHORT = """query($f: JSON, $t: String, $sort: [SortInput!]) { cohort(filter: $f, text: $t) {
  counts { patients studies series suppressed rounded }
  series(first: 1000, sort: $sort) { totalCount nodes { seriesUid source sources score
    downloadUrl } }
  bySource { source count granularity suppressed message }
  access { source access granularity }
  privacy { minCell applied ranked } } }"""


def ask(hub: Hub, caller: Caller, f: Any = None, t: str | None = None, **extra: Any) -> Any:
    answer = run_graphql(hub, COHORT, {"f": f, "t": t, **extra}, caller=caller)
    assert "errors" not in answer, answer
    return answer["data"]["cohort"]


@pytest.mark.parametrize(
    ("access", "caller", "expected"),
    [
        ("open", ANONYMOUS, "record"),
        ("registered", ANONYMOUS, "count"),
        ("registered", READER, "record"),
        ("registered", Caller("admin", Role.ADMIN), "record"),
        ("controlled", ANONYMOUS, "count"),
        ("controlled", READER, "count"),
        ("controlled", Caller("admin", Role.ADMIN), "count"),  # running the hub grants no data
        ("controlled", granted("other"), "count"),
        ("controlled", granted("src"), "record"),
        ("registered", Caller(None, Role.ANONYMOUS, frozenset({"src"})), "record"),
    ],
)
def test_granularity_table(access: str, caller: Caller, expected: str) -> None:
    assert granularity("src", access, caller) == Granularity(expected)


def test_unconfigured_sources_in_the_index_give_counts() -> None:
    plan = plan_access({"idc": "open"}, ANONYMOUS, indexed=["idc", "old"])
    assert plan.visible == {"idc"} and plan.restricted == {"old"}


@pytest.mark.parametrize(
    ("filter_json", "only_visible"),
    [
        (None, False),
        ({"=": {"source": "idc"}}, True),
        ({"IN": {"source": ["idc", "midrc"]}}, False),
        ({"AND": [{"=": {"modality": "CT"}}, {"IN": {"source": ["idc"]}}]}, True),
        ({"OR": [{"=": {"source": "idc"}}, {"=": {"modality": "CT"}}]}, False),
        ({"EXCLUDES": {"source": ["midrc"]}}, False),  # conservative: only positive tests
        ({"!=": {"source": "midrc"}}, False),
    ],
)
def test_which_filters_cannot_select_hidden_series(filter_json: Any, only_visible: bool) -> None:
    plan = plan_access({"idc": "open", "midrc": "controlled"}, ANONYMOUS)
    assert plan.only_visible(parse_filter(filter_json)) is only_visible


def test_controlled_source_gives_anonymous_callers_counts_only(controlled_hub: Hub) -> None:
    answer = ask(controlled_hub, ANONYMOUS, KITS)
    assert answer["access"] == [{"source": "idc", "access": "controlled", "granularity": "count"}]
    assert answer["series"] == {"totalCount": 0, "nodes": []}
    counts, exact = answer["counts"], truth(controlled_hub, KITS).view.counts()
    assert counts["rounded"] and answer["privacy"] == {
        "minCell": K,
        "applied": True,
        "ranked": False,
    }
    assert counts["series"] == exact.series // K * K != exact.series  # 621 → 620
    (idc,) = answer["bySource"]
    assert idc["granularity"] == "count" and idc["count"] == counts["series"]


def test_authorised_caller_gets_records_and_exact_counts(controlled_hub: Hub) -> None:
    answer = ask(controlled_hub, granted("idc"), KITS)
    exact = truth(controlled_hub, KITS).view.counts()
    assert answer["counts"] == {
        "patients": exact.patients,
        "studies": exact.studies,
        "series": exact.series,
        "suppressed": False,
        "rounded": False,
    }
    assert answer["series"]["totalCount"] == exact.series == len(answer["series"]["nodes"])
    assert answer["access"][0]["granularity"] == "record" and not answer["privacy"]["applied"]


def test_registered_source_needs_a_reader(registered_hub: Hub) -> None:
    anonymous, reader = ask(registered_hub, ANONYMOUS, KITS), ask(registered_hub, READER, KITS)
    assert anonymous["series"]["totalCount"] == 0 and anonymous["counts"]["rounded"]
    exact = truth(registered_hub, KITS).view.counts().series
    assert reader["series"]["totalCount"] == reader["counts"]["series"] == exact
    assert [a["granularity"] for a in (anonymous["access"][0], reader["access"][0])] == [
        "count",
        "record",
    ]


def test_counts_only_callers_see_no_hidden_series_anywhere(mixed: Mixed) -> None:
    """Pages, exports (records and manifests), QIDO series and studies, saved cohorts."""
    hub, every = mixed.hub, None
    page = ask(hub, ANONYMOUS, every)
    uids = {n["seriesUid"] for n in page["series"]["nodes"]}
    assert page["series"]["totalCount"] == truth(hub, every).view.counts().series - len(
        mixed.hidden
    )
    assert not uids & mixed.hidden
    some = {"IN": {"collection": ["c4kc_kits", "icdc_glioma", "rms_mutation_prediction"]}}
    assert truth(hub, some).view.counts().series - hub.cohort(some, None).view.counts().series > 50
    for fmt in ("ndjson", "csv", "s5cmd"):
        text = "".join(prepare_export(hub, fmt, some).text())
        assert not any(uid in text for uid in mixed.hidden) and "midrc" not in text, fmt
        assert len(text) > 1000
    sample = {"IN": {"series_uid": sorted(mixed.hidden)[:5]}}
    for doc in truth(hub, sample).view.series(5, None, []).nodes:
        for caller, expected in ((ANONYMOUS, 0), (READER, 0), (granted("midrc"), 1)):
            by_series = parse_qido([("SeriesInstanceUID", doc["series_uid"])], "series")
            by_study = parse_qido([("StudyInstanceUID", doc["study_uid"])], "study")
            assert len(search_series(hub, by_series, caller).datasets) == expected
            assert len(search_studies(hub, by_study, caller).datasets) == expected
    assert ask(hub, granted("midrc"), sample)["series"]["totalCount"] == 5


def test_a_series_also_held_by_a_controlled_source_shows_through_its_open_copy(
    mixed: Mixed,
) -> None:
    shared = {"IN": {"series_uid": sorted(mixed.shared)}}
    anonymous = ask(mixed.hub, ANONYMOUS, shared)["series"]["nodes"]
    authorised = ask(mixed.hub, granted("midrc"), shared)["series"]["nodes"]
    assert len(anonymous) == len(authorised) == len(mixed.shared)
    assert all(n["sources"] == ["idc"] and n["source"] == "idc" for n in anonymous)
    assert all(sorted(n["sources"]) == ["idc", "midrc"] for n in authorised)
    text = "".join(prepare_export(mixed.hub, "ndjson", shared).text())
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == len(mixed.shared) and "midrc" not in text
    assert all(r["sources"] == ["idc"] and r["source"] == "idc" for r in records)
    export = prepare_export(mixed.hub, "ndjson", shared, caller=granted("midrc"))
    assert "midrc" in "".join(export.text())  # the same export shows it to the authorised


def test_a_manifest_of_a_counts_only_source_is_refused(mixed: Mixed) -> None:
    with pytest.raises(ExportError, match="counts only"):
        prepare_export(mixed.hub, "s5cmd", KITS, source="midrc")
    assert prepare_export(mixed.hub, "s5cmd", KITS, source="midrc", caller=granted("midrc"))


def test_text_is_a_filter_not_a_ranking_for_counts_only_callers(mixed: Mixed) -> None:
    """BM25 statistics span hidden series: scores and score order would leak them."""
    ranked = ask(mixed.hub, granted("midrc"), None, "lung")
    assert ranked["privacy"]["ranked"] and ranked["series"]["nodes"][0]["score"] is not None
    text = ask(mixed.hub, ANONYMOUS, None, "lung", sort=[{"field": "score", "order": "DESC"}])
    as_filter = ask(mixed.hub, ANONYMOUS, {"search": {"keyword": "lung"}})
    assert not text["privacy"]["ranked"]
    assert all(n["score"] is None for n in text["series"]["nodes"])
    assert text["series"] == as_filter["series"]  # same series, same (browse) order
    assert text["counts"] == as_filter["counts"]


def test_by_source_states_granularity_and_hides_live_style_details(mixed: Mixed) -> None:
    answer = ask(mixed.hub, ANONYMOUS, KITS)
    rows = {r["source"]: r for r in answer["bySource"]}
    exact = truth(mixed.hub, KITS).view.by_source()
    assert rows["idc"] == {**rows["idc"], "granularity": "record", "count": exact["idc"]}
    assert rows["midrc"]["granularity"] == "count"
    own = exact["midrc"] - len(mixed.shared)  # its co-held series are idc's for this caller
    assert rows["midrc"]["count"] == own // K * K != own
    assert {a["source"]: a["granularity"] for a in answer["access"]} == {
        "idc": "record",
        "midrc": "count",
    }


def test_sources_listing_rounds_a_counts_only_source(mixed: Mixed) -> None:
    query = "{ sources { name series message } }"
    anonymous = run_graphql(mixed.hub, query)["data"]["sources"]
    authorised = run_graphql(mixed.hub, query, caller=granted("midrc"))["data"]["sources"]
    shown = {s["name"]: s for s in anonymous}
    exact = {s["name"]: s["series"] for s in authorised}
    assert shown["idc"]["series"] == exact["idc"]
    assert shown["midrc"]["series"] == exact["midrc"] // K * K != exact["midrc"]
    assert f"{exact['midrc']:,}" not in shown["midrc"]["message"]


def test_saved_cohorts_keep_what_anyone_may_see(mixed: Mixed) -> None:
    """A saved cohort is read by id, whoever saved it: it keeps the anonymous answer."""
    glioma = {"=": {"collection": "icdc_glioma"}}
    saved = CohortStore(mixed.hub).save(glioma, None)
    exact = truth(mixed.hub, glioma).view.counts()
    visible = mixed.hub.cohort(glioma, None).view.counts()
    assert saved.counts.rounded and saved.counts.series is not None
    assert (saved.counts.series - visible.series) % K == 0
    assert saved.counts.series <= exact.series < saved.counts.series + K
    again = CohortStore(mixed.hub).get(saved.id)
    assert again == saved and again.counts.series != exact.series
    assert CohortStore(mixed.hub).rerun(saved.id).counts == saved.counts


def test_http_callers_get_their_own_granularity(mixed: Mixed) -> None:
    """The REST export and QIDO handlers pass the authenticated caller on."""
    hidden = sorted(mixed.hidden)[0]
    with TestClient(create_app(mixed_config(mixed.data_dir))) as client:
        for key, expected in ((None, False), (READER_KEY, False), (GRANTED_KEY, True)):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            export = client.get("/export", params={"format": "ndjson"}, headers=headers)
            qido = client.get(
                "/dicomweb/series", params={"SeriesInstanceUID": hidden}, headers=headers
            )
            assert export.status_code == 200 and (hidden in export.text) is expected, key
            assert qido.status_code == 200 and (hidden in qido.text) is expected, key
