"""QIDO-RS query parameters (DICOM PS3.18 §8.3.4) read into a hub cohort filter.

Match keys are given by keyword or tag (`PatientID=...` or `00100020=...`). What the hub
can match, and how:

- UIDs (StudyInstanceUID, SeriesInstanceUID): single value or UID list (`a,b,c`);
- PatientID, Modality, BodyPartExamined, PatientSex (M/F/O), StudyDescription,
  SeriesDescription, Manufacturer: single value, or a comma list for Modality;
- StudyDate: `YYYYMMDD`, or a range `YYYYMMDD-YYYYMMDD`, `YYYYMMDD-`, `-YYYYMMDD`;
- ModalitiesInStudy (study searches): studies with any series of those modalities.

Wildcards (`*`, `?`) are not supported: a key whose value is `*` alone (universal
matching) is ignored, any other wildcard is a 400 that says so. Attributes the hub does
not hold (PatientName, AccessionNumber, ...) accept only universal matching. The filter
is built as Guppy JSON and parsed by `schema.filters.parse_filter`, so every limit of a
hub filter applies.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.dicom_json import TAGS
from schema.errors import CallerError
from schema.quoting import quote

Level = Literal["study", "series"]
MAX_RESULTS = 1000
"""Most results one response carries (PS3.18 lets an origin server cap `limit`)."""

EXTRA_TAGS: dict[str, tuple[str, str]] = {
    "PatientName": ("00100010", "PN"),
    "PatientBirthDate": ("00100030", "DA"),
    "AccessionNumber": ("00080050", "SH"),
    "StudyID": ("00200010", "SH"),
    "StudyTime": ("00080030", "TM"),
    "ReferringPhysicianName": ("00080090", "PN"),
    "SeriesNumber": ("00200011", "IS"),
    "ModalitiesInStudy": ("00080061", "CS"),
    "NumberOfStudyRelatedSeries": ("00201206", "IS"),
    "NumberOfStudyRelatedInstances": ("00201208", "IS"),
}
"""Attributes a QIDO answer names besides those of a series record (`dicom_json.TAGS`)."""

ALL_TAGS: dict[str, tuple[str, str]] = {**TAGS, **EXTRA_TAGS}
KEYWORD_OF_TAG = {tag: keyword for keyword, (tag, _) in ALL_TAGS.items()}

# keyword -> (canonical field, level, how values are matched)
MATCHABLE: dict[str, tuple[str, Level, str]] = {
    "PatientID": ("patient_id", "study", "single"),
    "PatientSex": ("sex", "study", "sex"),
    "StudyInstanceUID": ("study_uid", "study", "uids"),
    "StudyDate": ("study_date", "study", "date"),
    "StudyDescription": ("study_description", "study", "single"),
    "ModalitiesInStudy": ("modality", "study", "list"),
    "SeriesInstanceUID": ("series_uid", "series", "uids"),
    "Modality": ("modality", "series", "list"),
    "BodyPartExamined": ("body_part", "series", "single"),
    "SeriesDescription": ("series_description", "series", "single"),
    "Manufacturer": ("manufacturer", "series", "single"),
}
UNIVERSAL_ONLY = {k for k in ALL_TAGS if k not in MATCHABLE}
"""Attributes the hub returns (possibly empty) but cannot match on."""

CONTROL = {"includefield", "limit", "offset", "fuzzymatching", "emptyvaluematching"}
CONTROL |= {"multiplevaluematching"}
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DATE = re.compile(r"[0-9]{8}")
_SEX = {"F": "female", "M": "male", "O": "other"}


class QidoError(CallerError):
    """A QIDO-RS request the hub cannot answer as asked (400)."""


@dataclass
class QidoQuery:
    """A parsed search: series conditions, study-level modality test, and what to return."""

    level: Level
    conditions: list[dict[str, Any]] = field(default_factory=list)
    modalities_in_study: list[str] | None = None
    include: set[str] | None = field(default_factory=set)  # tags; None means all
    limit: int = MAX_RESULTS
    offset: int = 0
    matched: set[str] = field(default_factory=set)  # tags of match keys: returned too
    capped: bool = False  # the caller asked for more than MAX_RESULTS (or gave no limit)
    warnings: list[str] = field(default_factory=list)

    def filter(self, with_modalities: bool = True) -> dict[str, Any]:
        """The hub filter selecting the matching series (studies: their series)."""
        conditions = list(self.conditions)
        if with_modalities and self.modalities_in_study:
            conditions.append({"IN": {"modality": self.modalities_in_study}})
        return {"AND": conditions}


def parse_qido(
    params: Iterable[tuple[str, str]], level: Level, study_uid: str | None = None
) -> QidoQuery:
    """Read query parameters (in order, repeats allowed) for a study or series search."""
    query = QidoQuery(level)
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    limit_given = False
    for name, given in values.items():
        if name in CONTROL:
            limit_given |= name == "limit"
            _control(query, name, given)
        else:
            _match(query, _keyword(name), given)
    if not limit_given:
        query.capped = True
    if study_uid is not None:
        _match(query, "StudyInstanceUID", [study_uid])
    return query


def _keyword(name: str) -> str:
    upper = name.upper()
    if upper in KEYWORD_OF_TAG:
        return KEYWORD_OF_TAG[upper]
    if name in ALL_TAGS:
        return name
    raise QidoError(
        f"unknown query parameter {quote(name)}; match keys: {', '.join(MATCHABLE)} "
        f"(or their tags); controls: {', '.join(sorted(CONTROL))}"
    )


def _control(query: QidoQuery, name: str, given: list[str]) -> None:
    if name == "includefield":
        fields = [f.strip() for value in given for f in value.split(",") if f.strip()]
        if "all" in fields:
            query.include = None
        elif query.include is not None:
            query.include |= {_tag(f) for f in fields}
        return
    if len(given) > 1:
        raise QidoError(f"{name} may be given once")
    value = given[0].strip()
    if name in ("limit", "offset"):
        if not (value.isascii() and value.isdigit()):  # int() refuses "²", which isdigit() takes
            raise QidoError(f"{name} must be a whole number >= 0, got {quote(value)}")
        number = int(value)
        if name == "offset":
            query.offset = number
        elif number > MAX_RESULTS:
            query.limit, query.capped = MAX_RESULTS, True
        else:
            query.limit = number
        return
    if value.lower() not in ("true", "false"):
        raise QidoError(f"{name} must be true or false, got {quote(value)}")
    if value.lower() == "true" and name == "fuzzymatching":
        query.warnings.append(
            "The fuzzymatching parameter is not supported. Only literal matching has been "
            "performed."
        )
    elif value.lower() == "true":
        raise QidoError(f"{name}=true is not supported by this server")


def _tag(name: str) -> str:
    """An includefield entry as a tag: a known keyword, or any 8-hex-digit tag."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return name.upper()
    if name in ALL_TAGS:
        return ALL_TAGS[name][0]
    raise QidoError(
        f"includefield {quote(name)} is neither a tag (8 hex digits) nor a known keyword "
        f"({', '.join(sorted(ALL_TAGS))})"
    )


