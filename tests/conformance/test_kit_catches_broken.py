"""Every conformance check can fail: each broken adapter breaks one rule, and exactly the
check for that rule fails while the others pass.

The broken adapters change one thing of the correct toy adapter (tests/conformance/toy.py),
which passes every check with both offset and cursor paging.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pyarrow as pa
import pytest

from adapters.catalogue import CatalogueAdapter
from adapters.conformance import (
    CHECKS,
    ConformanceCase,
    ConformanceFailure,
    conformance_checks,
    run_conformance,
)
from adapters.idc import IdcAdapter
from adapters.sdk import (
    Adapter,
    Capabilities,
    In,
    Node,
    Page,
    PageResult,
    PagingStyle,
    SeriesRecord,
    TerminalSourceError,
    TransientSourceError,
    Translation,
    credential,
    matches,
    parse_filter,
    to_batch,
    to_json,
)
from tests.conformance.toy import ToyAdapter, ToyCursorAdapter, routes, settings

log = logging.getLogger("toy.broken")
FILTERS = [
    {"IN": {"modality": ["CT", "MR"]}},
    {"AND": [{"=": {"sex": "female"}}, {">": {"age": 40}}]},
]


class DropsAColumn(ToyAdapter):
    """Builds batches without the `license` column."""

    def _batch(self, items: list[Any]) -> pa.RecordBatch:
        batch = super()._batch(items)
        return batch.drop_columns(["license"])


class RawSex(ToyAdapter):
    """Writes the source's own sex codes (`F`, `0000`) instead of the canonical vocabulary."""

    def _batch(self, items: list[Any]) -> pa.RecordBatch:
        records = [self.fields.record(i, self.name) for i in items]
        raw = {i["uid"]: i["patient"]["sex"] or "unknown" for i in items}
        return to_batch(
            r.model_copy(update={"sex": raw[r.series_uid]}) for r in records if r is not None
        )


class SendsFirstValueOnly(ToyAdapter):
    """Sends only the first value of an IN list, yet keeps no residual for it."""

    def translate(self, node: Node) -> Translation:
        translation = super().translate(node)
        params = dict(translation.native["params"])
        if "modality" in params:
            params["modality"] = params["modality"].split(",")[0]
        return Translation({"params": params}, translation.residual, translation.description)


class HidesItsResidual(ToyAdapter):
    """Filters everything in memory after fetching, but declares only modality: the residual
    it reports is empty, so the planner and `explain` are told nothing is left to check."""

    def translate(self, node: Node) -> Translation:
        translation = super().translate(node)
        native = {**translation.native, "filter": to_json(node)}
        return Translation(native, None, translation.description)

    async def search(self, translation: Translation, page: Page) -> PageResult:
        node = parse_filter(translation.native["filter"])
        answer = await super().search(translation, page)
        kept = [
            batch.filter(pa.array([matches(node, row) for row in batch.to_pylist()], pa.bool_()))
            for batch in answer.batches
        ]
        return PageResult(kept, answer.next_page)


class OverlappingPages(ToyAdapter):
    """Starts each page on the last record of the one before."""

    def _next(self, page: Page, sent: int, token: str | None) -> Page | None:
        after = super()._next(page, sent, token)
        return Page(size=page.size, offset=after.offset - 1) if after else None


class TrustsReturnedCount(ToyAdapter):
    """Decides the next page from the records it kept, not the rows the source sent: a page
    with a skipped row (no series UID) looks like the last one."""

    async def search(self, translation: Translation, page: Page) -> PageResult:
        answer = await super().search(translation, page)
        kept = sum(batch.num_rows for batch in answer.batches)
        return PageResult(answer.batches, page.next_offset(kept))


class ForgetsTheCursor(ToyCursorAdapter):
    """Drops the continuation token, so only the first page is read."""

    def _next(self, page: Page, sent: int, token: str | None) -> Page | None:
        return None


class OffsetsUnderACursor(ToyCursorAdapter):
    """Declares cursor paging but names its next page by offset (the API ignores it)."""

    def _next(self, page: Page, sent: int, token: str | None) -> Page | None:
        return page.next_offset(sent)


class BareErrors(ToyAdapter):
    """Raises a bare RuntimeError on 503 instead of a TransientSourceError."""

    async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
        response = await self._http().get(f"{self.base}/api/series", params=params)
        if response.status_code == 503:
            raise RuntimeError("service unavailable")
        return await super()._page(params, page)


class RetriesItself(ToyAdapter):
    """Tries a failing request three times before giving up (the hub's job)."""

    async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
        for _ in range(2):
            try:
                return await super()._page(params, page)
            except TransientSourceError:
                continue
        return await super()._page(params, page)


class LeaksTheToken(ToyAdapter):
    """Quotes the bearer token in the message of a refused request."""

    async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
        try:
            return await super()._page(params, page)
        except TerminalSourceError as exc:
            raise TerminalSourceError(f"{exc} (sent token {credential(self.settings)})") from None


class LogsTheToken(ToyAdapter):
    """Logs the bearer token at DEBUG level."""

    async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
        log.debug("asking %s with bearer %s", self.base, credential(self.settings))
        return await super()._page(params, page)


