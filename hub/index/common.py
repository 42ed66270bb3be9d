"""What both index backends compute the same way, written once.

Dates are kept as days since `EPOCH` in both (tantivy's fast fields, the cluster's
histogram keys divided back into days), histogram buckets are keyed alike, and a
question's free text is one `Search` node over the text fields ANDed to its filter,
so both backends rank and count the same node.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.index.base import CohortQuery
from schema.filters import And, Node, Search
from schema.record import TEXT_FIELDS

EPOCH = dt.date(1970, 1, 1)
"""Day 0 of date fields (`study_date` is stored and bucketed in days since it)."""


@dataclass(frozen=True)
class QuestionNodes:
    """A cohort question as one filter node: `text_node` (None without free text) is
    part of `node`."""

    text_node: Search | None
    node: Node


def question_nodes(query: CohortQuery) -> QuestionNodes:
    """The filter of `query`, with its free text (stripped; blank is none) ANDed in as a
    `Search` over every text field."""
    text = (query.text or "").strip()
    if not text:
        return QuestionNodes(None, query.filter)
    search = Search(text, TEXT_FIELDS)
    return QuestionNodes(search, And((query.filter, search)))


def bucket_key(key: float, is_date: bool) -> str:
    """A histogram bucket's key as the API shows it: an ISO date (`key` in days since
    `EPOCH`), or a number without a needless `.0`."""
    if is_date:
        return (EPOCH + dt.timedelta(days=int(key))).isoformat()
    return str(int(key)) if float(key).is_integer() else str(key)
