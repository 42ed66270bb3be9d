"""Injection against the Elasticsearch backend: filter values stay values.

Beside the parity tests because it needs this directory's server fixtures. Two checks:
the compiled query DSL of every hostile value has exactly the shape a benign value's
has, uses no clause that parses its input (`query_string`, `script`, `wildcard`, ...),
and carries the value only as a leaf; and the real OpenSearch-compatible server, asked
the hostile filters, counts what the reference evaluator selects. The same values go
through the embedded index, DuckDB and the HTTP adapters in tests/security/test_injection.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.dsl import cohort_query, compile_filter
from schema.filters import And, Search, parse_filter
from schema.record import TEXT_FIELDS
from tests.elastic import expect
from tests.elastic.expect import view
from tests.security.grouped import GroupedReference
from tests.security.payloads import PAYLOADS, payload_id

Record = dict[str, Any]
PARSING_CLAUSES = {
    "query_string",
    "simple_query_string",
    "script",
    "script_score",
    "wildcard",
    "regexp",
    "prefix",
    "fuzzy",
    "match_phrase_prefix",
    "intervals",
}
KITS = {"=": {"collection": "c4kc_kits"}}
_REFERENCES: dict[int, GroupedReference] = {}


def reference(records: list[Record]) -> GroupedReference:
    """The evaluator grouped once per record list (the session's small corpus)."""
    return _REFERENCES.setdefault(id(records), GroupedReference(records))


def leaf_shapes(value: str) -> list[dict[str, Any]]:
    return [
        {"=": {"modality": value}},
        {"!=": {"collection": value}},
        {"IN": {"study_description": [value, "CT ABDOMEN PELVIS"]}},
        {"EXCLUDES": {"patient_id": [value]}},
        {"OR": [{"=": {"source": value}}, KITS]},
        {"AND": [{"!=": {"license": value}}, {"IN": {"body_part": [value, "KIDNEY"]}}]},
    ]


def keys_and_leaves(query: Any, keys: list[str], leaves: list[Any]) -> None:
    if isinstance(query, dict):
        for k, v in query.items():
            keys.append(k)
            keys_and_leaves(v, keys, leaves)
    elif isinstance(query, list):
        for v in query:
            keys_and_leaves(v, keys, leaves)
    else:
        leaves.append(query)


def skeleton(query: Any) -> Any:
    """The query with every leaf value blanked: its shape."""
    if isinstance(query, dict):
        return {k: skeleton(v) for k, v in query.items()}
    if isinstance(query, list):
        return [skeleton(v) for v in query]
    return "<value>" if isinstance(query, str) else query


@pytest.mark.parametrize("value", PAYLOADS, ids=[payload_id(p) for p in PAYLOADS])
def test_values_are_leaves_of_an_unchanged_query(value: str) -> None:
    for shape, benign in zip(leaf_shapes(value), leaf_shapes("benign"), strict=True):
        compiled = cohort_query(parse_filter(shape))
        keys: list[str] = []
        leaves: list[Any] = []
        keys_and_leaves(compiled, keys, leaves)
        assert value in leaves and value not in keys
        assert not PARSING_CLAUSES & set(keys)
        assert skeleton(compiled) == skeleton(cohort_query(parse_filter(benign)))
    words = compile_filter(parse_filter({"search": {"keyword": value}}))
    keys, leaves = [], []
    keys_and_leaves(words, keys, leaves)
    assert not PARSING_CLAUSES & set(keys)
    # Free text reaches `match` only as single words of the evaluator's tokenizer.
    assert all(re.fullmatch(r"\w+", str(v)) or v in (1, "match_none") for v in leaves), leaves


# --- the real server ------------------------------------------------------------------


def _combined() -> list[tuple[str, dict[str, Any], str | None]]:
    """Few requests (each costs a server round trip), every payload in each."""
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("=", {"OR": [*({"=": {"modality": p}} for p in PAYLOADS), KITS]}, None),
        ("!=", {"AND": [{"!=": {"collection": p}} for p in PAYLOADS]}, None),
        ("IN", {"IN": {"study_description": [*PAYLOADS, "CT ABDOMEN PELVIS"]}}, None),
        ("EXCLUDES", {"EXCLUDES": {"patient_id": PAYLOADS}}, None),
        ("search", {"OR": [{"search": {"keyword": p}} for p in PAYLOADS]}, None),
    ]
    texts = ["a OR b", "*:*", "modality:CT", '{"match_all": {}}', "\\", "CT\x00 kidney"]
    cases += [(f"text {t!r}", {}, t) for t in texts]
    return cases


@pytest.mark.parametrize(("name", "filter_json", "text"), _combined(), ids=lambda v: str(v)[:20])
def test_the_server_counts_what_the_evaluator_selects(
    elastic_small: ElasticIndex,
    small_records: list[Record],
    name: str,
    filter_json: dict[str, Any],
    text: str | None,
) -> None:
    node = parse_filter(filter_json)
    if text:
        node = And((node, Search(text.strip(), TEXT_FIELDS)))
    chosen = reference(small_records).uids(node)
    rows = [r for r in small_records if r["series_uid"] in chosen]
    assert view(elastic_small, filter_json, text).counts() == expect.counts(rows), name
