"""The import graph of services/: no cycles, and the gateway holds none of setup's step code.

Read from the source with `ast`, so an import inside a function (or under TYPE_CHECKING) counts
as much as one at the top: a cycle hidden in a function is still a knot (ARCHITECTURE.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from services.config import PROJECT_ROOT

# What the gateway may load of services.setup: agents.yaml's data (its MCP server list checked by
# setup.mcp, which imports nothing of setup's steps) and the setup status file.
GATEWAY_MAY_USE_OF_SETUP = {
    "services.setup",
    "services.setup.registry",
    "services.setup.mcp",
    "services.setup.status",
}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(
    node: ast.Import | ast.ImportFrom, here: str, is_package: bool, known: set[str]
) -> Iterator[str]:
    """The modules of `known` this import statement loads (`from services import x` loads services.x)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names if alias.name in known)
        return
    base = node.module or ""
    if node.level:  # relative: from the package this module is in
        package = here.split(".") if is_package else here.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    if base in known:
        yield base
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            yield f"{base}.{alias.name}"


def import_graph(root: Path = PROJECT_ROOT) -> dict[str, set[str]]:
    """services.* module → the services.* modules it imports, anywhere in its source."""
    paths = {module_name(root, p): p for p in sorted((root / "services").rglob("*.py"))}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(imported(node, name, path.name == "__init__.py", known))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycles_among_services() -> None:
    assert cycles(import_graph()) == []


def test_the_gateway_loads_nothing_of_setup_but_its_light_modules() -> None:
    graph = import_graph()
    gateway = {name for name in graph if name == "services.gateway" or name.startswith("services.gateway.")}
    loaded = reachable(graph, gateway)
    setup = {name for name in loaded if name == "services.setup" or name.startswith("services.setup.")}
    assert setup <= GATEWAY_MAY_USE_OF_SETUP, sorted(setup - GATEWAY_MAY_USE_OF_SETUP)
    assert "services.skills" not in loaded


def test_the_checker_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    # The checks above pass only if the parser sees what it must: a function-level import cycle.
    package = tmp_path / "services"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from services import b\n")
    (package / "b.py").write_text("def late() -> None:\n    from services.a import thing\n")
    (package / "c.py").write_text("import services.a\n")
    graph = import_graph(tmp_path)
    assert graph["services.c"] == {"services.a"}
    assert cycles(graph) == [["services.a", "services.b"]]
