"""The `guppy` fixture: both commons behind respx, answered by the stand-in Guppy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx

from tests.gen3.fake_guppy import FakeGuppy
from tests.gen3.support import MIDRC_URL, URL, fixture


@pytest.fixture
def guppy() -> Iterator[dict[str, FakeGuppy]]:
    """Both commons behind respx: BIH `imaging_series` and MIDRC `data_file`."""
    fakes = {
        "bih": FakeGuppy(fixture("bih_imaging_series.json"), "imaging_series"),
        "midrc": FakeGuppy(fixture("midrc_data_file.json"), "data_file"),
    }
    with respx.mock(assert_all_called=False) as router:
        for name, url in (("bih", URL), ("midrc", MIDRC_URL)):
            router.post(f"{url}/guppy/graphql", name=f"{name}-graphql").mock(
                side_effect=fakes[name].graphql
            )
            router.post(f"{url}/guppy/download", name=f"{name}-download").mock(
                side_effect=fakes[name].download
            )
        yield fakes
