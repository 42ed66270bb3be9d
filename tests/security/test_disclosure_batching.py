"""The facets of one question reach the index in one call when nothing is restricted
(one search on a cluster instead of one per field), and release the same buckets."""

from __future__ import annotations

from hub.index.base import Bucket, Counts, Facet, SeriesPage, SortKey
from hub.index.protocol import CohortView
from hub.security.access import plan_access
from hub.security.disclosure import Disclosure
from hub.security.identity import ANONYMOUS
from schema.filters import MATCH_ALL


class CountingView(CohortView):
    """A view whose facets are counted calls with made-up buckets."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def counts(self) -> Counts:
        return Counts(1, 1, 1)

    def facets(self, fields: list[str], size: int) -> list[Facet]:
        self.calls.append(list(fields))
        return [
            Facet(name, [Bucket(f"{name}-a", 30), Bucket(f"{name}-b", 20)], 0) for name in fields
        ]

    def histogram(self, field: str, interval: float) -> list[Bucket]:
        return []

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        return SeriesPage(0, [], [], False, None)

    def by_source(self) -> dict[str, int]:
        return {}


def _disclosure(view: CountingView) -> Disclosure:
    plan = plan_access({"idc": "open"}, ANONYMOUS)
    return Disclosure(view, view, plan, MATCH_ALL, k=11)


def test_plain_facets_are_asked_in_one_call_and_remembered() -> None:
    view = CountingView()
    disclosure = _disclosure(view)
    fields = ["modality", "body_part", "collection", "manufacturer", "sex"]
    released = disclosure.facets(fields, 10)
    assert view.calls == [fields]
    assert [f.field for f in released] == fields
    assert [b.key for b in released[0].buckets] == ["modality-a", "modality-b"]
    assert disclosure.facets(["body_part"], 10)[0] == released[1]
    assert view.calls == [fields]  # remembered, not asked again


def test_one_batched_answer_equals_the_field_by_field_answers() -> None:
    fields = ["modality", "body_part", "sex"]
    batched = _disclosure(CountingView()).facets(fields, 5)
    single = _disclosure(CountingView())
    assert batched == [single.facets([name], 5)[0] for name in fields]
