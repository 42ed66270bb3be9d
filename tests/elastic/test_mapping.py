"""The mapping follows the field catalogue, and the indexed words are the evaluator's words.

No server needed: these check what the cluster is given.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from hub.index.elastic.corpus import Corpus, words_sql
from hub.index.elastic.mapping import mappings, properties
from hub.index.snapshots import SnapshotStore
from schema.evaluate import tokenize
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

KIND_TYPES = {
    FieldKind.KEYWORD: "keyword",
    FieldKind.INTEGER: "long",
    FieldKind.DATE: "date",
    FieldKind.TEXT: "text",
}


def test_every_canonical_field_is_mapped_by_its_kind() -> None:
    props = properties()
    for name, spec in FIELDS.items():
        assert props[name]["type"] == KIND_TYPES[spec.kind], name
    for name in TEXT_FIELDS:
        assert props[name]["fields"]["raw"]["type"] == "keyword"
        assert props[f"{name}_words"]["analyzer"] == "whitespace"
    assert props["sources"]["type"] == "keyword" and props["primary"]["type"] == "boolean"
    assert props["viewer_url"] == {"type": "keyword", "index": False, "doc_values": False}
    assert mappings()["dynamic"] == "strict"
    assert "own" in properties(live=True) and "own" not in properties()


def test_indexed_words_are_the_evaluators_words(small_data_dir: Path) -> None:
    """`words_sql` (DuckDB, at ingest) splits every real description as `tokenize` does."""
    snap = SnapshotStore(small_data_dir).get("idc")
    assert snap is not None
    con = duckdb.connect()
    con.execute("SET lambda_syntax = 'DISABLE_SINGLE_ARROW'")
    texts = " UNION ".join(
        f"SELECT DISTINCT {name} AS t FROM read_parquet(?) WHERE {name} IS NOT NULL"
        for name in TEXT_FIELDS
    )
    extra = ["T1_weighted-3D", "ÄÖÜ façade", "x" * 45 + " y", "a__b--c", "", "   "]
    rows = con.execute(
        f"SELECT t, {words_sql('t')} FROM ({texts} UNION SELECT unnest(?) AS t)",
        [str(snap.path)] * len(TEXT_FIELDS) + [extra],
    ).fetchall()
    assert len(rows) > 1000
    for text, words in rows:
        assert words.split() == tokenize(text), text


def test_documents_drop_nulls_and_mark_shared_copies(small_data_dir: Path) -> None:
    corpus = Corpus(SnapshotStore(small_data_dir).all(), {"idc": 100})
    try:
        batch = next(iter(corpus.documents("idc", batch_rows=50)))
    finally:
        corpus.close()
    docs = batch.column("doc").to_pylist()
    assert all('":null' not in d and '"shared"' not in d and '"primary":true' in d for d in docs)
    assert batch.column("doc_hash").null_count == batch.num_rows  # nothing is shared here
