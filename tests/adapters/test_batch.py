"""Canonical records as Arrow batches: validation names what is wrong, conversion round-trips."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from adapters.batch import ARROW_SCHEMA, to_batch, to_records, validate_batch
from adapters.spi import TerminalSourceError
from schema.record import SeriesRecord

FETCHED = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def _record(i: int, **changes: Any) -> SeriesRecord:
    fields: dict[str, Any] = dict(
        source="idc",
        collection="tcga_brca",
        patient_id=f"TCGA-{i:04d}",
        study_uid=f"1.2.3.{i}",
        series_uid=f"1.2.3.{i}.1",
        modality="MR",
        body_part="BREAST",
        sex="female",
        age=40 + i,
        race="white",
        ethnicity=None,
        study_date=dt.date(2001, 2, 3),
        study_description="MRI BREAST BILATERAL",
        series_description="Ax T1",
        manufacturer="GE MEDICAL SYSTEMS",
        license="CC BY 3.0",
        disease="Breast Cancer",
        instance_count=120,
        size_bytes=12_345_678,
        sources=["idc", "tcia"],
        viewer_url="https://viewer.example/1",
        download_url="s3://bucket/1",
        fetched_at=FETCHED,
    )
    fields.update(changes)
    return SeriesRecord(**fields)


RECORDS = [_record(0), _record(1, body_part=None, age=None, study_date=None), _record(2)]


def _batch_with(**changes: Any) -> pa.RecordBatch:
    """A valid batch whose second row has `changes` applied (bypassing pydantic)."""
    rows = to_batch(RECORDS).to_pylist()
    rows[1].update(changes)
    return pa.RecordBatch.from_pylist(rows, schema=ARROW_SCHEMA)


def test_valid_batch_passes_unchanged() -> None:
    batch = to_batch(RECORDS)
    checked = validate_batch(batch, "idc")
    assert checked.schema == ARROW_SCHEMA
    assert checked.equals(batch)


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"sex": "F"}, "sex", "'F'"),
        ({"sex": None}, "sex", "None"),
        ({"age": 300}, "age", "300"),
        ({"age": -1}, "age", "-1"),
        ({"modality": "ct"}, "modality", "'ct'"),
        ({"body_part": "Chest"}, "body_part", "'Chest'"),
        ({"series_uid": None}, "series_uid", "None"),
        ({"collection": None}, "collection", "None"),
        ({"patient_id": None}, "patient_id", "None"),
        ({"instance_count": -3}, "instance_count", "-3"),
        ({"size_bytes": -1}, "size_bytes", "-1"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_invalid_values_are_rejected_naming_the_field(
    changes: dict[str, Any], field: str, value: str
) -> None:
    with pytest.raises(TerminalSourceError) as info:
        validate_batch(_batch_with(**changes), "somewhere")
    message = str(info.value)
    assert f"{field}={value}" in message
    assert "'somewhere'" in message  # the source is named
    if field != "series_uid":
        assert "'1.2.3.1.1'" in message  # and so is the offending series


@pytest.mark.parametrize("column", ["series_uid", "license", "fetched_at", "sources"])
def test_missing_column_is_rejected_naming_it(column: str) -> None:
    batch = to_batch(RECORDS)
    batch = batch.drop_columns([column])
    with pytest.raises(TerminalSourceError, match=repr(column)):
        validate_batch(batch, "idc")


def test_wrong_type_is_rejected() -> None:
    batch = to_batch(RECORDS)
    index = batch.schema.get_field_index("age")
    ages = pa.array(["forty", None, "42"], type=pa.string())
    batch = batch.set_column(index, "age", ages)
    with pytest.raises(TerminalSourceError, match="wrong type"):
        validate_batch(batch, "idc")


def test_compatible_types_and_column_order_are_cast() -> None:
    batch = to_batch(RECORDS)
    columns = {name: batch.column(name) for name in reversed(batch.schema.names)}
    columns["age"] = columns["age"].cast(pa.int64())
    columns["study_date"] = pa.array(["2001-02-03", None, "2001-02-03"], type=pa.string())
    columns["instance_count"] = columns["instance_count"].cast(pa.int32())
    shuffled = pa.RecordBatch.from_pydict(columns)
    checked = validate_batch(shuffled, "idc")
    assert checked.schema == ARROW_SCHEMA
    assert checked.equals(batch)


def test_upper_case_check_allows_non_letters_and_missing() -> None:
    batch = _batch_with(modality="RTSTRUCT", body_part="CHEST (THORAX) W")
    validate_batch(batch, "idc")
    validate_batch(_batch_with(modality=None, body_part=None), "idc")


def test_round_trip() -> None:
    batch = to_batch(RECORDS)
    assert batch.schema == ARROW_SCHEMA
    assert batch.num_rows == len(RECORDS)
    assert to_records(batch) == RECORDS
    assert to_records(validate_batch(batch, "idc")) == RECORDS


def test_sources_default_to_the_producing_source() -> None:
    record = _record(5, sources=[], source="tcia")
    (back,) = to_records(to_batch([record]))
    assert back.sources == ["tcia"]
    assert back.model_copy(update={"sources": []}) == record


def test_empty_batch() -> None:
    batch = to_batch([])
    assert batch.num_rows == 0 and batch.schema == ARROW_SCHEMA
    assert validate_batch(batch, "idc").num_rows == 0
    assert to_records(batch) == []


def test_schema_matches_the_record() -> None:
    assert tuple(ARROW_SCHEMA.names) == tuple(SeriesRecord.model_fields)
