"""The Elasticsearch/OpenSearch index backend (`index = "elasticsearch"`).

The whole `IndexBackend` protocol (`hub/index/protocol.py`) and the same answers as the
embedded index (`hub/index/embedded/`), on a cluster that scales out; the shared
helpers (cursor codec, sort check, bucket keys) are in `hub/index/`.

Modules, one concern each: `settings` (the `[index.elasticsearch]` table), `client`
(async client; plain JSON for OpenSearch), `runner` (the one event loop the synchronous
API calls into), `layout` (index and alias names), `mapping` (generated from the
canonical fields), `corpus` (documents, computed with DuckDB from the snapshots), `bulk`
(ingest with back-pressure), `publish` (alias swaps and reconciling), `dsl` (filter AST
→ query DSL), `cohort` (the answers), `ranking` (BM25 paging), `live` (live answers),
`errors`, `backend` (`ElasticIndex`).

Layout. One index per source per harvest, `<prefix>-<source>-<stamp>`, behind the
alias `<prefix>-<source>`; all current indices behind the read alias `<prefix>-all`.
A harvest builds its new index aside and moves both aliases in ONE `_aliases` call;
until then, and if it fails or dies, queries answer from the previous index.

De-duplication. The same series held by several sources (IDC mirrors TCIA) must be one
hit, counted once, listing every source, with each field from the source with the lowest
priority number that has a value (the embedded merge: both build it with
`hub.index.merge`). Every source's index holds its own copy of the series, and all
copies of a shared series carry the same merged record, `sources` = all holders, and
`primary: true` on exactly one copy (the winning source's). Every query filters
`primary: true`, so counts, facets, histograms and pages over `<prefix>-all` see each
series once. Documents are computed at ingest from the current snapshots of all sources;
after a source is re-harvested, the copies of series whose overlap changed are rewritten
in the other sources' indices by `_id` (= series_uid), found by comparing a stored
`doc_hash` with what the snapshots say. That reconciling runs after every publish, so a
run that died between its swap and its reconcile is repaired by the next one.

Exact counts. Series: the hits total (`track_total_hits`). Studies and patients: the
number of buckets of a composite aggregation on `study_uid` / `patient_key`
(collection NUL patient_id), paged to its end: exact on every server, where the
`cardinality` aggregation is an estimate on Elasticsearch.

Paging. `search_after` on sort values that always end with `row_key` (the embedded
index's row order, unique per series), so there is no 10,000-row window and page
2,000 costs what page 2 costs on Elasticsearch. No point-in-time: a cursor is bound to
the generation it was made on (the names of the served indices), as embedded cursors
are, so a re-harvest makes old cursors a QueryError instead of keeping a snapshot of
deleted indices alive; and OpenSearch (`/_search/point_in_time`) and Elasticsearch
(`/_pit`) spell it differently. Free-text (BM25) order is paged from a ranking kept
per question (see `ranking.py`).
"""
