"""No import cycle anywhere in ``tickstock/``.

Every ``import``/``from ... import`` of a tickstock module counts, at module level and inside
functions alike: a function-level import hides a cycle from the import machinery, not from the
reader. Only imports under ``if TYPE_CHECKING:`` are left out, since they never run.

An edge goes to the module named: ``from tickstock.auth import login_required`` is an edge to
``tickstock.auth``; ``from tickstock.queries import users`` is an edge to
``tickstock.queries.users``. Importing ``a.b.c`` first runs the packages ``a`` and ``a.b``, so
those are edges too, except for packages the importer itself lives in: they have started
already (counting them would make every package that re-exports its submodules a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tickstock

ROOT = Path(tickstock.__file__).parent


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    modules: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _import_nodes(ast.Module(body=[child], type_ignores=[]))
        else:
            yield from _import_nodes(node)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a tickstock module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tickstock modules ``module`` imports (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None:
                    found.add(target)
            continue
        if node.level:
            base_parts = package.split(".")
            if node.level > 1:
                base_parts = base_parts[: -(node.level - 1)]
            base = ".".join([*base_parts, node.module] if node.module else base_parts)
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            target = submodule if submodule in modules else _resolve(base, modules)
            if target is not None:
                found.add(target)
    for target in list(found):
        parts = target.split(".")
        for depth in range(1, len(parts)):
            ancestor = ".".join(parts[:depth])
            if ancestor in modules and not (module + ".").startswith(ancestor + "."):
                found.add(ancestor)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component."""
    return [_cycle_in(component, graph) for component in knots(graph)]


def knots(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm; the graph is small.
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # Module level, from the package's __init__ (blueprints use the auth package).
    assert "tickstock.auth" in graph["tickstock.blueprints.auth"]
    # Function level: the lazy create_app of the package.
    assert "tickstock.app" in graph["tickstock"]
    # A submodule's packages run first: an edge, unless the importer lives in that package.
    assert "tickstock.realtime" in graph["tickstock.app"]
    assert "tickstock.auth" not in graph["tickstock.auth.accounts"]


def test_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_tickstock() -> None:
    graph = import_graph()
    described = [
        f"{' -> '.join(_cycle_in(knot, graph))}\n  (all of: {', '.join(knot)})"
        for knot in knots(graph)
    ]
    assert not described, "import cycles in tickstock/:\n" + "\n".join(described)
