"""The public adapter SDK: everything an adapter needs, from one module.

Write an adapter against this module only; what it does not export is the hub's business
and may change. `imaging-hub adapter new NAME` writes a package that starts from here, and
`adapters.conformance` checks the result. docs/maintainers-guide.md walks through one.

The contract, in short (DESIGN.md, "Adapters: a small SPI"):

- declare what the source can do as data: `Capabilities` (harvest / live search, paging
  style, limits) with a `Support` grade per field and operator — `pushdown` for EXACT,
  `prefilter` for PARTIAL, anything else is NONE (`capabilities.grade(field, op)`;
  `capabilities.pushes_down_exactly(field, op)` is the EXACT test);
- `translate(node)` returns the native request and the residual — every condition the
  source does not evaluate exactly (`split_pushdown` + `pushable_by` do the usual split);
- `search(translation, page)` answers ONE page of canonical records (`FieldMap`,
  `to_batch`, `validate_batch`) as a `PageResult` that also names the page after it
  (`page.next_offset(rows_sent)`, `page.next_cursor(token)`, None at the end); `harvest()`
  streams everything (`walk_pages`);
- raise `TransientSourceError` when trying again may help and `TerminalSourceError` when it
  cannot (`HttpAdapter` + `send` + `json_body` do this for HTTP, `local_errors` for files
  and DuckDB), with no secret in any message; read secrets with `credential(settings)`;
  anything else an adapter raises is a bug, reported generically by the hub;
- never retry, sleep or back off: the hub retries transient errors, honours Retry-After,
  applies deadlines and circuit breaking, in one place for every source.
"""

from __future__ import annotations

from adapters.batch import ARROW_SCHEMA, to_batch, to_records, validate_batch
from adapters.dicom_json import STUDY_LEVEL as DICOM_STUDY_LEVEL
from adapters.dicom_json import TAGS as DICOM_TAGS
from adapters.dicom_json import DicomJson, decode_series, encode_series
from adapters.dicom_json import element as dicom_element
from adapters.dicom_json import first as dicom_value
from adapters.dicom_json import integer as dicom_integer
from adapters.dicom_json import text as dicom_text
from adapters.duckdb_sql import SqlFilter, compile_where
from adapters.fieldmap import (
    IDENTIFIERS,
    FieldMap,
    Getter,
    canonical_value,
    conjoin,
    conjuncts,
    one_per_field,
)
from adapters.http import HttpAdapter, credential, json_body, retry_after_seconds, send
from adapters.local_io import local_errors
from adapters.paging import offset_params, walk_pages
from adapters.spi import (
    ALL_OPERATORS,
    Adapter,
    AdapterError,
    Capabilities,
    Operator,
    Page,
    PageResult,
    PagingStyle,
    SourceSettings,
    Support,
    TerminalSourceError,
    TransientSourceError,
    Translation,
    operator_of,
    pushable_by,
    split_pushdown,
)
from schema import normalize
from schema.evaluate import matches
from schema.filters import (
    MATCH_ALL,
    And,
    Compare,
    FilterError,
    In,
    IsMissing,
    Node,
    Or,
    Search,
    Value,
    fields_used,
    parse_filter,
    to_json,
    walk,
)
from schema.normalize import (
    normalize_age,
    normalize_code,
    normalize_collection,
    normalize_date,
    normalize_sex,
    normalize_text,
)
from schema.record import FIELDS, FieldKind, SeriesRecord

__all__ = [  # noqa: RUF022 - grouped by topic, for readers
    # the SPI
    "Adapter",
    "Page",
    "PageResult",
    "SourceSettings",
    "Translation",
    "operator_of",
    "pushable_by",
    "split_pushdown",
    # the capability model
    "ALL_OPERATORS",
    "Capabilities",
    "Operator",
    "PagingStyle",
    "Support",
    # errors
    "AdapterError",
    "TerminalSourceError",
    "TransientSourceError",
    # HTTP
    "HttpAdapter",
    "credential",
    "json_body",
    "retry_after_seconds",
    "send",
    # files and DuckDB
    "local_errors",
    # canonical records in Arrow
    "ARROW_SCHEMA",
    "FIELDS",
    "FieldKind",
    "SeriesRecord",
    "to_batch",
    "to_records",
    "validate_batch",
    # the filter AST
    "MATCH_ALL",
    "And",
    "Compare",
    "FilterError",
    "In",
    "IsMissing",
    "Node",
    "Or",
    "Search",
    "Value",
    "fields_used",
    "matches",
    "parse_filter",
    "to_json",
    "walk",
    # normalisation rules (one by one, or the module: `normalize.normalize_sex`)
    "normalize",
    "normalize_age",
    "normalize_code",
    "normalize_collection",
    "normalize_date",
    "normalize_sex",
    "normalize_text",
    # DICOM JSON (QIDO-RS answers)
    "DICOM_STUDY_LEVEL",
    "DICOM_TAGS",
    "DicomJson",
    "decode_series",
    "dicom_element",
    "dicom_integer",
    "dicom_text",
    "dicom_value",
    "encode_series",
    # field maps
    "IDENTIFIERS",
    "FieldMap",
    "Getter",
    "canonical_value",
    "conjoin",
    "conjuncts",
    "one_per_field",
    # paging
    "offset_params",
    "walk_pages",
    # SQL sources (DuckDB over files)
    "SqlFilter",
    "compile_where",
]
