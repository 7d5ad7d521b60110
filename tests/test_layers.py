"""The package's layers, checked from the source's own imports (module-level and
function-level alike), so a change that breaks them fails here.

Layers, lowest first (a module may import its own layer and the layers below):

    core < data < models < backends < measure < results < gate < report < store < session < calibrate < cli

``compressors`` imports nothing of ``harness`` but ``harness.core``.  There are no
import circles between modules (the ``compressors.base`` ⇄ ``compressors.compose``
pair is the one allowed: a chain is a compressor and builds compressors).

``python tests/test_layers.py`` prints the numbers: modules per folder, imports
(and how many sit inside functions), circles, the deepest import chain.
"""
from __future__ import annotations

import ast
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "compressors")
LAYERS = ("core", "data", "models", "backends", "measure", "results", "gate", "report", "store", "session", "calibrate",
          "cli")
ALLOWED_CIRCLES = [{"compressors.base", "compressors.compose"}]


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported project module, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    in_function = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(fn)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, id(node) in in_function))
    return found


def graph() -> tuple[dict[str, set[str]], int, int]:
    """Module → imported project modules; all imports; function-level imports."""
    known = modules()
    edges: dict[str, set[str]] = {}
    total = in_functions = 0
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        fn_nodes = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
        total += sum(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        in_functions += len(fn_nodes)
        edges[name] = {t for t, _ in _imports(name, path, known)}
    return edges, total, in_functions


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int | None:
    """Rank of a ``harness`` module's layer (None for the package root and compressors)."""
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) < 2 or parts[1] == "__main__":
        return None if parts[:2] != ["harness", "__main__"] else LAYERS.index("cli")
    return LAYERS.index(parts[1])


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in sorted(edges.items()):
        for b in sorted(targets):
            if a.startswith("compressors") and b.startswith("harness") and not b.startswith("harness.core"):
                bad.append(f"{a} -> {b} (compressors may import harness.core only)")
            la, lb = layer(a), layer(b)
            if la is not None and lb is not None and lb > la:
                bad.append(f"{a} -> {b} ({LAYERS[la]} imports the higher layer {LAYERS[lb]})")
    return bad


def deepest_chain(edges: dict[str, set[str]]) -> list[str]:
    merged = {m: next((frozenset(c) for c in circles(edges) if m in c), frozenset({m})) for m in edges}

    @lru_cache(maxsize=None)
    def longest(node: frozenset) -> tuple[str, ...]:
        nxt = {merged[t] for m in node for t in edges[m]} - {node}
        best = max((longest(n) for n in nxt), key=len, default=())
        return (sorted(node)[0],) + best

    return list(max((longest(merged[m]) for m in edges), key=len))


def test_every_harness_module_is_in_a_layer():
    stray = [m for m in modules() if m.startswith("harness.") and m.split(".")[1] not in (*LAYERS, "__main__")]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


def test_no_module_imports_a_higher_layer():
    assert violations(graph()[0]) == []


def test_no_import_circles():
    assert [c for c in circles(graph()[0]) if c not in ALLOWED_CIRCLES] == []


def test_measure_and_gate_never_import_the_report():
    edges = graph()[0]
    bad = [(a, b) for a, ts in edges.items() for b in ts
           if a.startswith(("harness.measure", "harness.gate", "harness.results")) and b.startswith("harness.report")]
    assert bad == []


if __name__ == "__main__":
    edges, total, in_functions = graph()
    folders = Counter(str(modules()[m].parent.relative_to(ROOT)) for m in edges)
    print("modules per folder:", ", ".join(f"{k} {v}" for k, v in sorted(folders.items())))
    print(f"imports: {total}, inside functions: {in_functions} ({100 * in_functions / total:.0f}%)")
    print("circles:", [sorted(c) for c in circles(edges)] or "none")
    chain = deepest_chain(edges)
    print(f"deepest import chain: {len(chain)} modules: {' -> '.join(chain)}")
    for line in violations(edges):
        print("layer violation:", line)
