"""Parsed and validated GraphQL documents, remembered per query text.

Clients send the same few query texts with different variables; parsing and the
standard validation rules cost several milliseconds, more than answering most cohorts.
The standard rules do not read variables, so a document that passed them is remembered
by its text alone. The size-and-cost rule does read them (`first`, `size`, `fields`), so
its verdict is remembered per text and cost-relevant variables: a cohort page sends a
different list of facet fields almost every time, and a cheap walk re-checks it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    specified_rules,
    validate,
)

from hub.security.limits import LimitsSettings, parsed_document, query_limits_rule

MAX_REMEMBERED = 512
MAX_KEY_CHARS = 4_096
"""Longer cost-relevant variables (a huge `fields` list) are checked, not remembered."""

_valid: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=MAX_REMEMBERED)
"""(query, limits) whose document passed the standard rules."""
_within_limits: LRUCache[tuple[str, str, str], bool] = LRUCache(maxsize=4 * MAX_REMEMBERED)
"""(query, cost variables, limits) whose size and cost were found within the limits."""
_lock = threading.Lock()
INDEX_ONLY_ROOTS = frozenset({"cohort", "__typename"})
"""Root fields answered from the index alone (no file, network or other event loop)
when no source answers live: what may run on the server's event loop."""
_index_only: LRUCache[tuple[str, str | None], bool] = LRUCache(maxsize=MAX_REMEMBERED)


def checked_document(
    schema: GraphQLSchema,
    query: str,
    variables: Mapping[str, Any] | None,
    limits: LimitsSettings,
) -> DocumentNode | list[GraphQLError]:
    """The document, or every error the parser or a validation rule found.
    Raises RecursionError for documents nested past the interpreter's limit."""
    document = parsed_document(query)
    if isinstance(document, GraphQLError):
        return [document]
    settings = limits.model_dump_json()
    cost_key = (query, _cost_variables(variables), settings)
    with _lock:
        valid = (query, settings) in _valid
        within = cost_key in _within_limits
    # Size limits first and alone: a document past them never reaches the standard
    # rules, some of which (overlapping fields) cost time quadratic in its breadth.
    if not within:
        errors = validate(schema, document, [query_limits_rule(limits, variables)])
        if errors:
            return errors
    if not valid:
        errors = validate(schema, document, specified_rules)
        if errors:
            return errors
    if len(cost_key[1]) <= MAX_KEY_CHARS:
        with _lock:
            _valid[(query, settings)] = True
            _within_limits[cost_key] = True
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


def reads_index_only(query: str, operation_name: str | None) -> bool:
    """Whether the operation is a query asking only INDEX_ONLY_ROOTS (no fragments at the
    root); anything else, or a text that does not parse, is answered in a thread."""
    key = (query, operation_name)
    with _lock:
        known = _index_only.get(key)
    if known is not None:
        return known
    try:
        document = parsed_document(query)
    except RecursionError:
        return False
    if isinstance(document, GraphQLError):
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    answer = (
        len(operations) == 1
        and operations[0].operation is OperationType.QUERY
        and all(
            isinstance(s, FieldNode) and s.name.value in INDEX_ONLY_ROOTS
            for s in operations[0].selection_set.selections
        )
    )
    with _lock:
        _index_only[key] = answer
    return answer
