"""Nothing outside `hub/index/` knows which index backend it has: the hub's other modules
import only the backend-neutral part of `hub.index` (types, protocol, the factory, the
snapshot store), never a backend's modules, so they cannot branch on one or read its
internals. The one exception is each backend's settings table, which the configuration
reads (a leaf module: no client, no engine).
"""

from __future__ import annotations

import pytest

from tests.import_graph import Graph, build_graph

NEUTRAL = (
    "hub.index",
    "hub.index.base",
    "hub.index.protocol",
    "hub.index.open",
    "hub.index.snapshots",
)
"""What the rest of the hub may import of `hub.index`."""
SETTINGS = ("hub.index.elastic.settings",)
"""A backend's configuration table, read by `hub.config` and the registry's checks."""
FACTORY = "hub.index.open"


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def _outside_the_index(module: str) -> bool:
    return module.startswith("hub.") and not (
        module == "hub.index" or module.startswith("hub.index.")
    )


def test_only_the_index_package_imports_a_backend(graph: Graph) -> None:
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for module, edges in graph.edges.items()
        if _outside_the_index(module)
        for e in edges
        if e.target.startswith("hub.index") and e.target not in NEUTRAL + SETTINGS
    ]
    assert not wrong, "backend internals imported outside hub/index/:\n" + "\n".join(wrong)


def test_backends_do_not_import_each_other_and_only_the_factory_knows_both(
    graph: Graph,
) -> None:
    """The embedded and elastic packages share only the neutral modules; the factory is
    the one module that names both."""
    crossing = [
        f"{e.source}:{e.line} imports {e.target}"
        for module, edges in graph.edges.items()
        for mine, other in (("embedded", "elastic"), ("elastic", "embedded"))
        if module.startswith(f"hub.index.{mine}")
        for e in edges
        if e.target.startswith(f"hub.index.{other}")
    ]
    assert not crossing, "one backend imports the other:\n" + "\n".join(crossing)
    knowing_both = sorted(
        module
        for module in graph.modules
        if _outside_the_index(module) or module.count(".") == 2  # hub.index.<module>
        if not module.startswith(("hub.index.embedded", "hub.index.elastic"))
        and any(t.startswith("hub.index.embedded.") for t in graph.targets(module))
        and any(
            t.startswith("hub.index.elastic.") and t not in SETTINGS for t in graph.targets(module)
        )
    )
    assert knowing_both == [FACTORY], f"modules naming both backends: {knowing_both}"


def test_the_graph_sees_the_factorys_imports(graph: Graph) -> None:
    """The rules are not vacuous: the imports they forbid elsewhere are seen (the
    factory's are deferred into its function, and still counted)."""
    targets = graph.targets(FACTORY)
    assert "hub.index.embedded.backend" in targets and "hub.index.elastic.backend" in targets
    assert "hub.index.open" in graph.targets("hub.service")
