"""Complete answers in time, or a clear reason why not: searches and readiness.

A search can come back HTTP 200 with `_shards.failed > 0` (or `timed_out: true`) when a
node dies during it: the hits, totals and aggregations then silently miss that node's
shards. So every search asks `allow_partial_search_results: false` (the server fails it
instead) and is still checked; an incomplete one is asked again (a replica is promoted
within moments of a node leaving), and after that is `ShardsUnavailable`, naming the
sources whose indices lost shards. Never is an incomplete answer returned as complete.

Every call a question makes is `bounded` by the hub's query deadline: a cluster that
accepts connections and never answers is reported, not waited on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from functools import partial
from typing import Any, TypeVar

import elasticsearch
from elasticsearch import AsyncElasticsearch

from hub.index.elastic.errors import (
    ElasticUnavailable,
    ShardsUnavailable,
    guarded,
    shards_missing,
)
from hub.index.elastic.layout import IndexInfo
from hub.index.elastic.settings import ElasticSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_PAUSES_S = (0.25, 0.75)
"""Pauses before asking an incomplete search again: one per extra try."""
SHARD_FIELDS = "_shards.total,_shards.failed,_shards.failures,timed_out"
"""What a `filter_path` must keep for the completeness check to see a failure."""


async def bounded(coro: Coroutine[Any, Any, T], deadline_s: float, settings: ElasticSettings) -> T:
    """`await coro`, or `ElasticUnavailable` once `deadline_s` has passed."""
    try:
        return await asyncio.wait_for(coro, deadline_s)
    except TimeoutError:
        raise ElasticUnavailable(
            f"{settings.where} did not answer within the query deadline of {deadline_s:g} s "
            "([hub] query_deadline_s)"
        ) from None


def attempt_timeout(settings: ElasticSettings, deadline_s: float) -> float:
    """One try's timeout: `request_timeout_s`, but at most half the deadline, so a node
    that stopped answering leaves time to ask another one."""
    return min(settings.request_timeout_s, deadline_s / 2)


def incomplete(body: Any) -> str | None:
    """Why a search answer misses part of the data (None: it is complete)."""
    if not isinstance(body, dict):
        return None
    shards = body.get("_shards") or {}
    failed = int(shards.get("failed") or 0)
    if failed:
        reasons = {_shard_reason(f) for f in shards.get("failures") or []} - {""}
        why = f" ({'; '.join(sorted(reasons))})" if reasons else ""
        return f"{failed} of {shards.get('total', '?')} shards did not answer{why}"
    if body.get("timed_out"):
        return "the search timed out on some shards"
    return None


def failed_indices(body: Any) -> set[str]:
    """Index names named by a partial answer's shard failures, or by a failed search's
    error (`failed_shards`, `root_cause`)."""
    if not isinstance(body, dict):
        return set()
    failures = list((body.get("_shards") or {}).get("failures") or [])
    error = body.get("error")
    if isinstance(error, dict):
        failures += list(error.get("failed_shards") or []) + list(error.get("root_cause") or [])
    return {str(f["index"]) for f in failures if isinstance(f, dict) and f.get("index")}


def sources_of(names: Iterable[str], indices: Iterable[IndexInfo]) -> tuple[str, ...]:
    by_name = {i.name: i.source or i.kind for i in indices}
    return tuple(sorted({by_name[n] for n in names if by_name.get(n)}))


async def complete_search(
    client: AsyncElasticsearch,
    settings: ElasticSettings,
    index: str,
    served: tuple[IndexInfo, ...],
    body: dict[str, Any],
    deadline_s: float,
) -> dict[str, Any]:
    """The body of a search over `index` that every shard answered (see module doc)."""
    body = {**body, "allow_partial_search_results": False}
    if body.get("filter_path"):
        body["filter_path"] = f"{body['filter_path']},{SHARD_FIELDS}"
    timed = client.options(request_timeout=attempt_timeout(settings, deadline_s))
    problem, names = "", set[str]()
    for pause in (*RETRY_PAUSES_S, None):
        try:
            answer = await guarded(settings, partial(timed.search, index=index, **body))
        except ElasticUnavailable as exc:
            cause = exc.__cause__
            if not (isinstance(cause, elasticsearch.ApiError) and shards_missing(cause)):
                raise  # unreachable, refused: the transport has tried every node already
            problem, names = str(exc), failed_indices(cause.body)
        else:
            result: dict[str, Any] = answer.body
            why = incomplete(result)
            if why is None:
                return result
            problem, names = why, failed_indices(result)
        if pause is not None:
            log.warning("incomplete search on %s (%s); asking again", settings.where, problem)
            await asyncio.sleep(pause)
    sources = sources_of(names, served)
    held = f" (indices of {', '.join(sources)})" if sources else ""
    raise ShardsUnavailable(
        f"the cluster could not search all of its data{held} after "
        f"{len(RETRY_PAUSES_S) + 1} tries: {problem}. A node is down or the cluster is "
        "red; no partial answer is given",
        sources,
    )


async def not_ready_reason(
    client: AsyncElasticsearch, settings: ElasticSettings, served: tuple[IndexInfo, ...]
) -> str | None:
    """Why the indices behind the read alias cannot serve (None: they can): red means
    a primary shard has no copy, so a question over it would be incomplete."""
    names = [i.name for i in served]
    health = partial(
        client.options(ignore_status=408).cluster.health,
        index=",".join(names),
        level="indices",
        timeout="1s",
    )
    answer = (await guarded(settings, health)).body
    if answer.get("status") != "red":
        return None
    red = sorted(n for n, h in (answer.get("indices") or {}).items() if h.get("status") == "red")
    sources = sources_of(red, served)
    return (
        f"the cluster at {settings.where} is red for the read alias's indices "
        f"{', '.join(red) or ', '.join(names)}"
        + (f" (sources {', '.join(sources)})" if sources else "")
        + ": a primary shard has no copy (a node is down?); ready again once it is assigned"
    )


def _shard_reason(failure: Any) -> str:
    reason = failure.get("reason") if isinstance(failure, dict) else None
    if isinstance(reason, dict):
        return f"{reason.get('type')}: {reason.get('reason')}"
    return str(reason or "")
