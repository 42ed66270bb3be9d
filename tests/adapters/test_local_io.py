"""Local reads map to typed source errors with safe messages, as HTTP ones do in `send()`.

Real files and a real DuckDB: a missing or unreadable file, a file that is not parquet,
a query DuckDB refuses. No message may quote a path or SQL; a read that may succeed
again is transient; anything that is neither OSError nor DuckDB passes through.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import duckdb
import pytest

from adapters.idc import IdcAdapter
from adapters.local_io import local_errors
from adapters.spi import Page, SourceSettings, TerminalSourceError, TransientSourceError
from schema.filters import parse_filter

SECRET_DIR = "private-cohort-dir"


def test_a_missing_file_is_terminal_and_its_path_is_not_quoted(tmp_path: Path) -> None:
    missing = tmp_path / SECRET_DIR / "gone.parquet"
    with pytest.raises(TerminalSourceError) as raised, local_errors("src", "reading the file"):
        missing.read_bytes()
    assert str(raised.value) == "src: reading the file: cannot read it (No such file or directory)"


def test_a_directory_read_as_a_file_is_terminal(tmp_path: Path) -> None:
    with pytest.raises(TerminalSourceError, match="Is a directory"), local_errors("src", "file"):
        tmp_path.read_bytes()


@pytest.mark.parametrize("code", [errno.EAGAIN, errno.EINTR, errno.EIO, errno.ESTALE])
def test_a_read_that_may_succeed_again_is_transient(code: int) -> None:
    with pytest.raises(TransientSourceError), local_errors("src", "file"):
        raise OSError(code, "interrupted", f"/{SECRET_DIR}/x")


def test_duckdb_refusing_a_file_is_terminal_without_its_text(tmp_path: Path) -> None:
    bogus = tmp_path / SECRET_DIR
    bogus.mkdir()
    (bogus / "not.parquet").write_text("hello")
    conn = duckdb.connect(":memory:")
    with pytest.raises(TerminalSourceError) as raised, local_errors("src", "querying"):
        conn.execute(f"SELECT * FROM read_parquet('{bogus / 'not.parquet'}')").fetchall()
    assert SECRET_DIR not in str(raised.value) and "read_parquet" not in str(raised.value)
    assert str(raised.value).startswith("src: querying")


def test_a_bad_query_is_terminal_and_its_sql_is_not_quoted() -> None:
    conn = duckdb.connect(":memory:")
    with pytest.raises(TerminalSourceError) as raised, local_errors("src", "querying"):
        conn.execute("SELECT pt_secret_col FROM nowhere_table").fetchall()
    assert str(raised.value) == "src: querying failed (DuckDB CatalogException)"


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), local_errors("src", "querying"):
        raise KeyError("a bug, for the fetch boundary to report")


def test_idc_over_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    bogus = tmp_path / SECRET_DIR / "idc_index.parquet"
    bogus.parent.mkdir()
    bogus.write_bytes(b"PAR1 but not really")
    settings = SourceSettings(
        name="idc", adapter="idc", index_parquet=str(bogus), collections_parquet=str(bogus)
    )
    adapter = IdcAdapter(settings)

    async def search() -> None:
        translation = adapter.translate(parse_filter(None))
        try:
            await adapter.search(translation, Page(size=10))
        finally:
            await adapter.aclose()

    with pytest.raises(TerminalSourceError) as raised:
        asyncio.run(search())
    assert SECRET_DIR not in str(raised.value)
    assert str(raised.value).startswith("idc: opening the IDC parquet files")
