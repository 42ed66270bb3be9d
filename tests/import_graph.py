"""The project's module import graph, read statically from the source with `ast`.

Why statically: importing every module to watch `sys.modules` would only see the edges
one import order happens to take, and a cycle Python resolves by luck (a partly
initialised module that already holds the name asked for) would go unseen.

What counts as an edge:
- every `import x` / `from x import y` in the module's body, in functions and in
  classes alike: an import deferred into a function still ties the two modules
  together, it only hides the cycle until that function runs, so it is a cycle here too;
- `from pkg import name` is an edge to `pkg.name` when that is a module, else to `pkg`;
- imports under `if TYPE_CHECKING:` are edges too, marked `typing`: they never run, but
  two modules that name each other's types still depend on each other, and such a pair is
  one refactoring away from a cycle that breaks at import time. `cycles(graph, typing=False)`
  leaves them out and answers only what Python would trip over;
- importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` too, but those edges are
  not added: a package's `__init__` that imports its own children would otherwise make
  every child that imports a sibling look like a cycle through the parent.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "adapters", "hub", "bench")


@dataclass(frozen=True)
class Edge:
    """One import: which module imports which, and where."""

    source: str
    target: str
    line: int
    deferred: bool
    """The import runs inside a function, not when the module loads."""
    typing: bool
    """The import is under `if TYPE_CHECKING:`: for the type checker only."""


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, list[Edge]] = field(default_factory=dict)
    """Imports of the project's own modules, by importing module."""
    imports: dict[str, list[Edge]] = field(default_factory=dict)
    """Every import by name, outside the project too (`tests.web.server`, `fastapi`)."""

    def targets(self, module: str, typing: bool = True) -> set[str]:
        return {e.target for e in self.edges.get(module, []) if typing or not e.typing}

    def edge(self, source: str, target: str) -> Edge:
        """The import that makes this hop, one that runs in preference to a typing one."""
        found = [e for e in self.edges[source] if e.target == target]
        return min(found, key=lambda e: (e.typing, e.deferred, e.line))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> Graph:
    graph = Graph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph.modules[module_name(path, root)] = path
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        found = [
            Edge(name, target, line, deferred, typing)
            for target, line, deferred, typing in _imports(tree, name, is_package, graph.modules)
            if target != name
        ]
        graph.imports[name] = found
        graph.edges[name] = [e for e in found if e.target in graph.modules]
    return graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


Found = tuple[str, int, bool, bool]
"""target, line, deferred, typing"""
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _imports(
    tree: ast.Module, module: str, is_package: bool, known: dict[str, Path]
) -> Iterator[Found]:
    def walk(node: ast.AST, deferred: bool, typing: bool) -> Iterator[Found]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for inner in child.body:
                    yield from walk_one(inner, deferred, True)
                for inner in child.orelse:
                    yield from walk_one(inner, deferred, typing)
                continue
            yield from walk_one(child, deferred, typing)

    def walk_one(child: ast.AST, deferred: bool, typing: bool) -> Iterator[Found]:
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield alias.name, child.lineno, deferred, typing
        elif isinstance(child, ast.ImportFrom):
            base = _resolve(child, module, is_package)
            for alias in child.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in known else base
                yield target, child.lineno, deferred, typing
        yield from walk(child, deferred or isinstance(child, FUNCTIONS), typing)

    yield from walk(tree, False, False)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def cycles(graph: Graph, typing: bool = True) -> list[list[str]]:
    """Cycles among the modules (`typing=False`: counting only imports that run): for
    every module on one, the shortest cycle through it, each cycle listed once.

    Every module that sits on a cycle is shown on at least one, so nothing hides behind
    another cycle of the same tangle; listing every elementary cycle would be too many.
    Each cycle starts at its alphabetically first module, so the report is stable.
    """
    found: dict[tuple[str, ...], list[str]] = {}
    for component in _components(graph, typing):
        for module in sorted(component):
            cycle = _shortest_cycle(graph, module, component, typing)[:-1]
            first = cycle.index(min(cycle))
            turned = cycle[first:] + cycle[:first]
            found.setdefault(tuple(turned), [*turned, turned[0]])
    return sorted(found.values())


def _components(graph: Graph, typing: bool) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph.targets(root, typing))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.targets(child, typing)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(component)
    return result


def _shortest_cycle(graph: Graph, start: str, component: set[str], typing: bool) -> list[str]:
    """Breadth-first from `start` back to itself, inside its component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph.targets(node, typing) & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def describe(graph: Graph, cycle: list[str]) -> str:
    """`a:12 -> b:40 (in a function) -> a`: each hop with the line of its import."""
    hops = []
    for source, target in itertools.pairwise(cycle):
        edge = graph.edge(source, target)
        where = " (TYPE_CHECKING)" if edge.typing else " (in a function)" if edge.deferred else ""
        hops.append(f"{source}:{edge.line}{where}")
    return " -> ".join([*hops, cycle[-1]])
