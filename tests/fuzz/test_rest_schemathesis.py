"""Schemathesis against the REST OpenAPI of the app, in process: no 5xx on any input.

FastAPI's generated `/openapi.json` lists the routes, but the routes that read their
parameters from the request itself (`/export`, the QIDO-RS face, GraphQL over GET, the
JSON bodies) declare none there. So before fuzzing, the parameters those routes read
are added to the loaded document (`DESCRIBED` below), so schemathesis generates them
too; each operation then gets positive and negative cases, bounded to keep the run
short, and every answer goes through the `not_a_server_error` check; every refusal
(4xx) must be valid UTF-8 JSON.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from hub.api import create_app
from tests.fuzz.conftest import Tally, fuzz_config

EXAMPLES_PER_OPERATION = 25
FILTER_OBJECT = {"type": "object", "additionalProperties": True}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


QIDO = [
    _query(name, {"type": "string"})
    for name in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
                 "ModalitiesInStudy", "StudyDate", "PatientSex", "includefield")
] + [_query("limit", {"type": "integer"}), _query("offset", {"type": "integer"}),
     _query("fuzzymatching", {"type": "boolean"})]  # fmt: skip
EXPORT = [
    _query("format", {"enum": ["csv", "ndjson", "s5cmd", "tcia", "gen3", "wadors", "xml"]}),
    _query("filter", {"type": "string"}),
    _query("text", {"type": "string"}),
    _query("source", {"type": "string"}),
    _query("limit", {"type": "integer"}),
    _query("cohort", {"type": "string"}),
]
DESCRIBED: dict[tuple[str, str], dict[str, Any]] = {
    ("/graphql", "get"): {
        "parameters": [
            _query(n, {"type": "string"}) for n in ("query", "variables", "operationName")
        ]
    },
    ("/graphql", "post"): {
        "body": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "variables": FILTER_OBJECT,
                "operationName": {"type": "string"},
            },
        }
    },
    ("/export", "get"): {"parameters": EXPORT},
    ("/export", "post"): {
        "parameters": EXPORT,
        "body": {
            "type": "object",
            "properties": {
                "format": {"type": "string"},
                "filter": FILTER_OBJECT,
                "text": {"type": "string"},
                "limit": {"type": "integer"},
            },
        },
    },
    ("/cohorts", "post"): {
        "body": {
            "type": "object",
            "properties": {"filter": FILTER_OBJECT, "text": {"type": "string"}},
        }
    },
    ("/dicomweb/studies", "get"): {"parameters": QIDO},
    ("/dicomweb/series", "get"): {"parameters": QIDO},
    ("/dicomweb/studies/{study}/series", "get"): {"parameters": QIDO},
}


def described(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the parameters and bodies the routes really read."""
    document = copy.deepcopy(document)
    for (path, method), extra in DESCRIBED.items():
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            continue  # a route that went away: nothing to describe
        operation.setdefault("parameters", []).extend(extra.get("parameters", []))
        if "body" in extra:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": extra["body"]}},
            }
    return document


@pytest.fixture(scope="module")
def api(fuzz_data_dir: Path) -> Iterator[tuple[FastAPI, Any]]:
    app = create_app(fuzz_config(fuzz_data_dir))
    schema = schemathesis.openapi.from_dict(described(app.openapi()))
    schema.app = app  # calls go to the app in process; schemathesis runs its lifespan
    yield app, schema
    shutdown_lifespans()


def test_every_documented_route_is_fuzzed(api: tuple[FastAPI, Any]) -> None:
    app, _ = api
    paths = app.openapi()["paths"]
    for path, method in DESCRIBED:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is no longer served"


def fuzz(operation: Any, tally: Tally) -> None:
    """Positive and negative cases of one operation; any 5xx fails (and is counted)."""
    target = f"REST (schemathesis): {operation.method.upper()} {operation.path}"
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes)))
    def run(case: Any) -> None:
        response = case.call()
        tally.record(target, response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:  # every refusal says why in UTF-8 JSON
            json.loads(response.content.decode("utf-8"))

    run()


def test_no_server_errors(api: tuple[FastAPI, Any], tally: Tally) -> None:
    _, schema = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        fuzz(operation, tally)
