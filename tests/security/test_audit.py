"""The audit log: one JSON line per API request, who asked what, append-only, no secrets."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.config import HubConfig, load_config
from hub.security.apikeys import hash_key
from hub.security.audit import AuditLog, AuditSettings, describe
from hub.security.auth_settings import ApiKeySettings
from hub.security.limits import LimitsSettings
from tests.conftest import hub_config

KEY = "ihk_audit-test-key-9f8e7d6c5b4a"
CT = {"=": {"modality": "CT"}}
JSON_BODY = {"content-type": "application/json"}
COHORT = "query Counts($f: JSON, $t: String) { cohort(filter: $f, text: $t) { counts { series } } }"


def _config(small_data_dir: Path, audit_dir: Path, **audit: Any) -> HubConfig:
    config = hub_config(small_data_dir)
    config.audit = AuditSettings(directory=audit_dir, **audit)
    config.auth.api_keys = {"alice": ApiKeySettings(hash=hash_key(KEY))}
    config.limits = LimitsSettings(burst=12, requests_per_minute=1)
    return config


def lines(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("audit-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.fixture
def audited(small_data_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    with TestClient(create_app(_config(small_data_dir, tmp_path / "audit"))) as client:
        yield client, tmp_path / "audit"


def test_one_line_per_api_request_with_who_and_what(audited: tuple[TestClient, Path]) -> None:
    client, directory = audited
    bearer = {"Authorization": f"Bearer {KEY}"}
    variables = {"f": CT, "t": "lung"}
    answer = client.post(
        "/graphql",
        json={"query": COHORT, "variables": variables},
        headers={**bearer, "X-Request-ID": "workshop-42"},
    )
    assert answer.is_success
    assert client.get("/graphql", params={"query": '{ explain(text: "kidney") { source } }'})
    assert client.get("/export", params={"format": "csv", "filter": json.dumps(CT), "limit": 1})
    assert client.post("/cohorts", json={"filter": CT, "text": "chest"}).status_code == 201
    assert client.get("/dicomweb/series", params={"Modality": "MR", "limit": "1"}).is_success
    assert client.get("/healthz").is_success and client.get("/readyz").is_success  # not API

    entries = lines(directory)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/graphql", 200),
        ("GET", "/graphql", 200),
        ("GET", "/export", 200),
        ("POST", "/cohorts", 201),
        ("GET", "/dicomweb/series", 200),
    ]
    first = entries[0]
    assert first["caller"] == "key:alice" and first["role"] == "reader"
    assert first["client"] == "testclient"
    assert first["request_id"] == "workshop-42"  # as in the logs and every source call
    assert len({e["request_id"] for e in entries}) == len(entries)
    assert first["operation"] == {"type": "query", "name": "Counts", "fields": ["cohort"]}
    assert first["questions"] == [{"field": "cohort", "filter": CT, "text": "lung"}]
    assert entries[1]["caller"] is None and entries[1]["role"] == "anonymous"
    assert entries[1]["questions"] == [{"field": "explain", "text": "kidney"}]
    assert entries[2]["questions"] == [{"filter": CT}]
    assert entries[2]["params"] == {"format": "csv", "limit": "1"}
    assert entries[3]["questions"] == [{"filter": CT, "text": "chest"}]
    assert entries[4]["params"] == {"Modality": "MR", "limit": "1"}
    for entry in entries:
        assert entry["latency_ms"] >= 0
        assert dt.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).tzinfo
    assert KEY not in "".join(p.read_text() for p in directory.iterdir())


def test_refusals_are_logged_too(audited: tuple[TestClient, Path]) -> None:
    client, directory = audited
    bad_token = "ihk_not-a-key-but-still-a-secret"
    sources = {"query": "{ sources { name } }"}
    bearer = {"Authorization": f"Bearer {bad_token}"}
    assert client.post("/graphql", json=sources, headers=bearer).status_code == 401
    assert client.post("/graphql", content=b"{not json", headers=JSON_BODY).status_code == 400
    assert client.post("/graphql", json={"query": "{ nope }"}).status_code == 200
    assert client.get("/dicomweb/series", params={"access_token": "abc123"}).status_code < 500
    for _ in range(12):
        client.get("/cohorts/nope")
    entries = lines(directory)
    assert entries[0]["status"] == 401 and entries[0]["caller"] is None
    assert entries[1]["body"] == "not JSON"
    assert entries[2]["operation"]["fields"] == ["nope"]
    assert entries[3]["params"] == {"access_token": "[redacted]"}
    assert entries[-1]["status"] == 429
    text = "".join(p.read_text() for p in directory.iterdir())
    assert bad_token not in text and "abc123" not in text


def test_files_are_only_appended_to(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    day = dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC)
    log.write({"n": "before"}, day)
    path = log.path_for(day)
    assert path.name == "audit-20260301.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def writer(name: str) -> None:
        other = AuditLog(tmp_path / "audit")  # as another worker would
        for i in range(300):
            other.write({"n": f"{name}-{i}", "pad": "x" * 500}, day)

    threads = [threading.Thread(target=writer, args=(n,)) for n in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[0] == {"n": "before"}  # never rewritten
    assert len(entries) == 901 and len({e["n"] for e in entries}) == 901  # none lost or torn
    log.write({"n": "next day"}, day + dt.timedelta(minutes=2))
    assert log.path_for(day + dt.timedelta(minutes=2)).name == "audit-20260302.jsonl"


def test_audit_can_be_turned_off(small_data_dir: Path, tmp_path: Path) -> None:
    config = _config(small_data_dir, tmp_path / "audit", enabled=False)
    with TestClient(create_app(config)) as client:
        assert client.post("/graphql", json={"query": "{ sources { name } }"}).is_success
    assert not (tmp_path / "audit").exists()


def test_default_directory_and_toml(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[hub]\ndata_dir = "d"\n[audit]\nenabled = false\n[limits]\nburst = 7\n')
    config = load_config(path)
    assert config.audit.enabled is False and config.limits.burst == 7
    assert load_config(None).audit == AuditSettings(enabled=True, directory=None)


def test_a_failed_write_does_not_fail_the_request(
    small_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "audit"
    blocked.write_text("a file where the directory should be")
    with (
        TestClient(create_app(_config(small_data_dir, blocked))) as client,
        caplog.at_level(logging.ERROR, logger="hub.security.audit"),
    ):
        assert client.post("/graphql", json={"query": "{ sources { name } }"}).is_success
    assert "audit log" in caplog.text and "not written" in caplog.text


@pytest.mark.parametrize(
    ("request_json", "expected"),
    [
        (
            {"query": "{ cohort(filter: {AND: []}) { counts { series } } }"},
            [{"field": "cohort", "filter": {"AND": []}}],
        ),
        (
            {
                "query": 'query A { sources { name } } query B { explain(text: "x") { source } }',
                "operationName": "B",
            },
            [{"field": "explain", "text": "x"}],
        ),
        (
            {"query": '{ ...F } fragment F on Query { cohort(text: "t") { counts { series } } }'},
            [{"field": "cohort", "text": "t"}],
        ),
        (
            {"query": "mutation { saveCohort(filter: $f) { id } }", "variables": {"f": CT}},
            [{"field": "saveCohort", "filter": CT}],
        ),
    ],
    ids=["literal", "named-operation", "fragment", "mutation"],
)
def test_describe_graphql(request_json: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    body = json.dumps(request_json).encode()
    assert describe("POST", "/graphql", b"", body)["questions"] == expected


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1]", b'{"query": "{"}', b'{"query": 7}', b'{"query": "{ a } { b }"}',
     b'{"variables": "[[[["}', b"[" * 50_000 + b"]" * 50_000],
)  # fmt: skip
def test_describe_never_raises(body: bytes) -> None:
    assert isinstance(describe("POST", "/graphql", b"x=%ff&y", body), dict)


def test_unrepresentable_values_still_make_one_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    now = dt.datetime.now(dt.UTC)
    log.write({"questions": [{"filter": {"=": {"age": 2**80}}}], "nan": float("nan")}, now)
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    log.write({"path": "/graphql", "questions": [{"filter": deep}]}, now)
    written = log.path_for(now).read_text().splitlines()
    assert len(written) == 2
    assert json.loads(written[1]) == {"path": "/graphql"}
    assert os.stat(log.path_for(now)).st_size > 0
