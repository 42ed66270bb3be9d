"""Whether a filter can match anything one source contributes, from its `source` conditions.

The hub asks a live source only when its records could match: `{"IN": {"source":
["orthanc"]}}` must not wait for another source that can contribute nothing. A source's
own records carry its name as their `source` (the residual the hub applies to them
evaluates the `source` conditions against exactly that), so the question is decidable
from the filter alone for conditions on `source`; a condition on any other field, or
free text, depends on the records and is unknown. Three-valued (Kleene) logic keeps the
analysis sound: only NEVER excludes a source.
"""

from __future__ import annotations

from enum import StrEnum

from schema.filters import And, Compare, In, IsMissing, Node, Or, Search

SOURCE_FIELD = "source"


class Verdict(StrEnum):
    """What a filter says about every record of one source."""

    ALWAYS = "always"
    """Every record of the source matches: the filter asks for it by name, and nothing else."""
    NEVER = "never"
    """No record of the source can match: asking it cannot add anything to the answer."""
    DEPENDS = "depends"
    """Some may match: conditions on other fields (or free text) decide, record by record."""


def source_verdict(node: Node, source: str) -> Verdict:
    """The filter's verdict on the records of `source`, from its `source` conditions only."""
    match node:
        case And(children):
            verdicts = [source_verdict(c, source) for c in children]
            if Verdict.NEVER in verdicts:
                return Verdict.NEVER
            return Verdict.DEPENDS if Verdict.DEPENDS in verdicts else Verdict.ALWAYS
        case Or(children):
            verdicts = [source_verdict(c, source) for c in children]
            if Verdict.ALWAYS in verdicts:
                return Verdict.ALWAYS
            return Verdict.DEPENDS if Verdict.DEPENDS in verdicts else Verdict.NEVER
        case Compare(op, field, value) if field == SOURCE_FIELD and op in ("=", "!="):
            return _known((value == source) == (op == "="))
        case In(field, values, negated) if field == SOURCE_FIELD:
            return _known((source in values) != negated)
        case IsMissing(field, missing) if field == SOURCE_FIELD:
            return _known(not missing)  # every record names the source that holds it
        case Compare() | In() | IsMissing() | Search():
            return Verdict.DEPENDS
    raise TypeError(node)


def can_match(node: Node, source: str) -> bool:
    """False only when no record of `source` can match `node`."""
    return source_verdict(node, source) is not Verdict.NEVER


def _known(holds: bool) -> Verdict:
    return Verdict.ALWAYS if holds else Verdict.NEVER
