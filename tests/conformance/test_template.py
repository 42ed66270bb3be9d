"""`imaging-hub adapter new`: names are checked, nothing is overwritten, and the template
renders into a complete package that an installed hub ships (package data)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.scaffold import ScaffoldError, names, new_adapter, template_root

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def test_names_follow_from_the_slug() -> None:
    assert names("city-pacs") == {
        "name": "city_pacs",
        "package": "city_pacs_adapter",
        "class_name": "CityPacsAdapter",
        "title": "City Pacs",
        "env": "CITY_PACS",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Bad Name", "not a valid adapter name"),
        ("9lives", "not a valid adapter name"),
        ("a--b", "not a valid adapter name"),
        ("acme_", "not a valid adapter name"),
        ("x" * 41, "not a valid adapter name"),
        ("class", "Python keyword"),
        ("tcia", "already installed"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(
    name: str, reason: str, tmp_path: Path
) -> None:
    with pytest.raises(ScaffoldError, match=reason):
        names(name)
    result = runner.invoke(app, ["adapter", "new", name, "--dir", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert reason in " ".join(result.output.split())  # rich wraps long lines
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["adapter", "new", "acme", "--dir", str(target)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    (target / "mine.txt").unlink()
    assert new_adapter("acme", target) == target  # an empty directory is fine


def test_the_package_is_complete_and_fully_rendered(tmp_path: Path) -> None:
    target = new_adapter("city-pacs", tmp_path / "pkg")
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "city_pacs_adapter/__init__.py",
        "city_pacs_adapter/adapter.py",
        "pyproject.toml",
        "tests/fake_api.py",
        "tests/fixtures/series.json",
        "tests/test_adapter.py",
        "tests/test_conformance.py",
    ]
    for name in files:
        text = (target / name).read_text()
        assert not re.search(r"\$\{?[a-z_]+", text), f"unrendered variable in {name}"
        if name.endswith(".py"):
            compile(text, name, "exec")
    project = tomllib.loads((target / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["imaging_hub.adapters"]
    assert entry == {"city_pacs": "city_pacs_adapter.adapter:CityPacsAdapter"}
    assert (
        "class TestCityPacsAdapterConformance(AdapterConformance)"
        in (target / "tests" / "test_conformance.py").read_text()
    )


def test_every_template_file_is_package_data() -> None:
    """An installed (non-editable) hub must be able to render the template too."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["hub"]
    shipped = {p for pattern in patterns for p in (ROOT / "hub").glob(pattern)}
    folder = Path(str(template_root()))
    every = {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert every and every <= shipped
