"""Small synthetic DICOM files for the Orthanc fixture, with their metadata kept in Python.

The tests compute the records they expect from `SERIES` (raw DICOM values, normalised by
`schema.normalize`), never from what the adapter returns. Values are chosen to be messy
the way real archives are: lower-case body parts, ages in months and weeks, missing sexes,
an impossible date that still sorts inside a date range, patient IDs that differ only in
case, one with a QIDO wildcard character and one with a space in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.config import disable_value_validation
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from schema import normalize as norm

ROOT = "1.2.826.0.1.3680043.8.498.1470."  # pydicom's root: UIDs are the same every run
SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
}
BUNDLED = ("CT_small.dcm", "MR_small.dcm")  # pydicom's own valid test images


@dataclass(frozen=True)
class SeriesSpec:
    """Raw DICOM values of one series (None: the attribute is absent)."""

    patient_id: str
    sex: str | None
    age: str | None
    study_uid: str
    study_date: str | None
    study_description: str | None
    series_uid: str
    modality: str
    body_part: str | None
    series_description: str | None
    manufacturer: str | None
    instances: int
    file: str | None = None  # a bundled pydicom file instead of generated instances


# patient id, sex, age, [(study date, study description, [(modality, body part, series
# description, manufacturer), ...]), ...]
_PATIENTS: list[tuple[str, str | None, str | None, list[Any]]] = [
    ("P01", "F", "045Y", [
        ("20190314", "CT CHEST WITH CONTRAST", [
            ("CT", "CHEST", "Axial 5mm lung", "SIEMENS"),
            ("CT", "CHEST", "Coronal MIP", "SIEMENS"),
        ]),
        ("20210615", "PET/CT whole body", [
            ("PT", None, "PET AC", "GE MEDICAL SYSTEMS"),
            ("CT", None, "CT attenuation correction", "GE MEDICAL SYSTEMS"),
        ]),
    ]),
    ("P02", "M", "062Y", [
        ("20200101", "Brain MRI", [
            ("MR", "HEAD", "T1 sagittal", "Philips"),
            ("MR", "HEAD", "T2 axial FLAIR", "Philips"),
            ("MR", "HEAD", None, "Philips"),
        ]),
        ("20201231", "Chest X-ray", [("CR", "chest", "PA view", None)]),
    ]),
    ("P03", "O", "018M", [
        ("20220228", "Paediatric chest CT", [
            ("CT", "chest", "Lung kernel", "SIEMENS"),
            ("CT", "CHEST", "Soft tissue kernel", "SIEMENS"),
        ]),
    ]),
    ("P04", None, "003W", [
        ("20230910", "Neonatal head MRI", [
            ("MR", "HEAD", "T1 axial", "GE MEDICAL SYSTEMS"),
            ("MR", "HEAD", "Diffusion", "GE MEDICAL SYSTEMS"),
        ]),
        ("20210230", "Follow-up chest radiograph", [("CR", "CHEST", "AP portable", None)]),
    ]),
    ("P05", "F", None, [
        ("20180505", "Abdomen CT", [
            ("CT", "ABDOMEN", "Portal venous", "Canon"),
            ("CT", "ABDOMEN", "Arterial phase", "Canon"),
            ("CT", None, "Scout", "Canon"),
        ]),
        (None, "Undated MR spine", [("MR", "SPINE", "T2 sagittal", "SIEMENS")]),
    ]),
    ("P06", "M", "070Y", [
        ("20220607", "PET/CT oncology staging", [
            ("PT", "WHOLEBODY", "PET NAC", "SIEMENS"),
            ("PT", "WHOLEBODY", "PET AC", "SIEMENS"),
            ("CT", "WHOLEBODY", "Low dose CT", "SIEMENS"),
        ]),
        ("20190101", "Chest CT low dose screening", [("CT", "CHEST", "Lung 1mm", "Philips")]),
        ("20191231", "Brain MRI", [("MR", "HEAD", "T1 post contrast", "Philips")]),
    ]),
    ("p-07", "f", "030Y", [
        ("20200715", "Knee MRI", [
            ("MR", "KNEE", "PD fat sat", "SIEMENS"),
            ("MR", "KNEE", "T1 coronal", "SIEMENS"),
        ]),
    ]),
    ("P-07", "M", "055Y", [
        ("20200716", "Chest CT", [("CT", "CHEST", "Mediastinal window", "GE MEDICAL SYSTEMS")]),
        ("2020", "Chest radiograph", [("CR", "CHEST", "Lateral", None)]),
    ]),
    ("P*1", "F", "059Y", [
        ("20210101", "CT chest angiography", [
            ("CT", "CHEST", "CTA arterial", "Canon"),
            ("CT", "CHEST", None, "Canon"),
        ]),
        ("20211231", "MR breast", [
            ("MR", "BREAST", "Dynamic contrast", "GE MEDICAL SYSTEMS"),
            ("MR", "BREAST", "T2 axial", "GE MEDICAL SYSTEMS"),
        ]),
    ]),
    ("P10", "O", "000Y", [
        ("20240229", "Head CT trauma", [
            ("CT", "HEAD", "Brain window", "SIEMENS"),
            ("CT", "HEAD", "Bone window", "SIEMENS"),
            ("CR", "SKULL", "Skull AP", None),
        ]),
    ]),
    ("P11", "X", "120D", [
        ("20170808", "Whole spine MR", [
            ("MR", "spine", "T2 sagittal", "Philips"),
            ("MR", "", "Localizer", "Philips"),
        ]),
        ("20230101", "PET brain", [("PT", "HEAD", "FDG brain", "SIEMENS")]),
    ]),
    ("ANON 12", "M", "081Y", [
        ("19991231", "Chest radiograph", [("CR", "CHEST", "PA", "Agfa")]),
    ]),
]  # fmt: skip


def _generated() -> list[SeriesSpec]:
    series: list[SeriesSpec] = []
    for p, (patient, sex, age, studies) in enumerate(_PATIENTS):
        for s, (date, study_description, members) in enumerate(studies):
            study_uid = f"{ROOT}{p + 1}.{s + 1}"
            for k, (modality, body_part, series_description, manufacturer) in enumerate(members):
                series.append(
                    SeriesSpec(
                        patient_id=patient,
                        sex=sex,
                        age=age,
                        study_uid=study_uid,
                        study_date=date,
                        study_description=study_description,
                        series_uid=f"{study_uid}.{k + 1}",
                        modality=modality,
                        body_part=body_part,
                        series_description=series_description,
                        manufacturer=manufacturer,
                        instances=1 + (len(series) % 3),
                    )
                )
    return series


def _bundled() -> list[SeriesSpec]:
    specs = []
    for name in BUNDLED:
        path = str(get_testdata_file(name, download=False))
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        specs.append(
            SeriesSpec(
                patient_id=str(ds.PatientID),
                sex=ds.get("PatientSex"),
                age=ds.get("PatientAge"),
                study_uid=str(ds.StudyInstanceUID),
                study_date=ds.get("StudyDate"),
                study_description=ds.get("StudyDescription"),
                series_uid=str(ds.SeriesInstanceUID),
                modality=str(ds.Modality),
                body_part=ds.get("BodyPartExamined"),
                series_description=ds.get("SeriesDescription"),
                manufacturer=ds.get("Manufacturer"),
                instances=1,
                file=path,
            )
        )
    return specs


SERIES: list[SeriesSpec] = _generated() + _bundled()


def expected_record(spec: SeriesSpec, source: str, collection: str) -> dict[str, Any]:
    """The canonical record the hub should hold for `spec`, by DESIGN.md's rules."""
    return {
        "source": source,
        "collection": collection,
        "patient_id": spec.patient_id,
        "study_uid": spec.study_uid,
        "series_uid": spec.series_uid,
        "modality": norm.normalize_code(spec.modality),
        "body_part": norm.normalize_code(spec.body_part),
        "sex": norm.normalize_sex(spec.sex),
        "age": norm.normalize_age(spec.age),
        "study_date": norm.normalize_date(spec.study_date),
        "study_description": norm.normalize_text(spec.study_description),
        "series_description": norm.normalize_text(spec.series_description),
        "manufacturer": norm.normalize_text(spec.manufacturer),
        "instance_count": spec.instances,
    }


