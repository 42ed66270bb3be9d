"""Automated differencing against a controlled source that co-holds open series, on both
index backends.

An anonymous attacker asks, for every small hidden cell (collection ∧ modality of
ctrl's own series): the cell itself; its collection and its collection ∧ ¬modality
(X vs X∧¬f); its collection, its modality and their OR (overlapping filters); the cell
ORed with the first j co-held and the first j open-only series, j = 0..k+2 (padding);
the same with `source = ctrl` and `source IN [idc, ctrl]` (source conditions); the
whole corpus and every collection with its modality facet (total minus buckets). Every
answer's total, ctrl's `bySource` cell and ctrl's `source` facet bucket become
constraints (tests/security/differencing.py). The tests require that the true hidden
counts satisfy every constraint (the hub does what docs/security.md says), that every
single subtraction leaves a small cell at least k-1 values and everything combined at
least 2, and that no question tells a co-held series from an open-only one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings, IndexTables
from hub.index.elastic.backend import ElasticIndex
from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from hub.security.access import operator
from hub.security.apikeys import hash_key
from hub.security.auth_settings import ApiKeySettings, AuthSettings
from hub.security.identity import ANONYMOUS, Caller, Role
from hub.security.suppression import Part, release
from hub.service import Hub
from tests.elastic.conftest import es_url, make_elastic
from tests.security.differencing import (
    COLLECTIONS,
    PRIORITIES,
    Atom,
    Atoms,
    Constraint,
    Corpus,
    K,
    Knowledge,
    Question,
    build_coheld,
    copy_sources,
    observe,
    observe_facet,
    width,
)
from tests.web.server import serve

__all__ = ["es_url", "make_elastic"]  # fixtures, used by name

PAD = K + 2
GRANTED = Caller("granted", Role.READER, frozenset({"ctrl"}))


def config(data_dir: Path, index: str = "embedded", elastic: Any = None) -> HubConfig:
    sources = {
        "idc": SourceSettings(name="idc", adapter="idc", priority=PRIORITIES["idc"]),
        "ctrl": SourceSettings(
            name="ctrl", adapter="idc", access="controlled", priority=PRIORITIES["ctrl"]
        ),
    }
    return HubConfig(
        hub=HubSettings(data_dir=data_dir, index=index),  # type: ignore[arg-type]
        sources=sources,
        index=IndexTables(elasticsearch=elastic),
    )


@pytest.fixture(scope="module")
def corpus(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_coheld(small_data_dir, tmp_path_factory.mktemp("coheld") / "snapshots")


@pytest.fixture(scope="module", params=["embedded", "elastic"])
def hub(
    request: pytest.FixtureRequest, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """The same corpus on the embedded tantivy index and on the Elasticsearch backend."""
    data_dir = tmp_path_factory.mktemp(f"coheld-{request.param}") / "hub"
    copy_sources(corpus, data_dir)
    snapshots = SnapshotStore(data_dir).all()
    if request.param == "embedded":
        build_generation(data_dir / "index", snapshots, PRIORITIES)
        made = Hub(config(data_dir))
    else:
        make: Callable[..., ElasticIndex] = request.getfixturevalue("make_elastic")
        index = make()
        assert sorted(asyncio.run(index.publish(snapshots, PRIORITIES))) == ["ctrl", "idc"]
        made = Hub(config(data_dir, "elasticsearch", index.settings))
        assert isinstance(made.index, ElasticIndex)
    yield made
    asyncio.run(made.aclose())


def exact(hub: Hub, filter_json: Any) -> int:
    return hub.cohort(filter_json, None, operator(hub.adapters)).view.counts().series


def targets(corpus: Corpus) -> list[Atom]:
    return sorted(a for a, n in corpus.hidden.items() if 0 < n < K)


def uid_in(uids: list[str]) -> Any:
    return {"IN": {"series_uid": uids}}


def questions(corpus: Corpus, split: Atoms) -> list[Question]:
    """Everything the attacker asks (see the module docstring)."""
    asked = [Question(None, split.every)]
    cell: dict[Atom, Any] = {}
    for c in COLLECTIONS:
        asked.append(Question({"=": {"collection": c}}, split.collection(c)))
        asked.append(
            Question(
                {"AND": [{"=": {"collection": c}}, {"=": {"source": "ctrl"}}]},
                split.collection(c),
            )
        )
    for c, m in targets(corpus):
        x, f = {"=": {"collection": c}}, {"=": {"modality": m}}
        cell[(c, m)] = {"AND": [x, f]}
        only = frozenset({(c, m)})
        asked += [
            Question({"AND": [x, f]}, only),
            Question({"AND": [x, {"!=": {"modality": m}}]}, split.collection(c) - only),
            Question(f, split.modality(m)),
            Question({"OR": [x, f]}, split.collection(c) | split.modality(m)),
            Question({"AND": [x, f, {"=": {"source": "ctrl"}}]}, only),
            Question({"AND": [x, f, {"IN": {"source": ["idc", "ctrl"]}}]}, only),
            Question({"AND": [x, f, {"=": {"source": "idc"}}]}, frozenset()),
            Question({"AND": [x, f, {"!=": {"source": "ctrl"}}]}, frozenset()),
            Question({"AND": [x, f, {"EXCLUDES": {"source": ["ctrl"]}}]}, frozenset()),
        ]
        for j in range(1, PAD + 1):
            for pad in (corpus.coheld[:j], corpus.open_only[:j]):
                asked.append(Question({"OR": [{"AND": [x, f]}, uid_in(pad)]}, only))
            asked.append(
                Question(
                    {"OR": [{"AND": [x, f, {"=": {"source": "ctrl"}}]}, uid_in(corpus.coheld[:j])]},
                    only,
                )
            )
    return asked


@pytest.fixture(scope="module")
def search(hub: Hub, corpus: Corpus) -> tuple[Knowledge, Atoms]:
    """The differencing search: every question asked and recorded."""
    split = Atoms(corpus.modalities)
    knowledge = Knowledge()
    for question in questions(corpus, split):
        observe(hub, question, knowledge)
    for question in [Question(None, split.every)] + [
        Question({"=": {"collection": c}}, split.collection(c)) for c in COLLECTIONS
    ]:
        observe_facet(hub, question, split, knowledge)
    return knowledge, split


def test_the_corpus_holds_what_the_attack_needs(hub: Hub, corpus: Corpus) -> None:
    everything = exact(hub, None)
    assert everything - hub.cohort(None, None).view.counts().series == sum(corpus.hidden.values())
    assert exact(hub, {"=": {"source": "ctrl"}}) == len(corpus.coheld) + sum(corpus.hidden.values())
    assert len(targets(corpus)) >= 4 and len(corpus.open_only) >= PAD


def test_every_answer_is_what_the_documented_rule_gives(
    search: tuple[Knowledge, Atoms], corpus: Corpus
) -> None:
    knowledge, _split = search
    assert len(knowledge.constraints) > 500
    broken = knowledge.unsound(corpus.hidden)
    assert not broken, broken[:5]


def test_one_subtraction_leaves_at_least_k_minus_1_values(
    search: tuple[Knowledge, Atoms], corpus: Corpus
) -> None:
    knowledge, _split = search
    widths = []
    for target in targets(corpus):
        direct = [c for c in knowledge.constraints if c.atoms == frozenset({target})]
        low = max(c.low for c in direct)
        high = min(c.high for c in direct)
        for values, how in knowledge.subtractions(target, (low, high)):
            widths.append(values)
            assert values >= K - 1, (target, how, values)
    assert len(widths) > 50
    print(f"differencing: {len(widths)} single subtractions, fewest values {min(widths)}")


def test_every_combination_leaves_at_least_2_values(
    search: tuple[Knowledge, Atoms], corpus: Corpus
) -> None:
    """Every small cell, the empty ones included ("nobody" is disclosive too)."""
    knowledge, split = search
    bounds = knowledge.propagate(split.every)
    small = [a for a in sorted(split.every, key=repr) if corpus.hidden.get(a, 0) < K]
    assert len(small) > len(targets(corpus))
    for atom in small:
        assert bounds[atom][0] <= corpus.hidden.get(atom, 0) <= bounds[atom][1], atom
        assert width(bounds[atom]) >= 2, (atom, bounds[atom])
    fewest = min(width(bounds[a]) for a in small)
    print(f"differencing: {len(knowledge.constraints)} constraints, {len(small)} small atoms,")
    print(f"  fewest values consistent with everything: {fewest}")


def test_the_search_finds_the_cell_when_ctrl_counts_its_co_held_series(
    hub: Hub, corpus: Corpus
) -> None:
    """What the hub answered before `source` conditions and per-source counts were read
    as the caller sees holdings: ctrl's count rounded as a whole, co-held included, and
    the co-held series listed by `source = ctrl`. The same search, fed those answers,
    pins every small cell to one value: it is strong enough to catch the leak."""
    for target in targets(corpus):
        c, m = target
        knowledge = Knowledge()
        for j in range(PAD + 1):
            hidden = corpus.hidden[target]
            old = release(Part(hidden + j, 0, True), K).value  # ctrl's count, co-held in
            low, high = (0, K - 1) if old is None else (old, old + K - 1)
            knowledge.add(Constraint(frozenset({target}), low - j, high - j, f"padded {j}"))
        bounds = knowledge.propagate([target])[target]
        assert bounds == (corpus.hidden[target],) * 2, (c, m, bounds)


MEMBERSHIP = [
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"=": {"source": "ctrl"}}]},
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"IN": {"source": ["ctrl"]}}]},
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"IN": {"source": ["idc", "ctrl"]}}]},
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"!=": {"source": "ctrl"}}]},
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"EXCLUDES": {"source": ["ctrl"]}}]},
    lambda u: {"AND": [{"=": {"series_uid": u}}, {"=": {"source": "idc"}}]},
    lambda u: {"OR": [{"=": {"series_uid": u}}, {"=": {"source": "ctrl"}}]},
]


def signature(hub: Hub, filter_json: Any) -> tuple[Any, ...]:
    """Everything an anonymous answer says that could depend on ctrl's holdings."""
    cohort = hub.cohort(filter_json, None)
    page = cohort.disclosure.series(100, None, [])
    (facet,) = cohort.disclosure.facets(["source"], 10)
    return (
        cohort.disclosure.counts().series,
        page.total,
        tuple(sorted(tuple(n.get("sources") or []) for n in page.nodes)),
        tuple((r.source, r.count, r.suppressed, r.granularity) for r in hub.by_source(cohort)),
        tuple((b.key, b.count, b.suppressed) for b in facet.buckets),
    )


