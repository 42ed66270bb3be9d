"""An independent reference for the hub's counts and facets: DuckDB over the raw IDC parquet.

Deliberately shares no SQL with `adapters.idc` (that is what is under test). The messy
columns are normalised by the pure Python functions of `schema.normalize`, applied once
to each DISTINCT raw value; the raw→canonical mappings are loaded into DuckDB as small
tables and joined back, giving a `ref` table with one row per series and the canonical
columns. Counting then follows DESIGN.md ("Counting") with plain SQL.

Filters are written by hand as SQL `WHERE` clauses over `ref` (see the test tables),
next to the equivalent Guppy JSON the hub receives.

Also here: a hypothesis strategy for random Guppy filters over values that occur in a
given set of canonical records, shared by the index, adapter and SPI property tests.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import idc_index_data
import pyarrow as pa
from hypothesis import strategies as st

from schema.normalize import (
    normalize_age,
    normalize_code,
    normalize_collection,
    normalize_date,
    normalize_sex,
    normalize_text,
)

PACKAGE = Path(idc_index_data.__file__).parent
INDEX_PARQUET = PACKAGE / "idc_index.parquet"
COLLECTIONS_PARQUET = PACKAGE / "collections_index.parquet"

RAW_COLUMNS = (
    "collection_id",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientAge",
    "PatientSex",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "BodyPartExamined",
    "Modality",
    "Manufacturer",
    "license_short_name",
    "instanceCount",
    "series_size_MB",
)

# raw column (table alias . column) → (mapping table, canonical column, Python rule, arrow type)
_MAPPED: list[tuple[str, str, str, Callable[[Any], Any], pa.DataType]] = [
    (
        "i.collection_id",
        "map_collection",
        "collection",
        lambda v: v and normalize_collection(v),
        pa.string(),
    ),
    ("i.Modality", "map_modality", "modality", normalize_code, pa.string()),
    ("i.BodyPartExamined", "map_body_part", "body_part", normalize_code, pa.string()),
    ("i.PatientSex", "map_sex", "sex", normalize_sex, pa.string()),
    ("i.PatientAge", "map_age", "age", normalize_age, pa.int32()),
    ("i.StudyDate", "map_study_date", "study_date", normalize_date, pa.date32()),
    (
        "i.StudyDescription",
        "map_study_description",
        "study_description",
        normalize_text,
        pa.string(),
    ),
    (
        "i.SeriesDescription",
        "map_series_description",
        "series_description",
        normalize_text,
        pa.string(),
    ),
    ("i.Manufacturer", "map_manufacturer", "manufacturer", normalize_text, pa.string()),
    ("i.license_short_name", "map_license", "license", normalize_text, pa.string()),
    ("c.cancer_types", "map_disease", "disease", normalize_text, pa.string()),
]


@dataclass(frozen=True)
class RefCounts:
    patients: int
    studies: int
    series: int


class Reference:
    """The whole IDC corpus as canonical rows in an in-memory DuckDB table `ref`."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute(
            f"CREATE TABLE idc AS SELECT {', '.join(RAW_COLUMNS)} FROM read_parquet(?)",
            [str(INDEX_PARQUET)],
        )
        self.con.execute(
            "CREATE TABLE coll AS SELECT collection_id, cancer_types FROM read_parquet(?)",
            [str(COLLECTIONS_PARQUET)],
        )
        joins, selects = [], []
        for raw, table, canonical, rule, arrow_type in _MAPPED:
            source = "coll" if raw.startswith("c.") else "idc"
            column = raw.split(".", 1)[1]
            distinct = [
                r[0] for r in self.con.execute(f"SELECT DISTINCT {column} FROM {source}").fetchall()
            ]
            mapping = pa.table(
                {
                    "raw": pa.array(distinct, type=pa.string()),
                    "norm": pa.array([rule(v) for v in distinct], type=arrow_type),
                }
            )
            self.con.register(f"{table}_arrow", mapping)
            self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_arrow")
            self.con.unregister(f"{table}_arrow")
            joins.append(f"LEFT JOIN {table} ON {table}.raw IS NOT DISTINCT FROM {raw}")
            selects.append(f"{table}.norm AS {canonical}")
        self.con.execute(f"""
            CREATE TABLE ref AS
            SELECT
              i.PatientID AS patient_id,
              i.StudyInstanceUID AS study_uid,
              i.SeriesInstanceUID AS series_uid,
              i.instanceCount AS instance_count,
              CAST(round(i.series_size_MB * 1e6) AS BIGINT) AS size_bytes,
              {", ".join(selects)}
            FROM idc i
            LEFT JOIN coll c ON c.collection_id = i.collection_id
            {" ".join(joins)}
        """)

    # --- counting (DESIGN.md "Counting") ---------------------------------------------

    def counts(self, where: str = "TRUE") -> RefCounts:
        row = self.con.execute(f"""
            SELECT count(DISTINCT (collection, patient_id)), count(DISTINCT study_uid), count(*)
            FROM ref WHERE {where}
        """).fetchone()
        assert row is not None
        return RefCounts(patients=row[0], studies=row[1], series=row[2])

    def facet(self, field: str, where: str = "TRUE") -> tuple[dict[str, int], int]:
        """Buckets {value: series} of the rows where the field has a value, and the number
        of rows where it is missing."""
        rows = self.con.execute(
            f"SELECT {field}, count(*) FROM ref WHERE ({where}) GROUP BY 1"
        ).fetchall()
        buckets = {str(k): n for k, n in rows if k is not None}
        missing = sum(n for k, n in rows if k is None)
        return buckets, missing

    def histogram(self, field: str, interval: int, where: str = "TRUE") -> dict[int, int]:
        rows = self.con.execute(f"""
            SELECT CAST(floor({field} / {interval}) * {interval} AS BIGINT), count(*)
            FROM ref WHERE ({where}) AND {field} IS NOT NULL GROUP BY 1
        """).fetchall()
        return dict(rows)

    def values(self, field: str, where: str = "TRUE") -> list[Any]:
        return [
            r[0]
            for r in self.con.execute(
                f"SELECT DISTINCT {field} FROM ref WHERE {where} ORDER BY 1 NULLS LAST"
            ).fetchall()
        ]

    def scalar(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.con.close()


# --- random filters over real values ----------------------------------------------------

KEYWORD_FIELDS = (
    "modality",
    "sex",
    "body_part",
    "collection",
    "license",
    "manufacturer",
    "disease",
    "source",
    "study_description",
)
NUMERIC_FIELDS = ("age", "study_date")
MISSABLE_FIELDS = (
    "modality",
    "body_part",
    "age",
    "study_date",
    "manufacturer",
    "disease",
    "study_description",
    "series_description",
    "source",
    "sex",
)
SEARCH_WORDS = ("lung", "CT chest", "t1", "axial", "segmentation", "PET", "xyzzy", "kidney 2")
ABSENT = "NO-SUCH-VALUE"


def value_pools(records: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Values to build filters from: those present in `records`, plus a few absent ones."""
    pools: dict[str, list[Any]] = {}
    for name in KEYWORD_FIELDS:
        if name == "study_description":
            common = collections.Counter(r[name] for r in records if r[name] is not None)
            pools[name] = [d for d, _ in common.most_common(8)] + [ABSENT]
        elif name == "source":
            pools[name] = sorted({s for r in records for s in r.get("sources") or [r["source"]]})
            pools[name].append(ABSENT)
        else:
            pools[name] = [*sorted({r[name] for r in records if r[name] is not None}), ABSENT]
    pools["age"] = [*sorted({r["age"] for r in records if r["age"] is not None}), -1, 150]
    dates = sorted({r["study_date"] for r in records if r["study_date"] is not None})
    pools["study_date"] = [d.isoformat() for d in dates[:: max(1, len(dates) // 40)]]
    pools["study_date"] += ["1900-01-01", "2100-01-01"]
    return pools


def filter_strategy(
    pools: dict[str, list[Any]], depth: int = 3, search: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Guppy JSON filters: every operator over real field values, AND/OR nested to `depth`."""

    def one(name: str) -> st.SearchStrategy[Any]:
        return st.sampled_from(pools[name])

    def some(name: str) -> st.SearchStrategy[list[Any]]:
        return st.lists(one(name), min_size=1, max_size=3)

    def shaped(fields: Sequence[str], ops: Sequence[str], many: bool) -> st.SearchStrategy[Any]:
        return st.sampled_from(list(fields)).flatmap(
            lambda f: st.builds(
                lambda op, v: {op: {f: v}}, st.sampled_from(list(ops)), some(f) if many else one(f)
            )
        )

    leaves = [
        shaped(KEYWORD_FIELDS, ["=", "!="], many=False),
        shaped(KEYWORD_FIELDS, ["IN", "EXCLUDES"], many=True),
        shaped(NUMERIC_FIELDS, ["=", "!=", ">", ">=", "<", "<="], many=False),
        shaped(NUMERIC_FIELDS, ["IN", "EXCLUDES"], many=True),
        st.builds(
            lambda f, b: {"is_missing": {f: b}}, st.sampled_from(MISSABLE_FIELDS), st.booleans()
        ),
    ]
    if search:
        leaves.append(
            st.builds(lambda w: {"search": {"keyword": w}}, st.sampled_from(SEARCH_WORDS))
        )
    leaf = st.one_of(*leaves)

    def tree(level: int) -> st.SearchStrategy[dict[str, Any]]:
        if level == 0:
            return leaf
        below = tree(level - 1)
        return st.one_of(
            leaf,
            st.builds(lambda cs: {"AND": cs}, st.lists(below, max_size=3)),
            st.builds(lambda cs: {"OR": cs}, st.lists(below, min_size=1, max_size=3)),
        )

    return tree(depth)
