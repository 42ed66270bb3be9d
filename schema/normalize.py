"""Normalisation rules every adapter applies (DESIGN.md, "The canonical record").

Values from real repositories are messy: IDC `PatientAge` holds `066Y`, `047`,
`018M`; `PatientSex` holds `F`, `0000`, null. These pure functions turn them into
the canonical vocabulary. They are cached because a harvest calls them millions of
times with a few hundred distinct inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

_SEX = {
    "f": "female",
    "female": "female",
    "m": "male",
    "male": "male",
    "o": "other",
    "other": "other",
}
_AGE = re.compile(r"^ *([0-9]{1,3}) *([YyMmWwDd]?) *\Z")  # \Z: `$` also matches before a final \n
_AGE_DIVISOR = {"": 1, "y": 1, "m": 12, "w": 52, "d": 365}
_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=4096)
def normalize_sex(value: str | None) -> str:
    """F/female → female, M/male → male, O/other → other; anything else → unknown."""
    if value is None:
        return "unknown"
    return _SEX.get(value.strip().lower(), "unknown")


@lru_cache(maxsize=4096)
def normalize_age(value: str | int | None) -> int | None:
    """DICOM age string to whole years: NNNY/bare digits → N, NNNM → N//12, NNNW → N//52,
    NNND → N//365; anything else → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 200 else None
    match = _AGE.match(value)
    if match is None:
        return None
    years = int(match.group(1)) // _AGE_DIVISOR[match.group(2).lower()]
    return years if years <= 200 else None


@lru_cache(maxsize=65536)
def normalize_date(value: str | dt.date | None) -> dt.date | None:
    """DICOM DA (YYYYMMDD) or ISO date to a date; unparseable → None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    if text.isdigit() and len(text) != 8:  # strptime would read '2023111' as 2023-11-01
        return None
    if " " in text:  # strptime's %d would read '2023-11- 1' as 2023-11-01
        return None
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


@lru_cache(maxsize=4096)
def normalize_code(value: str | None) -> str | None:
    """Upper-case DICOM code string (Modality, BodyPartExamined); empty → None."""
    if value is None:
        return None
    text = value.strip().upper()
    return text or None


@lru_cache(maxsize=4096)
def normalize_collection(value: str) -> str:
    """Lower case, runs of non-alphanumerics → `_`, so TCIA `LIDC-IDRI` meets IDC `lidc_idri`."""
    return _NON_ALNUM.sub("_", value.strip().lower()).strip("_")


def normalize_text(value: str | None) -> str | None:
    """Trim free text; empty → None."""
    if value is None:
        return None
    text = value.strip()
    return text or None
