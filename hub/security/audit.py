"""An append-only audit log of who asked what: one JSON line per API request.

A repository that lends its data to the hub may ask who searched it, for what, and
when. Each request to an API path (`/graphql`, `/export`, `/dicomweb`, `/cohorts`) adds
one line to `<data_dir>/audit/audit-YYYYMMDD.jsonl` (UTC day): the time, the caller's
identity and role (or anonymous) and address, the method and path, for GraphQL the
operation and its top-level fields, the cohort questions asked (filter JSON and free
text), the status and the latency.

Append-only by construction: each line is one `write` to a file opened with O_APPEND
(so concurrent workers never interleave or overwrite), and nothing here ever truncates,
rewrites or deletes; retention is the operator's business. No headers are recorded, and
of GraphQL arguments only `filter`, `text` and `id`: tokens, keys and whatever a future
mutation takes never reach the log. Query-string parameters named like secrets are
redacted. A failure to write is logged and does not fail the request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.utilities import value_from_ast_untyped
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http import REQUEST_ID
from hub.security.audit_settings import AuditSettings
from hub.security.identity import caller_of
from hub.security.limits import parsed_document
from hub.security.ratelimit import is_api_path

log = logging.getLogger(__name__)

BODY_LIMIT = 1024 * 1024
"""Bodies are read for the log up to the API's own limit (larger ones are refused)."""
RECORDED_ARGUMENTS = ("filter", "text", "id")
_SECRET_NAME = re.compile(r"token|key|secret|pass|auth|credential|session|cookie", re.I)
REDACTED = "[redacted]"


class AuditLog:
    """Daily JSON-lines files in one directory, only ever appended to."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, when: dt.datetime) -> Path:
        return self.directory / f"audit-{when.astimezone(dt.UTC):%Y%m%d}.jsonl"

    def write(self, entry: Mapping[str, Any], when: dt.datetime) -> None:
        """Append one entry as one line, in one write to an O_APPEND descriptor."""
        line = _dumps(entry) + b"\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path_for(when), flags, 0o600)
        except FileNotFoundError:  # the first line, or the directory was removed
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path_for(when), flags, 0o600)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _dumps(entry: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(entry, default=str)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits, deep nesting
        try:
            return json.dumps(entry, default=str).encode()
        except (ValueError, RecursionError):
            return orjson.dumps({k: entry[k] for k in entry if k not in ("questions", "params")})


# --- what a request asked -------------------------------------------------------------


def describe(method: str, path: str, query_string: bytes, body: bytes) -> dict[str, Any]:
    """The operation, parameters and cohort questions of one request, for the log."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    payload: Any = None
    if body.strip():
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return {"params": _redacted(params), "body": "not JSON"}
    if path == "/graphql":
        request = payload if isinstance(payload, dict) else dict(params)
        if isinstance(request.get("variables"), str):
            try:
                request["variables"] = json.loads(request["variables"])
            except (ValueError, RecursionError):
                request["variables"] = None
        return _graphql(request)
    if isinstance(payload, dict):
        params = {**params, **payload}
    questions = {k: params.pop(k) for k in ("filter", "text") if k in params}
    if isinstance(questions.get("filter"), str):  # `/export?filter=...` carries JSON text
        with contextlib.suppress(ValueError, RecursionError):
            questions["filter"] = json.loads(questions["filter"])
    out: dict[str, Any] = {"params": _redacted(params)}
    if questions:
        out["questions"] = [questions]
    return out


def _redacted(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if _SECRET_NAME.search(str(k)) else v for k, v in params.items()}


def _parsed(query: str) -> DocumentNode | None:
    try:
        document = parsed_document(query)
    except RecursionError:
        return None
    return None if isinstance(document, GraphQLError) else document


def _graphql(request: Mapping[str, Any]) -> dict[str, Any]:
    query = request.get("query")
    variables = request.get("variables")
    variables = variables if isinstance(variables, dict) else {}
    name = request.get("operationName")
    if not isinstance(query, str):
        return {"operation": None}
    document = _parsed(query)
    if document is None:
        return {"operation": {"error": "not a parseable GraphQL document"}}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if name is None or (o.name and o.name.value == name)]
    if len(chosen) != 1:
        return {"operation": {"name": name, "error": "no single operation to run"}}
    operation = chosen[0]
    fragments = {
        d.name.value: d.selection_set
        for d in document.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    fields = list(_top_fields(operation.selection_set, fragments, set()))
    questions = []
    for node in fields:
        asked = {}
        for argument in node.arguments:
            if argument.name.value not in RECORDED_ARGUMENTS:
                continue
            value = argument.value
            try:
                asked[argument.name.value] = (
                    variables.get(value.name.value)
                    if isinstance(value, VariableNode)
                    else value_from_ast_untyped(value, variables)
                )
            except Exception:  # a literal graphql-core cannot read: validation says so
                asked[argument.name.value] = "unreadable"
        if asked:
            questions.append({"field": node.name.value, **asked})
    described: dict[str, Any] = {
        "operation": {
            "type": operation.operation.value,
            "name": operation.name.value if operation.name else None,
            "fields": [f.name.value for f in fields],
        }
    }
    if questions:
        described["questions"] = questions
    return described


def _top_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, SelectionSetNode], seen: set[str]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _top_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                yield from _top_fields(fragments[name], fragments, seen)


# --- the middleware -----------------------------------------------------------------


class AuditTrail:
    """ASGI middleware writing one audit line per API request, after it is answered.

    It reads the caller from the request state after the inner app has run, so it sees
    the identity the auth middleware set wherever that middleware sits inside it. Built
    with its settings: `directory` defaults to `<data_dir>/audit`."""

    def __init__(self, app: ASGIApp, settings: AuditSettings, data_dir: Path) -> None:
        self.app = app
        directory = settings.directory or Path(data_dir) / "audit"
        self.log = AuditLog(directory) if settings.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        audit = self.log if scope["type"] == "http" else None
        if audit is None or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # shared with the request, read after
        body = bytearray()
        status = 500

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= BODY_LIMIT:
                body.extend(message.get("body", b"")[: BODY_LIMIT + 1 - len(body)])
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            self._record(audit, scope, state, bytes(body), status, started)

    def _record(
        self,
        audit: AuditLog,
        scope: Scope,
        state: Any,
        body: bytes,
        status: int,
        started: float,
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        caller = caller_of(state if isinstance(state, dict) else {})
        client = scope.get("client")
        entry: dict[str, Any] = {
            "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "caller": caller.identity,
            "role": caller.role.name.lower(),
            "client": client[0] if client else None,
            "method": scope["method"],
            "path": scope["path"],
            "request_id": REQUEST_ID.get(),  # the same id as the logs and the source calls
        }
        try:
            if len(body) > BODY_LIMIT:
                entry["body"] = "too large"
            else:
                entry.update(describe(scope["method"], scope["path"], scope["query_string"], body))
        except Exception:  # describing must never cost the caller their answer
            log.exception("could not describe a request for the audit log")
            entry["operation"] = {"error": "not describable"}
        entry["status"] = status
        entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        try:
            audit.write(entry, now)
        except OSError as exc:
            log.error("audit log %s not written: %s", audit.directory, exc.strerror or exc)
