"""The adapter conformance kit: import it in your adapter's test suite and run it.

Like dbt-tests-adapter or meltano's tap tests: small named checks, each catching one way an
adapter can mislead the hub —

- `records_match_schema`: batches have the canonical Arrow schema, rows are valid records;
- `values_are_normalised`: sex, age, modality, body_part, study_date, collection are canonical;
- `pushdown_matches_reference`: what the source answers plus the residual selects exactly what
  `schema.evaluate.matches` selects over the harvested sample;
- `capabilities_are_honoured`: a condition not declared exact is left in the residual;
- `paging_returns_each_record_once`: no duplicates, no gaps, across pages and in a harvest,
  and each next page follows the declared paging style;
- `errors_are_typed`: 503/429/timeouts are transient, 400/401/404 terminal, and never retried;
- `no_secrets_in_messages`: the credential never reaches a message, a log record or a plan.

Needs pytest and respx (`pip install imaging-hub[conformance]`). See `suite` for use.
"""

from adapters.conformance.case import ConformanceCase, ConformanceFailure, Routes, Sample
from adapters.conformance.checks import (
    capabilities_are_honoured,
    paging_returns_each_record_once,
    pushdown_matches_reference,
    records_match_schema,
    values_are_normalised,
)
from adapters.conformance.faults import FAULTS, Fault, errors_are_typed, no_secrets_in_messages
from adapters.conformance.probes import probe_filters
from adapters.conformance.suite import (
    CHECKS,
    AdapterConformance,
    Check,
    conformance_checks,
    run_check,
    run_conformance,
)

__all__ = [
    "CHECKS",
    "FAULTS",
    "AdapterConformance",
    "Check",
    "ConformanceCase",
    "ConformanceFailure",
    "Fault",
    "Routes",
    "Sample",
    "capabilities_are_honoured",
    "conformance_checks",
    "errors_are_typed",
    "no_secrets_in_messages",
    "paging_returns_each_record_once",
    "probe_filters",
    "pushdown_matches_reference",
    "records_match_schema",
    "run_check",
    "run_conformance",
    "values_are_normalised",
]