BROKEN = [
    (DropsAColumn, "records_match_schema"),
    (RawSex, "values_are_normalised"),
    (SendsFirstValueOnly, "pushdown_matches_reference"),
    (HidesItsResidual, "capabilities_are_honoured"),
    (OverlappingPages, "paging_returns_each_record_once"),
    (TrustsReturnedCount, "paging_returns_each_record_once"),
    (ForgetsTheCursor, "paging_returns_each_record_once"),
    (OffsetsUnderACursor, "paging_returns_each_record_once"),
    (BareErrors, "errors_are_typed"),
    (RetriesItself, "errors_are_typed"),
    (LeaksTheToken, "no_secrets_in_messages"),
    (LogsTheToken, "no_secrets_in_messages"),
]


def failed(adapter: type[Adapter], **case: Any) -> dict[str, str]:
    outcome = run_conformance(
        ConformanceCase(adapter, settings(), FILTERS, routes=routes, page_size=2, **case)
    )
    return {name: message for name, message in outcome.items() if message is not None}


@pytest.mark.parametrize("adapter", [ToyAdapter, ToyCursorAdapter], ids=lambda c: c.__name__)
def test_the_correct_toy_passes_every_check(adapter: type[Adapter]) -> None:
    assert failed(adapter) == {}


@pytest.mark.parametrize(("adapter", "check"), BROKEN, ids=[c.__name__ for c, _ in BROKEN])
def test_exactly_the_check_for_the_broken_rule_fails(adapter: type[Adapter], check: str) -> None:
    failures = failed(adapter)
    assert set(failures) == {check}, failures
    assert failures[check].splitlines()[0].endswith(":")  # a headline, then the examples


def test_every_check_is_proven_able_to_fail() -> None:
    assert {check for _, check in BROKEN} == set(CHECKS)


def test_a_declaration_naming_no_canonical_field_fails() -> None:
    class Typo(ToyAdapter):
        capabilities = Capabilities(
            harvest=True, live_search=True, paging=PagingStyle.OFFSET, max_page_size=50,
            pushdown={"modality": frozenset(["=", "IN"]), "modaltiy": frozenset(["LIKE"])},
        )  # fmt: skip

    failures = failed(Typo)
    assert set(failures) == {"capabilities_are_honoured"}
    assert "'modaltiy', which is not a canonical field" in failures["capabilities_are_honoured"]


def test_a_long_in_list_beyond_max_values_must_stay_residual() -> None:
    class Limited(ToyAdapter):
        capabilities = Capabilities(
            harvest=True, live_search=True, pushdown={"modality": frozenset(["=", "IN"])},
            paging=PagingStyle.OFFSET, max_page_size=50, max_values=2,
        )  # fmt: skip

    assert set(failed(Limited)) == {"capabilities_are_honoured"}

    class Honest(Limited):
        def _pushable(self, node: Node) -> bool:
            return super()._pushable(node) and not (isinstance(node, In) and len(node.values) > 2)

    assert failed(Honest) == {}


def test_an_empty_answer_to_a_failure_is_caught() -> None:
    class SwallowsNotFound(ToyAdapter):
        async def _page(self, params: dict[str, str], page: Page) -> tuple[list[Any], str | None]:
            try:
                return await super()._page(params, page)
            except TerminalSourceError:
                return [], None

    failures = failed(SwallowsNotFound)
    assert set(failures) == {"errors_are_typed"}
    assert "HTTP 404: no error" in failures["errors_are_typed"]


def test_an_empty_sample_fails_instead_of_passing_vacuously() -> None:
    def nothing(router: Any) -> None:
        router.get(url__startswith="https://toy.example.org").mock(
            return_value=httpx.Response(200, json={"items": [], "next": None})
        )

    case = ConformanceCase(ToyAdapter, settings(), routes=nothing)
    with pytest.raises(ConformanceFailure, match="harvested nothing"):
        case.sample()


def test_checks_that_cannot_apply_are_not_generated() -> None:
    class HarvestOnly(ToyAdapter):
        capabilities = Capabilities(harvest=True, live_search=False, paging=PagingStyle.OFFSET)

    every = list(CHECKS)
    assert conformance_checks(ToyAdapter) == every
    assert "errors_are_typed" not in conformance_checks(IdcAdapter)
    assert "errors_are_typed" not in conformance_checks(CatalogueAdapter)
    assert conformance_checks(HarvestOnly) == [
        c for c in every if c not in ("pushdown_matches_reference", "capabilities_are_honoured")
    ]


def test_records_are_checked_as_records_too() -> None:
    class NegativeCount(ToyAdapter):
        def _batch(self, items: list[Any]) -> pa.RecordBatch:
            rows = super()._batch(items).to_pylist()
            bad = [SeriesRecord.model_construct(**{**r, "instance_count": -1}) for r in rows]
            return to_batch(bad)

    failures = failed(NegativeCount)
    assert set(failures) == {"records_match_schema"}
    assert "instance_count" in failures["records_match_schema"]
