"""QIDO-RS answers from hub cohorts: series as the index holds them, studies aggregated.

A series search is one cohort, paged at `offset`. A study search takes two steps: the
matching series (study keys, plus `ModalitiesInStudy` as "any series of these
modalities") give the page of studies, in browse order; then every series of those
studies gives their aggregates, so `ModalitiesInStudy` and `NumberOfStudyRelatedSeries`
describe the whole study, not only the series that matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.dicom_json import encode_series
from hub.index.protocol import all_series
from hub.qido.params import ALL_TAGS, QidoQuery
from hub.security.identity import ANONYMOUS, Caller
from hub.service import Hub


def _tags(*keywords: str) -> frozenset[str]:
    return frozenset(ALL_TAGS[k][0] for k in keywords)


SERIES_DEFAULT = _tags(
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
)
STUDY_DEFAULT = _tags(
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyInstanceUID",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
STUDY_LEVEL = STUDY_DEFAULT | _tags("StudyDescription", "PatientAge")
"""What a study answer may hold (series attributes are never returned for studies)."""
AGGREGATES = _tags(
    "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"
)
EMPTY: tuple[str, ...] = ("StudyTime", "AccessionNumber", "ReferringPhysicianName")
EMPTY += ("PatientName", "PatientBirthDate", "StudyID", "SeriesNumber")
"""Required return keys the hub does not hold: returned empty, as type 2 allows."""


@dataclass
class QidoAnswer:
    datasets: list[dict[str, Any]]
    more: bool  # matches beyond this page exist
    warnings: list[str] = field(default_factory=list)


def search_series(
    hub: Hub, query: QidoQuery, caller: Caller = ANONYMOUS, scoped: bool = False
) -> QidoAnswer:
    """Series matching `query` that `caller` may see as records; `scoped`: under
    /studies/{uid}/series (no study defaults)."""
    cohort = hub.cohort(query.filter(), None, caller)
    docs, total = cohort.view.series_window(query.offset, query.limit)
    docs = [cohort.disclosure.plan.scrub(doc) for doc in docs]
    default = SERIES_DEFAULT if scoped else SERIES_DEFAULT | (STUDY_DEFAULT - AGGREGATES)
    allowed = None if query.include is None else default | query.include | query.matched
    datasets = [_select(_series_dataset(doc), allowed) for doc in docs]
    return QidoAnswer(datasets, query.offset + len(docs) < total, list(query.warnings))


def search_studies(hub: Hub, query: QidoQuery, caller: Caller = ANONYMOUS) -> QidoAnswer:
    """Studies matching `query`, each with aggregates over all its series `caller` may see
    as records (a hidden series is not counted, not even in a visible study)."""
    view = hub.cohort(query.filter(), None, caller).view
    uids, total = view.study_window(query.offset, query.limit)
    if not uids:
        return QidoAnswer([], False, list(query.warnings))
    studies: dict[str, dict[str, Any]] = {}
    for doc in all_series(hub.cohort({"IN": {"study_uid": uids}}, None, caller).view):
        study = studies.setdefault(
            doc["study_uid"], {"first": doc, "modalities": set(), "series": 0, "instances": 0}
        )
        study["series"] += 1
        study["instances"] += doc.get("instance_count") or 0
        if doc.get("modality"):
            study["modalities"].add(doc["modality"])
    allowed = (
        STUDY_LEVEL
        if query.include is None
        else STUDY_LEVEL & (STUDY_DEFAULT | query.include | query.matched)
    )
    datasets = [_select(_study_dataset(studies[uid]), allowed) for uid in uids if uid in studies]
    return QidoAnswer(datasets, query.offset + len(uids) < total, list(query.warnings))


def _series_dataset(doc: dict[str, Any]) -> dict[str, Any]:
    dataset = encode_series(doc)
    for keyword in EMPTY:
        tag, vr = ALL_TAGS[keyword]
        dataset[tag] = {"vr": vr}
    return dataset


def _study_dataset(study: dict[str, Any]) -> dict[str, Any]:
    dataset = _series_dataset(study["first"])
    modalities = sorted(study["modalities"])
    for keyword, values in (
        ("ModalitiesInStudy", modalities),
        ("NumberOfStudyRelatedSeries", [study["series"]]),
        ("NumberOfStudyRelatedInstances", [study["instances"]]),
    ):
        tag, vr = ALL_TAGS[keyword]
        dataset[tag] = {"vr": vr, "Value": values} if values else {"vr": vr}
    return dataset


def _select(dataset: dict[str, Any], allowed: frozenset[str] | set[str] | None) -> dict[str, Any]:
    """The allowed attributes (None: all), in tag order as DICOM JSON lists them."""
    return {tag: dataset[tag] for tag in sorted(dataset) if allowed is None or tag in allowed}
