"""The passes seen through loop ops (ir/loop_passes.py): DCE of carries and outputs, bodies optimized
recursively, loop-invariant code hoisted, pass-through carries made invariants; every result checked
against the reference executor and the verifier."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, run_trace
from jitgrad.ir.loops import loops_in
from jitgrad.ir.passes import cse, dce, fold_constants, optimize, simplify
from jitgrad.ir.verify import verify
from loop_traces import F64, guarded, make_loop, nested, pendulum, pendulum_step, scalar

ARGS = [np.float64(0.7), np.float64(-0.2), np.float64(9.81), np.float64(0.3)]


def same_results(t1, t2, args):
    verify(t2)
    for a, b in zip(run_trace(t1, args), run_trace(t2, args)):
        np.testing.assert_array_equal(a, b)


def ops_of(trace):
    return [n.op for n in trace.nodes]


def test_dce_drops_unused_carries_and_outputs():
    t = pendulum(5)
    only_omega = type(t)(t.inputs, t.nodes, [t.outputs[1]])
    pruned = dce(only_omega)
    (loop,) = loops_in(pruned)
    body = loop.params["body"]
    # thetas (stacked) unused; theta is still needed by omega's update: 2 carries, no stacked output
    assert loop.params["n_carry"] == 2 and len(body.outputs) == 2
    assert "sum" not in ops_of(pruned)
    same_results(only_omega, pruned, ARGS)


def test_dce_drops_a_carry_dead_in_the_body_and_unused_after():
    b = Builder()
    x0, y0, k = (b.input((), F64) for _ in range(3))

    def step(bb, i, cs, vs):
        (x, y), (k,) = cs, vs
        return [bb.multiply(x, k), bb.add(y, bb.exp(x))], []
    _, (x, y) = make_loop(b, [x0, y0], [k], 4, step)
    t = b.build([x])
    pruned = dce(t)
    (loop,) = loops_in(pruned)
    assert loop.params["n_carry"] == 1 and "exp" not in ops_of(loop.params["body"])
    assert len(loop.args) == 2                 # x0 and k; y0 dropped
    same_results(t, pruned, [np.float64(1.5), np.float64(2.0), np.float64(0.9)])


def test_dce_drops_a_loop_nobody_reads_but_keeps_one_holding_guards():
    t = pendulum(3)
    assert loops_in(dce(type(t)(t.inputs, t.nodes, [t.inputs[0]]))) == []
    g = guarded(3)
    kept = dce(type(g)(g.inputs, g.nodes, [g.inputs[0]]))
    assert len(loops_in(kept)) == 1 and len(kept.guards) == 1
    with pytest.raises(GuardFailed):
        run_trace(kept, [np.float64(1000.0), np.float64(1.0)])


def test_invariant_code_is_hoisted_and_guards_stay():
    b = Builder()
    x0, k = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (x,), (k,) = cs, vs
        bb.guard(bb.less(k, scalar(bb, 10.0)), True, why="k < 10")     # depends on k only: stays
        factor = bb.exp(bb.multiply(k, scalar(bb, 0.5)))                  # hoisted
        return [bb.add(bb.multiply(x, factor), bb.astype(i, dtype=F64))], []
    _, (x,) = make_loop(b, [x0], [k], 6, step)
    t = b.build([x])
    opt = optimize(t)
    (loop,) = loops_in(opt)
    body_ops = ops_of(loop.params["body"])
    assert "exp" not in body_ops and "guard" in body_ops and "exp" in ops_of(opt)
    assert len(opt.guards) == 1
    same_results(t, opt, [np.float64(0.3), np.float64(0.4)])
    with pytest.raises(GuardFailed):
        run_trace(opt, [np.float64(0.3), np.float64(40.0)])


def test_pass_through_carry_becomes_an_invariant():
    b = Builder()
    x0, k0 = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        x, k = cs
        return [bb.multiply(x, bb.sin(k)), k], []       # k passed through unchanged
    _, (x, k) = make_loop(b, [x0, k0], [], 5, step)
    t = b.build([x, k])
    opt = optimize(t)
    (loop,) = loops_in(opt)
    assert loop.params["n_carry"] == 1 and "sin" not in ops_of(loop.params["body"])
    assert opt.outputs[1] is opt.inputs[1]              # the final k is k0
    same_results(t, opt, [np.float64(2.0), np.float64(0.8)])


def test_constants_fold_inside_the_body_not_across_it():
    b = Builder()
    x0 = b.input((), F64)
    two = b.fill((), F64, 2.0)

    def step(bb, i, cs, vs):
        (x,), (c,) = cs, vs
        return [bb.add(bb.multiply(x, bb.multiply(c, scalar(bb, 1.0))), scalar(bb, 0.5))], []
    _, (x,) = make_loop(b, [x0], [two], 3, step)
    t = b.build([x])
    opt = optimize(t)
    (loop,) = loops_in(opt)
    assert len(loop.args) == 1                           # the constant invariant moved into the body
    assert ops_of(loop.params["body"]).count("multiply") == 1
    same_results(t, opt, [np.float64(1.25)])
    for one_pass in (cse, simplify, fold_constants):
        same_results(t, one_pass(t), [np.float64(1.25)])


def test_cse_merges_inside_a_body_never_two_loops():
    b = Builder()
    x0 = b.input((), F64)

    def step(bb, i, cs, vs):
        (x,) = cs
        return [bb.add(bb.sin(x), bb.sin(x))], []

    def other(bb, i, cs, vs):
        (x,) = cs
        return [bb.add(bb.cos(x), bb.cos(x))], []
    _, (x1,) = make_loop(b, [x0], [], 3, step)
    _, (x2,) = make_loop(b, [x0], [], 3, other)
    t = b.build([b.add(x1, x2)])
    merged = cse(t)
    loops = loops_in(merged)
    assert len(loops) == 2
    assert [ops_of(loop.params["body"]).count(op) for loop, op in zip(loops, ("sin", "cos"))] == [1, 1]
    same_results(t, merged, [np.float64(0.4)])


@pytest.mark.parametrize("trip", [0, 1, 2, 3])
def test_short_trip_counts(trip):
    t = pendulum(trip)
    opt = optimize(t)
    same_results(t, opt, ARGS)
    if trip == 0:
        assert loops_in(opt) == []


def test_nested_loops_are_optimized_and_hoisted():
    t = nested(3, 4)
    opt = optimize(t)
    outer, inner = loops_in(opt)
    # w * x is invariant in the inner loop: hoisted into the outer body
    assert "multiply" not in ops_of(inner.params["body"])
    assert "multiply" in ops_of(outer.params["body"])
    args = [np.float64(0.3), np.float64(1.1)]
    np.testing.assert_allclose(run_trace(opt, args)[0], run_trace(t, args)[0], rtol=1e-14)
    verify(opt)


def test_unchanged_loop_is_kept_as_is():
    opt = optimize(pendulum(4))
    again = optimize(opt)
    assert all(x is y for x, y in zip(again.nodes, opt.nodes)) and len(again.nodes) == len(opt.nodes)


def test_pendulum_step_is_a_valid_body():
    b = Builder()
    ins = [b.input((), F64) for _ in range(4)]
    _, res = make_loop(b, ins[:2], ins[2:], 2, pendulum_step)
    verify(b.build(res[:2]))


def test_an_index_after_a_guard_is_not_hoisted_ahead_of_it():
    """x[j] with j an invariant is hoisted, unless a guard (here `j < 3`) comes first in the body: then
    a j out of bounds fails the guard, as the loop says, not the index."""
    b = Builder()
    s0, x, j = b.input((), F64), b.input((3,), F64), b.input((), np.intp)

    def step(bb, i, cs, vs):
        (s,), (x, j) = cs, vs
        bb.guard(bb.less(j, bb.const(np.intp(3))), True, why="j < 3")
        return [bb.add(s, bb.index(x, j, spec=(("array", 0),)))], []
    _, (s,) = make_loop(b, [s0], [x, j], 4, step)
    t = b.build([s])
    opt = optimize(t)
    (loop,) = loops_in(opt)
    assert "index" in ops_of(loop.params["body"])
    args = [np.float64(0.0), np.arange(3.0), np.intp(2)]
    same_results(t, opt, args)
    with pytest.raises(GuardFailed):
        run_trace(opt, [args[0], args[1], np.intp(5)])
