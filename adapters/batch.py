"""Canonical records in columnar form (Arrow), the unit adapters stream to the hub.

A harvest moves a million series; building a Python object per series costs tens
of seconds, so records travel as Arrow record batches with the canonical schema and
are validated column by column. Adapters that build `SeriesRecord`s one at a time
(small live answers) convert with `to_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from adapters.spi import TerminalSourceError
from schema.record import SeriesRecord

SEXES = ("female", "male", "other", "unknown")
REQUIRED = ("source", "collection", "patient_id", "study_uid", "series_uid", "sex")

ARROW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("collection", pa.string()),
        ("patient_id", pa.string()),
        ("study_uid", pa.string()),
        ("series_uid", pa.string()),
        ("modality", pa.string()),
        ("body_part", pa.string()),
        ("sex", pa.string()),
        ("age", pa.int32()),
        ("race", pa.string()),
        ("ethnicity", pa.string()),
        ("study_date", pa.date32()),
        ("study_description", pa.string()),
        ("series_description", pa.string()),
        ("manufacturer", pa.string()),
        ("license", pa.string()),
        ("disease", pa.string()),
        ("instance_count", pa.int64()),
        ("size_bytes", pa.int64()),
        ("sources", pa.list_(pa.string())),
        ("viewer_url", pa.string()),
        ("download_url", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
    ]
)
assert tuple(ARROW_SCHEMA.names) == tuple(SeriesRecord.model_fields), "schema drift"


def to_batch(records: Iterable[SeriesRecord]) -> pa.RecordBatch:
    """Records to one canonical batch (`sources` defaults to `[source]`)."""
    rows = []
    for r in records:
        row = r.model_dump()
        row["sources"] = row["sources"] or [row["source"]]
        rows.append(row)
    return pa.RecordBatch.from_pylist(rows, schema=ARROW_SCHEMA)


def to_records(batch: pa.RecordBatch) -> list[SeriesRecord]:
    """A batch back to validated records (tests, conformance, small answers)."""
    return [SeriesRecord(**row) for row in batch.to_pylist()]


def validate_batch(batch: pa.RecordBatch, source: str) -> pa.RecordBatch:
    """Cast to the canonical schema and check the vocabulary, column by column.

    Raises TerminalSourceError naming the first offending column and row: a source
    that sends malformed records is reported, not silently indexed.
    """
    missing = [n for n in ARROW_SCHEMA.names if n not in batch.schema.names]
    if missing:
        raise TerminalSourceError(f"source {source!r} sent records without columns {missing}")
    try:
        batch = pa.RecordBatch.from_arrays(
            [batch.column(n).cast(ARROW_SCHEMA.field(n).type) for n in ARROW_SCHEMA.names],
            schema=ARROW_SCHEMA,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TerminalSourceError(
            f"source {source!r} sent a value of the wrong type: {exc}"
        ) from None
    for name in REQUIRED:
        _check(batch, name, pc.is_valid(batch.column(name)), "must not be empty", source)
    _check(
        batch,
        "sex",
        pc.is_in(batch.column("sex"), pa.array(SEXES)),
        f"must be one of {SEXES}",
        source,
    )
    _check(
        batch,
        "age",
        _null_or(
            pc.and_(
                pc.greater_equal(batch.column("age"), 0), pc.less_equal(batch.column("age"), 200)
            )
        ),
        "must be 0-200",
        source,
    )
    for name in ("instance_count", "size_bytes"):
        _check(
            batch, name, _null_or(pc.greater_equal(batch.column(name), 0)), "must be >= 0", source
        )
    for name in ("modality", "body_part"):
        col = batch.column(name)
        _check(
            batch, name, _null_or(pc.equal(col, pc.utf8_upper(col))), "must be upper case", source
        )
    return batch


def _null_or(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, True)


def _check(batch: pa.RecordBatch, name: str, ok: pa.Array, rule: str, source: str) -> None:
    bad = pc.indices_nonzero(pc.invert(pc.fill_null(ok, False)))
    if len(bad):
        row = bad[0].as_py()
        value = batch.column(name)[row].as_py()
        series = batch.column("series_uid")[row].as_py()
        raise TerminalSourceError(
            f"source {source!r} sent series {series!r} with {name}={value!r}: {name} {rule}"
        )
