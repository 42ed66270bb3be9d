"""The IDC adapter over the real `idc-index-data` parquet.

Its SQL view must normalise exactly as the pure rules in `schema.normalize` do (checked
on every distinct raw value in the real data, and on fuzzed raw values); its
translation must carry values only as `?` parameters; its live search must select what
the reference evaluator selects; and a harvest must yield the whole corpus, valid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.batch import ARROW_SCHEMA, validate_batch
from adapters.idc import _WS, CANONICAL_SQL, IdcAdapter
from adapters.spi import Page, SourceSettings, Translation
from schema.evaluate import matches
from schema.filters import FilterError, Search, parse_filter
from schema.normalize import (
    normalize_age,
    normalize_code,
    normalize_collection,
    normalize_date,
    normalize_sex,
    normalize_text,
)
from tests.reference import COLLECTIONS_PARQUET, INDEX_PARQUET, filter_strategy, value_pools

TOTAL_SERIES = 1_044_191
SMALL = ["c4kc_kits", "rms_mutation_prediction", "icdc_glioma"]
Record = dict[str, Any]


def _settings(**options: Any) -> SourceSettings:
    return SourceSettings(name="idc", adapter="idc", **options)


@pytest.fixture(scope="module")
def adapter() -> Iterator[IdcAdapter]:
    a = IdcAdapter(_settings())
    yield a
    asyncio.run(a.aclose())


async def _collect(batches: Any) -> list[Record]:
    rows: list[Record] = []
    async for batch in batches:
        rows += batch.to_pylist()
    return rows


def search(a: IdcAdapter, filter_json: Any, page: Page | None = None) -> list[Record]:
    translation = a.translate(parse_filter(filter_json))
    assert translation.residual is None
    answer = asyncio.run(a.search(translation, page or Page(size=100_000)))
    return [r for b in answer.batches for r in b.to_pylist()]


# ------------------------------------------- (a) SQL normalisation == schema.normalize

RULES: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("PatientAge", "age", normalize_age),
    ("PatientSex", "sex", normalize_sex),
    ("Modality", "modality", normalize_code),
    ("BodyPartExamined", "body_part", normalize_code),
    ("StudyDate", "study_date", normalize_date),
    ("collection_id", "collection", normalize_collection),
    ("StudyDescription", "study_description", normalize_text),
    ("SeriesDescription", "series_description", normalize_text),
    ("Manufacturer", "manufacturer", normalize_text),
    ("license_short_name", "license", normalize_text),
]


@pytest.fixture(scope="module")
def pairs(adapter: IdcAdapter) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every raw row next to its canonical row, joined back by series UID."""
    cur = adapter._connection()
    raw = ", ".join(f"r.{raw} AS raw_{canonical}" for raw, canonical, _ in RULES)
    canonical = ", ".join(f"c.{canonical} AS canon_{canonical}" for _, canonical, _ in RULES)
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT {raw}, {canonical}, c.disease AS canon_disease
        FROM idc_raw r JOIN canonical c ON c.series_uid = r.SeriesInstanceUID
    """)
    yield cur
    cur.execute("DROP TABLE pairs")
    cur.close()


def test_canonical_view_is_one_row_per_raw_series(pairs: duckdb.DuckDBPyConnection) -> None:
    assert pairs.execute("SELECT count(*) FROM pairs").fetchone() == (TOTAL_SERIES,)


@pytest.mark.parametrize(("raw", "canonical", "rule"), RULES, ids=[r[1] for r in RULES])
def test_sql_normalisation_agrees_with_python_on_every_real_value(
    pairs: duckdb.DuckDBPyConnection, raw: str, canonical: str, rule: Callable[[Any], Any]
) -> None:
    rows = pairs.execute(
        f"SELECT DISTINCT raw_{canonical}, canon_{canonical} FROM pairs"
    ).fetchall()
    assert rows
    wrong = [(v, got) for v, got in rows if _expected(rule, v) != got]
    assert not wrong, f"{len(wrong)} raw values normalised differently, e.g. {wrong[:5]}"
    # a function of the raw value: each raw value has exactly one canonical value
    assert len({v for v, _ in rows}) == len(rows)


def _expected(rule: Callable[[Any], Any], raw: Any) -> Any:
    return None if raw is None and rule is normalize_collection else rule(raw)


def test_messy_real_values_are_present(pairs: duckdb.DuckDBPyConnection) -> None:
    """The agreement above covers the messy cases DESIGN.md names, not just clean ones."""
    ages = {r[0] for r in pairs.execute("SELECT DISTINCT raw_age FROM pairs").fetchall()}
    assert {"018M", "001D", "90", None} <= ages
    sexes = {r[0] for r in pairs.execute("SELECT DISTINCT raw_sex FROM pairs").fetchall()}
    assert {"F", "M", "O", "0000", None} <= sexes
    parts = {r[0] for r in pairs.execute("SELECT DISTINCT raw_body_part FROM pairs").fetchall()}
    assert {"Left Breast", "Phantom", None} <= parts


def test_disease_is_the_collections_cancer_types(adapter: IdcAdapter) -> None:
    cur = adapter._connection()
    rows = cur.execute("""
        SELECT DISTINCT r.collection_id, c.disease
        FROM idc_raw r JOIN canonical c ON c.series_uid = r.SeriesInstanceUID
    """).fetchall()
    con = duckdb.connect()
    types = dict(
        con.execute(
            "SELECT collection_id, cancer_types FROM read_parquet(?)", [str(COLLECTIONS_PARQUET)]
        ).fetchall()
    )
    assert len(rows) == len({c for c, _ in rows})
    assert all(disease == normalize_text(types.get(c)) for c, disease in rows)


def test_trimmed_characters_are_those_python_strips() -> None:
    python_whitespace = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert set(_WS[1:-1]) == python_whitespace


# Fuzzed raw values: printable ASCII around the characters the rules care about, plus the
# whitespace Python's str.strip() removes.
_ALPHABET = "0123456789YyMmWwDdFfOoAaEeLlT -/._:+\t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000"
_SHAPES = [
    "066Y",
    "018M",
    "001D",
    "052W",
    "90",
    "F",
    "female",
    "M",
    "O",
    "CT",
    "mr",
    "20200105",
    "2020-01-05",
    "2020.1.5",
    "2020/01/05",
    "2023111",
    "0000-01-01",
    "2024-02-29",
    "2023-02-29",
    "LIDC-IDRI",
    "tcga_brca",
    "",
]
raw_values = st.one_of(
    st.text(_ALPHABET, max_size=12),
    st.sampled_from(_SHAPES),
    st.builds(
        lambda pre, s, post: pre + s + post,
        st.text(" \t\n\r\x0b\xa0", max_size=2),
        st.sampled_from(_SHAPES),
        st.text(" \t\n\r\x0b\xa0\u3000", max_size=2),
    ),
    st.builds(
        lambda s, i, c: s[:i] + c + s[i:],
        st.sampled_from(_SHAPES),
        st.integers(0, 10),
        st.sampled_from(_ALPHABET),
    ),
)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(raw_values, min_size=1, max_size=40, unique=True))
def test_sql_normalisation_agrees_with_python_on_fuzzed_values(values: list[str]) -> None:
    n = len(values)
    con = duckdb.connect()
    raw = pa.table(
        {
            "collection_id": values,
            "PatientID": ["p"] * n,
            "StudyInstanceUID": ["s"] * n,
            "SeriesInstanceUID": [str(i) for i in range(n)],
            "Modality": values,
            "BodyPartExamined": values,
            "PatientSex": values,
            "PatientAge": values,
            "StudyDate": values,
            "StudyDescription": values,
            "SeriesDescription": values,
            "Manufacturer": values,
            "license_short_name": values,
            "instanceCount": [1] * n,
            "series_size_MB": [1.0] * n,
            "series_aws_url": ["s3://x"] * n,
        }
    )
    con.register("idc_raw", raw)
    con.register("idc_collections", pa.table({"collection_id": ["x"], "cancer_types": ["y"]}))
    con.execute(f"CREATE VIEW canonical AS {CANONICAL_SQL}")
    rows = con.execute(
        "SELECT series_uid, collection, modality, body_part, sex, age, study_date,"
        " study_description FROM canonical"
    ).fetchall()
    assert len(rows) == n
    for uid, collection, modality, body_part, sex, age, study_date, description in rows:
        v = values[int(uid)]
        got = (collection, modality, body_part, sex, age, study_date, description)
        want = (
            normalize_collection(v),
            normalize_code(v),
            normalize_code(v),
            normalize_sex(v),
            normalize_age(v),
            normalize_date(v),
            normalize_text(v),
        )
        assert got == want, repr(v)


# ------------------------------------------------------- (b) values only as ? parameters

HOSTILE = [
    "x'; DROP TABLE idc_raw; --",
    "' OR '1'='1",
    '"; DROP VIEW canonical; --',
    "') OR TRUE OR ('",
    "? OR 1=1",
    "%",
    "\\'; SELECT 1; --",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("shape", ["=", "!=", "IN", "EXCLUDES"])
def test_translate_carries_values_only_as_parameters(
    adapter: IdcAdapter, value: str, shape: str
) -> None:
    body = [value, "CT"] if shape in ("IN", "EXCLUDES") else value
    node = parse_filter({"AND": [{shape: {"modality": body}}, {"=": {"study_description": value}}]})
    translation = adapter.translate(node)
    sql, params = translation.native["sql"], translation.native["params"]
    assert value not in sql
    assert "'" not in sql  # no literal at all: only `?` placeholders
    assert sql.count("?") == len(params)
    assert params.count(value) == 2


def test_hostile_values_select_nothing_and_break_nothing(adapter: IdcAdapter) -> None:
    assert search(adapter, {"OR": [{"=": {"collection": v}} for v in HOSTILE]}) == []
    assert (
        search(
            adapter,
            {"AND": [{"IN": {"modality": HOSTILE}}, {"!=": {"study_description": HOSTILE[0]}}]},
        )
        == []
    )
    assert adapter.estimated_total() == TOTAL_SERIES  # idc_raw is still there
    kits = search(adapter, {"=": {"collection": "c4kc_kits"}}, Page(size=5))
    assert len(kits) == 5  # and so is the canonical view


def test_hostile_field_names_are_rejected_by_the_parser() -> None:
    for name in ['modality" = modality OR "1', "modality; DROP TABLE idc_raw", "Modality"]:
        with pytest.raises(FilterError):
            parse_filter({"=": {name: "CT"}})


# ------------------------------------------ (c) live search == evaluator over the records


@pytest.fixture(scope="module")
def small_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw parquet rows of a few small collections, for quick live searches."""
    path = tmp_path_factory.mktemp("idc-small") / "idc_index.parquet"
    con = duckdb.connect()
    marks = ", ".join("?" for _ in SMALL)
    con.execute(
        f"COPY (SELECT * FROM read_parquet(?) WHERE collection_id IN ({marks}))"
        f" TO '{path}' (FORMAT parquet)",
        [str(INDEX_PARQUET), *SMALL],
    )
    return path


