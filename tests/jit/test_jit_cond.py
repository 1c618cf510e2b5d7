"""Conds compiled as native branches (jit/conditional.py) against the reference executor `ir.run_trace`,
on traces built by hand: alone and in loop bodies (trip counts 0..large), array results written into
a carried buffer, guards inside branches with their global numbers, and the value-and-gradient traces
of the cond AD programs (taped and checkpointed loops)."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, autodiff, loop_tape, passes, run_trace
from jitgrad.jit import compile_trace
from cond_traces import clipped, guarded_branches, make_cond, signed_sum, unsafe_sides
from loop_traces import AT_I, F64, make_loop, scalar
from test_jit_loops import TRIPS, check
from test_loop_ad import with_scalar_output


def test_only_the_taken_branch_runs_natively():
    trace = unsafe_sides()
    kernel = compile_trace(trace)
    for x, y in ((1.5, 2.0), (-0.5, 3.0), (0.0, 1.0)):
        args = [np.float64(x), np.float64(y)]
        got = kernel(args)[0]
        assert np.isfinite(got) or x == 0.0
        np.testing.assert_array_equal(got, run_trace(trace, args)[0])


@pytest.mark.parametrize("trip", TRIPS)
def test_flipping_branch_in_a_loop_body(trip):
    x = np.random.default_rng(trip).normal(size=trip + 1)
    check(signed_sum(trip), [x, np.float64(0.7)])


@pytest.mark.parametrize("trip", TRIPS)
def test_both_branches_feed_a_carried_array(trip):
    check(clipped(trip), [np.float64(0.6), np.float64(1.3)])


def array_branches(n):
    """inputs (v[n], x[n]): v <- v * 2 if sum(v) < 10 else v - x, written into row i of a carried
    matrix by both branches (index_set of an array result)."""
    b = Builder()
    v0, x = b.input((n,), F64), b.input((n,), F64)

    def step(bb, i, cs, vs):
        (v, rows), (x,) = cs, vs
        small = bb.less(bb.sum(v, axis=(0,), keepdims=False), scalar(bb, 10.0))
        v2, rows2 = make_cond(bb, small, [v, rows, x, i],
                              lambda b2, a: [b2.multiply(a[0], scalar(b2, 2.0)),
                                             b2.index_set(a[1], b2.multiply(a[0], scalar(b2, 2.0)), a[3], spec=AT_I)],
                              lambda b2, a: [b2.subtract(a[0], a[2]),
                                             b2.index_set(a[1], b2.subtract(a[0], a[2]), a[3], spec=AT_I)])
        return [v2, rows2], []
    _, (v, rows) = make_loop(b, [v0, b.fill((12, n), F64, 0.0)], [x], 12, step)
    return b.build([v, rows])


@pytest.mark.parametrize("n", [3, 40])
def test_array_results_written_by_either_branch(n):
    rng = np.random.default_rng(n)
    check(array_branches(n), [rng.uniform(0.1, 0.5, n), rng.uniform(0.5, 3.0, n)])


def test_guards_in_branches_report_their_global_number():
    trace = guarded_branches()
    kernel = compile_trace(trace)
    check(trace, [np.float64(2.0)])
    check(trace, [np.float64(-4.0)])
    for x, index in ((11.0, 0), (7.0, 1), (-1.0, 2), (-4.5, 3)):
        with pytest.raises(GuardFailed) as failed:
            kernel([np.float64(x)])
        assert failed.value.index == index
        with pytest.raises(GuardFailed) as reference:
            run_trace(trace, [np.float64(x)])
        assert reference.value.index == index


@pytest.mark.parametrize("name", ["unsafe_sides", "signed_sum", "clipped", "array_branches"])
@pytest.mark.parametrize("tape", ["taped", "checkpointed"])
def test_value_and_grad_compiled(name, tape, monkeypatch):
    if tape == "checkpointed":
        monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    make = {"unsafe_sides": unsafe_sides, "signed_sum": lambda: signed_sum(30), "clipped": lambda: clipped(25),
            "array_branches": lambda: array_branches(4)}[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(4)
    wrt = [k for k, v in enumerate(trace.inputs) if v.dtype.kind == "f"]
    vg = autodiff.value_and_grad(trace, wrt, out=len(trace.outputs) - 1)
    for args in ([rng.uniform(-1, 1, v.shape) if v.ndim else np.float64(rng.uniform(-1, 1)) for v in trace.inputs],
                 [rng.uniform(0.2, 0.6, v.shape) if v.ndim else np.float64(rng.uniform(0.2, 0.6))
                  for v in trace.inputs]):
        for t in (vg, passes.optimize(vg)):
            check(t, args, rtol=1e-12)
