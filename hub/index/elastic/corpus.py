"""The documents each source's index should hold, computed with DuckDB from snapshots.

A series held by several sources is "shared". Every copy of a shared series carries
the same merged record, made by the very SQL the embedded index merges with
(`hub.index.merge`): per column, the non-null value of the source with the lowest
priority number (ties by source name), `sources` the union; `primary` is true only
in the winning source's copy. Unshared series are the source's own record.

Documents come out as ready-to-send bulk lines (action, JSON document) built inside
DuckDB: a million Python dicts would cost more than the ingest itself. Each document
that is shared carries `doc_hash` (md5 of the rest), so reconciling finds changed
copies cheaply; null values and `shared: false` are left out (less for the index to
hold and to ship over `_bulk`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from adapters.batch import ARROW_SCHEMA
from hub.index.merge import EXTRA_COLUMNS, merged_columns_sql, sql_literal
from hub.index.snapshots import Snapshot
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

WORD_SPLIT = r"[^\pL\pN]"  # schema.evaluate.tokenize: runs of letters and digits
MAX_WORD_BYTES = 40


class Corpus:
    """Current snapshots of the configured sources, and the shared series among them."""

    def __init__(self, snapshots: Sequence[Snapshot], priorities: dict[str, int]) -> None:
        self.snapshots = {s.source: s for s in snapshots}
        self.priorities = {s.source: priorities.get(s.source, 100) for s in snapshots}
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET lambda_syntax = 'DISABLE_SINGLE_ARROW'")
        self._create_shared()

    def close(self) -> None:
        self.con.close()

    def relation(self, source: str) -> str:
        return f"read_parquet({sql_literal(str(self.snapshots[source].path))})"

    def _create_shared(self) -> None:
        self.con.register("empty_corpus", ARROW_SCHEMA.empty_table())
        copies = (
            " UNION ALL ".join(
                f"SELECT *, {sql_literal(name)} AS _src, {int(self.priorities[name])} AS _prio "
                f"FROM {self.relation(name)}"
                for name in sorted(self.snapshots)
            )
            or "SELECT *, NULL::VARCHAR AS _src, 0 AS _prio FROM empty_corpus"
        )
        self.con.execute(f"CREATE VIEW copies AS {copies}")
        if len(self.snapshots) < 2:  # nothing can be shared: skip a million-row GROUP BY
            self.con.execute("CREATE TABLE shared_ids AS SELECT series_uid FROM copies LIMIT 0")
        else:
            self.con.execute(
                "CREATE TABLE shared_ids AS SELECT series_uid FROM copies "
                "GROUP BY series_uid HAVING count(DISTINCT _src) > 1"
            )
        order = "(_prio, _src)"
        self.con.execute(
            f"""CREATE TABLE merged AS
            SELECT arg_min(_src, {order}) AS _winner, {merged_columns_sql(order)}
            FROM copies SEMI JOIN shared_ids USING (series_uid)
            GROUP BY series_uid"""
        )

    def shared_count(self) -> int:
        # fetchall: a result left unfinished would block the connection's next statement
        rows = self.con.execute("SELECT count(*) FROM merged").fetchall()
        return int(rows[0][0])

    def picked(self, source: str, relation: str | None = None, where: str = "TRUE") -> str:
        """SQL of `source`'s copies as its index holds them: the merged record for a
        shared series, its own otherwise, with `primary` and `shared`."""
        rel = relation or self.relation(source)
        pick = {c: f"CASE WHEN m.series_uid IS NULL THEN c.{c} ELSE m.{c} END" for c in FIELDS}
        pick["series_uid"] = "c.series_uid"
        pick["sources"] = (
            "CASE WHEN m.series_uid IS NULL THEN list_sort(list_distinct(c.sources)) "
            "ELSE m.sources END"
        )
        for c in EXTRA_COLUMNS:
            pick[c] = f"CASE WHEN m.series_uid IS NULL THEN c.{c} ELSE m.{c} END"
        columns = ", ".join(f"{expr} AS {name}" for name, expr in pick.items())
        return f"""
            SELECT {columns},
                   m.series_uid IS NULL OR m._winner = {sql_literal(source)} AS "primary",
                   m.series_uid IS NOT NULL AS shared
            FROM {rel} AS c LEFT JOIN merged AS m ON c.series_uid = m.series_uid
            WHERE {where}"""

    def primary_copies(self) -> str:
        """SQL of every series once, as its primary copy (the one that counts)."""
        parts = [
            f'SELECT * FROM ({self.picked(name)}) WHERE "primary"'
            for name in sorted(self.snapshots)
        ]
        return " UNION ALL ".join(parts) or (
            f"SELECT * FROM ({self.picked('', 'empty_corpus')}) WHERE FALSE"
        )

    def documents(
        self,
        source: str,
        relation: str | None = None,
        extra: str = "",
        where: str = "TRUE",
        batch_rows: int = 5_000,
    ) -> pa.RecordBatchReader:
        """Bulk lines of `source`'s documents: columns `_id`, `action`, `doc`, `doc_hash`.

        `relation` defaults to the source's snapshot; `where` may refer to `c` (the
        source's copy) and to tables registered on `self.con`; `extra` adds fields
        (see `document_json`)."""
        picked = self.picked(source, relation, where)
        sql = f"""
            WITH picked AS ({picked}),
            docs AS (SELECT series_uid, shared, {document_json(extra)} AS doc FROM picked)
            SELECT series_uid AS _id,
                   json_object('index', json_object('_id', series_uid))::VARCHAR AS action,
                   CASE WHEN shared THEN left(doc, -1) || ',"doc_hash":"' || md5(doc) || '"}}'
                        ELSE doc END AS doc,
                   CASE WHEN shared THEN md5(doc) END AS doc_hash
            FROM docs"""
        return self.con.sql(sql).to_arrow_reader(batch_rows)


def words_sql(column: str) -> str:
    """`schema.evaluate.tokenize` in SQL: letter/digit runs under 40 bytes, lower case."""
    return (
        f"array_to_string(list_transform(list_filter(regexp_split_to_array({column}, "
        f"'{WORD_SPLIT}'), lambda t: strlen(t) BETWEEN 1 AND {MAX_WORD_BYTES - 1}), "
        "lambda t: lower(t)), ' ')"
    )


def filterable_pairs() -> list[str]:
    """`'name', expression` pairs of the fields a filter reads (`mapping.filterable_properties`)."""
    pairs: list[str] = []
    for name, spec in FIELDS.items():
        if spec.kind is FieldKind.DATE:
            pairs.append(f"'{name}', CAST({name} AS VARCHAR)")
        else:
            pairs.append(f"'{name}', {name}")
        if name in TEXT_FIELDS:
            pairs.append(f"'{name}_words', {words_sql(name)}")
    pairs.append("'sources', sources")
    return pairs


def without_nulls(pairs: list[str]) -> str:
    """A JSON object of the pairs; merging into {} drops the nulls, so a missing value
    costs the index nothing."""
    return f"json_merge_patch('{{}}', json_object({', '.join(pairs)}))"


def document_json(extra: str = "") -> str:
    """One JSON document per row of a relation with the canonical columns plus
    `sources`, `primary` and `shared` (see `mapping.py` for the fields); `extra` adds
    `'name', expression` pairs."""
    pairs = filterable_pairs()
    pairs += [
        "'primary', \"primary\"",
        "'shared', CASE WHEN shared THEN true END",
        "'patient_key', collection || chr(0) || patient_id",
        "'row_key', concat_ws(chr(0), collection, patient_id, study_uid, series_uid)",
        "'viewer_url', viewer_url",
        "'download_url', download_url",
        "'fetched_at', strftime(fetched_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')",
    ]
    if extra:
        pairs.append(extra)
    return f"{without_nulls(pairs)}::VARCHAR"
