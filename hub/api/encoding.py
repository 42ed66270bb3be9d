"""Answer bodies as UTF-8 JSON that never fail to encode.

Every message that quotes a caller goes through `schema.quoting`, but an answer can still
carry a caller's string unquoted (a GraphQL library's own message, a saved filter's
value): a lone surrogate there would make orjson (and starlette's `JSONResponse`) raise,
and the caller would get a 500 for a question that deserved a 4xx. `dumps` tries orjson
once, as fast as ever, and only when that fails writes each unencodable character as
its `\\uXXXX` escape text.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from hub.index.base import IndexNotReady

JSON = "application/json"


def dumps(content: Any) -> bytes:
    """`content` as UTF-8 JSON bytes; strings that are not valid Unicode are escaped."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return orjson.dumps(_encodable(content))


def json_response(content: Any, status: int = 200, media_type: str = JSON) -> Response:
    """A JSON answer through `dumps` (in place of `JSONResponse`, which can raise)."""
    return Response(dumps(content), status_code=status, media_type=media_type)


def error_response(message: str, status: int) -> Response:
    """The REST routes' error answer: `{"error": message}` with `status`."""
    return json_response({"error": message}, status)


def unavailable_response(exc: IndexNotReady) -> Response:
    """A 503 naming each source whose answer the index could not read, and why."""
    return json_response({"error": str(exc), "by_source": exc.by_source()}, 503)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value
