"""The checks by name, and the ways to run them: a pytest base class, or one call.

In an adapter package's test suite (about ten lines)::

    from adapters.conformance import AdapterConformance, ConformanceCase

    class TestAcmeConformance(AdapterConformance):
        adapter_class = AcmeAdapter

        @pytest.fixture(scope="class")
        @classmethod
        def conformance_case(cls) -> ConformanceCase:
            return ConformanceCase(AcmeAdapter, {"name": "acme", "url": BASE}, routes=fake_api)

pytest then runs one test per check that applies to the adapter (`test_conformance[...]`);
a class-scoped case harvests its sample once for all of them. Function style instead:
`@pytest.mark.parametrize("check", conformance_checks(AcmeAdapter))` + `run_check(check, case)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from adapters.conformance.case import ConformanceCase, ConformanceFailure, Sample
from adapters.conformance.checks import (
    capabilities_are_honoured,
    paging_returns_each_record_once,
    pushdown_matches_reference,
    records_match_schema,
    values_are_normalised,
)
from adapters.conformance.faults import errors_are_typed, no_secrets_in_messages
from adapters.http import HttpAdapter
from adapters.spi import Adapter

Check = Callable[[ConformanceCase, Sample], None]

CHECKS: dict[str, Check] = {
    check.__name__: check
    for check in (
        records_match_schema,
        values_are_normalised,
        pushdown_matches_reference,
        capabilities_are_honoured,
        paging_returns_each_record_once,
        errors_are_typed,
        no_secrets_in_messages,
    )
}
"""Every check, by the name pytest shows."""

_LIVE_ONLY = {"pushdown_matches_reference", "capabilities_are_honoured"}
_HTTP_ONLY = {"errors_are_typed"}


def conformance_checks(adapter_class: type[Adapter]) -> list[str]:
    """Names of the checks that apply to an adapter class (no live search: no pushdown checks;
    no HTTP: no fault injection). For `pytest.mark.parametrize`."""
    live = adapter_class.capabilities.live_search
    http = issubclass(adapter_class, HttpAdapter)
    return [
        name
        for name in CHECKS
        if (live or name not in _LIVE_ONLY) and (http or name not in _HTTP_ONLY)
    ]


def run_check(name: str, case: ConformanceCase) -> None:
    """Run one check on the case's (cached) harvested sample; raises ConformanceFailure."""
    CHECKS[name](case, case.sample())


def run_conformance(case: ConformanceCase) -> dict[str, str | None]:
    """Every applicable check: name → None when it passed, else its failure message."""
    outcome: dict[str, str | None] = {}
    for name in conformance_checks(case.adapter_class):
        try:
            run_check(name, case)
        except ConformanceFailure as failure:
            outcome[name] = str(failure)
        else:
            outcome[name] = None
    return outcome


class AdapterConformance:
    """Subclass as `Test...`: set `adapter_class`, provide a `conformance_case` fixture.

    pytest generates `test_conformance[<check>]` for each applicable check.
    """

    adapter_class: ClassVar[type[Adapter]]

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "conformance_check" in metafunc.fixturenames:
            names = conformance_checks(self.adapter_class)
            metafunc.parametrize("conformance_check", names, ids=names)

    def test_conformance(self, conformance_case: ConformanceCase, conformance_check: str) -> None:
        run_check(conformance_check, conformance_case)
