"""The dependency rules of DESIGN.md, checked on the source: no import cycles among the
project's modules, `schema <- adapters <- hub` with no arrow the other way, and reading the
configuration costs no web framework and no Elasticsearch client.

How the graph is read (TYPE_CHECKING imports and imports inside functions count, marked as
such in the report) is described in `tests/import_graph.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_graph import ROOT, Graph, build_graph, cycles, describe

LAYERS = {
    "schema": ("adapters", "hub", "bench", "tests"),
    "adapters": ("hub", "bench", "tests"),
    "hub": ("bench", "tests"),
}
"""What each package must never import: the arrows point only towards `schema`."""
HEAVY = ("fastapi", "starlette", "uvicorn", "elasticsearch", "elastic_transport")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def test_no_import_cycles(graph: Graph) -> None:
    assert len(graph.modules) > 100, "the project's modules were not found"
    found = cycles(graph)
    assert not found, f"{len(found)} import cycle(s):\n" + "\n".join(
        describe(graph, c) for c in found
    )


def test_layers_point_one_way(graph: Graph) -> None:
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for module, edges in graph.imports.items()
        for e in edges
        for forbidden in LAYERS.get(module.split(".")[0], ())
        if e.target == forbidden or e.target.startswith(forbidden + ".")
    ]
    assert not wrong, "imports against `schema <- adapters <- hub`:\n" + "\n".join(wrong)


def test_reading_the_configuration_loads_no_web_framework_or_cluster_client() -> None:
    """A fresh interpreter, so nothing another test imported is counted."""
    code = "import json, sys, hub.config; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    assert "hub.config" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"import hub.config loads {', '.join(heavy)}"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_graph_finds_every_kind_of_cycle(tmp_path: Path) -> None:
    """The check itself can fail: a made-up project with one cycle of each kind."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg import a\n",
            "pkg/a.py": "from pkg.b import thing\n",
            "pkg/b.py": "import pkg.a\nthing = 1\n",
            "pkg/c.py": "from typing import TYPE_CHECKING\n"
            "from . import d\n"
            "if TYPE_CHECKING:\n    from pkg.e import E\n",
            "pkg/d.py": "x = 1\n",
            "pkg/e.py": "from pkg import c\nclass E: ...\n",
            "pkg/f.py": "def later():\n    from .g import y\n    return y\n",
            "pkg/g.py": "from pkg.f import later\ny = 2\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/h.py": "from ..d import x\nfrom .i import z\n",
            "pkg/sub/i.py": "z = 3\n",
        },
    )
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.targets("pkg.sub.h") == {"pkg.d", "pkg.sub.i"}  # relative imports resolved
    assert graph.targets("pkg.c") == {"pkg.d", "pkg.e"}  # `from pkg import module`
    assert cycles(graph) == [
        ["pkg.a", "pkg.b", "pkg.a"],
        ["pkg.c", "pkg.e", "pkg.c"],
        ["pkg.f", "pkg.g", "pkg.f"],
    ]
    runs = [["pkg.a", "pkg.b", "pkg.a"], ["pkg.f", "pkg.g", "pkg.f"]]
    assert cycles(graph, typing=False) == runs
    typing, deferred = ["pkg.c", "pkg.e", "pkg.c"], ["pkg.f", "pkg.g", "pkg.f"]
    assert describe(graph, typing) == "pkg.c:4 (TYPE_CHECKING) -> pkg.e:1 -> pkg.c"
    assert describe(graph, deferred) == "pkg.f:2 (in a function) -> pkg.g:1 -> pkg.f"


def test_every_module_on_a_tangle_is_reported(tmp_path: Path) -> None:
    """Two cycles sharing a module: both are shown, not only the shortest."""
    _write(
        tmp_path,
        {
            "p/__init__.py": "",
            "p/hub.py": "import p.one\nimport p.two\n",
            "p/one.py": "import p.hub\n",
            "p/two.py": "import p.three\n",
            "p/three.py": "import p.hub\n",
        },
    )
    assert cycles(build_graph(tmp_path, ["p"])) == [
        ["p.hub", "p.one", "p.hub"],
        ["p.hub", "p.two", "p.three", "p.hub"],
    ]