@pytest.fixture(scope="module")
def small_adapter(small_parquet: Path) -> Iterator[IdcAdapter]:
    a = IdcAdapter(_settings(index_parquet=str(small_parquet)))
    yield a
    asyncio.run(a.aclose())


@pytest.fixture(scope="module")
def small_records(small_adapter: IdcAdapter) -> list[Record]:
    return asyncio.run(_collect(small_adapter.harvest()))


def test_small_snapshot_equals_a_live_search_of_the_full_parquet(
    adapter: IdcAdapter, small_records: list[Record]
) -> None:
    live = search(adapter, {"IN": {"collection": SMALL}})
    assert len(live) == len(small_records) > 1000
    strip = ("fetched_at",)
    by_uid = {r["series_uid"]: r for r in small_records}
    for row in live:
        assert {k: v for k, v in row.items() if k not in strip} == {
            k: v for k, v in by_uid[row["series_uid"]].items() if k not in strip
        }


FILTERS: list[Any] = [
    {"=": {"modality": "CT"}},
    {"!=": {"body_part": "ABDOMEN"}},
    {"EXCLUDES": {"modality": ["SEG", "SM"]}},
    {"is_missing": {"age": True}},
    {"AND": [{">=": {"age": 40}}, {"<": {"age": 60}}, {"!=": {"sex": "female"}}]},
    {"OR": [{"<": {"study_date": "2000-01-01"}}, {"IN": {"age": [5, 6, 7]}}]},
    {"!=": {"study_date": "2018-10-22"}},
    {"EXCLUDES": {"age": [60, 61]}},
    {"AND": []},
]


