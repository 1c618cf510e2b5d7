"""The import structure of the package (DESIGN.md, "Where things live"): `tracer -> ir <- jit`, the
facade on top, and no import cycle inside `ir/` or `jit/`.

Every module of tracer/, ir/, jit/ and jitgrad/ is parsed with `ast`; every import statement counts,
at any depth (deferred imports inside functions too), relative ones resolved against the module's
package.  `from M import name` is an edge to the submodule M.name when there is one, else to M.
"""
import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"jitgrad": "jitgrad", "tracer": "jitgrad.tracer", "ir": "jitgrad.ir", "jit": "jitgrad.jit"}
# Which subsystems each subsystem must not import (the facade, `jitgrad`, may import them all).
FORBIDDEN = {"ir": {"tracer", "jit", "jitgrad"}, "jit": {"tracer", "jitgrad"}, "tracer": {"jit", "jitgrad"}}
# tracer/ is still one import knot: its layering (recording -> arrays -> interpretation -> rules) is the
# work of a later session.  The target is no cycle at all; until then the knot must not grow.
TRACER_KNOT_LIMIT = 37


def _modules():
    """{dotted name: (path, whether it is a package __init__)} for every module of the four folders."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join([package] + (parts[:-1] if is_package else parts))
            modules[name] = (path, is_package)
    return modules


def _targets(node, name, is_package, modules):
    """The modules an import statement `node` of module `name` reaches."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = name.split(".") if is_package else name.split(".")[:-1]
        anchor = package[:len(package) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


@lru_cache(maxsize=None)
def import_graph():
    """{module: set of the modules of the four folders it imports} (computed once; not to be mutated)."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(t for t in _targets(node, name, is_package, modules) if t in modules and t != name)
        graph[name] = edges
    return graph


def strongly_connected(graph, nodes):
    """The strongly connected components (sets) of `graph` restricted to `nodes` (Tarjan, iterative)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root] & nodes)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = set()
                    while True:
                        u = stack.pop()
                        on_stack.discard(u)
                        component.add(u)
                        if u == v:
                            break
                    components.append(component)
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(graph[w] & nodes))))
            elif w in on_stack:
                low[v] = min(low[v], index[w])
    return components


def _subsystem(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FORBIDDEN else "jitgrad"


def _cycles(folder):
    graph = import_graph()
    nodes = {m for m in graph if _subsystem(m) == folder}
    return [sorted(c) for c in strongly_connected(graph, nodes) if len(c) > 1]


def test_graph_resolves_relative_and_deferred_imports():
    graph = import_graph()
    assert "jitgrad.ir.loops" in graph["jitgrad.ir.passes"]              # from .loops import has_loops
    assert "jitgrad.ir.loop_passes" in graph["jitgrad.ir"]                # from . import loop_passes
    assert "jitgrad.ir.printer" in graph["jitgrad.ir.value"]              # deferred, inside Trace.__str__
    assert "jitgrad.ir.rules" not in graph["jitgrad.tracer.rules"]        # no module of that name
    assert "jitgrad.ir.ops" in graph["jitgrad.tracer.rules.special"]     # from ...ir.ops import BESSEL


def test_strongly_connected_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected(graph, set(graph)))) == [["a", "b", "c"], ["d"]]


def test_no_import_cycle_in_ir():
    assert _cycles("ir") == []


def test_no_import_cycle_in_jit():
    assert _cycles("jit") == []


def test_tracer_import_knot_does_not_grow():
    """Target: no import cycle in tracer/ either (issue 9).  Not yet: tracer/ is one knot of mutually
    importing modules, to be layered (recording -> arrays -> interpretation -> rules) by a later
    session.  Until then its largest strongly connected component must not grow past today's size."""
    largest = max(map(len, _cycles("tracer")), default=0)
    assert largest <= TRACER_KNOT_LIMIT


def test_subsystems_import_only_downwards():
    graph = import_graph()
    wrong = sorted((module, target) for module, targets in graph.items() for target in targets
                   if _subsystem(target) in FORBIDDEN.get(_subsystem(module), ()))
    assert wrong == []
