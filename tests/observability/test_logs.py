"""JSON log lines with a request id that reaches the sources, and no secrets in them."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hub.observability.context import request_id_from
from hub.observability.logs import JsonFormatter, scrub
from hub.security.apikeys import hash_key
from hub.security.auth_settings import ApiKeySettings
from tests.federation.fault_server import FaultServer
from tests.observability.support import (
    COUNTS,
    RecordingServer,
    config,
    flush_logs,
    live,
    log_lines,
    serving,
)

KEY = "ihk_observability-key-0123456789abcdef"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5Iiwicm9sZSI6ImFkbWluIn0"
    ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1oZXJl"
)
SOURCE_SECRET = "src-secret-7d1f0c9e4b2a"


def test_request_id_in_every_line_and_in_every_source_call(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        RecordingServer("l_ok", series=12) as ok,
        FaultServer("l_down", mode="fail_then_ok", failures=10_000) as down,
    ):
        cfg = config(data_dir, live("l_ok", ok), live("l_down", down, timeout_s=5.0))
        with serving(cfg) as client:
            capsys.readouterr()
            given = "req-1234.abc:XYZ"
            answer = client.post(
                "/graphql",
                json={"query": COUNTS, "variables": {"f": None}},
                headers={"X-Request-ID": given},
            )
            made = client.post("/graphql", json={"query": COUNTS})
            flush_logs()
        lines = log_lines(capsys.readouterr().err)

    assert answer.status_code == 200 and answer.headers["x-request-id"] == given
    generated = made.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # the source saw the id of the request that caused each call (several pages each)
    sent = [h.get("x-request-id") for h in ok.seen]
    assert len(sent) >= 4 and set(sent) == {given, generated}
    assert sent[: len(sent) // 2] == [given] * (len(sent) // 2)

    mine = [line for line in lines if line["request_id"] == given]
    access = [line for line in mine if line["logger"] == "hub.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["method"] == "POST" and entry["path"] == "/graphql" and entry["status"] == 200
    assert entry["duration_ms"] > 0 and entry["role"] == "anonymous" and entry["caller"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    # the failing source's warning was logged on the server's loop, in a fetch task
    warning = [line for line in mine if line["logger"] == "hub.federation.fetch"]
    assert warning and warning[0]["level"] == "warning" and "l_down" in warning[0]["message"]
    assert all(set(line) >= {"time", "level", "logger", "message", "request_id"} for line in lines)


@pytest.mark.parametrize(
    "header", ["x" * 129, "has space", 'quote"d', "new\nline", "ümlaut", "", "-leading"]
)
def test_an_insane_request_id_is_replaced_not_echoed(header: str) -> None:
    made = request_id_from(header.encode("utf-8"))
    assert made != header and re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id_from(b"a" * 128) == "a" * 128


def test_an_insane_request_id_over_http(data_dir: Path) -> None:
    with serving(config(data_dir)) as client:
        answer = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert answer.headers["x-request-id"] != "bad id <script>"
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])


def test_no_token_key_or_password_reaches_the_logs(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBS_SOURCE_TOKEN", SOURCE_SECRET)
    with FaultServer("l_tok", mode="fail_then_ok", failures=10_000) as down:
        cfg = config(data_dir, live("l_tok", down, credentials_env="OBS_SOURCE_TOKEN"))
        cfg.auth.api_keys = {"alice": ApiKeySettings(hash=hash_key(KEY))}
        with serving(cfg) as client:
            capsys.readouterr()
            good = client.post(
                "/graphql", json={"query": COUNTS}, headers={"Authorization": f"Bearer {KEY}"}
            )
            refused = client.post(
                "/graphql", json={"query": COUNTS}, headers={"Authorization": f"Bearer {JWT}"}
            )
            client.get("/graphql", params={"query": "{ __typename }", "api_key": KEY})
            log = logging.getLogger("tests.observability")
            log.warning("upstream said: bad credentials %s for %s", SOURCE_SECRET, "l_tok")
            log.warning("retrying https://bob:hunter2-pass@example.org/x?token=%s", JWT)
            log.error("header echoed: Authorization: Bearer %s", KEY)
            try:
                raise ValueError(f"password={SOURCE_SECRET}")
            except ValueError:
                log.exception("failed")
            flush_logs()
        err = capsys.readouterr().err
    assert good.status_code == 200 and refused.status_code == 401
    lines = log_lines(err)
    assert any(line.get("caller") == "key:alice" for line in lines)  # who, not their key
    assert any("refused credentials" in line["message"] for line in lines)
    for secret in (KEY, JWT, SOURCE_SECRET, "hunter2-pass", KEY[4:], JWT.split(".")[1]):
        assert secret not in err
    assert "upstream said: bad credentials *** for l_tok" in err


def test_scrub_patterns() -> None:
    assert scrub(f"Authorization: Bearer {JWT}") == "Authorization: ***"
    assert scrub("curl -H 'X-Api-Key: abcdef123456'") == "curl -H 'X-Api-Key: ***'"
    assert scrub("https://u:p4ssw0rd@host/path") == "https://u:***@host/path"
    assert scrub("?api_key=abc123&x=1") == "?api_key=***&x=1"
    assert scrub('{"password": "s3cret!"}') == '{"password": "***"}'
    assert scrub(f"token {JWT} here") == "token *** here"
    assert scrub("answered HTTP 500 for series 1.2.3") == "answered HTTP 500 for series 1.2.3"


def test_level_and_text_format_come_from_the_config(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(config(data_dir, log_level="warning")) as client:
        capsys.readouterr()
        client.get("/healthz", headers={"X-Request-ID": "quiet-1"})
        logging.getLogger("tests.observability").warning("loud enough")
        flush_logs()
        quiet = capsys.readouterr().err
    assert "quiet-1" not in quiet  # access lines are INFO
    assert [json.loads(line)["message"] for line in quiet.splitlines()] == ["loud enough"]

    with serving(config(data_dir, log_format="text")) as client:
        capsys.readouterr()
        client.get("/healthz", headers={"X-Request-ID": "text-1"})
        flush_logs()
        text = capsys.readouterr().err
    [line] = [line for line in text.splitlines() if "hub.access" in line]
    assert "INFO hub.access [text-1] GET /healthz 200" in line
    with serving(config(data_dir)):
        pass  # back to JSON for the tests that follow


def test_json_formatter_keeps_extra_fields_and_exceptions() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    record.source = "idc"
    record.request_id = "r-1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "boom now" and entry["source"] == "idc"
    assert entry["request_id"] == "r-1" and entry["level"] == "error"


SERVE = """
import sys
from pathlib import Path

import uvicorn

from hub.api import create_app
from hub.observability.logs import uvicorn_log_config
from tests.conftest import hub_config

app = create_app(hub_config(Path(sys.argv[1])))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False,
            log_config=uvicorn_log_config("info", "json"))
"""


def test_uvicorn_with_the_hub_log_config_writes_only_json(small_data_dir: Path) -> None:
    """What `serve` runs: uvicorn's own lines become JSON, its access log gives way to
    the hub's one line per request."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(small_data_dir), str(port)],
        cwd=root, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{url}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.get(f"{url}/readyz", headers={"X-Request-ID": "uvicorn-1"})
        assert answer.headers["x-request-id"] == "uvicorn-1"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    lines = log_lines(err)
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers and "uvicorn.access" not in loggers
    mine = [line for line in lines if line["request_id"] == "uvicorn-1"]
    assert [(m["logger"], m["path"], m["status"]) for m in mine] == [("hub.access", "/readyz", 200)]
