"""Names say what things are: no module, docstring, doc page or help text points at a
ticket ("issue 6", "issue9.py") in place of saying what the thing is."""

from __future__ import annotations

import re

from tests.import_graph import ROOT

TICKET = re.compile(r"\bissues?[ _-]?#?\d+|\(#\d+\)", re.IGNORECASE)
PLACES = ("schema", "adapters", "hub", "bench", "docs", "tests", "deploy", "scripts")
TEXT = {".py", ".md", ".toml", ".tmpl", ".html", ".js", ".css", ".yaml", ".yml", ".txt", ""}


def _files() -> list[str]:
    found = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for place in PLACES:
        found += [p for p in (ROOT / place).rglob("*") if p.is_file() and p.suffix in TEXT]
    return sorted(str(p.relative_to(ROOT)) for p in found if "__pycache__" not in p.parts)


def test_no_ticket_numbers() -> None:
    files = _files()
    assert "bench/__main__.py" in files and "docs/security.md" in files
    hits = [
        f"{name}:{number}: {line.strip()}"
        for name in files
        if name != "tests/test_wording.py"
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
        if TICKET.search(line)
    ]
    assert not hits, "say what it is, not which ticket it came from:\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should() -> None:
    for text in ("(issue 6)", "bench/issue9.py", "Issue-2", "issues 3", "fixed in (#12)"):
        assert TICKET.search(text), text
    for text in ("the token was not issued by", "issuer = 1", "Chest Routine #2"):
        assert not TICKET.search(text), text
