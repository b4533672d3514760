"""No import cycles: read every ``import`` of the package (module level and inside functions)
and check that no two subpackages, and no two modules, import each other."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def imports() -> dict[str, set[str]]:
    """``{module: the unmask modules it imports}`` over ``src/unmask``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in (SRC / "unmask").rglob("*.py"):
        module = ".".join(path.with_suffix("").relative_to(SRC).parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unmask"):
                graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name for a in node.names if a.name.startswith("unmask")}
    return graph


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (self-loops left out)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt == node:
                continue
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_two_modules_import_each_other():
    # (``from unmask.figures import fig_x`` in the package's own __init__ is a self-loop, left out)
    assert cycles(imports()) == []


def test_no_two_subpackages_import_each_other():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        graph[package(module)] |= {package(t) for t in targets if package(t) != package(module)}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
