"""Index mappings and settings, generated from the canonical field catalogue.

Every field of `schema.record.FIELDS` is mapped by its kind (never hand-listed):
KEYWORD → `keyword`; INTEGER → `long`; DATE → `date` (ISO dates); TEXT → `text` with
an exact `.raw` keyword sub-field (filters, sorts) plus a `<name>_words` field that
BM25 ranks on. The `text` field itself is not indexed (`index: false`): no query
reads its server-side analysis, and its postings would cost disk and heap on every
node for nothing.
`_words` holds the description already split by `schema.evaluate.tokenize` and is
analysed by `whitespace` only, so both backends see exactly the same words whatever
the server's analysers do (the `standard` tokenizer keeps `chest_lung` whole where
the embedded index splits it, and servers differ in their `pattern` tokenizers).

Bookkeeping fields: `sources` (every repository holding the series), `primary`
(the one copy that counts, see the package docstring), `shared`, `doc_hash`,
`patient_key` (collection NUL patient_id: exact patient counts), `row_key`
(collection, patient, study, series joined by NUL: the embedded index's browse
order, and the unique tiebreak of every sort), and stored-only URLs.
"""

from __future__ import annotations

from typing import Any

from hub.index.elastic.settings import ElasticSettings
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

WORDS_SUFFIX = "_words"
RAW = "raw"
ROW_KEY = "row_key"
PATIENT_KEY = "patient_key"
NESTED_PATH = "series"  # the series inside a level document (levels.py)
STORED_ONLY = ("viewer_url", "download_url")
RAW_IGNORE_ABOVE = 8191  # Lucene refuses terms over 32766 bytes; DICOM descriptions are 64
DATE_FORMAT = "strict_date"
TIMESTAMP_FORMAT = "strict_date_time_no_millis||strict_date_optional_time"
SOURCE_INCLUDES = [*FIELDS, "sources", *STORED_ONLY, "fetched_at"]
"""What a series node shows (the `_words` twins and bookkeeping stay in the index)."""


def es_field(name: str) -> str:
    """The exact-value field of a canonical field: for term, range, exists, sort, aggs."""
    if name == "source":
        return "sources"
    return f"{name}.{RAW}" if name in TEXT_FIELDS else name


def words_field(name: str) -> str:
    """The BM25 field of a text field."""
    return name + WORDS_SUFFIX


def _property(kind: FieldKind) -> dict[str, Any]:
    if kind is FieldKind.KEYWORD:
        return {"type": "keyword"}
    if kind is FieldKind.INTEGER:
        return {"type": "long"}
    if kind is FieldKind.DATE:
        return {"type": "date", "format": DATE_FORMAT}
    return {
        "type": "text",
        "index": False,
        "fields": {RAW: {"type": "keyword", "ignore_above": RAW_IGNORE_ABOVE}},
    }


def filterable_properties() -> dict[str, Any]:
    """The fields a cohort filter reads: the canonical fields, their `_words` twins and
    `sources`. Level indices map their nested series with exactly these."""
    props: dict[str, Any] = {name: _property(spec.kind) for name, spec in FIELDS.items()}
    for name in TEXT_FIELDS:
        props[words_field(name)] = {
            "type": "text",
            "analyzer": "whitespace",
            "index_options": "freqs",
        }
    props["sources"] = {"type": "keyword"}
    return props


def properties(live: bool = False) -> dict[str, Any]:
    """Field mappings; `fetched_at` is searchable (and `priority` present) only in live
    indices, whose answers expire and merge by priority: fewer indexed fields make a
    harvest ingest faster."""
    props = filterable_properties()
    props.update(
        {
            "primary": {"type": "boolean"},
            "shared": {"type": "boolean"},
            PATIENT_KEY: {"type": "keyword"},
            ROW_KEY: {"type": "keyword"},
            "doc_hash": {"type": "keyword", "index": False, "doc_values": False},
            "fetched_at": {"type": "date", "format": TIMESTAMP_FORMAT},
        }
    )
    if live:  # merges are redone from each copy's own record (stored, not indexed)
        props["priority"] = {"type": "long"}
        props["own"] = {"type": "object", "enabled": False}
    else:
        props["fetched_at"].update(index=False, doc_values=False)
    for name in STORED_ONLY:
        props[name] = {"type": "keyword", "index": False, "doc_values": False}
    return props


def mappings(live: bool = False) -> dict[str, Any]:
    """Strict mappings (a document with an unknown field is refused, not guessed at).
    They reach indices through the index templates (`templates.py`)."""
    return {"dynamic": "strict", "properties": properties(live)}


def layout_settings(settings: ElasticSettings) -> dict[str, Any]:
    """Shards and replicas from config, for every index the hub creates (templates)."""
    return {"number_of_shards": settings.shards, "number_of_replicas": settings.replicas}


REFRESH_INTERVAL = "1s"
REFRESH_ON = {"index": {"refresh_interval": REFRESH_INTERVAL}}


def create_body(meta: dict[str, Any], ingesting: bool) -> dict[str, Any]:
    """What an index creation sends besides the template: its `_meta`, and no refreshes
    while a bulk ingest runs (restored by `REFRESH_ON` once it is loaded)."""
    return {
        "mappings": {"_meta": meta},
        "settings": {"refresh_interval": "-1" if ingesting else REFRESH_INTERVAL},
    }
