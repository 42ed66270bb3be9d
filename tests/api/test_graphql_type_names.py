"""The GraphQL names clients see are the schema's contract, whatever the Python classes
behind them are called (`CountsType` is `Counts` on the wire)."""

from __future__ import annotations

from hub.api.graphql_schema import schema

PUBLIC = {
    "Cohort": {"counts", "facets", "histogram", "series", "bySource", "access", "privacy"},
    "Counts": {"patients", "studies", "series", "suppressed", "rounded"},
    "Facet": {"field", "buckets", "missing", "missingSuppressed", "suppressed"},
    "Bucket": {"key", "count", "suppressed", "rounded"},
    "SourceAccess": {"source", "access", "granularity"},
    "SourceResult": {"source", "status", "count", "latencyMs", "message", "granularity"},
    "SourcePlan": {"source", "route", "native", "residual", "description"},
    "SavedCohort": {"id", "filter", "text", "counts", "bySource", "current", "createdAt"},
}


def test_public_type_names_and_their_fields() -> None:
    types = schema.graphql_schema.type_map
    for name, fields in PUBLIC.items():
        assert name in types, f"GraphQL type {name} is gone"
        assert fields <= set(types[name].fields), (name, fields - set(types[name].fields))


def test_no_python_class_name_reaches_the_schema() -> None:
    types = schema.graphql_schema.type_map
    leaked = sorted(n for n in types if n.endswith("Type") and not n.startswith("__"))
    assert leaked == [], leaked
