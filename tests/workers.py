"""What the xdist workers of one test run share: a directory, and builds done once.

Each worker is its own pytest session with its own base temp dir, so session fixtures
run once per worker. A build too slow to repeat (the IDC corpora) is made once per run
in the run's shared directory, under a file lock: the first worker to take the lock
builds, the others wait for it and reuse the result.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory every worker of this run sees (the controller's base temp dir)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """`build(target)` run once per test run, whichever worker asks first; its target.

    A marker file records success, so a build that failed half-way (its worker crashed,
    or it raised) is started again from scratch by the next worker that asks."""
    shared = run_dir(tmp_path_factory) / "shared"
    shared.mkdir(exist_ok=True)
    target, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target
