"""The data checks: what an adapter yields, and what it leaves for the hub to filter.

Each check takes the case (the adapter factory, the filters, the stand-in source) and the
harvested sample, and raises `ConformanceFailure` listing what is wrong (at most a few
examples each), or returns.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from adapters.batch import ARROW_SCHEMA, SEXES
from adapters.conformance.case import ConformanceCase, ConformanceFailure, Sample, show, walk
from adapters.conformance.probes import field_values
from adapters.conformance.probes import probe_filters as _probe_filters
from adapters.spi import ALL_OPERATORS, Adapter, Capabilities, Support, Translation, operator_of
from schema import normalize as norm
from schema.evaluate import matches
from schema.filters import MATCH_ALL, And, In, Node, Or, Search, Value
from schema.filters import walk as walk_nodes
from schema.record import FIELDS, FieldKind, SeriesRecord

EXAMPLES = 5  # problems quoted per failure


def records_match_schema(case: ConformanceCase, sample: Sample) -> None:
    """Every batch has the canonical Arrow schema and every row is a valid SeriesRecord."""
    problems: list[str] = []
    for origin, batches in _outputs(case, sample):
        for batch in batches:
            problems += _schema_problems(batch, origin, case.name)
    fail_if(problems, "records do not match the canonical schema")


def values_are_normalised(case: ConformanceCase, sample: Sample) -> None:
    """sex, age, modality, body_part, study_date and collection hold canonical values."""
    problems: list[str] = []
    for origin, batches in _outputs(case, sample):
        for row in (r for b in batches for r in b.to_pylist()):
            problems += [f"{origin}: {p}" for p in _normalisation_problems(row)]
    fail_if(problems, "values are not normalised (DESIGN.md, 'The canonical record')")


def pushdown_matches_reference(case: ConformanceCase, sample: Sample) -> None:
    """What the source answers, filtered by the residual, is what the filter selects."""
    nodes = filters_to_check(case, sample)
    limit = len(sample.rows) + 3

    async def answer(adapter: Adapter) -> list[tuple[Node, Translation | None, Any]]:
        out: list[tuple[Node, Translation | None, Any]] = []
        for node in nodes:
            translation = None
            try:
                translation = adapter.translate(node)
                pages = await walk(adapter, translation, None, limit)
                out.append(
                    (node, translation, [r for p in pages for b in p for r in b.to_pylist()])
                )
            except Exception as exc:  # reported per filter, so one failure hides no other
                out.append((node, translation, exc))
        return out

    with case.serving():
        answers = case.use(answer)
    problems = []
    for node, translation, rows in answers:
        if isinstance(rows, Exception) or translation is None:
            problems.append(f"{show(node)} raised {type(rows).__name__}: {rows}")
            continue
        expected = {r.get("series_uid") for r in sample.rows if matches(node, r)}
        residual = translation.residual
        got = {r.get("series_uid") for r in rows if residual is None or matches(residual, r)}
        if got != expected:
            missing, extra = _some(expected - got), _some(got - expected)
            problems.append(
                f"{show(node)} selected {len(got)} series, the reference {len(expected)}: "
                f"missing {missing}, extra {extra} (sent: {translation.description})"
            )
    fail_if(problems, "pushed-down filter plus residual differs from the full filter")


def capabilities_are_honoured(case: ConformanceCase, sample: Sample) -> None:
    """A condition the adapter does not declare exact is left in the residual, not dropped."""
    nodes = filters_to_check(case, sample)

    async def inspect(adapter: Adapter) -> list[str]:
        caps = adapter.capabilities
        problems = _declaration_problems(caps)
        for node in nodes:
            residual = adapter.translate(node).residual
            kept = set(walk_nodes(residual)) if residual is not None else set()
            for leaf in _leaves(node):
                grade = grade_of(caps, leaf)
                if grade is not Support.EXACT and leaf not in kept:
                    problems.append(
                        f"{show(leaf)} is {grade.value} but the translation of {show(node)} "
                        "does not leave it in the residual"
                    )
        if caps.max_values is not None:
            problems += _long_lists_stay_residual(adapter, caps.max_values, sample)
        return problems

    fail_if(case.use(inspect), "declared capabilities are not honoured")


def paging_returns_each_record_once(case: ConformanceCase, sample: Sample) -> None:
    """Harvest and a paged unfiltered search return every record exactly once, each next
    page following the declared paging style."""
    expected = [r.get("series_uid") for r in sample.rows]
    problems = [f"harvest sent series {u!r} {n} times" for u, n in _repeated(expected)]

    async def pages(adapter: Adapter) -> list[list[pa.RecordBatch]]:
        caps = adapter.capabilities
        size = case.page_size or max(1, math.ceil(len(expected) / 3))
        size = min(size, caps.max_page_size or size)
        return await walk(adapter, adapter.translate(MATCH_ALL), size, len(expected) + 3)

    if capabilities(case).live_search:
        with case.serving():
            try:
                problems += _paging_problems(expected, case.use(pages))
            except ConformanceFailure as failure:  # a next page against the declared style
                problems.append(str(failure))
    fail_if(problems, "paging does not return every record once")


# -- helpers ----------------------------------------------------------------------------


def _paging_problems(expected: list[Any], walked: list[list[pa.RecordBatch]]) -> list[str]:
    uids = [r.get("series_uid") for p in walked for b in p for r in b.to_pylist()]
    problems = [
        f"paged search returned series {u!r} {n} times ({len(walked)} pages)"
        for u, n in _repeated(uids)
    ]
    missing, extra = set(expected) - set(uids), set(uids) - set(expected)
    if missing:
        problems.append(
            f"paged search ({len(walked)} pages) never returned {len(missing)} series, "
            f"e.g. {_some(missing)}"
        )
    if extra:
        problems.append(f"paged search returned series not harvested: {_some(extra)}")
    return problems


def capabilities(case: ConformanceCase) -> Capabilities:
    """The capabilities an adapter instance declares (they may depend on its settings)."""

    async def read(adapter: Adapter) -> Capabilities:
        return adapter.capabilities

    return case.use(read)


def grade_of(caps: Capabilities, leaf: Node) -> Support:
    """The declared grade of one condition (`search` over several fields: the weakest)."""
    if isinstance(leaf, Search):
        exact = caps.text_search and all(caps.pushes_down_exactly(f, "search") for f in leaf.fields)
        return Support.EXACT if exact else Support.NONE
    assert not isinstance(leaf, And | Or)
    return caps.grade(leaf.field, operator_of(leaf))


def filters_to_check(case: ConformanceCase, sample: Sample) -> list[Node]:
    """The author's filters, plus probes built from the sample unless the case turns them off."""
    return case.nodes() + (_probe_filters(sample.rows) if case.probes else [])


