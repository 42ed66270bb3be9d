"""The tantivy side of the embedded index: schema, and filter AST → tantivy Query.

Values reach tantivy only inside typed query objects (term, term-set, range), never
through its query-string parser, so a filter value cannot change the query's shape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import tantivy

from hub.index.common import EPOCH
from schema.evaluate import tokenize
from schema.filters import And, Compare, In, IsMissing, Node, Or, Search, Value
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

RAW_SUFFIX = "__raw"
STORED_ONLY = ("viewer_url", "download_url", "fetched_at")
FETCHED_AT = "%Y-%m-%dT%H:%M:%SZ"  # how documents show `fetched_at`
PRESENT = "_present"
# Fields without a fast column record their presence as a term of `_present`.
PRESENCE_TERMS = tuple(n for n, s in FIELDS.items() if not s.facetable and n != "source")


def raw_field(name: str) -> str:
    """The exact-value (keyword) twin of a canonical field in the tantivy schema."""
    if name == "source":
        return "sources"
    return name + RAW_SUFFIX if name in TEXT_FIELDS else name


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("row", stored=True, indexed=True, fast=True)
    sb.add_text_field(PRESENT, tokenizer_name="raw", index_option="basic")  # fields with a value
    sb.add_text_field("sources", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    for name, spec in FIELDS.items():
        if name == "source":
            sb.add_text_field("source", stored=True, tokenizer_name="raw", index_option="basic")
        elif spec.kind is FieldKind.KEYWORD:  # fast (columnar) only where facets need it
            sb.add_text_field(
                name, stored=True, fast=spec.facetable, tokenizer_name="raw", index_option="basic"
            )
        elif spec.kind is FieldKind.TEXT:  # BM25 needs term frequencies, not positions
            sb.add_text_field(name, stored=True, tokenizer_name="default", index_option="freq")
            sb.add_text_field(raw_field(name), tokenizer_name="raw", index_option="basic")
        else:
            sb.add_integer_field(name, stored=True, indexed=True, fast=True)
    for name in STORED_ONLY:
        sb.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    return sb.build()


def to_index_value(field: str, value: Value) -> str | int:
    """Dates are indexed as days since 1970-01-01; everything else as is."""
    if isinstance(value, dt.date):
        return (value - EPOCH).days
    return value


class QueryCompiler:
    """Compiles filter nodes against one tantivy schema.

    `source_rows` names, per live source, the harvested rows it also holds: the harvested
    index is never rewritten, so `source` tests add those rows to the `sources` terms."""

    def __init__(
        self, schema: tantivy.Schema, source_rows: Mapping[str, Sequence[int]] | None = None
    ) -> None:
        self.schema = schema
        self.source_rows = source_rows or {}

    def compile(self, node: Node) -> tantivy.Query:
        match node:
            case And(children):
                if not children:
                    return tantivy.Query.all_query()
                return self._bool([(tantivy.Occur.Must, self.compile(c)) for c in children])
            case Or(children):
                return self._bool([(tantivy.Occur.Should, self.compile(c)) for c in children])
            case IsMissing(field, missing):
                exists = (
                    tantivy.Query.term_query(self.schema, PRESENT, field)
                    if field in PRESENCE_TERMS
                    else tantivy.Query.exists_query(raw_field(field))
                )
                return self._not(exists) if missing else exists
            case In("source", values, negated):
                return self._sources(values, negated)
            case Compare("=" | "!=" as op, "source", value):
                return self._sources((value,), negated=op == "!=")
            case In(field, values, negated):
                f = raw_field(field)
                q = tantivy.Query.term_set_query(
                    self.schema, f, [to_index_value(f, v) for v in values]
                )
                return self._not(q) if negated else q
            case Compare(op, field, value):
                return self._compare(op, field, value)
            case Search(keyword, fields):
                return self.text(keyword, fields)
        raise TypeError(node)

    def text(self, keyword: str, fields: tuple[str, ...] = TEXT_FIELDS) -> tantivy.Query:
        """Every word in at least one of the fields; scored by BM25."""
        words = tokenize(keyword)
        if not words:
            return tantivy.Query.empty_query()
        per_word = [
            self._bool(
                [
                    (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, f, w))
                    for f in fields
                ]
            )
            for w in dict.fromkeys(words)
        ]
        return (
            per_word[0]
            if len(per_word) == 1
            else self._bool([(tantivy.Occur.Must, q) for q in per_word])
        )

    def _sources(self, values: tuple[Value, ...], negated: bool) -> tantivy.Query:
        q = tantivy.Query.term_set_query(self.schema, "sources", list(values))
        extra = sorted({r for v in values for r in self.source_rows.get(str(v), ())})
        if extra:
            rows = tantivy.Query.term_set_query(self.schema, "row", extra)
            q = self._bool([(tantivy.Occur.Should, q), (tantivy.Occur.Should, rows)])
        return self._not(q) if negated else q

    def _compare(self, op: str, field: str, value: Value) -> tantivy.Query:
        f = raw_field(field)
        v = to_index_value(f, value)
        if op in ("=", "!="):
            q = tantivy.Query.term_query(self.schema, f, v)
            return self._not(q) if op == "!=" else q
        lower = v if op in (">", ">=") else None
        upper = v if op in ("<", "<=") else None
        return tantivy.Query.range_query(
            self.schema,
            f,
            tantivy.FieldType.Integer,
            lower_bound=lower,
            upper_bound=upper,
            include_lower=op != ">",  # an unbounded side must be inclusive
            include_upper=op != "<",
        )

    @staticmethod
    def _bool(clauses: list[tuple[tantivy.Occur, tantivy.Query]]) -> tantivy.Query:
        return tantivy.Query.boolean_query(clauses)

    @staticmethod
    def _not(q: tantivy.Query) -> tantivy.Query:
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, q)]
        )
