"""OpenTelemetry tracing, optional: one trace per cohort query, a span per source fetch.

Installed with `pip install imaging-hub[otel]` and switched on with `[hub] tracing =
true`. Without the packages, or switched off, every helper here is a no-op costing one
global read, and nothing imports OpenTelemetry.

The hub uses the process's tracer provider when one is set (`opentelemetry-instrument`,
or code embedding the hub); otherwise it sets up the SDK with an OTLP/HTTP exporter when
`opentelemetry-exporter-otlp-proto-http` is installed (endpoint from the standard
`OTEL_EXPORTER_OTLP_*` variables), else with a console exporter. Fetch spans are only
made inside a recording cohort span, so a fetch outside a query (a probe) adds nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

try:
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    _trace = None  # type: ignore[assignment]

_tracer: Any = None
"""The tracer in use, or None while tracing is off."""


def available() -> bool:
    return _trace is not None


def enabled() -> bool:
    return _tracer is not None


def enable(provider: Any = None) -> bool:
    """Trace from now on, with `provider` or the process's (set up when missing).
    False (and a warning) when OpenTelemetry is not installed."""
    global _tracer
    if _trace is None:
        log.warning("tracing is on in the config but OpenTelemetry is not installed; "
                    "pip install 'imaging-hub[otel]'")  # fmt: skip
        return False
    if provider is None:
        provider = _trace.get_tracer_provider()
        if not _is_sdk(provider):
            provider = _default_provider()
            _trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("imaging_hub")
    return True


def disable() -> None:
    global _tracer
    _tracer = None


def _is_sdk(provider: Any) -> bool:
    """A real provider: neither the API's no-op nor its not-yet-set proxy."""
    return type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


def _default_provider() -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError:
        log.warning("opentelemetry-sdk is not installed; spans go to the API's no-op tracer")
        return _trace.get_tracer_provider()
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "imaging-hub"}
    provider = TracerProvider(resource=Resource.create(named))
    exporter: SpanExporter
    try:
        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        exporter = otlp.OTLPSpanExporter()
    except ImportError:
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextlib.contextmanager
def cohort_span(**attributes: Any) -> Iterator[Any]:
    """The root span of one cohort question (a child of any span already current)."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span("cohort", attributes=_clean(attributes)) as span:
        yield span


@contextlib.contextmanager
def fetch_span(source: str) -> Iterator[Any]:
    """A child span for one source fetch; None (nothing made) outside a traced cohort."""
    tracer = _tracer
    if tracer is None or not _trace.get_current_span().is_recording():
        yield None
        return
    with tracer.start_as_current_span("source.fetch", attributes={"source": source}) as span:
        yield span


def set_attributes(span: Any, **attributes: Any) -> None:
    if span is not None:
        span.set_attributes(_clean(attributes))


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float (or lists of them); None is dropped."""
    return {k: v for k, v in attributes.items() if v is not None}


def set_outcome(span: Any, ok: bool, description: str = "") -> None:
    """Mark a span failed (with the people-facing message) or succeeded."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.OK) if ok else Status(StatusCode.ERROR, description))
