"""The page's other states: exporting a manifest, a repository that is down, counts the
hub suppresses, and labels on every control."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from tests.web.conftest import open_page
from tests.web.pages import graphql, load, shot, shown_counts, tick
from tests.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route


def test_export_downloads_the_cohort_manifest(page: Page, hub_url: str, artifacts: Path) -> None:
    load(page, "?modality=CT")
    tick(page, "sex", "female")
    expected = {"AND": [{"IN": {"modality": ["CT"]}}, {"IN": {"sex": ["female"]}}]}
    link = page.locator("#export-ndjson")
    query = parse_qs(urlsplit(link.get_attribute("href") or "").query)
    assert urlsplit(link.get_attribute("href") or "").path == "/export"
    assert query["format"] == ["ndjson"] and json.loads(query["filter"][0]) == expected
    assert page.locator("#export-s5cmd").count() == 1, "IDC is configured: its manifest too"
    assert page.locator("#export-tcia").count() == 0, "no TCIA source, no TCIA manifest"

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    lines = Path(download.path()).read_text().splitlines()
    series = graphql(hub_url, expected)["counts"]["series"]
    assert len(lines) == series
    assert {json.loads(line)["modality"] for line in lines} == {"CT"}
    assert download.suggested_filename.endswith(".ndjson")
    with page.expect_download() as download_info:
        page.click("#export-s5cmd")
    assert download_info.value.suggested_filename.endswith(".s5cmd")
    shot(page, artifacts, "06-export")


class AlwaysFails(BaseHTTPRequestHandler):
    """A repository whose DICOMweb server answers every request with a 500."""

    def do_GET(self) -> None:
        body = b'{"error": "database unavailable"}'
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def failing_hub_url(small_data_dir: Path) -> Iterator[str]:
    """The small index plus a live repository, `broken`, whose server only answers 500."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysFails)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    broken = SourceSettings(
        name="broken",
        adapter="dicomweb",
        mode="live",
        url=f"http://127.0.0.1:{server.server_address[1]}/dicom-web",
        timeout_s=3,
        cache_ttl_s=0,
    )
    config = HubConfig(
        hub=HubSettings(data_dir=small_data_dir),
        sources={"idc": SourceSettings(name="idc", adapter="idc"), "broken": broken},
    )
    try:
        with serve(config) as url:
            yield url
    finally:
        server.shutdown()
        server.server_close()


def test_a_failing_repository_is_reported(
    browser: Browser, failing_hub_url: str, artifacts: Path
) -> None:
    page, errors = open_page(browser, failing_hub_url)
    try:
        load(page)
        row = page.locator("#sources tr[data-source=broken]")
        assert row.get_attribute("data-status") == "error"
        assert "error" in row.inner_text()
        banner = page.locator("#banner")
        assert banner.is_visible()
        assert banner.get_attribute("role") == "alert"
        assert "Repository broken: error" in banner.inner_text()
        assert "counts exclude it" in banner.inner_text()
        ok = page.locator("#sources tr[data-source=idc]")
        assert ok.get_attribute("data-status") == "ok"
        assert shown_counts(page)["series"] == graphql(failing_hub_url, None)["counts"]["series"]
        shot(page, artifacts, "07-repository-down")
    finally:
        page.context.close()
    assert not errors


def _suppress(route: Route) -> None:
    """Answer as a hub with small-cell suppression would: counts withheld as null."""
    response = route.fetch()
    body = response.json()
    cohort = body["data"]["cohort"]
    cohort["counts"] = {"patients": None, "studies": None, "series": None}
    for facet in cohort["facets"]:
        for bucket in facet["buckets"][1:]:
            bucket["count"] = None
    for bucket in cohort.get("histogram", [])[:2]:
        bucket["count"] = None
    for result in cohort["bySource"]:
        result["count"] = None
    cohort["series"]["totalCount"] = None
    route.fulfill(response=response, json=body)


def test_suppressed_counts_show_as_suppressed(page: Page, artifacts: Path) -> None:
    page.route("**/graphql", _suppress)
    load(page)
    assert shown_counts(page) == {"patients": None, "studies": None, "series": None}
    badge = page.locator("#counts dd[data-count=series] .suppressed")
    assert badge.get_attribute("aria-label") == "count suppressed: too small to publish"
    assert page.locator("#facet-modality .suppressed").count() >= 1
    assert page.locator("#sources .suppressed").count() == 1
    assert page.locator("#page-status .suppressed").count() == 1
    assert "suppressed series" in page.inner_text("#announce")
    assert page.locator("#series tbody tr").count() == 50, "the table still lists series"
    shot(page, artifacts, "08-suppressed")


def test_every_control_has_a_label_and_the_table_has_headers(page: Page, hub_url: str) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    load(page)
    paths = {urlsplit(u).path for u in asked if u.startswith(hub_url)}
    assert all(u.startswith(hub_url) for u in asked), "the page talks only to its own hub"
    assert paths - {"/", "/graphql"} == {p for p in paths if p.startswith("/web/")}
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll(
              'input, select, textarea, button, a[href], [role=button]')]
          .filter((el) => {
            if (el.labels && el.labels.length) return false;
            const name = el.getAttribute('aria-label') || el.textContent.trim();
            return !name;
          })
          .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == []
    headers = page.locator("#series thead th[scope=col]").all_inner_texts()
    assert "Collection" in " ".join(headers) and "Study date" in " ".join(headers)
    assert page.locator("#series tbody th[scope=row]").count() == 50
    assert page.get_attribute("#announce", "aria-live") == "polite"


def test_the_url_round_trips_and_no_value_is_a_missing_test(page: Page, hub_url: str) -> None:
    query = "?modality=CT&modality=MR&body_part=(missing)&age=40-&to=2012-12-31&q=chest&sort=-age"
    load(page, query)
    roundtrip = page.evaluate(
        """async (search) => {
          const { stateFromURL, stateToURL } = await import("/web/js/state.js");
          const { buildFilter } = await import("/web/js/filter.js");
          const state = stateFromURL(search);
          return { url: stateToURL(state), filter: buildFilter(state), sort: state.sort };
        }""",
        query,
    )
    assert roundtrip["url"] == query.replace("(", "%28").replace(")", "%29")  # canonical order
    assert roundtrip["sort"] == {"field": "age", "descending": True}
    expected = {
        "AND": [
            {"IN": {"modality": ["CT", "MR"]}},
            {"is_missing": {"body_part": True}},
            {">=": {"age": 40}},
            {"<=": {"study_date": "2012-12-31"}},
        ]
    }
    assert roundtrip["filter"] == expected
    assert shown_counts(page) == graphql(hub_url, expected, text="chest")["counts"]
    assert page.is_checked("#facet-body_part input[data-value='(missing)']")
    assert page.input_value("#text") == "chest" and page.input_value("#age-min") == "40"
    assert page.get_attribute("th:has(#sort-age)", "aria-sort") == "descending"
