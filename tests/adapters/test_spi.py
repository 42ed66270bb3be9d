"""The adapter SPI: pushdown splitting and plugin discovery.

`split_pushdown(node)` returns (pushed, residual) with pushed AND residual equivalent to
node, for any capability set; checked with the reference evaluator over random records
and random filters. Discovery goes through the `imaging_hub.adapters` entry points, and a
broken plugin is skipped with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.registry
from adapters.idc import IdcAdapter
from adapters.registry import GROUP, discover_adapters
from adapters.spi import (
    ALL_OPERATORS,
    Capabilities,
    SourceSettings,
    operator_of,
    pushable_by,
    split_pushdown,
)
from hub.config import ConfigError, HubConfig, HubSettings
from hub.service import Hub
from schema.evaluate import matches
from schema.filters import (
    MATCH_ALL,
    And,
    Compare,
    In,
    IsMissing,
    Node,
    Or,
    Search,
    parse_filter,
    to_json,
)
from schema.filters import walk as walk_nodes
from schema.record import FIELDS
from tests.reference import filter_strategy, value_pools

# ------------------------------------------------------------------- random records

_VOCAB: dict[str, list[Any]] = {
    "collection": ["lidc_idri", "tcga_brca", "nlst"],
    "modality": ["CT", "MR", "SEG", "SM", None],
    "body_part": ["CHEST", "BREAST", "HEAD", None, None],
    "sex": ["female", "male", "other", "unknown"],
    "license": ["CC BY 4.0", "CC BY 3.0", None],
    "manufacturer": ["SIEMENS", "GE MEDICAL SYSTEMS", None],
    "disease": ["Lung Cancer", "Breast Cancer", None],
    "study_description": ["CT CHEST W/O", "Lung screening", "MRI brain T1 axial", None],
    "series_description": ["AXIAL 2.5mm", "segmentation of lung", "PET CT", None],
}


def _random_records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        rec: dict[str, Any] = {name: None for name in FIELDS}
        rec.update({name: rng.choice(values) for name, values in _VOCAB.items()})
        source = rng.choice(["idc", "tcia"])
        rec.update(
            source=source,
            sources=sorted({source, rng.choice(["idc", "tcia", "midrc"])}),
            patient_id=f"p{rng.randrange(40)}",
            study_uid=f"st{rng.randrange(120)}",
            series_uid=f"se{i}",
            age=rng.choice([None, 0, 1, 17, 40, 55, 60, 65, 80, 99]),
            study_date=rng.choice(
                [
                    None,
                    dt.date(1965, 3, 1),
                    dt.date(2001, 5, 6),
                    dt.date(2005, 12, 31),
                    dt.date(2019, 1, 1),
                ]
            ),
            instance_count=rng.choice([None, 1, 120]),
        )
        records.append(rec)
    return records


RECORDS = _random_records(300)
POOLS = value_pools(RECORDS)

# ------------------------------------------------------------------ random capabilities

_PUSHABLE_FIELDS = [
    "source",
    "collection",
    "modality",
    "body_part",
    "sex",
    "age",
    "study_date",
    "license",
    "manufacturer",
    "disease",
    "study_description",
    "series_description",
]
capabilities = st.builds(
    lambda pushdown, text: Capabilities(
        harvest=True, live_search=True, pushdown=pushdown, text_search=text
    ),
    st.dictionaries(
        st.sampled_from(_PUSHABLE_FIELDS),
        st.frozensets(st.sampled_from(sorted(ALL_OPERATORS))),
        max_size=len(_PUSHABLE_FIELDS),
    ),
    st.booleans(),
)


def _leaves(node: Node) -> list[Node]:
    return [n for n in walk_nodes(node) if not isinstance(n, And | Or)]


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(filter_json=filter_strategy(POOLS, depth=3), caps=capabilities)
def test_split_pushdown_is_equivalent_to_the_original(
    filter_json: dict[str, Any], caps: Capabilities
) -> None:
    node = parse_filter(filter_json)
    pushable = pushable_by(caps)
    pushed, residual = split_pushdown(node, pushable)

    for record in RECORDS:
        whole = matches(node, record)
        split = matches(pushed, record) and (residual is None or matches(residual, record))
        assert whole == split, record["series_uid"]

    # The source is only ever asked for what it declared it can do.
    assert all(pushable(leaf) for leaf in _leaves(pushed))
    # Nothing is invented: every leaf of either part comes from the original.
    original = _leaves(node)
    assert all(leaf in original for leaf in _leaves(pushed))
    if residual is not None:
        assert all(leaf in original for leaf in _leaves(residual))
    # All pushable: nothing residual. Nothing pushable: nothing pushed.
    if all(pushable(leaf) for leaf in original):
        assert residual is None
    if not any(pushable(leaf) for leaf in original):
        assert _leaves(pushed) == []  # MATCH_ALL, or a leafless tree such as OR[AND[]]
    # A pushable leaf directly under the top-level AND is always pushed, never kept back.
    if isinstance(node, And):
        for child in node.children:
            if not isinstance(child, And | Or) and pushable(child):
                assert residual is None or child not in _conjuncts(residual)
    # Both parts are valid filters again (explain shows them as Guppy JSON).
    assert parse_filter(to_json(pushed)) == pushed
    if residual is not None:
        assert parse_filter(to_json(residual)) == residual


def _conjuncts(node: Node) -> list[Node]:
    return list(node.children) if isinstance(node, And) else [node]


CAPS = Capabilities(
    harvest=True,
    live_search=True,
    pushdown={"modality": frozenset({"=", "IN"}), "collection": frozenset({"="})},
)


def test_or_with_one_unpushable_branch_stays_residual_whole() -> None:
    node = parse_filter(
        {
            "AND": [
                {"=": {"collection": "tcga_brca"}},
                {"OR": [{"=": {"modality": "CT"}}, {"search": {"keyword": "lung"}}]},
            ]
        }
    )
    pushed, residual = split_pushdown(node, pushable_by(CAPS))
    assert pushed == Compare("=", "collection", "tcga_brca")
    assert residual == node.children[1]  # type: ignore[union-attr]
    assert isinstance(residual, Or)


def test_or_of_pushable_branches_is_pushed_whole() -> None:
    node = parse_filter({"OR": [{"=": {"modality": "CT"}}, {"IN": {"modality": ["MR"]}}]})
    assert split_pushdown(node, pushable_by(CAPS)) == (node, None)


def test_nested_and_splits_inside_an_and_but_not_inside_an_or() -> None:
    inner = {"AND": [{"=": {"modality": "CT"}}, {"!=": {"sex": "unknown"}}]}
    node = parse_filter({"AND": [inner, {"=": {"collection": "nlst"}}]})
    pushed, residual = split_pushdown(node, pushable_by(CAPS))
    assert pushed == And((Compare("=", "modality", "CT"), Compare("=", "collection", "nlst")))
    assert residual == Compare("!=", "sex", "unknown")
    node = parse_filter({"OR": [inner, {"=": {"collection": "nlst"}}]})
    assert split_pushdown(node, pushable_by(CAPS)) == (MATCH_ALL, node)


def test_match_all_pushes_nothing_and_keeps_nothing() -> None:
    assert split_pushdown(MATCH_ALL, pushable_by(CAPS)) == (MATCH_ALL, None)


def test_search_is_pushable_only_with_text_search_on_every_field() -> None:
    node = Search("lung", ("study_description", "series_description"))
    both = {"study_description": frozenset({"search"}), "series_description": frozenset({"search"})}
    one = {"study_description": frozenset({"search"})}

    def caps(pushdown: dict[str, frozenset[str]], text: bool) -> Capabilities:
        return Capabilities(harvest=True, live_search=True, pushdown=pushdown, text_search=text)

    assert pushable_by(caps(both, True))(node)
    assert not pushable_by(caps(both, False))(node)
    assert not pushable_by(caps(one, True))(node)


def test_operator_names() -> None:
    assert operator_of(In("modality", ("CT",))) == "IN"
    assert operator_of(In("modality", ("CT",), negated=True)) == "EXCLUDES"
    assert operator_of(IsMissing("age")) == "is_missing"
    assert operator_of(Compare("<=", "age", 3)) == "<="
    assert operator_of(Search("x", ("study_description",))) == "search"
    with pytest.raises(TypeError):
        operator_of(MATCH_ALL)


# ------------------------------------------------------------------- plugin discovery


def test_idc_is_found_through_its_entry_point() -> None:
    found = discover_adapters()
    assert found["idc"] is IdcAdapter
    names = [ep.name for ep in adapters.registry.entry_points(group=GROUP)]
    assert "idc" in names


class _EntryPoint:
    def __init__(self, name: str, load: Any) -> None:
        self.name = name
        self._load = load

    def load(self) -> Any:
        return self._load()


def _broken() -> Any:
    raise ImportError("No module named 'imaging_hub_broken_plugin'")


def _explodes() -> Any:
    raise RuntimeError("plugin crashed at import")


@pytest.fixture
def broken_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        _EntryPoint("broken", _broken),
        _EntryPoint("explodes", _explodes),
        _EntryPoint("not_an_adapter", lambda: str),
        _EntryPoint("not_a_class", lambda: "adapters.idc:IdcAdapter"),
        _EntryPoint("idc", lambda: IdcAdapter),
    ]

    def fake_entry_points(*, group: str) -> list[_EntryPoint]:
        assert group == GROUP
        return points

    monkeypatch.setattr(adapters.registry, "entry_points", fake_entry_points)


@pytest.mark.usefixtures("broken_plugins")
def test_broken_plugins_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.registry"):
        found = discover_adapters()
    assert found == {"idc": IdcAdapter}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("broken", "explodes", "not_an_adapter", "not_a_class"):
        assert repr(name) in warned
    assert "imaging_hub_broken_plugin" in warned


@pytest.mark.usefixtures("broken_plugins")
def test_hub_starts_despite_a_broken_plugin(tmp_path: Any) -> None:
    ok = HubConfig(
        hub=HubSettings(data_dir=tmp_path),
        sources={"idc": SourceSettings(name="idc", adapter="idc")},
    )
    assert isinstance(Hub(ok).adapters["idc"], IdcAdapter)
    uses_broken = HubConfig(
        hub=HubSettings(data_dir=tmp_path),
        sources={"b": SourceSettings(name="b", adapter="broken")},
    )
    with pytest.raises(ConfigError, match="not installed"):
        Hub(uses_broken)
