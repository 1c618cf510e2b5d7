"""The import structure of the package (DESIGN.md, "Where things live"): `tracer -> ir <- jit`, the
facade on top, no import cycle inside `ir/`, `jit/`, `tracer/` or `jitgrad/`; tracer/ in layers
(recording -> arrays -> interpretation -> rules -> the package itself), each importing only those below
it; and `jitgrad/` using only the tracer's public entry (`jitgrad.tracer`'s own names).

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
# tracer/'s layers, bottom up; its package __init__ (the public entry) is above them all.
TRACER_LAYERS = ("recording", "arrays", "interpretation", "rules")
TRACER = "jitgrad.tracer"


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
    assert "jitgrad.tracer.rules" in graph["jitgrad.tracer"]             # deferred, inside _load_rules


def test_strongly_connected_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected(graph, set(graph)))) == [["a", "b", "c"], ["d"]]


def test_no_import_cycle_in_ir():
    assert _cycles("ir") == []


def test_no_import_cycle_in_jit():
    assert _cycles("jit") == []


def tracer_layer(module):
    """The rank of tracer module `module` (0 = recording ... 3 = rules, 4 = the package itself)."""
    parts = module.split(".")
    if len(parts) == 2:
        return len(TRACER_LAYERS)
    assert parts[2] in TRACER_LAYERS, f"{module} is in no layer of tracer/ ({', '.join(TRACER_LAYERS)})"
    return TRACER_LAYERS.index(parts[2])


def upward_edges(graph):
    """The imports (module, target) inside tracer/ that run to a higher layer."""
    return sorted((m, t) for m, targets in graph.items() if _subsystem(m) == "tracer" for t in targets
                  if _subsystem(t) == "tracer" and tracer_layer(t) > tracer_layer(m))


def deep_tracer_imports(graph):
    """The imports (module, target) from the facade (jitgrad/) into the tracer other than its entry."""
    return sorted((m, t) for m, targets in graph.items() if _subsystem(m) == "jitgrad" for t in targets
                  if _subsystem(t) == "tracer" and t != TRACER)


def test_no_import_cycle_in_tracer():
    assert _cycles("tracer") == []


def test_no_import_cycle_in_the_facade():
    assert _cycles("jitgrad") == []


def test_every_tracer_module_is_in_a_layer():
    assert all(tracer_layer(m) >= 0 for m in import_graph() if _subsystem(m) == "tracer")


def test_tracer_layers_import_only_downwards():
    assert upward_edges(import_graph()) == []


def test_facade_uses_only_the_tracer_entry():
    assert deep_tracer_imports(import_graph()) == []


def test_the_checks_see_planted_violations():
    """Each check fails on a graph with one bad edge: upward (deferred or not, the graph has both), into
    the tracer's internals, or closing a cycle."""
    planted = {"jitgrad.tracer.recording.context": {"jitgrad.tracer.arrays.values"},
               "jitgrad.tracer.arrays.values": {"jitgrad.tracer.recording.context"},
               "jitgrad.api": {"jitgrad.tracer.arrays.values", "jitgrad.tracer"}}
    assert upward_edges(planted) == [("jitgrad.tracer.recording.context", "jitgrad.tracer.arrays.values")]
    assert deep_tracer_imports(planted) == [("jitgrad.api", "jitgrad.tracer.arrays.values")]
    assert len(strongly_connected(planted, set(planted) - {"jitgrad.api"})) == 1
    assert upward_edges({"jitgrad.tracer.rules.ufuncs": {"jitgrad.tracer"}}) != []


def test_traced_array_is_complete_in_its_own_module():
    """No module but tracer/arrays/values.py sets attributes of TracedArray (by setattr or assignment)."""
    offenders = []
    for path in sorted((ROOT / "tracer").rglob("*.py")) + sorted((ROOT / "jitgrad").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "tracer/arrays/values.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "TracedArray"
                   for t in targets) or (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr"
                                         and node.args and getattr(node.args[0], "id", None) == "TracedArray"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_subsystems_import_only_downwards():
    graph = import_graph()
    wrong = sorted((module, target) for module, targets in graph.items() for target in targets
                   if _subsystem(target) in FORBIDDEN.get(_subsystem(module), ()))
    assert wrong == []