def test_membership_probes_tell_co_held_from_open_only_series_nothing(
    hub: Hub, corpus: Corpus
) -> None:
    probes = corpus.coheld[:3] + corpus.open_only[:3]
    for probe in MEMBERSHIP:
        answers = {signature(hub, probe(u)) for u in probes}
        assert len(answers) == 1, (probe(probes[0]), answers)
    for j in range(1, K + 1):  # a membership test padded up to a rounding boundary
        pad = corpus.coheld[10 : 10 + j]
        answers = {signature(hub, {"OR": [uid_in(pad), {"=": {"series_uid": u}}]}) for u in probes}
        assert len(answers) == 1, (j, answers)
    listed = hub.cohort({"=": {"source": "ctrl"}}, None)
    assert listed.view.counts().series == 0 and not listed.disclosure.series(10, None, []).nodes


def test_an_authorised_reader_gets_exact_answers(hub: Hub, corpus: Corpus) -> None:
    for filter_json in [
        None,
        {"=": {"source": "ctrl"}},
        *[{"AND": [{"=": {"collection": c}}, {"=": {"modality": m}}]} for c, m in corpus.hidden],
    ]:
        cohort = hub.cohort(filter_json, None, GRANTED)
        full = exact(hub, filter_json)
        assert cohort.disclosure.counts().series == cohort.view.counts().series == full
        cells = cohort.disclosure.by_source(["idc", "ctrl"])
        truth = hub.cohort(filter_json, None, operator(hub.adapters)).view.by_source()
        assert {n: c.value for n, c in cells.items()} == {
            n: truth.get(n, 0) for n in ("idc", "ctrl")
        }
    listed = hub.cohort({"=": {"source": "ctrl"}}, None, GRANTED).view
    uids = {n["series_uid"] for n in listed.series(1000, None, []).nodes}
    assert set(corpus.coheld) <= uids
    assert hub.cohort(None, None, ANONYMOUS).disclosure.plan.restricted == {"ctrl"}


