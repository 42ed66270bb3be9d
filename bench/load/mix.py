"""A seeded mix of realistic cohort questions, built from the values the hub really holds.

The vocabulary comes from the hub under test (its facet buckets and age range), so the
filters select real, differently sized cohorts: a single collection, a modality and a
body part, women over 60, an OR of two collections, an IN list of licences, free text
("lung", "brain"...). Each question asks for what the cohort page asks for: counts,
two to four facets, sometimes an age histogram, the first page of 50 series; some are
followed for a few pages (`endCursor` as `after`), some sorted by age or date.

Every client draws from its own `random.Random(seed, client)`, so a run is repeatable
question by question, whatever the server's speed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FACET_FIELDS = ["collection", "modality", "body_part", "sex", "license", "manufacturer", "disease"]
TEXTS = ["lung", "brain", "breast", "chest", "liver", "kidney", "prostate", "head neck",
         "colon", "pancreas", "axial", "contrast", "t1", "pet", "lymph"]  # fmt: skip
SERIES_FIELDS = (
    "seriesUid collection patientId modality bodyPart sex age studyDate seriesDescription "
    "license viewerUrl"
)
PAGE_INFO = "pageInfo { hasNextPage endCursor }"
BY_SOURCE = "bySource { source status latencyMs }"

DOCUMENTS = {
    "browse": f"""query Browse($filter: JSON, $text: String, $fields: [String!]!) {{
  cohort(filter: $filter, text: $text) {{
    counts {{ patients studies series }}
    facets(fields: $fields, size: 20) {{ field missing buckets {{ key count }} }}
    series(first: 50) {{ totalCount {PAGE_INFO} nodes {{ {SERIES_FIELDS} }} }}
    {BY_SOURCE}
  }}
}}""",
    "histogram": f"""query Histogram($filter: JSON, $text: String, $fields: [String!]!) {{
  cohort(filter: $filter, text: $text) {{
    counts {{ patients studies series }}
    facets(fields: $fields, size: 20) {{ field missing buckets {{ key count }} }}
    histogram(field: "age", interval: 10) {{ key count }}
    {BY_SOURCE}
  }}
}}""",
    "counts": f"""query Counts($filter: JSON, $text: String) {{
  cohort(filter: $filter, text: $text) {{ counts {{ patients studies series }} {BY_SOURCE} }}
}}""",
    "page": f"""query Page($filter: JSON, $text: String, $after: String, $sort: [SortInput!]) {{
  cohort(filter: $filter, text: $text) {{
    series(first: 50, after: $after, sort: $sort) {{
      totalCount {PAGE_INFO} nodes {{ {SERIES_FIELDS} }}
    }}
    {BY_SOURCE}
  }}
}}""",
}

KIND_WEIGHTS = {"browse": 40, "text": 15, "histogram": 10, "counts": 10, "deep": 15, "sorted": 10}


@dataclass
class Vocabulary:
    """Facet values (most frequent first) and the age range of the corpus under test."""

    values: dict[str, list[str]]
    age_range: tuple[int, int] = (0, 90)

    @staticmethod
    def query() -> str:
        fields = json.dumps(FACET_FIELDS)
        return (
            "{ cohort { counts { series } "
            f"facets(fields: {fields}, size: 200) {{ field buckets {{ key count }} }} "
            'histogram(field: "age", interval: 5) { key count } } }'
        )

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Vocabulary:
        cohort = answer["data"]["cohort"]
        values = {
            facet["field"]: [b["key"] for b in facet["buckets"] if b["key"]]
            for facet in cohort["facets"]
        }
        ages = [int(float(b["key"])) for b in cohort["histogram"] if (b["count"] or 0) > 0]
        age_range = (min(ages), max(ages)) if ages else (0, 90)
        return cls({k: v for k, v in values.items() if v}, age_range)


@dataclass
class Request:
    """One GraphQL request; `pages_left` > 0 means follow its `endCursor` that many times."""

    kind: str
    document: str
    variables: dict[str, Any]
    pages_left: int = 0

    def body(self) -> bytes:
        name = self.document.split("(", 1)[0].split()[-1]
        payload = {"query": self.document, "variables": self.variables, "operationName": name}
        return json.dumps(payload).encode()

    def follow(self, answer: dict[str, Any]) -> Request | None:
        """The next page of the same question, if one was asked for and there is one."""
        if self.pages_left <= 0:
            return None
        try:
            info = answer["data"]["cohort"]["series"]["pageInfo"]
        except (KeyError, TypeError):
            return None
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return None
        variables = {k: v for k, v in self.variables.items() if k != "fields"}
        variables["after"] = info["endCursor"]
        return Request("deep_page", DOCUMENTS["page"], variables, self.pages_left - 1)


@dataclass
class Mix:
    """Draws questions for one client; `invalid_share` of them name an unknown field on
    purpose (the hub must refuse them: a harness test proves errors are counted)."""

    vocabulary: Vocabulary
    rng: random.Random
    invalid_share: float = 0.0
    _pending: Request | None = field(default=None, repr=False)

    @classmethod
    def for_client(
        cls, vocabulary: Vocabulary, seed: int, client: int, invalid_share: float = 0.0
    ) -> Mix:
        return cls(vocabulary, random.Random(f"{seed}:{client}"), invalid_share)

    def next(self) -> Request:
        """The follow-up page of the last deep question if due, else a new question."""
        if self._pending is not None:
            request, self._pending = self._pending, None
            return request
        return self.new()

    def answered(self, request: Request, answer: dict[str, Any] | None) -> None:
        if answer is not None:
            self._pending = request.follow(answer)

    def new(self) -> Request:
        kind = self.rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        filter_ = self.filter()
        if self.rng.random() < self.invalid_share:
            filter_ = {"=": {"no_such_field": "x"}}
        text = self.rng.choice(TEXTS) if kind == "text" or self.rng.random() < 0.08 else None
        fields = self.rng.sample(FACET_FIELDS, self.rng.randint(2, 4))
        base = {"filter": filter_, "text": text}
        if kind in ("browse", "text"):
            return Request(kind, DOCUMENTS["browse"], {**base, "fields": fields})
        if kind == "histogram":
            return Request(kind, DOCUMENTS["histogram"], {**base, "fields": fields[:2]})
        if kind == "counts":
            return Request(kind, DOCUMENTS["counts"], base)
        if kind == "deep":
            return Request(kind, DOCUMENTS["page"], base, pages_left=self.rng.randint(2, 4))
        key = self.rng.choice([("age", "DESC"), ("age", "ASC"), ("study_date", "DESC")])
        sort = [{"field": key[0], "order": key[1]}]
        return Request(kind, DOCUMENTS["page"], {**base, "sort": sort}, self.rng.randint(0, 2))

    def filter(self) -> dict[str, Any] | None:
        """None (everything) now and then; else one to three clauses, AND-ed, some OR/IN."""
        if self.rng.random() < 0.05:
            return None
        makers: list[Callable[[], dict[str, Any] | None]] = [
            self._collection, self._modality, self._body_part, self._sex, self._age,
            self._license, self._or,
        ]  # fmt: skip
        clauses = [c for m in self.rng.sample(makers, self.rng.randint(1, 3)) if (c := m())]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"AND": clauses}

    def _pick(self, field_: str, k: int = 1) -> list[str]:
        """Values skewed to the frequent ones, as people click the top buckets most."""
        values = self.vocabulary.values.get(field_, [])
        if not values:
            return []
        picked = {values[min(int(self.rng.paretovariate(1.2)) - 1, len(values) - 1)]}
        while len(picked) < min(k, len(values)):
            picked.add(self.rng.choice(values))
        return sorted(picked)

    def _one_or_in(self, field_: str) -> dict[str, Any] | None:
        picked = self._pick(field_, self.rng.choice([1, 1, 2, 3]))
        if not picked:
            return None
        return {"=": {field_: picked[0]}} if len(picked) == 1 else {"IN": {field_: picked}}

    def _collection(self) -> dict[str, Any] | None:
        return self._one_or_in("collection")

    def _modality(self) -> dict[str, Any] | None:
        return self._one_or_in("modality")

    def _body_part(self) -> dict[str, Any] | None:
        return self._one_or_in("body_part")

    def _license(self) -> dict[str, Any] | None:
        return self._one_or_in("license")

    def _sex(self) -> dict[str, Any] | None:
        if self.rng.random() < 0.25:
            return {"!=": {"sex": "unknown"}}
        picked = self._pick("sex")
        return {"=": {"sex": picked[0]}} if picked else None

    def _age(self) -> dict[str, Any]:
        low, high = self.vocabulary.age_range
        start = self.rng.randint(low, max(low, high - 10))
        width = self.rng.choice([5, 10, 15, 20, 30])
        if self.rng.random() < 0.3:
            return {">=": {"age": start}}
        return {"AND": [{">=": {"age": start}}, {"<=": {"age": start + width}}]}

    def _or(self) -> dict[str, Any] | None:
        fields = self.rng.sample(["collection", "modality", "body_part"], 2)
        clauses = [c for f in fields if (c := self._one_or_in(f))]
        return {"OR": clauses} if len(clauses) == 2 else None
