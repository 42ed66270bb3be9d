"""Filter AST → Elasticsearch query DSL, and the sort orders of series paging.

Values travel only inside typed clauses (`term`, `terms`, `range`, `exists`,
`match`, `bool`), never through `query_string`, so no filter value can change the
query's shape. Semantics follow `schema.evaluate`: `!=` and EXCLUDES also match a
missing value (`must_not`), `source` tests the `sources` list, and `search` needs
every word of the keyword in at least one of the fields, on the words
`schema.evaluate.tokenize` makes (BM25-scored).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hub.index.base import QueryError, SortKey
from hub.index.elastic.mapping import NESTED_PATH, ROW_KEY, es_field, words_field
from schema.evaluate import tokenize
from schema.filters import And, Compare, In, IsMissing, Node, Or, Search, Value, walk
from schema.quoting import quote
from schema.record import FIELDS

Query = dict[str, Any]
MATCH_NONE: Query = {"match_none": {}}
RANGE_KEYS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
ROW_ORDER: list[dict[str, Any]] = [{ROW_KEY: {"order": "asc"}}]
"""The embedded index's row order (collection, patient, study, series): the default
order, and the unique tiebreak that makes `search_after` paging exact."""


def compile_filter(node: Node, prefix: str = "") -> Query:
    """The filter as a query; `prefix` puts the field names under a path (`series.`
    inside the nested series of the level indices)."""
    match node:
        case And(children):
            if not children:
                return {"match_all": {}}
            return {"bool": {"must": [compile_filter(c, prefix) for c in children]}}
        case Or(children):
            return {
                "bool": {
                    "should": [compile_filter(c, prefix) for c in children],
                    "minimum_should_match": 1,
                }
            }
        case IsMissing(field, missing):
            exists = {"exists": {"field": prefix + es_field(field)}}
            return _not(exists) if missing else exists
        case In(field, values, negated):
            terms: Query = {"terms": {prefix + es_field(field): [_value(v) for v in values]}}
            return _not(terms) if negated else terms
        case Compare("=" | "!=" as op, field, value):
            term: Query = {"term": {prefix + es_field(field): {"value": _value(value)}}}
            return _not(term) if op == "!=" else term
        case Compare(op, field, value):
            return {"range": {prefix + es_field(field): {RANGE_KEYS[op]: _value(value)}}}
        case Search(keyword, fields):
            return text_query(keyword, fields, prefix)
    raise TypeError(node)


def text_query(keyword: str, fields: tuple[str, ...], prefix: str = "") -> Query:
    """Every word in at least one of the fields; each matching field adds its BM25 score."""
    words = list(dict.fromkeys(tokenize(keyword)))
    if not words:
        return MATCH_NONE
    per_word = [
        {
            "bool": {
                "should": [{"match": {prefix + words_field(f): {"query": w}}} for f in fields],
                "minimum_should_match": 1,
            }
        }
        for w in words
    ]
    return per_word[0] if len(per_word) == 1 else {"bool": {"must": per_word}}


def cohort_query(node: Node) -> Query:
    """The cohort's query over the read alias: only the copy of each series that counts
    (`primary`), scored only when the filter has free text in it."""
    primary = {"term": {"primary": True}}
    compiled = compile_filter(node)
    if any(isinstance(n, Search) for n in walk(node)):
        return {"bool": {"must": [compiled], "filter": [primary]}}
    return {"bool": {"filter": [compiled, primary]}}


def level_query(node: Node) -> Query:
    """The query of a level index (`levels.py`): documents with at least one series that
    matches the WHOLE filter (one nested clause, so every condition holds on one series),
    unscored."""
    inner = compile_filter(node, NESTED_PATH + ".")
    nested = {"nested": {"path": NESTED_PATH, "query": inner, "score_mode": "none"}}
    return {"bool": {"filter": [nested]}}


def sort_clauses(sort: list[SortKey], ranked: bool) -> list[dict[str, Any]]:
    """ES sort clauses reproducing the embedded order for the same keys.

    A field sorts with missing values last in both directions, ties in row order;
    `ranked` (free text present) makes BM25 the default order.
    """
    if len(sort) > 1:
        raise QueryError("sorting on more than one field is not supported yet; give one sort key")
    key = sort[0] if sort else None
    if key is not None and key.field != "score":
        spec = FIELDS.get(key.field)
        if spec is None or spec.multi_valued:
            sortable = [n for n, s in FIELDS.items() if not s.multi_valued]
            raise QueryError(
                f"cannot sort on {quote(key.field)}; sortable: score, {', '.join(sortable)}"
            )
        order = "desc" if key.descending else "asc"
        return [{es_field(key.field): {"order": order, "missing": "_last"}}, *ROW_ORDER]
    if ranked:
        descending = key is None or key.descending
        return [{"_score": {"order": "desc" if descending else "asc"}}, *ROW_ORDER]
    return list(ROW_ORDER)


def _value(value: Value) -> str | int:
    return value.isoformat() if isinstance(value, dt.date) else value


def _not(q: Query) -> Query:
    return {"bool": {"must_not": [q]}}
