"""Normalisation rules (DESIGN.md, "The canonical record"), including messy real IDC values."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.normalize import (
    normalize_age,
    normalize_code,
    normalize_collection,
    normalize_date,
    normalize_sex,
    normalize_text,
)

SEX_VOCABULARY = {"female", "male", "other", "unknown"}

# --------------------------------------------------------------------------- sex


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("F", "female"),
        ("f", "female"),
        ("female", "female"),
        ("Female", "female"),
        ("FEMALE", "female"),
        (" F ", "female"),
        ("M", "male"),
        ("m", "male"),
        ("male", "male"),
        ("Male", "male"),
        ("MALE\n", "male"),
        ("O", "other"),
        ("o", "other"),
        ("other", "other"),
        ("Other", "other"),
        # Real IDC PatientSex values that are not a sex.
        ("0000", "unknown"),
        ("U", "unknown"),
        ("6657", "unknown"),
        (None, "unknown"),
        # Other junk.
        ("", "unknown"),
        ("   ", "unknown"),
        ("unknown", "unknown"),
        ("FM", "unknown"),
        ("fe male", "unknown"),
        ("x", "unknown"),
        ("N/A", "unknown"),
    ],
)
def test_normalize_sex(raw: str | None, expected: str) -> None:
    assert normalize_sex(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["F", "M", "O", "0000", "U", "6657", None, "", "female", "MALE", "Other", "?", "ж", "\x00"],
)
def test_normalize_sex_output_in_vocabulary_for_real_values(raw: str | None) -> None:
    assert normalize_sex(raw) in SEX_VOCABULARY


@settings(max_examples=300, deadline=None, database=None)
@given(st.none() | st.text() | st.sampled_from(["F", "M", "O", "female", "male", "other"]))
def test_normalize_sex_output_always_in_vocabulary(raw: str | None) -> None:
    assert normalize_sex(raw) in SEX_VOCABULARY


# --------------------------------------------------------------------------- age


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Real IDC PatientAge values.
        ("066Y", 66),
        ("047", 47),
        ("018M", 1),
        ("120D", 0),
        ("045y", 45),
        # Years, bare digits.
        ("000Y", 0),
        ("001Y", 1),
        ("5Y", 5),
        ("5", 5),
        ("100", 100),
        ("200Y", 200),
        (" 066Y ", 66),
        # Months: N // 12.
        ("011M", 0),
        ("012M", 1),
        ("024m", 2),
        ("999M", 83),
        # Weeks: N // 52.
        ("051W", 0),
        ("052W", 1),
        ("104w", 2),
        # Days: N // 365.
        ("364D", 0),
        ("365D", 1),
        ("730d", 2),
        # Plain ints pass through.
        (0, 0),
        (66, 66),
        (200, 200),
    ],
)
def test_normalize_age(raw: str | int, expected: int) -> None:
    assert normalize_age(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "N-A",
        "",
        None,
        "   ",
        "Y",
        "M",
        "abc",
        "66 years",
        "066X",
        "066YY",
        "-5",
        "-005Y",
        "1.5",
        "66.0Y",
        "0066Y",  # more than three digits is not a DICOM AS value
        "6657",
        "0000",
        "999Y",  # over 200 years
        "201",
        -1,
        201,
        True,
        False,
    ],
)
def test_normalize_age_rejects(raw: str | int | None) -> None:
    assert normalize_age(raw) is None


def test_normalize_age_cache_does_not_conflate_bool_and_int() -> None:
    assert normalize_age(1) == 1
    assert normalize_age(True) is None
    assert normalize_age(0) == 0
    assert normalize_age(False) is None


@settings(max_examples=300, deadline=None, database=None)
@given(st.none() | st.text(max_size=8) | st.integers())
def test_normalize_age_result_is_none_or_plausible_years(raw: str | int | None) -> None:
    age = normalize_age(raw)
    assert age is None or (type(age) is int and 0 <= age <= 200)


# --------------------------------------------------------------------------- date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20230115", dt.date(2023, 1, 15)),
        ("2023-01-15", dt.date(2023, 1, 15)),
        (" 20230115 ", dt.date(2023, 1, 15)),
        ("19991231", dt.date(1999, 12, 31)),
        ("20240229", dt.date(2024, 2, 29)),  # leap day
        ("2024-02-29", dt.date(2024, 2, 29)),
        (dt.date(2023, 1, 15), dt.date(2023, 1, 15)),
        (dt.datetime(2023, 1, 15, 13, 45), dt.date(2023, 1, 15)),
    ],
)
def test_normalize_date(raw: str | dt.date, expected: dt.date) -> None:
    result = normalize_date(raw)
    assert result == expected
    assert type(result) is dt.date


@pytest.mark.parametrize(
    "raw",
    [
        "20231345",  # month 13
        "20230230",  # 30 February
        "20230229",  # not a leap year
        "2023-13-01",
        "2023-02-30",
        "abc",
        "",
        "   ",
        None,
        "2023111",  # 7 digits: strptime alone would read 2023-11-01
        "202311",  # 6 digits: strptime alone would read 2023-01-01
        "20231",
        "2023",
        "202301150",
        "15/01/2023",
        "01-15-2023",
        "2023-01-15T10:00:00",
    ],
)
def test_normalize_date_rejects(raw: str | None) -> None:
    assert normalize_date(raw) is None


# --------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CT", "CT"),
        ("ct", "CT"),
        ("Mr", "MR"),
        (" pt ", "PT"),
        ("CHEST", "CHEST"),
        ("chest", "CHEST"),
        ("Head Neck", "HEAD NECK"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_normalize_code(raw: str | None, expected: str | None) -> None:
    assert normalize_code(raw) == expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.none() | st.text())
def test_normalize_code_is_upper_and_never_empty(raw: str | None) -> None:
    code = normalize_code(raw)
    assert code is None or (code and code == code.upper() and code == code.strip())


# --------------------------------------------------------------------------- collection


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("LIDC-IDRI", "lidc_idri"),
        ("lidc_idri", "lidc_idri"),
        ("TCGA-LUAD", "tcga_luad"),
        ("tcga_luad", "tcga_luad"),
        ("NSCLC Radiogenomics", "nsclc_radiogenomics"),
        ("nsclc_radiogenomics", "nsclc_radiogenomics"),
        ("CPTAC--CCRCC", "cptac_ccrcc"),
        ("  Pancreas-CT  ", "pancreas_ct"),
        ("-QIN-HEADNECK-", "qin_headneck"),
        ("Breast-MRI-NACT-Pilot", "breast_mri_nact_pilot"),
        ("ACRIN-NSCLC-FDG-PET (ACRIN 6668)", "acrin_nsclc_fdg_pet_acrin_6668"),
        ("a.b/c", "a_b_c"),
        ("", ""),
    ],
)
def test_normalize_collection(raw: str, expected: str) -> None:
    assert normalize_collection(raw) == expected


def test_normalize_collection_tcia_and_idc_names_meet() -> None:
    assert normalize_collection("LIDC-IDRI") == normalize_collection("lidc_idri")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_normalize_collection_is_canonical_and_idempotent(raw: str) -> None:
    name = normalize_collection(raw)
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in name)
    assert not name.startswith("_")
    assert not name.endswith("_")
    assert "__" not in name
    assert normalize_collection(name) == name


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CT CHEST W/O CONTRAST", "CT CHEST W/O CONTRAST"),
        ("  Thorax^1HEAD_NECK  ", "Thorax^1HEAD_NECK"),
        ("lung\n", "lung"),
        ("", None),
        ("  \t ", None),
        (None, None),
    ],
)
def test_normalize_text(raw: str | None, expected: str | None) -> None:
    assert normalize_text(raw) == expected