GRAPHQL = """query($f: JSON) { cohort(filter: $f) { counts { series suppressed }
  series(first: 1000) { totalCount nodes { seriesUid sources } }
  bySource { source count suppressed } } }"""
KEY = "ihk_differencing-test-key-for-ctrl-0000000000"


def test_the_issue_questions_over_http(hub: Hub, corpus: Corpus) -> None:
    """The membership questions as a client sends them, to a real server: anonymous gets
    the same answer for a co-held and an open-only series; a key granting ctrl gets
    ctrl's holdings exactly, co-held series included."""
    keys = {"ctrl-reader": ApiKeySettings(hash=hash_key(KEY), sources=["ctrl"])}
    served = hub.config.model_copy(update={"auth": AuthSettings(api_keys=keys)})
    with serve(served) as url, httpx.Client(base_url=url, timeout=120) as client:

        def ask(filter_json: Any, token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = {"query": GRAPHQL, "variables": {"f": filter_json}}
            answer = client.post("/graphql", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert "errors" not in answer.json(), answer.text
            return answer.json()["data"]["cohort"]

        ctrl = {"=": {"source": "ctrl"}}
        anonymous = ask(ctrl)
        assert anonymous["series"] == {"totalCount": 0, "nodes": []}
        own = sum(corpus.hidden.values())
        assert anonymous["counts"]["series"] == own // K * K  # ctrl's own series, rounded
        authorised = ask(ctrl, KEY)
        assert authorised["counts"]["series"] == len(corpus.coheld) + own
        listed = {n["seriesUid"] for n in authorised["series"]["nodes"]}
        assert set(corpus.coheld) <= listed and not set(corpus.open_only) & listed
        answers = []
        for u in corpus.coheld[:2] + corpus.open_only[:2]:
            probe = {"AND": [{"=": {"series_uid": u}}, ctrl]}
            answers.append(ask(probe))
            exact_count = ask(probe, KEY)["series"]["totalCount"]
            assert exact_count == (1 if u in corpus.coheld else 0)
        assert all(a == answers[0] for a in answers) and answers[0]["series"]["totalCount"] == 0