def _outputs(case: ConformanceCase, sample: Sample) -> list[tuple[str, Sequence[pa.RecordBatch]]]:
    """The harvested batches, and (live sources) the pages of an unfiltered search."""
    outputs: list[tuple[str, Sequence[pa.RecordBatch]]] = [("harvest", sample.batches)]
    if capabilities(case).live_search:

        async def search(adapter: Adapter) -> list[pa.RecordBatch]:
            pages = await walk(adapter, adapter.translate(MATCH_ALL), None, len(sample.rows) + 3)
            return [b for p in pages for b in p]

        with case.serving():
            outputs.append(("search", case.use(search)))
    return outputs


def _schema_problems(batch: pa.RecordBatch, origin: str, source: str) -> list[str]:
    if not batch.schema.equals(ARROW_SCHEMA):
        missing = [n for n in ARROW_SCHEMA.names if n not in batch.schema.names]
        extra = [n for n in batch.schema.names if n not in ARROW_SCHEMA.names]
        wrong = [
            f"{f.name}: {f.type} (canonical {ARROW_SCHEMA.field(f.name).type})"
            for f in batch.schema
            if f.name in ARROW_SCHEMA.names and f.type != ARROW_SCHEMA.field(f.name).type
        ]
        return [
            f"{origin}: a batch's schema is not adapters.batch.ARROW_SCHEMA (missing {missing}, "
            f"extra {extra}, wrong types {wrong}); build batches with to_batch/validate_batch"
        ]
    problems = []
    for row in batch.to_pylist():
        uid = row.get("series_uid")
        try:
            SeriesRecord.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            problems.append(f"{origin}: series {uid!r}: {where}: {first['msg']}")
            continue
        if row["source"] != source or (row["sources"] and source not in row["sources"]):
            problems.append(
                f"{origin}: series {uid!r} names source {row['source']!r} / {row['sources']}, "
                f"not the configured name {source!r}"
            )
    return problems


