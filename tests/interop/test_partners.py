"""What partners run: the real `gql` client and `hub.client.HubClient` against the hub
served on loopback, paging a whole cohort and downloading its manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

from hub.client import HubClient, HubError

KITS = {"=": {"collection": "c4kc_kits"}}
PAGE = gql(
    """
    query Page($filter: JSON, $after: String) {
      cohort(filter: $filter) {
        counts { series }
        series(first: 100, after: $after) {
          nodes { seriesUid collection }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
    """
)


def test_gql_pages_through_a_cohort(hub_url: str) -> None:
    transport = HTTPXTransport(url=f"{hub_url}/graphql", timeout=60)
    with Client(transport=transport, fetch_schema_from_transport=True) as session:
        seen: list[str] = []
        after = None
        pages = 0
        while True:
            request = GraphQLRequest(PAGE, variable_values={"filter": KITS, "after": after})
            result = session.execute(request)
            cohort = result["cohort"]
            seen += [n["seriesUid"] for n in cohort["series"]["nodes"]]
            assert {n["collection"] for n in cohort["series"]["nodes"]} == {"c4kc_kits"}
            pages += 1
            if not cohort["series"]["pageInfo"]["hasNextPage"]:
                break
            after = cohort["series"]["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == cohort["counts"]["series"] and pages > 2
        with pytest.raises(TransportQueryError, match="unknown field"):
            session.execute(
                GraphQLRequest(PAGE, variable_values={"filter": {"=": {"colour": "red"}}})
            )


def test_hub_client_counts_pages_explains_and_exports(hub_url: str, tmp_path: Path) -> None:
    with HubClient(hub_url) as hub:
        counts = hub.counts(KITS)
        uids = [s["seriesUid"] for s in hub.series(KITS, fields=["seriesUid"], page_size=150)]
        assert len(uids) == len(set(uids)) == counts.series > 150
        (facet,) = hub.facets(["modality"], KITS)
        assert sum(facet.buckets.values()) + facet.missing == counts.series
        assert hub.explain(KITS)[0]["source"] == "idc"
        saved = hub.save_cohort(KITS)
        assert saved["counts"]["series"] == counts.series
        target = tmp_path / "kits.s5cmd"
        assert hub.export(target, "s5cmd", cohort=saved["id"]) == target.stat().st_size
        assert len(target.read_text().splitlines()) == counts.series
        with pytest.raises(HubError, match="unknown field"):
            hub.counts({"=": {"colour": "red"}})
        with pytest.raises(HubError, match="400: unknown export format"):
            hub.export(tmp_path / "x", "zip", KITS)
