"""Parsed and validated GraphQL documents, remembered per query text.

Clients send the same few query texts with different variables; parsing and the
standard validation rules cost ~8 ms a request, more than answering most cohorts. A
document is remembered only once it has passed every rule. The size-and-cost rule
depends on the numbers and lists among the variables (`first`, `size`, `fields`), so
those are part of the key; filters and text are not (cost does not depend on them).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules, validate

from hub.security.limits import LimitsSettings, query_limits_rule

MAX_TOKENS = 5_000
"""A cohort query is a few hundred tokens; this bounds parser work on hostile input."""
MAX_REMEMBERED = 512
MAX_KEY_CHARS = 4_096
"""Longer cost-relevant variables (a huge `fields` list) are checked, not remembered."""

_documents: LRUCache[tuple[str, str, str], DocumentNode] = LRUCache(maxsize=MAX_REMEMBERED)
_lock = threading.Lock()


def checked_document(
    schema: GraphQLSchema,
    query: str,
    variables: Mapping[str, Any] | None,
    limits: LimitsSettings,
) -> DocumentNode | list[GraphQLError]:
    """The document, or every error the parser or a validation rule found.
    Raises RecursionError for documents nested past the interpreter's limit."""
    key = (query, _cost_variables(variables), limits.model_dump_json())
    with _lock:
        document = _documents.get(key)
    if document is not None:
        return document
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        return [exc]
    # Size limits first and alone: a document past them never reaches the standard
    # rules, some of which (overlapping fields) cost time quadratic in its breadth.
    errors = validate(schema, document, [query_limits_rule(limits, variables)]) or validate(
        schema, document, specified_rules
    )
    if errors:
        return errors
    if len(key[1]) <= MAX_KEY_CHARS:
        with _lock:
            _documents[key] = document
    return document


def _cost_variables(variables: Mapping[str, Any] | None) -> str:
    """The variables the cost rule may read: every value that is not a filter object
    or a string, in a stable order."""
    if not variables:
        return ""
    kept = sorted(
        (name, value) for name, value in variables.items() if not isinstance(value, (dict, str))
    )
    return repr(kept)