def _instance(spec: SeriesSpec, number: int) -> Dataset:
    sop_class = SOP_CLASS[spec.modality]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(f"{spec.series_uid}.{number}")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = UID(ROOT + "0")
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = f"{spec.series_uid}.{number}"
    ds.PatientName = f"Test^{spec.patient_id}"
    ds.PatientID = spec.patient_id
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = spec.series_uid
    ds.Modality = spec.modality
    ds.SeriesNumber = int(spec.series_uid.rsplit(".", 1)[1])
    ds.InstanceNumber = number
    optional = {
        "PatientSex": spec.sex,
        "PatientAge": spec.age,
        "StudyDate": spec.study_date,
        "StudyDescription": spec.study_description,
        "BodyPartExamined": spec.body_part,
        "SeriesDescription": spec.series_description,
        "Manufacturer": spec.manufacturer,
    }
    for keyword, value in optional.items():
        if value is not None:
            setattr(ds, keyword, value)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(16, dtype="<u2").tobytes()
    return ds


def write_files(directory: Path) -> list[Path]:
    """Every instance of `SERIES` as a DICOM file (bundled files are used as they are)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with disable_value_validation():  # lower-case CS and impossible dates are the point
        for spec in SERIES:
            if spec.file is not None:
                paths.append(Path(spec.file))
                continue
            for number in range(1, spec.instances + 1):
                path = directory / f"{spec.series_uid}.{number}.dcm"
                _instance(spec, number).save_as(path, enforce_file_format=True)
                paths.append(path)
    return paths
