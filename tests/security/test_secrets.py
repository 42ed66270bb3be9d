"""Source credentials never leave the source's own host (docs/security.md, "Secrets").

A DICOMweb archive and a Gen3 commons are configured live with secrets in environment
variables (a bearer token; a Fence API key exchanged for an access token). Their
servers (respx) fail in every way a server can: refused credentials, errors whose body
echoes the Authorization header, timeouts, garbage, redirects to another host. Through
the real app, with every logger at DEBUG, the secrets must appear in no response body,
no log record, no `explain` and no audit line; and no request to another host may carry
them. The test first checks the secrets really were sent to the right hosts, so it
cannot pass by never sending them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from adapters.spi import SourceSettings
from hub.api import create_app
from hub.security.audit import AuditSettings
from hub.security.secrets import redact
from tests.conftest import hub_config

PACS = "https://pacs.test/dicom-web"
GEN3 = "https://gen3.test"
EVIL = "https://evil.test/steal"
DICOMWEB_TOKEN = "dicomweb-SECRET-7f3a9c"
API_KEY = "gen3-apikey-SECRET-41d2e8"
FENCE_TOKEN = "fence-access-SECRET-b5c6d7"
SECRETS = (DICOMWEB_TOKEN, API_KEY, FENCE_TOKEN)

QUERY = """query ($f: JSON) {
  cohort(filter: $f) { counts { series } bySource { source status message } }
  explain(filter: $f) { source native residual description }
  sources { name message capabilities }
}"""
FILTER = {"AND": [{"=": {"modality": "CT"}}, {"=": {"patient_id": "P-1"}}]}


def _echo(status: int) -> Any:
    """A server that puts the credentials it received into its error body."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen = request.headers.get("authorization", "none")
        body = {"errors": [{"message": f"denied {seen}", "extensions": {"code": "403"}}]}
        return httpx.Response(status, json=body, headers={"X-Echo": seen})

    return answer


def _garbage(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=f"<html>{request.headers}</html>".encode())


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout(f"timed out; sent {request.headers}", request=request)


def _redirect(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(302, headers={"Location": EVIL})


FAILURES = {
    "refused-401": _echo(401),
    "server-error-echo": _echo(500),
    "bad-request-echo": _echo(400),
    "graphql-errors-echo": _echo(200),
    "garbage": _garbage,
    "timeout": _timeout,
    "redirect": _redirect,
}


@pytest.fixture
def client(
    small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("TEST_PACS_TOKEN", DICOMWEB_TOKEN)
    monkeypatch.setenv("TEST_GEN3_KEY", json.dumps({"api_key": API_KEY, "key_id": "k1"}))
    config = hub_config(small_data_dir)
    config.hub.query_deadline_s = 5
    config.audit = AuditSettings(directory=tmp_path / "audit")
    config.sources["pacs"] = SourceSettings(
        name="pacs", adapter="dicomweb", url=PACS, mode="live", credentials_env="TEST_PACS_TOKEN",
        timeout_s=1, cache_ttl_s=0,
    )  # fmt: skip
    config.sources["bih"] = SourceSettings(
        name="bih", adapter="gen3", url=GEN3, mode="live", credentials_env="TEST_GEN3_KEY",
        timeout_s=1, cache_ttl_s=0,
    )  # fmt: skip
    with TestClient(create_app(config)) as client:
        yield client


@pytest.mark.parametrize("failure", list(FAILURES))
def test_secrets_appear_nowhere(
    client: TestClient, caplog: pytest.LogCaptureFixture, tmp_path: Path, failure: str
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = FAILURES[failure]
    with respx.mock(assert_all_called=False) as router:
        router.route(host="testserver").pass_through()
        fence = router.post(f"{GEN3}/user/credentials/cdis/access_token").mock(
            return_value=httpx.Response(200, json={"access_token": FENCE_TOKEN})
        )
        pacs = router.get(f"{PACS}/series").mock(side_effect=answer)
        guppy = router.post(f"{GEN3}/guppy/graphql").mock(side_effect=answer)
        evil = router.route(host="evil.test").mock(return_value=httpx.Response(200, json=[]))
        bodies = [
            client.post("/graphql", json={"query": QUERY, "variables": {"f": FILTER}}).text,
            client.get("/graphql", params={"query": "{ explain { native description } }"}).text,
            client.get("/export", params={"format": "ndjson", "filter": json.dumps(FILTER)}).text,
            client.get("/dicomweb/series", params={"PatientID": "P-1"}).text,
        ]
    # The secrets did go where they belong (so this test can fail)...
    assert pacs.called and guppy.called and fence.called
    assert pacs.calls.last.request.headers["authorization"] == f"Bearer {DICOMWEB_TOKEN}"
    assert guppy.calls.last.request.headers["authorization"] == f"Bearer {FENCE_TOKEN}"
    assert API_KEY in fence.calls.last.request.content.decode()
    # ...and nowhere else: no other host, no answer, no log, no audit line.
    assert not evil.called
    statuses = json.loads(bodies[0])["data"]["cohort"]["bySource"]
    assert {s["source"]: s["status"] for s in statuses}["pacs"] != "ok"
    audit = "".join(p.read_text() for p in (tmp_path / "audit").glob("*.jsonl"))
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    for secret in SECRETS:
        for where, text in [*zip(("cohort", "explain", "export", "qido"), bodies, strict=True),
                            ("log", caplog.text + records), ("audit", audit)]:  # fmt: skip
            assert secret not in text, f"{secret} leaked into {where}"


def test_a_bearer_never_follows_a_redirect_to_another_host(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.route(host="testserver").pass_through()
        router.get(f"{PACS}/series").mock(side_effect=_redirect)
        router.post(f"{GEN3}/user/credentials/cdis/access_token").mock(
            return_value=httpx.Response(200, json={"access_token": FENCE_TOKEN})
        )
        router.post(f"{GEN3}/guppy/graphql").mock(side_effect=_redirect)
        evil = router.route(host="evil.test").mock(return_value=httpx.Response(200, json=[]))
        body = client.post("/graphql", json={"query": QUERY, "variables": {"f": FILTER}}).json()
    assert not evil.called
    messages = {s["source"]: s["message"] for s in body["data"]["cohort"]["bySource"]}
    assert "HTTP 302" in messages["pacs"] and "redirect" in messages["pacs"]
    assert "HTTP 302" in messages["bih"]


def test_redact_masks_the_value_and_every_string_inside_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = json.dumps({"api_key": API_KEY, "key_id": "k1"})
    monkeypatch.setenv("TEST_KEY", raw)
    settings = SourceSettings(name="a", adapter="a", credentials_env="TEST_KEY")
    assert redact(f"sent {raw}; key {API_KEY}; id k1", settings) == "sent ***; key ***; id k1"
    assert redact("nothing named", SourceSettings(name="a", adapter="a")) == "nothing named"