@pytest.mark.parametrize("filter_json", FILTERS, ids=[str(f) for f in FILTERS])
def test_live_search_equals_evaluator(
    small_adapter: IdcAdapter, small_records: list[Record], filter_json: Any
) -> None:
    node = parse_filter(filter_json)
    expected = {r["series_uid"] for r in small_records if matches(node, r)}
    assert 0 < len(expected) < len(small_records) or filter_json == {"AND": []}
    found = [r["series_uid"] for r in search(small_adapter, filter_json)]
    assert len(found) == len(set(found))
    assert set(found) == expected


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_live_search_equals_evaluator_on_random_filters(
    small_adapter: IdcAdapter, small_records: list[Record], data: st.DataObject
) -> None:
    filter_json = data.draw(filter_strategy(_pools(small_records), search=False), "filter")
    node = parse_filter(filter_json)
    expected = {r["series_uid"] for r in small_records if matches(node, r)}
    found = [r["series_uid"] for r in search(small_adapter, filter_json)]
    assert len(found) == len(set(found)) == len(expected)
    assert set(found) == expected


_POOLS: dict[int, dict[str, list[Any]]] = {}


def _pools(records: list[Record]) -> dict[str, list[Any]]:
    return _POOLS.setdefault(id(records), value_pools(records))


