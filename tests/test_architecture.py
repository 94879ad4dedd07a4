"""The layout is the architecture: no import cycles, subsystems at the top of ``edge``.

Every ``import`` statement in ``edge/`` and ``export/`` counts, including those inside
functions (a function-local import hides a cycle from Python, not from this test): the
module graph must have no strongly connected component larger than one module.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.data import REPO

PACKAGES = ("edge", "export")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in ``path`` (``from a import b`` counts ``a.b`` when
    ``b`` is a module, else ``a``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in modules:
                    out.add(child)
                elif node.module in modules:
                    out.add(node.module)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_in_edge_and_export():
    modules = _modules()
    assert len(modules) > 80, "the module scan found too little: wrong root?"
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_edge_shows_subsystems_not_stages():
    """``ls edge``: the subsystem packages, the CLI entry points and the shared error types."""
    modules = sorted(p.name for p in (REPO / "edge").glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py", "errors.py"]
    packages = {p.name for p in (REPO / "edge").iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"station", "models", "beach", "gpr", "config", "commands", "hub"}
