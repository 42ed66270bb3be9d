"""The built-in adapters pass the conformance kit, as a third-party adapter must.

Each runs against the same stand-ins its own tests use: TCIA and Gen3 behind respx fakes of
NBIA v4 and Guppy, DICOMweb against the real Orthanc of tests/dicomweb, IDC over a small
real slice of the `idc-index-data` parquet, and the catalogue over the Stanford AIMI file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import respx

from adapters.catalogue import CatalogueAdapter
from adapters.conformance import AdapterConformance, ConformanceCase
from adapters.dicomweb import DicomwebAdapter
from adapters.gen3 import Gen3Adapter
from adapters.idc import IdcAdapter
from adapters.tcia import TciaAdapter
from tests.dicomweb.conftest import orthanc  # noqa: F401 - the real Orthanc fixture, reused
from tests.gen3.fake_guppy import FakeGuppy
from tests.gen3.support import MIDRC_URL, URL, fixture
from tests.reference import INDEX_PARQUET
from tests.tcia.fake_nbia import BASE, FakeNbia

CATALOGUE = Path(__file__).parents[1] / "fixtures" / "catalogue" / "stanford_aimi.toml"
# Small IDC collections with messy values: six modalities, missing body parts, ages in
# months, and a few odd sexes ('0000', 'U', '6657') from anywhere in IDC.
IDC_SLICE = f"""
COPY (
  SELECT * FROM read_parquet('{INDEX_PARQUET}')
  WHERE collection_id IN ('pseudo_phi_dicom_data', 'cddp_eagle_1', 'nlm_visible_human_project')
  UNION ALL
  (SELECT * FROM read_parquet('{INDEX_PARQUET}')
   WHERE PatientSex IN ('0000', 'U', '6657') OR PatientAge LIKE '%M' ORDER BY SeriesInstanceUID
   LIMIT 30)
) TO '{{path}}' (FORMAT parquet)
"""
FILTERS = [
    {"AND": [{"IN": {"modality": ["CT", "MR"]}}, {"!=": {"sex": "unknown"}}]},
    {"OR": [{"=": {"modality": "CT"}}, {">=": {"age": 60}}]},
    {"AND": [{"=": {"body_part": "CHEST"}}, {"is_missing": {"study_date": False}}]},
    {"search": {"keyword": "chest", "fields": ["study_description", "series_description"]}},
]


def nbia(router: respx.MockRouter) -> None:
    router.get(url__startswith=BASE).mock(side_effect=FakeNbia())


def guppy(router: respx.MockRouter) -> None:
    for url, name, index in (
        (URL, "bih_imaging_series.json", "imaging_series"),
        (MIDRC_URL, "midrc_data_file.json", "data_file"),
    ):
        fake = FakeGuppy(fixture(name), index)
        router.post(f"{url}/guppy/graphql").mock(side_effect=fake.graphql)
        router.post(f"{url}/guppy/download").mock(side_effect=fake.download)


class TestTcia(AdapterConformance):
    adapter_class = TciaAdapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls) -> ConformanceCase:
        return ConformanceCase(TciaAdapter, {"name": "tcia", "url": BASE}, FILTERS, routes=nbia)


class TestGen3Bih(AdapterConformance):
    adapter_class = Gen3Adapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls) -> ConformanceCase:
        settings = {"name": "bih", "url": URL, "preset": "bih"}
        return ConformanceCase(Gen3Adapter, settings, FILTERS, routes=guppy, page_size=7)


class TestGen3Midrc(AdapterConformance):
    adapter_class = Gen3Adapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls) -> ConformanceCase:
        settings = {"name": "midrc", "url": MIDRC_URL, "preset": "midrc"}
        return ConformanceCase(Gen3Adapter, settings, FILTERS, routes=guppy, page_size=7)


class TestDicomweb(AdapterConformance):
    adapter_class = DicomwebAdapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls, orthanc: str) -> ConformanceCase:  # noqa: F811
        settings = {"name": "orthanc", "url": orthanc, "collection": "orthanc_demo"}
        return ConformanceCase(DicomwebAdapter, settings, FILTERS, page_size=4)


class TestIdc(AdapterConformance):
    adapter_class = IdcAdapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls, tmp_path_factory: pytest.TempPathFactory) -> ConformanceCase:
        path = tmp_path_factory.mktemp("idc-slice") / "idc_index.parquet"
        duckdb.connect().execute(IDC_SLICE.format(path=path))
        # a name other than "idc": records must carry the configured source name
        settings = {"name": "idc_slice", "index_parquet": str(path)}
        return ConformanceCase(IdcAdapter, settings, FILTERS, page_size=40)


class TestCatalogue(AdapterConformance):
    adapter_class = CatalogueAdapter

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_case(cls) -> ConformanceCase:
        return ConformanceCase(CatalogueAdapter, {"name": "aimi", "path": str(CATALOGUE)}, FILTERS)
