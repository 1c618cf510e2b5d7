"""The JIT's planning step on its own (no LLVM text is emitted): what each value becomes, where buffers
live, horizontal groups, chunks, nested plans; and the jit/ import graph, which has no cycle."""
import ast
import pathlib
import sys

import numpy as np
import pytest

import loop_traces
from jitgrad.ir import Builder, run_trace
from jitgrad.jit import compile_trace
from jitgrad.jit.lower import lower
from jitgrad.jit.plan import CHUNK_OPS, RECOMPUTE_LIMIT, Plan

JIT = pathlib.Path(__file__).resolve().parents[2] / "jit"


def test_plan_kinds_buffers_and_in_place_updates():
    b = Builder()
    x, s = b.input((50,), np.float64), b.input((), np.float64)
    y = b.multiply(x, s)                                   # read once by z: fused
    z = b.exp(y)                                           # read twice, costs more than the limit: buffer
    r = b.sum(b.add(z, z), axis=(0,), keepdims=False)      # 0-d: register
    u = b.index_set(b.add(z, x), b.fill((), np.float64, 0.0), spec=(("int", 3),))
    w = b.index_set(u, b.fill((), np.float64, 1.0), spec=(("int", 4),))   # u dies here: in place
    trace = b.build([r, w])
    plan = Plan(trace)
    kind = {name: plan.kind[id(v)] for name, v in dict(x=x, s=s, y=y, z=z, r=r, u=u, w=w).items()}
    assert kind == dict(x="buf", s="buf", y="fused", z="buf", r="reg", u="buf", w="buf")
    assert plan.cost[id(z)] > RECOMPUTE_LIMIT
    assert plan.loc[id(x)] == ("arg", 0) and plan.loc[id(w)] == ("arg", 3)     # output 1, written directly
    assert plan.loc[id(z)][0] == "ws" and plan.loc[id(z)] != plan.loc[id(u)]
    offsets = [plan.loc[id(v)][1] for v in (z, u)]
    assert all(o % 64 == 0 for o in offsets) and plan.workspace.size >= 2 * 50 * 8
    # the same plan drives the emitter: the compiled kernel matches the reference executor
    inputs = [np.linspace(-1, 1, 50), np.float64(0.5)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_plan_groups_aligned_loops_and_cuts_chunks():
    b = Builder()
    x = b.input((1000,), np.float64)
    a = b.sin(x)
    c = b.cos(x)
    total = b.sum(b.multiply(a, c), axis=(0,), keepdims=False)
    trace = b.build([a, c, total])
    plan = Plan(trace)
    groups = [u for u in plan.units if len(u.nodes) > 1]
    assert len(groups) == 1 and groups[0].shape == (1000,)
    assert {n.op for n in groups[0].nodes} == {"sin", "cos", "sum"}
    assert groups[0].stored == {id(a), id(c), id(total)}      # all three are outputs: written

    b = Builder()
    y = b.input((), np.float64)
    for _ in range(3 * CHUNK_OPS):
        y = b.sin(y)
    plan = Plan(b.build([y]))
    assert sum(u.new_chunk for u in plan.units) == 3        # the copy of the output starts the fourth


def test_nested_plan_shares_the_workspace():
    b = Builder()
    x = b.input((8,), np.float64)
    outer = b.build([b.exp(b.exp(x))])
    body_builder = Builder()
    i, carry = body_builder.input((), np.intp), body_builder.input((8,), np.float64)
    body = body_builder.build([body_builder.sin(carry)])
    plan = Plan(outer)
    before = plan.workspace.size
    sub = plan.nest(outer.outputs[0], body)
    assert plan.nested[id(outer.outputs[0])] is sub and sub.parent is plan and sub.root is plan
    assert sub.workspace is plan.workspace and plan.workspace.size > before
    assert sub.loc[id(carry)][0] == "ws" and sub.loc[id(carry)][1] >= before   # no overlap
    assert sub.kind[id(i)] == "buf"


def test_loop_bodies_get_nested_plans():
    trace = loop_traces.nested(3, 2)                      # a loop whose body holds another loop
    plan = Plan(trace)
    (loop,) = [n for n in trace.nodes if n.op == "loop"]
    body_plan = plan.nested[id(loop)]
    (inner,) = [n for n in body_plan.trace.nodes if n.op == "loop"]
    assert body_plan.trace is loop.params["body"]
    inner_plan = body_plan.nested[id(inner)]
    assert inner_plan.trace is inner.params["body"]
    # a body is emitted as a function of its own (jit/loops.py): its own arguments and workspace
    assert body_plan.root is body_plan and inner_plan.root is inner_plan
    assert len({id(p.workspace) for p in (plan, body_plan, inner_plan)}) == 3


def test_long_fused_chain_plans_and_lowers_without_recursion():
    b = Builder()
    y = b.input((4,), np.float64)
    for _ in range(5000):
        y = b.add(b.multiply(y, b.fill((), np.float64, 0.999)), b.fill((), np.float64, 0.001))
    trace = b.build([b.sum(y, axis=(0,), keepdims=False)])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)              # nothing may recurse along the 10,000-node chain
    try:
        plan = Plan(trace)
        text, _ = lower(trace, "chain_probe")
    finally:
        sys.setrecursionlimit(limit)
    assert sum(plan.kind[id(n)] == "fused" for n in trace.nodes) >= 10000
    assert text.count("fmul") >= 5000


