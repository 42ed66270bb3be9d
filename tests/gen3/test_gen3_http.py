"""Gen3 over HTTP: the 10,000-row window, Fence tokens, counts and typed errors (respx)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx

from adapters.gen3 import Gen3Adapter
from adapters.registry import discover_adapters
from adapters.spi import Page, SourceSettings, TerminalSourceError, TransientSourceError
from schema.filters import MATCH_ALL, parse_filter
from tests.gen3.fake_guppy import FakeGuppy
from tests.gen3.support import MIDRC_URL, URL, _walk, adapter, fixture

TOKEN_URL = f"{URL}/user/credentials/cdis/access_token"
CREDENTIALS = fixture("credentials.json")
TOKEN = fixture("fence_access_token.json")["access_token"]


def _many(n: int) -> list[dict[str, Any]]:
    return [
        {
            "series_uid": f"1.2.826.0.1.3680043.10.474.{i:06d}",
            "study_uid": [f"1.2.{i // 3}"],
            "case_ids": [f"419639-{i // 9:06d}"],
            "project_id": "Open-R1",
            "modality": "CR",
            "source_node": "cr_series_file",
            "sex": ["Female" if i % 2 else "Male"],
        }
        for i in range(10_500)
    ]


@pytest.mark.parametrize(("size", "graphql_pages"), [(4000, 2), (10_000, 1), (2500, 4)])
def test_paging_switches_to_download_at_the_window(size: int, graphql_pages: int) -> None:
    fake = FakeGuppy(_many(10_500), "data_file", fixture("midrc_data_file.json"))
    with respx.mock() as router:
        gql = router.post(f"{MIDRC_URL}/guppy/graphql").mock(side_effect=fake.graphql)
        dl = router.post(f"{MIDRC_URL}/guppy/download").mock(side_effect=fake.download)
        source = adapter("midrc")
        rows = asyncio.run(_walk(source, source.translate(MATCH_ALL), size))
    assert gql.call_count == graphql_pages and dl.call_count == 1
    assert [q["variables"]["offset"] for q in fake.graphql_queries] == [
        i * size for i in range(graphql_pages)
    ]
    assert all(q["variables"]["first"] == size for q in fake.graphql_queries)
    assert fake.downloads[0]["type"] == "data_file" and fake.downloads[0]["sort"] == [
        {"series_uid": "asc"}
    ]
    uids = [r["series_uid"] for r in rows]
    assert len(uids) == len(set(uids)) == 10_500 and uids == sorted(uids)


def test_a_page_inside_the_window_never_downloads() -> None:
    fake = FakeGuppy(_many(10_500), "data_file", fixture("midrc_data_file.json"))
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{MIDRC_URL}/guppy/graphql").mock(side_effect=fake.graphql)
        dl = router.post(f"{MIDRC_URL}/guppy/download").mock(side_effect=fake.download)
        source = adapter("midrc")

        async def one() -> int:
            page = Page(size=1000, offset=9000)  # ends exactly at the window
            answer = await source.search(source.translate(MATCH_ALL), page)
            n: int = sum(b.num_rows for b in answer.batches)
            assert answer.next_page == Page(size=1000, offset=10_000)
            await source.aclose()
            return n

        assert asyncio.run(one()) == 1000 and dl.call_count == 0


def test_count_uses_aggregation(guppy: dict[str, FakeGuppy]) -> None:
    source = adapter("bih")
    node = parse_filter({"=": {"modality": "CT"}})

    async def count() -> int | None:
        try:
            return await source.count(source.translate(node))
        finally:
            await source.aclose()

    expected = len(guppy["bih"].select(source.translate(node).native["filter"], None))
    assert asyncio.run(count()) == expected > 0
    assert "_aggregation" in guppy["bih"].graphql_queries[-1]["query"]


def _search_twice(source: Gen3Adapter) -> None:
    async def go() -> None:
        try:
            for _ in range(2):
                t = source.translate(parse_filter({"=": {"modality": "CT"}}))
                _ = await source.search(t, Page(size=50))
            await source.count(source.translate(MATCH_ALL))
        finally:
            await source.aclose()

    asyncio.run(go())


def test_token_is_exchanged_once_and_sent_only_to_the_commons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guppy = {"bih": FakeGuppy(fixture("bih_imaging_series.json"), "imaging_series")}
    monkeypatch.setenv("BIH_API_KEY", json.dumps(CREDENTIALS))
    with respx.mock(assert_all_called=False) as router:
        fence = router.post(TOKEN_URL).mock(
            return_value=httpx.Response(200, json={"access_token": TOKEN})
        )
        gql = router.post(f"{URL}/guppy/graphql").mock(side_effect=guppy["bih"].graphql)
        _search_twice(adapter("bih", credentials_env="BIH_API_KEY"))
        assert fence.call_count == 1
        assert json.loads(fence.calls[0].request.content) == CREDENTIALS
        assert "authorization" not in fence.calls[0].request.headers
        assert gql.call_count == 3
        assert all(c.request.headers["authorization"] == f"Bearer {TOKEN}" for c in gql.calls)
        elsewhere = router.post("https://guppy.elsewhere.org/guppy/graphql").mock(
            side_effect=guppy["bih"].graphql
        )
        _search_twice(
            adapter(
                "bih", credentials_env="BIH_API_KEY", guppy_url="https://guppy.elsewhere.org/guppy"
            )
        )
        assert elsewhere.call_count == 3 and fence.call_count == 1
        assert all("authorization" not in c.request.headers for c in elsewhere.calls)
        plain = router.post("http://imaging-hub.data-commons.org/guppy/graphql").mock(
            side_effect=guppy["bih"].graphql
        )  # same host, but plain HTTP: no bearer either
        _search_twice(
            adapter(
                "bih",
                credentials_env="BIH_API_KEY",
                guppy_url="http://imaging-hub.data-commons.org/guppy",
            )
        )
        assert plain.call_count == 3 and fence.call_count == 1
        assert all("authorization" not in c.request.headers for c in plain.calls)


def test_a_raw_api_key_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    guppy = {"bih": FakeGuppy(fixture("bih_imaging_series.json"), "imaging_series")}
    monkeypatch.setenv("BIH_API_KEY", CREDENTIALS["api_key"])
    with respx.mock(assert_all_called=False) as router:
        fence = router.post(TOKEN_URL).mock(
            return_value=httpx.Response(200, json={"access_token": TOKEN})
        )
        router.post(f"{URL}/guppy/graphql").mock(side_effect=guppy["bih"].graphql)
        _search_twice(adapter("bih", credentials_env="BIH_API_KEY"))
    assert json.loads(fence.calls[0].request.content) == {"api_key": CREDENTIALS["api_key"]}


def _failure(
    monkeypatch: pytest.MonkeyPatch, fence: httpx.Response, graphql: httpx.Response
) -> Exception:
    monkeypatch.setenv("BIH_API_KEY", json.dumps(CREDENTIALS))
    source = adapter("bih", credentials_env="BIH_API_KEY")
    translation = source.translate(parse_filter({"=": {"modality": "CT"}}))
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=fence)
        router.post(f"{URL}/guppy/graphql").mock(return_value=graphql)

        async def go() -> None:
            try:
                _ = await source.search(translation, Page(size=10))
            finally:
                await source.aclose()

        with pytest.raises((TerminalSourceError, TransientSourceError)) as info:
            asyncio.run(go())
    text = str(info.value) + repr(translation.native) + translation.description
    for secret in (CREDENTIALS["api_key"], CREDENTIALS["key_id"], TOKEN, "SIGNATURE"):
        assert secret not in text
    return info.value


OK_TOKEN = httpx.Response(200, json={"access_token": TOKEN})


@pytest.mark.parametrize(
    ("fence", "graphql", "kind", "message"),
    [
        (
            httpx.Response(401, text="Please provide a valid api_key"),
            OK_TOKEN,
            TerminalSourceError,
            "HTTP 401",
        ),
        (
            OK_TOKEN,
            httpx.Response(403, text=f"token {TOKEN} refused"),
            TerminalSourceError,
            "HTTP 403",
        ),
        (
            OK_TOKEN,
            httpx.Response(401, json=fixture("guppy_tier_access_error.json")),
            TerminalSourceError,
            "401",
        ),
        (
            OK_TOKEN,
            httpx.Response(200, json=fixture("guppy_tier_access_error.json")),
            TerminalSourceError,
            "refused access",
        ),
        (
            OK_TOKEN,
            httpx.Response(200, json=fixture("guppy_window_error.json")),
            TerminalSourceError,
            "download endpoint",
        ),
        (
            OK_TOKEN,
            httpx.Response(200, json=fixture("guppy_es_error.json")),
            TransientSourceError,
            "Guppy failed",
        ),
        (
            OK_TOKEN,
            httpx.Response(500, text="Internal Server Error"),
            TransientSourceError,
            "HTTP 500",
        ),
        (
            OK_TOKEN,
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            TransientSourceError,
            "HTTP 502",
        ),
        (
            OK_TOKEN,
            httpx.Response(200, text="<html>maintenance</html>"),
            TerminalSourceError,
            "not valid JSON",
        ),
        (
            httpx.Response(200, text="{'access_token':"),
            OK_TOKEN,
            TerminalSourceError,
            "not valid JSON",
        ),
        (
            httpx.Response(200, json={"message": "nope"}),
            OK_TOKEN,
            TerminalSourceError,
            "access_token",
        ),
        (
            OK_TOKEN,
            httpx.Response(200, json={"data": {}}),
            TerminalSourceError,
            "without imaging_series",
        ),
    ],
)
def test_failures_are_typed_and_never_leak_secrets(
    monkeypatch: pytest.MonkeyPatch,
    fence: httpx.Response,
    graphql: httpx.Response,
    kind: type,
    message: str,
) -> None:
    error = _failure(monkeypatch, fence, graphql)
    assert type(error) is kind and message in str(error)


def test_429_carries_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests")
    error = _failure(monkeypatch, OK_TOKEN, busy)
    assert isinstance(error, TransientSourceError) and error.retry_after_s == 7.0


def test_a_missing_credentials_variable_names_only_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    source = adapter("bih", credentials_env="NO_SUCH_KEY")

    async def go() -> None:
        _ = await source.search(source.translate(MATCH_ALL), Page(size=1))

    with respx.mock(), pytest.raises(TerminalSourceError, match="NO_SUCH_KEY is empty"):
        asyncio.run(go())


def test_download_failures_are_typed() -> None:
    with respx.mock() as router:
        router.post(f"{URL}/guppy/download").mock(return_value=httpx.Response(200, text="[{"))
        source = adapter("bih")

        async def go() -> None:
            _ = [b async for b in source.harvest()]

        with pytest.raises(TerminalSourceError, match="not valid JSON"):
            asyncio.run(go())


def test_found_through_the_entry_point() -> None:
    assert discover_adapters()["gen3"] is Gen3Adapter
    assert isinstance(
        Gen3Adapter(SourceSettings(name="m", adapter="gen3", url=MIDRC_URL)), Gen3Adapter
    )
