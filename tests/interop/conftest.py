"""The hub served for real: uvicorn on a free loopback port, over a writable copy of the
small real-IDC index, for clients that speak HTTP themselves (dicomweb-client, gql)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import hub_config
from tests.web.server import serve


@pytest.fixture(scope="session")
def hub_url(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("served") / "hub"
    shutil.copytree(small_data_dir, data_dir)
    with serve(hub_config(data_dir)) as url:
        yield url
