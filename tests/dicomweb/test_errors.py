"""Failures are typed by what the caller should do, and never leak the bearer token."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from adapters.dicomweb import DicomwebAdapter
from adapters.registry import discover_adapters
from adapters.spi import Page, SourceSettings, TerminalSourceError, TransientSourceError
from schema.filters import MATCH_ALL
from tests.dicomweb.conftest import free_port

TOKEN = "s3cr3t-t0ken-value"
ENV = "IMAGING_HUB_TEST_DICOMWEB_TOKEN"


def adapter(url: str, **options: Any) -> DicomwebAdapter:
    settings = SourceSettings(name="pacs", adapter="dicomweb", url=url, **options)
    return DicomwebAdapter(settings)


async def first_page(source: DicomwebAdapter) -> int:
    try:
        batches = (await source.search(source.translate(MATCH_ALL), Page(size=5))).batches
        return sum(b.num_rows for b in batches)
    finally:
        await source.aclose()


def failure(source: DicomwebAdapter) -> Exception:
    with pytest.raises(Exception) as caught:
        asyncio.run(first_page(source))
    return caught.value


def test_token_is_accepted_and_never_in_messages(
    orthanc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    assert asyncio.run(first_page(adapter(orthanc, credentials_env=ENV))) == 5
    wrong = orthanc.replace("/dicom-web", "/no-such-root")
    error = failure(adapter(wrong, credentials_env=ENV))
    assert isinstance(error, TerminalSourceError) and "404" in str(error)
    assert TOKEN not in str(error) and TOKEN not in repr(error.__context__)
    plan = adapter(orthanc, credentials_env=ENV).translate(MATCH_ALL)
    assert TOKEN not in str(plan.native) + plan.description


def test_unreachable_server_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    error = failure(adapter(f"http://127.0.0.1:{free_port()}/dicom-web", credentials_env=ENV))
    assert isinstance(error, TransientSourceError)
    assert TOKEN not in str(error)


def test_missing_token_is_terminal_and_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    error = failure(adapter("http://127.0.0.1:1/dicom-web", credentials_env=ENV))
    assert isinstance(error, TerminalSourceError) and ENV in str(error)


@pytest.mark.parametrize(
    ("url", "options"),
    [
        (None, {}),
        ("ftp://pacs.test/dicom-web", {}),
        ("https://user:pw@pacs.test/dicom-web", {}),
        ("https://pacs.test/dicom-web", {"match_keys": ["sex"]}),
        ("https://pacs.test/dicom-web", {"page_size": 0}),
        ("https://pacs.test/dicom-web", {"page_size": "ten"}),
        ("https://pacs.test/dicom-web", {"join_studies": "sometimes"}),
        ("https://pacs.test/dicom-web", {"viewer_url": "https://v.test/{patient}"}),
    ],
)
def test_bad_settings_are_terminal(url: str | None, options: dict[str, Any]) -> None:
    with pytest.raises(TerminalSourceError) as caught:
        adapter(url, **options)  # type: ignore[arg-type]
    assert "pw" not in str(caught.value)


@respx.mock
def test_bearer_goes_only_to_the_configured_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, TOKEN)
    route = respx.get("https://pacs.test/dicom-web/series").mock(
        return_value=httpx.Response(200, json=[])
    )
    assert asyncio.run(first_page(adapter("https://pacs.test/dicom-web", credentials_env=ENV))) == 0
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Accept"] == "application/dicom+json"
    assert sent.url.params["limit"] == "5" and sent.url.params["offset"] == "0"
    assert "PatientAge" in sent.url.params.get_list("includefield")


@respx.mock
@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(200, json={"not": "a list"}), TerminalSourceError),
        (httpx.Response(200, content=b"<html>"), TerminalSourceError),
        (
            httpx.Response(200, json=[{"00100020": {"vr": "LO", "Value": ["X"]}}]),
            TerminalSourceError,
        ),
        (httpx.Response(503, headers={"Retry-After": "7"}), TransientSourceError),
        (httpx.Response(401), TerminalSourceError),
    ],
)
def test_bad_answers_are_typed(answer: httpx.Response, kind: type[Exception]) -> None:
    respx.get("https://pacs.test/dicom-web/series").mock(return_value=answer)
    error = failure(adapter("https://pacs.test/dicom-web"))
    assert isinstance(error, kind)
    if isinstance(error, TransientSourceError):
        assert error.retry_after_s == 7


@respx.mock
def test_no_content_is_an_empty_page() -> None:
    respx.get("https://pacs.test/dicom-web/series").mock(return_value=httpx.Response(204))
    assert asyncio.run(first_page(adapter("https://pacs.test/dicom-web"))) == 0


@respx.mock
def test_study_attributes_are_joined_when_a_server_leaves_them_out() -> None:
    """Some servers answer series searches with series attributes only."""
    study = "1.2.3"
    series = [
        {"0020000D": {"vr": "UI", "Value": [study]}, "0020000E": {"vr": "UI", "Value": [uid]}}
        for uid in ("1.2.3.1", "1.2.3.2")
    ]
    studies = respx.get("https://pacs.test/dicom-web/studies").mock(
        return_value=httpx.Response(
            200,
            json=[
                {
                    "0020000D": {"vr": "UI", "Value": [study]},
                    "00100020": {"vr": "LO", "Value": ["PAT-9"]},
                    "00100040": {"vr": "CS", "Value": ["M"]},
                    "00101010": {"vr": "AS", "Value": ["070Y"]},
                }
            ],
        )
    )
    respx.get("https://pacs.test/dicom-web/series").mock(
        return_value=httpx.Response(200, json=series)
    )

    async def rows() -> list[dict[str, Any]]:
        source = adapter("https://pacs.test/dicom-web")
        try:
            plan = source.translate(MATCH_ALL)
            return [
                r for b in (await source.search(plan, Page(size=5))).batches for r in b.to_pylist()
            ]
        finally:
            await source.aclose()

    records = asyncio.run(rows())
    assert [(r["patient_id"], r["sex"], r["age"]) for r in records] == [("PAT-9", "male", 70)] * 2
    assert studies.call_count == 1
    assert studies.calls.last.request.url.params["StudyInstanceUID"] == study


def test_found_through_the_entry_point() -> None:
    assert discover_adapters()["dicomweb"] is DicomwebAdapter