def _jit_imports():
    """module -> set of jit modules it imports (top-level and deferred imports alike)."""
    graph = {}
    for path in JIT.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[path.stem] = {d for d in deps if (JIT / f"{d}.py").exists()}
    return graph


def test_jit_modules_import_without_cycles():
    graph = _jit_imports()
    assert "lower" not in graph["rules"] and "rules" in graph["emit"]
    assert graph["abi"] == set()
    state = {}

    def visit(start):                       # iterative depth-first search for a back edge
        stack = [(start, iter(sorted(graph[start])))]
        state[start] = "open"
        while stack:
            module, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                state[module] = "done"
                stack.pop()
            elif state.get(dep) == "open":
                raise AssertionError(f"import cycle through {module} -> {dep}")
            elif dep not in state:
                state[dep] = "open"
                stack.append((dep, iter(sorted(graph[dep]))))
    for module in sorted(graph):
        if module not in state:
            visit(module)


def _stages(b, x, n):
    """n values each made from the previous one read twice, once transposed (so each is a buffer,
    dies two stages later, and is read at other indices than the loop writing its successor)."""
    values = [x]
    for k in range(n):
        v = values[-1]
        values.append(b.multiply(b.tanh(b.transpose(v, perm=(1, 0))), b.add(v, b.const(0.1 * k))))
    return values[1:]


