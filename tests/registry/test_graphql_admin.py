"""The admin GraphQL mutations over HTTP: every one refuses anonymous and reader callers,
and an admin can register, harvest, update, disable, enable and remove a source, each
change visible to the very next query of the running app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from hub.config import HubConfig
from tests.federation.fault_server import FaultServer
from tests.registry.support import ADMIN_KEY, CONFIG_SERIES, READER_KEY, SERIES, dicomweb

MUTATIONS = {
    "registerSource": (
        'mutation($s: JSON!) { registerSource(name: "acme", settings: $s) { message } }',
        "register sources",
    ),
    "updateSource": (
        'mutation($s: JSON!) { updateSource(name: "acme", settings: $s) { message } }',
        "update sources",
    ),
    "setSourceEnabled": (
        'mutation { setSourceEnabled(name: "cfg", enabled: false) { message } }',
        "enable or disable sources",
    ),
    "removeSource": ('mutation { removeSource(name: "acme") { message } }', "remove sources"),
    "harvestSource": ('mutation { harvestSource(name: "cfg") { message } }', "trigger harvests"),
}
COUNTS = """query($f: JSON) { cohort(filter: $f) {
  counts { series } bySource { source status count message } } }"""
ACME = {"=": {"collection": "acme_ct"}}


@pytest.fixture()
def client(config: HubConfig) -> Iterator[TestClient]:
    with TestClient(create_app(config)) as client:
        yield client


def gql(client: TestClient, query: str, key: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def ok(client: TestClient, query: str, **variables: Any) -> Any:
    body = gql(client, query, ADMIN_KEY, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_every_admin_mutation_refuses_non_admins(
    client: TestClient, data_dir: Path, server: FaultServer, mutation: str
) -> None:
    query, action = MUTATIONS[mutation]
    for key, who in (
        (None, "an anonymous caller is anonymous"),
        (READER_KEY, "key:reader is reader"),
    ):
        body = gql(client, query, key, s=dicomweb(server.url))
        assert body["data"] is None
        assert body["errors"][0]["message"] == f"admin role required to {action} ({who})"
    assert not (data_dir / "registry" / "sources.json").exists()
    assert ok(client, COUNTS)["cohort"]["bySource"][0]["status"] == "ok"


def test_admin_manages_a_source_over_graphql(client: TestClient, server: FaultServer) -> None:
    settings = dicomweb(server.url, mode="harvest")
    change = ok(client, MUTATIONS["registerSource"][0], s=settings)["registerSource"]
    assert change["message"].startswith("registered 'acme' (dicomweb)")

    harvest = 'mutation { harvestSource(name: "acme") { action series enabled } }'
    assert ok(client, harvest)["harvestSource"] == {
        "action": "harvested", "series": SERIES, "enabled": True,
    }  # fmt: skip
    cohort = ok(client, COUNTS, f=ACME)["cohort"]
    assert cohort["counts"]["series"] == SERIES
    assert {r["source"]: r["status"] for r in cohort["bySource"]} == {"cfg": "ok", "acme": "ok"}

    updated = ok(client, MUTATIONS["updateSource"][0], s={"priority": 5})["updateSource"]
    assert updated["message"] == "updated 'acme'"

    disable = 'mutation { setSourceEnabled(name: "acme", enabled: false) { action enabled } }'
    assert ok(client, disable)["setSourceEnabled"] == {"action": "disabled", "enabled": False}
    cohort = ok(client, COUNTS)["cohort"]
    assert cohort["counts"]["series"] == CONFIG_SERIES
    acme = next(r for r in cohort["bySource"] if r["source"] == "acme")
    assert (acme["status"], acme["count"]) == ("disabled", None)
    sources = ok(client, "{ sources { name status } }")["sources"]
    assert {s["name"]: s["status"] for s in sources}["acme"] == "disabled"

    enable = disable.replace("false", "true")
    assert ok(client, enable)["setSourceEnabled"]["action"] == "enabled"
    assert ok(client, COUNTS, f=ACME)["cohort"]["counts"]["series"] == SERIES

    removed = ok(client, MUTATIONS["removeSource"][0])["removeSource"]
    assert removed["message"] == "removed 'acme'"
    assert ok(client, COUNTS, f=ACME)["cohort"]["counts"]["series"] == 0


def test_refusals_come_back_as_clear_graphql_errors(client: TestClient) -> None:
    query = MUTATIONS["registerSource"][0]
    body = gql(client, query, ADMIN_KEY, s=dicomweb("ftp://127.0.0.1/x"))
    assert "url must start with http:// or https://" in body["errors"][0]["message"]
    body = gql(client, MUTATIONS["removeSource"][0].replace("acme", "cfg"), ADMIN_KEY)
    assert "cannot be removed at runtime; disable it" in body["errors"][0]["message"]
    body = gql(client, query, ADMIN_KEY, s=json.dumps(dicomweb("http://127.0.0.1:1")))
    assert body["errors"][0]["message"].startswith("settings must be a JSON object")
    get = client.get("/graphql", params={"query": MUTATIONS["removeSource"][0]})
    assert get.json()["errors"][0]["message"] == "mutations must be sent with POST"
