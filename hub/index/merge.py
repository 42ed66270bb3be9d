"""How copies of one series held by several sources become one record: the SQL both
index backends build their corpus with (`build.py` for the embedded index,
`elastic/corpus.py` for the cluster), so the two cannot drift apart.

Per column, the value of the copy that comes first in priority order (lowest priority
number, ties by source name) among the copies that have one (DuckDB's `arg_min` skips
nulls); `source` is the winner's; `sources` the sorted union of all copies' sources.
"""

from __future__ import annotations

from schema.record import FIELDS

EXTRA_COLUMNS = ("viewer_url", "download_url", "fetched_at")
"""Columns of a harvested record beyond the canonical fields."""


def merged_columns_sql(order: str) -> str:
    """The select list of a `GROUP BY series_uid` over copies, in the order the embedded
    corpus has always had (`source`, `sources`, the canonical fields with `series_uid`
    as is, the extras): every column but the group key is the first non-null in `order` (a
    SQL expression over the copy's priority and source name, e.g. `(_prio, source)`)."""
    picked = [
        "series_uid" if c == "series_uid" else f"arg_min({c}, {order}) AS {c}"
        for c in [*FIELDS, *EXTRA_COLUMNS]
        if c != "source"
    ]
    return ", ".join(
        [
            f"arg_min(source, {order}) AS source",
            "list_sort(list_distinct(flatten(list(sources)))) AS sources",
            *picked,
        ]
    )


def sql_literal(text: str) -> str:
    """A SQL string literal (for what takes no prepared parameters; the paths are ours)."""
    return "'" + text.replace("'", "''") + "'"