def _normalisation_problems(row: dict[str, Any]) -> list[str]:
    uid, problems = row.get("series_uid"), []
    if row.get("sex") not in SEXES:
        problems.append(f"series {uid!r}: sex {row.get('sex')!r} is not one of {SEXES}")
    age = row.get("age")
    if age is not None and (
        not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 200
    ):
        problems.append(f"series {uid!r}: age {age!r} is not whole years 0-200")
    for name in ("modality", "body_part"):
        value = row.get(name)
        if value is not None and value != norm.normalize_code(value):
            problems.append(f"series {uid!r}: {name} {value!r} is not an upper-case code")
    date = row.get("study_date")
    if date is not None and (not isinstance(date, dt.date) or isinstance(date, dt.datetime)):
        problems.append(f"series {uid!r}: study_date {date!r} is not a date")
    collection = row.get("collection")
    if not isinstance(collection, str) or collection != norm.normalize_collection(collection):
        problems.append(f"series {uid!r}: collection {collection!r} is not normalised")
    return problems


def _declaration_problems(caps: Capabilities) -> list[str]:
    problems = []
    for grade, table in (("pushdown", caps.pushdown), ("prefilter", caps.prefilter)):
        for name, ops in table.items():
            if name not in FIELDS:
                problems.append(f"{grade} names {name!r}, which is not a canonical field")
            if not set(ops) <= ALL_OPERATORS:
                problems.append(
                    f"{grade}[{name!r}] names unknown operators {set(ops) - ALL_OPERATORS}"
                )
    for name in set(caps.pushdown) & set(caps.prefilter):
        both = caps.pushdown[name] & caps.prefilter[name]
        if both:
            problems.append(f"{name!r} {sorted(both)} is declared both exact and partial")
    return problems


def _long_lists_stay_residual(adapter: Adapter, max_values: int, sample: Sample) -> list[str]:
    problems = []
    for name, ops in adapter.capabilities.pushdown.items():
        if "IN" not in ops or name not in FIELDS:
            continue
        node = In(name, _values(name, max_values + 1, sample))
        residual = adapter.translate(node).residual
        if residual is None or node not in set(walk_nodes(residual)):
            problems.append(
                f"an IN of {max_values + 1} values on {name!r} (max_values={max_values}) "
                "is not left in the residual"
            )
    return problems


def _values(name: str, count: int, sample: Sample) -> tuple[Value, ...]:
    kind = FIELDS[name].kind
    values: list[Value] = list(dict.fromkeys(field_values(sample.rows, name)))
    for i in range(count):
        if kind is FieldKind.INTEGER:
            values.append(10_000 + i)
        elif kind is FieldKind.DATE:
            values.append(dt.date(1900, 1, 1) + dt.timedelta(days=i))
        else:
            values.append(f"ZZ-CONFORMANCE-{i}")
    return tuple(dict.fromkeys(values))[:count]


def _leaves(node: Node) -> list[Node]:
    return [n for n in walk_nodes(node) if not isinstance(n, And | Or)]


def _some(uids: Iterable[Any]) -> list[str]:
    return sorted(map(str, uids))[:3]


def _repeated(values: Iterable[Any]) -> list[tuple[Any, int]]:
    return [(v, n) for v, n in Counter(values).items() if n > 1][:EXAMPLES]


def fail_if(problems: list[str], headline: str) -> None:
    """Raise ConformanceFailure quoting the first few problems, if there are any."""
    if problems:
        shown = "\n  - ".join(problems[:EXAMPLES])
        more = f"\n  ... and {len(problems) - EXAMPLES} more" if len(problems) > EXAMPLES else ""
        raise ConformanceFailure(f"{headline}:\n  - {shown}{more}")
