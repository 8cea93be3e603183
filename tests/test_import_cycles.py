"""The kubelite package has no import cycles.

Every module is parsed with ``ast`` (nothing is imported), and every import statement
counts: module level, inside functions, under ``if TYPE_CHECKING:``, absolute and
relative. An import names the most specific kubelite module it reaches
(``from kubelite.node import agent`` → ``kubelite.node.agent``; ``from kubelite.api.meta
import uid`` → ``kubelite.api.meta``). A strongly connected component of that graph with
more than one module, or a module importing itself, is a cycle: two parts of the code
that cannot be understood, tested or replaced one without the other.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = "kubelite"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """{dotted module name: file} for every .py file of the package."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import …`` written in ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]  # a plain module's dots count from its package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _innermost(name: str, modules: Mapping[str, object]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (None if outside the package)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, source: str, modules: Mapping[str, object], *, is_package: bool = False) -> set[str]:
    """The package modules ``module`` imports anywhere in ``source``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = _innermost(alias.name, modules)
                if hit:
                    found.add(hit)
        elif isinstance(node, ast.ImportFrom):
            origin = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                      else node.module or "")
            for alias in node.names:
                # `from pkg import mod` imports the submodule; `from mod import name` the module.
                hit = _innermost(f"{origin}.{alias.name}", modules) if alias.name != "*" else None
                hit = hit or _innermost(origin, modules)
                if hit:
                    found.add(hit)
    return found


def import_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    """{module: modules it imports} over the whole package."""
    return {name: imports_of(name, path.read_text(encoding="utf-8"), files, is_package=path.name == "__init__.py")
            for name, path in files.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components that are cycles (size > 1, or a self-import), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    # Tarjan's algorithm, iterative so a deep import chain cannot hit the recursion limit.
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    out.append(sorted(component))
    return sorted(out)


def _describe(component: list[str], graph: Mapping[str, Iterable[str]]) -> str:
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
    return "  cycle: " + ", ".join(component) + "\n" + "\n".join(edges)


# -- the cycle finder itself -----------------------------------------------------------

def test_cycle_finder_reports_a_three_module_ring_and_a_self_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]


def test_cycle_finder_accepts_a_diamond() -> None:
    graph = {"top": {"left", "right"}, "left": {"bottom"}, "right": {"bottom"}, "bottom": set()}
    assert cycles(graph) == []


def test_imports_are_found_in_functions_and_relative_forms() -> None:
    modules = {"pkg": 0, "pkg.sub": 0, "pkg.sub.a": 0, "pkg.sub.b": 0, "pkg.c": 0}
    source = (
        "from . import b\n"
        "def f():\n"
        "    from ..c import thing\n"
        "    import pkg.sub\n"
        "if True:\n"
        "    from pkg.sub.b import name\n"
        "import os\n"
    )
    assert imports_of("pkg.sub.a", source, modules) == {"pkg.sub.b", "pkg.c", "pkg.sub"}
    assert imports_of("pkg.sub", "from .a import x\nfrom . import b\n", modules, is_package=True) == {
        "pkg.sub.a", "pkg.sub.b"}


def test_a_function_local_import_closes_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "worker.py").write_text("def run():\n    from toy.agent import lookup\n    return lookup\n")
    (pkg / "agent.py").write_text("from toy.worker import run\n\ndef lookup():\n    return run\n")
    graph = import_graph(module_files(pkg, "toy"))
    assert cycles(graph) == [["toy.agent", "toy.worker"]]


# -- the package ---------------------------------------------------------------------------

def _package_cycles() -> tuple[dict[str, set[str]], list[list[str]]]:
    files = module_files()
    assert "kubelite.node.agent" in files and "kubelite.cli" in files  # the walk saw the package
    graph = import_graph(files)
    return graph, cycles(graph)


def test_kubelite_has_no_import_cycles() -> None:
    graph, found = _package_cycles()
    assert not found, "import cycles in kubelite:\n" + "\n".join(_describe(c, graph) for c in found)