@pytest.mark.parametrize("size", [1, 97, 500, 5000])
def test_offset_paging_returns_every_record_once(
    small_adapter: IdcAdapter, small_records: list[Record], size: int
) -> None:
    filter_json = {"EXCLUDES": {"modality": ["SM"]}}
    expected = {r["series_uid"] for r in small_records if matches(parse_filter(filter_json), r)}
    if size == 1:  # a page of one, at a few offsets, is the record at that position
        ordered = sorted(expected)
        for offset in (0, 1, len(ordered) - 1, len(ordered)):
            page = search(small_adapter, filter_json, Page(size=1, offset=offset))
            assert [r["series_uid"] for r in page] == ordered[offset : offset + 1]
        return
    seen: list[str] = []
    offset = 0
    while True:
        page = search(small_adapter, filter_json, Page(size=size, offset=offset))
        seen += [r["series_uid"] for r in page]
        if len(page) < size:
            break
        offset += size
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    assert seen == sorted(seen)  # ORDER BY series_uid: pages do not overlap or skip


# ------------------------------------------------- (d) what stays residual, what is refused


def test_search_stays_residual(adapter: IdcAdapter) -> None:
    lung = Search("lung", ("study_description", "series_description"))
    translation = adapter.translate(
        parse_filter(
            {
                "AND": [
                    {"=": {"modality": "CT"}},
                    {"search": {"keyword": "lung"}},
                ]
            }
        )
    )
    assert translation.residual == lung
    assert translation.native["params"] == ["CT"]
    assert "lung" not in translation.native["sql"]
    assert "the hub applies" in translation.description


def test_or_with_search_stays_residual_whole(adapter: IdcAdapter) -> None:
    node = parse_filter(
        {
            "AND": [
                {"=": {"collection": "c4kc_kits"}},
                {"OR": [{"=": {"modality": "CT"}}, {"search": {"keyword": "kidney"}}]},
            ]
        }
    )
    translation = adapter.translate(node)
    assert isinstance(translation, Translation)
    assert translation.residual == node.children[1]  # type: ignore[union-attr]
    assert translation.native["params"] == ["c4kc_kits"]


def test_search_alone_pushes_nothing(adapter: IdcAdapter) -> None:
    translation = adapter.translate(parse_filter({"search": {"keyword": "lung"}}))
    assert isinstance(translation.residual, Search)
    assert translation.native["params"] == []
    assert "WHERE TRUE" in translation.native["sql"]


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
@pytest.mark.parametrize("field", ["modality", "collection", "study_description", "sex"])
def test_ranges_on_keyword_fields_are_rejected(op: str, field: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter({"AND": [{op: {field: "CT"}}]})
    assert info.value.path == f"$.AND[0].{op}.{field}"


def test_translation_dates_travel_as_iso_strings(adapter: IdcAdapter) -> None:
    translation = adapter.translate(parse_filter({">=": {"study_date": "2001-02-03"}}))
    assert translation.native["params"] == ["2001-02-03"]
    assert isinstance(dt.date.fromisoformat(translation.native["params"][0]), dt.date)


# ------------------------------------------------------------- (e) the whole harvest


def test_harvest_yields_the_whole_corpus_valid(adapter: IdcAdapter) -> None:
    async def run() -> tuple[int, list[pa.Array]]:
        rows, uids = 0, []
        async for batch in adapter.harvest():
            assert batch.schema == ARROW_SCHEMA
            validate_batch(batch, "idc")
            rows += batch.num_rows
            uids.append(batch.column("series_uid"))
        return rows, uids

    rows, uids = asyncio.run(run())
    assert rows == TOTAL_SERIES == adapter.estimated_total()
    column = pa.chunked_array(uids)
    assert column.null_count == 0
    assert pc.count_distinct(column).as_py() == TOTAL_SERIES
