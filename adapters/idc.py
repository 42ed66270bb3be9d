"""NCI Imaging Data Commons, offline, from the `idc-index-data` package.

The package ships `idc_index.parquet` (one row per series, 1,044,191 of them) and
`collections_index.parquet` (collection-level metadata: cancer types, descriptions).
A DuckDB view applies the canonical normalisation in SQL, so the same view serves a
full harvest and live, parameterised searches over the parquet. Works with no network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from adapters.sdk import (
    FIELDS,
    MATCH_ALL,
    Adapter,
    Capabilities,
    FieldKind,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SourceSettings,
    TerminalSourceError,
    Translation,
    compile_where,
    local_errors,
    pushable_by,
    split_pushdown,
    to_json,
    validate_batch,
)

# The characters Python's str.strip() removes (schema.normalize trims with it), so the SQL
# trims exactly like the pure rules: not only ' \t\r\n' but also \x0b, \x0c, NBSP, ...
_WS = "'" + "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "'"

# Canonical fields as SQL over the raw IDC columns (normalisation rules of DESIGN.md).
CANONICAL_SQL = f"""
WITH raw AS (
  SELECT i.*, c.cancer_types,
    regexp_extract(i.PatientAge, '^ *([0-9]{{1,3}}) *([YyMmWwDd]?) *$', ['n', 'unit']) AS age_parts
  FROM idc_raw i LEFT JOIN idc_collections c ON c.collection_id = i.collection_id
), years AS (
  SELECT raw.*,
    CASE WHEN age_parts.n <> '' THEN TRY_CAST(age_parts.n AS INTEGER) // CASE lower(age_parts.unit)
      WHEN 'm' THEN 12 WHEN 'w' THEN 52 WHEN 'd' THEN 365 ELSE 1 END END AS age_years
  FROM raw
)
SELECT
  'idc' AS source,
  trim(regexp_replace(lower(trim(collection_id, {_WS})), '[^0-9a-z]+', '_', 'g'), '_')
    AS collection,
  PatientID AS patient_id,
  StudyInstanceUID AS study_uid,
  SeriesInstanceUID AS series_uid,
  nullif(upper(trim(Modality, {_WS})), '') AS modality,
  nullif(upper(trim(BodyPartExamined, {_WS})), '') AS body_part,
  CASE lower(trim(PatientSex, {_WS}))
    WHEN 'f' THEN 'female' WHEN 'female' THEN 'female'
    WHEN 'm' THEN 'male' WHEN 'male' THEN 'male'
    WHEN 'o' THEN 'other' WHEN 'other' THEN 'other'
    ELSE 'unknown' END AS sex,
  CASE WHEN age_years <= 200 THEN age_years END AS age,
  CAST(NULL AS VARCHAR) AS race,
  CAST(NULL AS VARCHAR) AS ethnicity,
  -- strptime's %Y also reads 1-3 digit years, year 0000 and '2023111' as 2023-11-01;
  -- the rules (schema.normalize.normalize_date) do not
  CAST(CASE WHEN regexp_matches(trim(StudyDate, {_WS}), '^[0-9]{{4}}([^0-9]|[0-9]{{4}}$)')
                 AND NOT starts_with(trim(StudyDate, {_WS}), '0000') THEN
    coalesce(try_strptime(trim(StudyDate, {_WS}), '%Y-%m-%d'),
             try_strptime(trim(StudyDate, {_WS}), '%Y%m%d'),
             try_strptime(trim(StudyDate, {_WS}), '%Y.%m.%d'),
             try_strptime(trim(StudyDate, {_WS}), '%Y/%m/%d')) END AS DATE) AS study_date,
  nullif(trim(StudyDescription, {_WS}), '') AS study_description,
  nullif(trim(SeriesDescription, {_WS}), '') AS series_description,
  nullif(trim(Manufacturer, {_WS}), '') AS manufacturer,
  nullif(trim(license_short_name, {_WS}), '') AS license,
  nullif(trim(cancer_types, {_WS}), '') AS disease,
  instanceCount AS instance_count,
  CAST(round(series_size_MB * 1000000) AS BIGINT) AS size_bytes,
  ['idc'] AS sources,
  CASE WHEN upper(trim(Modality, {_WS})) = 'SM'
    THEN 'https://viewer.imaging.datacommons.cancer.gov/slim/studies/' || StudyInstanceUID
         || '/series/' || SeriesInstanceUID
    ELSE 'https://viewer.imaging.datacommons.cancer.gov/v3/viewer/?StudyInstanceUIDs='
         || StudyInstanceUID || '&SeriesInstanceUIDs=' || SeriesInstanceUID END AS viewer_url,
  series_aws_url AS download_url
