"""`imaging-hub adapter new NAME`: write an adapter package from the bundled template.

The template (hub/templates/adapter, shipped as package data) is a working adapter for a
small JSON REST API, with respx fixtures and the conformance kit wired in, so a maintainer
starts from passing tests and changes them into their archive's API one step at a time.
Files are rendered with `string.Template` (`$name`, `$package`, `$class_name`, ...).
"""

from __future__ import annotations

import keyword
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from adapters.registry import discover_adapters

NAME = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
MAX_NAME = 40
SUFFIX = ".tmpl"


class ScaffoldError(ValueError):
    """The package cannot be written; the message says what to change."""


def template_root() -> Traversable:
    """The bundled template, wherever the hub is installed (a wheel, editable, a zip)."""
    return files("hub").joinpath("templates", "adapter")


def names(name: str) -> dict[str, str]:
    """The template variables for an adapter NAME, after checking it."""
    if not NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise ScaffoldError(
            f"{name!r} is not a valid adapter name: use lower-case letters and digits, "
            f"words joined by '_' or '-', starting with a letter, at most {MAX_NAME} characters "
            "(e.g. 'acme' or 'city-pacs')"
        )
    slug = name.replace("-", "_")
    if keyword.iskeyword(slug):
        raise ScaffoldError(f"{name!r} is a Python keyword; choose another name")
    if slug in discover_adapters():
        raise ScaffoldError(
            f"an adapter named {slug!r} is already installed; choose a name of your own"
        )
    words = re.split(r"[_-]", name)
    title = " ".join(w.capitalize() for w in words)
    return {
        "name": slug,
        "package": f"{slug}_adapter",
        "class_name": "".join(w.title() for w in words) + "Adapter",
        "title": title,
        "env": slug.upper(),
    }


def new_adapter(name: str, target: Path | None = None) -> Path:
    """Write the package for NAME into `target` (default `./imaging-hub-NAME`); its path.

    Refuses to write into a directory that already holds anything.
    """
    variables = names(name)
    target = target or Path(f"imaging-hub-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty; nothing was written")
    rendered = dict(_render(template_root(), Path(), variables))
    for relative, text in rendered.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target


def _render(
    folder: Traversable, relative: Path, variables: dict[str, str]
) -> list[tuple[Path, str]]:
    """Every template file under `folder` as (output path, rendered text)."""
    out: list[tuple[Path, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = variables["package"] if entry.name == "package" else entry.name
        if entry.is_dir():
            out += _render(entry, relative / name, variables)
        elif entry.name.endswith(SUFFIX):
            text = Template(entry.read_text()).substitute(variables)
            out.append((relative / name.removesuffix(SUFFIX), text))
    return out
