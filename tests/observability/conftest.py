from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture()
def data_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the small index (live answers and audit files land in it)."""
    copy = tmp_path / "hub"
    shutil.copytree(small_data_dir, copy)
    return copy