FROM years
"""

COLUMNS = {name: f'"{name}"' for name in FIELDS}
_ALL_OPS = frozenset(["=", "!=", "IN", "EXCLUDES", "is_missing"])
PROBE_SQL = "SELECT series_uid FROM canonical LIMIT 1"
_RANGE_OPS = frozenset([">", ">=", "<", "<="])


class IdcAdapter(Adapter):
    """IDC from the bundled parquet: harvestable, and searchable live through DuckDB."""

    capabilities = Capabilities(
        harvest=True,
        live_search=True,
        pushdown={
            name: _ALL_OPS
            | (_RANGE_OPS if spec.kind in (FieldKind.INTEGER, FieldKind.DATE) else frozenset())
            for name, spec in FIELDS.items()
        },
        paging=PagingStyle.OFFSET,
        max_page_size=100_000,
        text_search=False,
    )

    def __init__(self, settings: SourceSettings) -> None:
        super().__init__(settings)
        self.index_path = Path(
            settings.option("index_parquet") or _package_file("idc_index.parquet")
        )
        self.collections_path = Path(
            settings.option("collections_parquet") or _package_file("collections_index.parquet")
        )
        for path in (self.index_path, self.collections_path):
            if not path.is_file():
                raise TerminalSourceError(f"IDC parquet file not found: {path}")
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """One in-memory DuckDB with the canonical view; cursors are per call (thread-safe)."""
        with self._lock, local_errors(self.name, "opening the IDC parquet files"):
            if self._conn is None:
                conn = duckdb.connect(":memory:")
                conn.read_parquet(str(self.index_path)).create_view("idc_raw")
                conn.read_parquet(str(self.collections_path)).create_view("idc_collections")
                literal = "'" + self.name.replace("'", "''") + "'"  # records carry our name
                sql = CANONICAL_SQL.replace("'idc' AS source", f"{literal} AS source")
                sql = sql.replace("['idc'] AS sources", f"[{literal}] AS sources")
                conn.execute(f"CREATE VIEW canonical AS {sql}")
                self._conn = conn
            return self._conn.cursor()

    def translate(self, node: Node) -> Translation:
        pushed, residual = split_pushdown(node, pushable_by(self.capabilities))
        sql = compile_where(pushed, COLUMNS)
        native = {
            "sql": f"SELECT * FROM canonical WHERE {sql.where} ORDER BY series_uid",
            "params": [v.isoformat() if isinstance(v, dt.date) else v for v in sql.params],
        }
        description = "DuckDB over idc_index.parquet where " + (
            "every series" if pushed == MATCH_ALL else str(to_json(pushed))
        )
        if residual is not None:
            description += f"; the hub applies {to_json(residual)}"
        return Translation(native=native, residual=residual, description=description)

    async def search(self, translation: Translation, page: Page) -> PageResult:
        sql = translation.native["sql"] + " LIMIT ? OFFSET ?"
        params = [*translation.native["params"], page.size, page.offset]
        batches = [b async for b in self._stream(sql, params, batch_rows=page.size)]
        return PageResult(batches, page.next_offset(sum(b.num_rows for b in batches)))

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        async for batch in self._stream("SELECT * FROM canonical", [], batch_rows=50_000):
            yield batch

    async def probe(self) -> None:
        """One canonical row, unsorted: the default's sorted MATCH_ALL page orders a million
        series (~10 s); this proves the parquet files open and map in ~1 s."""
        cur = self._connection()
        with local_errors(self.name, "reading the IDC index"):
            row = await asyncio.to_thread(lambda: cur.execute(PROBE_SQL).fetchone())
        if row is None:
            raise TerminalSourceError(f"{self.name}: the IDC index holds no series")

    def estimated_total(self) -> int:
        cur = self._connection()
        with local_errors(self.name, "counting the IDC index"):
            row = cur.execute("SELECT count(*) FROM idc_raw").fetchone()
        return int(row[0]) if row else 0

    def data_version(self) -> str:
        import idc_index_data

        return f"idc-index-data {idc_index_data.__version__}"

    async def _stream(
        self, sql: str, params: list[Any], batch_rows: int
    ) -> AsyncIterator[pa.RecordBatch]:
        cur = self._connection()
        fetched_at = dt.datetime.now(dt.UTC)
        query = f"SELECT *, ? AS fetched_at FROM ({sql})"
        with local_errors(self.name, "querying the IDC index"):
            reader = await asyncio.to_thread(
                lambda: cur.sql(query, params=[fetched_at, *params]).to_arrow_reader(batch_rows)
            )
            while (batch := await asyncio.to_thread(_next_batch, reader)) is not None:
                yield validate_batch(batch, self.name)

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def _package_file(name: str) -> Path:
    import idc_index_data

    return Path(idc_index_data.__file__).parent / name