def _match(query: QidoQuery, keyword: str, given: list[str]) -> None:
    raw = ",".join(v.strip() for v in given)
    query.matched.add(ALL_TAGS[keyword][0])
    if raw in ("", "*"):  # universal matching: every record matches
        return
    if keyword in UNIVERSAL_ONLY:
        raise QidoError(f"the hub holds no {keyword}; it accepts only universal matching ('*')")
    field_name, level, how = MATCHABLE[keyword]
    if keyword == "ModalitiesInStudy" and query.level == "series":
        raise QidoError("ModalitiesInStudy is a study-level key; a series search takes Modality")
    if level == "series" and query.level == "study":
        raise QidoError(
            f"{keyword} is a series-level attribute; search /series, or use ModalitiesInStudy"
        )
    if "*" in raw or "?" in raw:
        raise QidoError(f"wildcard matching ('*', '?') is not supported on {keyword}")
    if how == "date":
        query.conditions += _date_range(raw)
        return
    if how == "sex":
        if raw.upper() not in _SEX:
            raise QidoError(f"PatientSex takes M, F or O, got {quote(raw)}")
        query.conditions.append({"=": {field_name: _SEX[raw.upper()]}})
        return
    if how == "single":
        query.conditions.append({"=": {field_name: raw}})
        return
    items = [v.strip() for v in raw.split(",") if v.strip()]
    if how == "uids":
        bad = [v for v in items if len(v) > 64 or _UID.fullmatch(v) is None]
        if bad:
            raise QidoError(f"{keyword} takes UIDs (digits and dots), got {quote(bad[0])}")
    if keyword == "ModalitiesInStudy":
        query.modalities_in_study = items
        return
    query.conditions.append({"IN": {field_name: items}})


def _date_range(raw: str) -> list[dict[str, Any]]:
    if "," in raw:
        raise QidoError("StudyDate takes one date or one range, not a list")
    low, dash, high = raw.partition("-")
    if not dash:
        return [{"=": {"study_date": _date(low)}}]
    if not low and not high:
        raise QidoError("StudyDate range needs at least one end: YYYYMMDD-YYYYMMDD")
    out = []
    if low:
        out.append({">=": {"study_date": _date(low)}})
    if high:
        out.append({"<=": {"study_date": _date(high)}})
    return out


def _date(value: str) -> str:
    if _DATE.fullmatch(value) is None:
        raise QidoError(f"StudyDate takes YYYYMMDD dates, got {quote(value)}")
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date().isoformat()
    except ValueError:
        raise QidoError(f"StudyDate {quote(value)} is not a calendar date") from None