def test_buffers_share_bytes_when_their_lives_do_not_overlap():
    b = Builder()
    x = b.input((24, 24), np.float64)
    values = _stages(b, x, 8)
    total = b.sum(values[-1], axis=(0, 1), keepdims=False)
    trace = b.build([total, b.sum(values[3], axis=(0,), keepdims=False)])
    plan = Plan(trace)
    assert all(plan.kind[id(v)] == "buf" for v in values[:-1])    # (the last is read once: fused)
    offsets = [plan.loc[id(v)][1] for v in values[:-1]]
    assert len(set(offsets)) < len(offsets) and plan.peak_bytes < plan.unshared_bytes
    assert plan.workspace.size == plan.peak_bytes <= 3 * -(-24 * 24 * 8 // 64) * 64
    for v, w in zip(values, values[1:-1]):      # a stage reads its predecessor: never the same bytes
        assert plan.loc[id(v)] != plan.loc[id(w)]
    inputs = [np.random.default_rng(5).normal(size=(24, 24))]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_in_place_updates_on_reused_bytes_and_gemm_operands_stay_apart():
    """An index_add whose operand dies updates it in place, in bytes an earlier dead buffer had; a
    matrix product never writes over its operands."""
    b = Builder()
    x, y = b.input((32, 32), np.float64), b.input((5,), np.float64)
    first, second, third = _stages(b, x, 3)
    once = b.index_add(third, y, spec=(("int", 2), ("slice", 0, 5, 1)))      # third is fused: a new buffer
    updated = b.index_add(once, y, spec=(("int", 7), ("slice", 3, 5, 1)))   # once dies here: in place
    product = b.dot_general(updated, updated, contract=((1,), (0,)), batch=((), ()))
    trace = b.build([b.sum(b.tanh(product), axis=(0, 1), keepdims=False)])
    plan = Plan(trace)
    assert plan.kind[id(third)] == "fused" and plan.loc[id(updated)] == plan.loc[id(once)] == plan.loc[id(first)]
    assert id(product) in plan.gemm and plan.loc[id(product)] != plan.loc[id(updated)]
    rng = np.random.default_rng(6)
    inputs = [rng.normal(size=(32, 32)), rng.normal(size=5)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12)



def _row_softmax_step(variant):
    """u = X W1 (a BLAS product: its own unit), then a row group computing g = softmax(u) - u (or a
    variant), read by a second product; (trace, u, g)."""
    b = Builder()
    x, w1, w2 = b.input((24, 16), np.float64), b.input((16, 24), np.float64), b.input((24, 20), np.float64)
    u = b.dot_general(x, w1, contract=((1,), (0,)), batch=((), ()))
    e = b.exp(b.subtract(u, b.max(u, axis=(1,), keepdims=True)))
    subtrahend = b.transpose(u, perm=(1, 0)) if variant == "transposed" else u
    g = b.subtract(b.divide(e, b.sum(e, axis=(1,), keepdims=True)), subtrahend)
    outputs = [b.dot_general(g, w2, contract=((1,), (0,)), batch=((), ()))]
    if variant == "read after":             # a row sum of the group reads u after g is stored
        outputs.append(b.sum(b.multiply(g, b.exp(u)), axis=(1,), keepdims=False))
    if variant == "read later":             # a later unit reads u
        outputs.append(b.dot_general(u, w2, contract=((1,), (0,)), batch=((), ())))
    return b.build(outputs), u, g


@pytest.mark.parametrize("variant", ["aligned", "read after", "transposed", "read later"])
def test_a_loop_unit_writes_over_the_buffer_it_reads_last_only_when_aligned(variant):
    """The softmax-gradient shape: g overwrites the buffer of u (the row still in L1) when the row group
    is the last to read u and reads it only at g's own index before storing g; a member reading u
    after g, a transposed read or a later reader keep them apart.  Compiled = the reference."""
    trace, u, g = _row_softmax_step(variant)
    plan = Plan(trace)
    assert any(unit.phases and g in unit.nodes for unit in plan.units)
    assert (plan.loc[id(g)] == plan.loc[id(u)]) == (variant == "aligned")
    assert (plan.peak_bytes < 2 * g.size * 8) == (variant == "aligned")
    rng = np.random.default_rng(8)
    inputs = [rng.normal(size=a.shape) for a in trace.inputs]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("transposed_reader", [False, True])
def test_one_elementwise_node_writes_over_the_operand_it_reads_last(transposed_reader):
    b = Builder()
    x, w = b.input((30, 20), np.float64), b.input((20, 30), np.float64)
    u = b.dot_general(x, w, contract=((1,), (0,)), batch=((), ()))
    z = b.multiply(b.tanh(u), b.fill((), np.float64, 2.0))            # read at z's own index
    outputs = [b.dot_general(z, z, contract=((1,), (0,)), batch=((), ()))]
    if transposed_reader:                                             # u is read after z: apart
        zt = b.add(b.tanh(b.transpose(u, perm=(1, 0))), b.fill((30, 30), np.float64, 1.0))
        outputs.append(b.dot_general(zt, zt, contract=((1,), (0,)), batch=((), ())))
    trace = b.build(outputs)
    plan = Plan(trace)
    assert (plan.loc[id(z)] == plan.loc[id(u)]) != transposed_reader
    inputs = [np.random.default_rng(9).normal(size=a.shape) for a in trace.inputs]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_plans_with_nested_traces_keep_one_range_per_buffer():
    """A loop's body may plan into the workspace of the trace around it: no sharing there."""
    trace = loop_traces.array_rnn(5)
    plan = Plan(trace)
    assert any(n.op == "loop" for n in trace.nodes) and plan.peak_bytes == plan.unshared_bytes
