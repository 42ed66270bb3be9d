"""Cluster failures, typed by what the caller should do, converted in one place.

`ElasticUnavailable` is an `IndexNotReady`: the API reports it to callers as "the
index cannot serve now" and `/readyz` fails. Its messages name the URL and the
setting to check, never a secret. Anything else the server refuses is our bug (the
DSL is generated from a typed AST), so it becomes `ElasticFailure`, logged in full.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import elastic_transport
import elasticsearch

from hub.index.base import IndexFailure, IndexNotReady
from hub.index.elastic.settings import ElasticSettings

T = TypeVar("T")
UNAVAILABLE_STATUS = (502, 503, 504)
"""Answers that say the cluster cannot serve now (no shard copy left to search, a
proxy without a node behind it), as the transport's retries left them."""


class ElasticUnavailable(IndexNotReady):
    """The cluster cannot be reached, or is not ready to serve."""


class ShardsUnavailable(ElasticUnavailable):
    """A search could not read every shard it covers (a node left during it, or the
    cluster is red), after retries: its answer would be incomplete, so there is none.
    `sources` names the sources whose indices lost shards (every served source when
    unknown)."""


class ElasticAuthError(ElasticUnavailable):
    """The cluster refused our credentials (HTTP 401) or their rights (HTTP 403)."""


class ElasticFailure(IndexFailure):
    """The cluster rejected a request the hub generated: a bug, not a user error."""


class IngestError(IndexFailure):
    """Bulk ingest gave up (a document was refused, or 429s outlasted the retries)."""


def convert(exc: Exception, settings: ElasticSettings) -> Exception:
    """The hub's exception for an `elasticsearch`/transport one (others pass through)."""
    url = settings.where
    if isinstance(exc, elasticsearch.AuthenticationException):
        return ElasticAuthError(
            f"{url} refused the credentials (HTTP 401); check {settings.credential_hint()}"
        )
    if isinstance(exc, elasticsearch.AuthorizationException):
        return ElasticAuthError(
            f"{url} accepted the credentials but refused the request (HTTP 403); give "
            f"{settings.credential_hint()} rights on indices {settings.index_prefix}-*"
        )
    if isinstance(exc, elastic_transport.TlsError):
        return ElasticUnavailable(f"TLS handshake with {url} failed: check ca_certs / verify_certs")
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return ElasticUnavailable(
            f"{url} did not answer within {settings.request_timeout_s:g} s "
            f"(request_timeout_s) on any of {settings.max_retries + 1} tries"
        )
    if isinstance(exc, elastic_transport.ConnectionError):
        return ElasticUnavailable(f"cannot connect to {url}: is the cluster running?")
    if isinstance(exc, elasticsearch.ApiError) and shards_missing(exc):
        return ElasticUnavailable(
            f"{url} cannot serve now (HTTP {exc.meta.status} {_reason(exc)}): a node is "
            "down or the cluster is red; it answers again once its shards are assigned"
        )
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return ElasticUnavailable(
            f'{url} is not Elasticsearch; set mode = "opensearch" if it is OpenSearch'
        )
    if isinstance(exc, elasticsearch.ApiError) and exc.meta.status == 406:
        return ElasticUnavailable(
            f"{url} refused Elasticsearch's media type (HTTP 406): OpenSearch-family servers "
            'need mode = "opensearch" (or "auto") in [index.elasticsearch]'
        )
    if isinstance(exc, elasticsearch.ApiError):
        return ElasticFailure(f"{url} rejected a request: HTTP {exc.meta.status} {_reason(exc)}")
    return exc


def shards_missing(exc: elasticsearch.ApiError) -> bool:
    """Whether the server refused because data is out of reach, not because the request
    is wrong: 502/503/504, or a search whose shards failed on the server's side (HTTP 500
    `search_phase_execution_exception`, what `allow_partial_search_results: false` gives
    when a node left during the search)."""
    if exc.meta.status in UNAVAILABLE_STATUS:
        return True
    body: Any = exc.body
    error = body.get("error") if isinstance(body, dict) else None
    return (
        exc.meta.status >= 500
        and isinstance(error, dict)
        and error.get("type") == "search_phase_execution_exception"
    )


def _reason(exc: elasticsearch.ApiError) -> str:
    body: Any = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        cause = (error.get("root_cause") or [error])[0]
        return f"{cause.get('type')}: {cause.get('reason')}"
    return str(exc.message)


async def guarded(settings: ElasticSettings, call: Callable[[], Awaitable[T]]) -> T:
    """Await `call()`, converting cluster exceptions (see `convert`)."""
    try:
        return await call()
    except (elasticsearch.ApiError, elastic_transport.TransportError) as exc:
        raise convert(exc, settings) from exc


async def create_index(
    settings: ElasticSettings,
    client: elasticsearch.AsyncElasticsearch,
    name: str,
    /,
    **body: Any,
) -> None:
    """Create the index `name`, which the hub has just named for itself. When the first
    try timed out and the transport tried again, the retry is told the index already
    exists: that is the first try's work, not a conflict, so it counts as created."""

    async def attempt() -> None:
        try:
            await client.indices.create(index=name, **body)
        except elasticsearch.BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise

    await guarded(settings, attempt)
