"""Orthanc as a DICOMweb client of the hub's QIDO-RS face.

A real Orthanc with its DICOMweb plugin declares the served hub in `DicomWeb.Servers`;
`POST /dicom-web/servers/hub/qido` makes Orthanc search the hub and relay its answer, as
an archive or a viewer behind Orthanc would. Orthanc parses every QIDO body as JSON: an
answer it cannot read comes back as a 4xx/5xx of Orthanc's own ("Bad file format").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dicomweb.conftest import running_orthanc
from tests.interop.test_qido import NO_MATCH, graphql_series

SERVER = "hub"


@pytest.fixture(scope="module")
def orthanc_client(hub_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an Orthanc whose DICOMweb plugin knows the hub as server `hub`."""
    root = tmp_path_factory.mktemp("orthanc-client")
    with running_orthanc(root, {SERVER: [f"{hub_url}/dicomweb"]}) as url:
        yield url


def relayed(orthanc: str, uri: str, arguments: dict[str, str]) -> httpx.Response:
    """Orthanc's answer to "ask the hub `GET {uri}?{arguments}` for me"."""
    body = {"Uri": uri, "Arguments": arguments}
    return httpx.post(f"{orthanc}/dicom-web/servers/{SERVER}/qido", json=body, timeout=60)


def values(datasets: list[dict[str, Any]], tag: str) -> set[str]:
    """The values of `tag` as Orthanc relays them: its own JSON (tag -> {"Name", "vr",
    "Value": "<string>"}), not the hub's DICOM JSON lists."""
    found = (d.get(tag, {}).get("Value") for d in datasets)
    return {v[0] if isinstance(v, list) else v for v in found if v}


def test_orthanc_lists_the_hub(orthanc_client: str) -> None:
    assert SERVER in httpx.get(f"{orthanc_client}/dicom-web/servers").json()


def test_orthanc_relays_a_study_search(orthanc_client: str, hub_url: str) -> None:
    expected, _ = graphql_series(hub_url, {"=": {"collection": "acrin_nsclc_fdg_pet"}})
    patient = expected[0]["patient_id"]
    studies = {n["study_uid"] for n in expected if n["patient_id"] == patient}
    answer = relayed(orthanc_client, "/studies", {"PatientID": patient})
    assert answer.status_code == 200, answer.text
    datasets = answer.json()
    assert values(datasets, "0020000D") == studies
    assert values(datasets, "00100020") == {patient}


def test_orthanc_relays_a_series_search(orthanc_client: str, hub_url: str) -> None:
    expected, _ = graphql_series(hub_url, {"=": {"collection": "c4kc_kits"}})
    study = expected[0]["study_uid"]
    answer = relayed(orthanc_client, f"/studies/{study}/series", {})
    assert answer.status_code == 200, answer.text
    assert values(answer.json(), "0020000E") == {
        n["series_uid"] for n in expected if n["study_uid"] == study
    }


@pytest.mark.parametrize(("uri", "arguments"), NO_MATCH)
def test_no_match_reaches_orthanc_as_an_empty_list(
    orthanc_client: str, uri: str, arguments: dict[str, str]
) -> None:
    answer = relayed(orthanc_client, uri, arguments)
    assert answer.status_code == 200, answer.text  # not Orthanc's 400 "Bad file format"
    assert answer.json() == []
