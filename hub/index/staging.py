"""Files and folders written under a temporary name, renamed when complete, and the
clean-up of what older writes left behind.

Snapshots (`sources/<name>/snapshot-*.parquet`) and index generations (`index/gen-*`)
are both written as `<final>.partial` and renamed into place. A writer killed half-way
(SIGKILL, OOM, power) never reaches its own clean-up, so the next writer removes every
entry of the family but the one to keep: finished ones it replaces and partial ones
nobody is writing any more. A writer that is still running holds an `flock` on its
file (`writing`), which the kernel drops when its process dies: such a file is left.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial"


def partial_of(final: Path) -> Path:
    """Where `final` is written until it is complete."""
    return final.with_name(final.name + PARTIAL)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Hold `path` (created if need be) as in use for the block, so that `remove_all_but`
    in another writer, thread or process, leaves it; the lock follows a rename."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_all_but(folder: Path, pattern: str, keep: str | None) -> list[str]:
    """Remove every entry of `folder` matching `pattern` (finished or partial) except the
    one named `keep` and files held by a running writer; the names removed."""
    removed = []
    for entry in sorted(folder.glob(pattern)):
        if entry.name == keep or _in_use(entry):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def _in_use(entry: Path) -> bool:
    if entry.is_dir():
        return False
    try:
        fd = os.open(entry, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
