"""Small conds made branch-free before lowering (ir/cond_passes.py's if_converted, jit/conditional.py's
flattened) and the tape slots of differentiated conds (ir/cond_ad.py): the converted trace against the
original by the reference executor, compiled kernels (converted, or not) against the reference executor,
gradients against central differences, guards inside converted branches failing only on the side taken
and with their own numbers, conds that must stay branches (index arrays, loops inside), nested conds."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, autodiff, passes, run_trace
from jitgrad.ir.cond_passes import branch_free, if_converted
from jitgrad.ir.loops import COUNTER_DTYPE
from jitgrad.ir.verify import verify
from jitgrad.jit import compile_trace, conditional
from cond_traces import clipped, guarded_branches, make_cond, signed_sum, unsafe_sides
from gradcheck import check_vjp
from loop_traces import AT_I, F64, make_loop, scalar
from test_loop_ad import with_scalar_output


def every(branches):
    return True


def conds_anywhere(trace):
    """How many cond nodes `trace` holds, in loop bodies and branches too."""
    n = 0
    for node in trace.nodes:
        n += node.op == "cond"
        for t in node.params.get("branches", ()) + ((node.params["body"],) if node.op == "loop" else ()):
            n += conds_anywhere(t)
    return n


def same_results(a, b, args):
    for x, y in zip(run_trace(a, args), run_trace(b, args)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def flipping(n, seed):
    """x[n + 1] whose signs flip every iteration, and a w."""
    x = np.abs(np.random.default_rng(seed).normal(size=n + 1)) + 0.1
    x[1::2] *= -1
    return [x, np.float64(0.7)]


@pytest.mark.parametrize("args", [flipping(9, 0), [np.full(10, 0.5), np.float64(0.7)],
                                  [np.full(10, -0.5), np.float64(0.7)]], ids=["flipping", "all true", "all false"])
def test_a_cond_in_a_loop_body_becomes_straight_line(args):
    trace = signed_sum(9)
    flat = if_converted(trace, every)
    verify(flat)
    assert conds_anywhere(trace) == 1 and conds_anywhere(flat) == 0
    assert "where" in [n.op for n in [n for n in flat.nodes if n.op == "loop"][0].params["body"].nodes]
    same_results(trace, flat, args)


def test_nothing_to_convert_returns_the_trace_itself():
    trace = signed_sum(4)
    assert if_converted(trace, lambda branches: False) is trace
    b = Builder()
    x = b.input((), F64)
    plain = b.build([b.exp(x)])
    assert if_converted(plain, every) is plain


def test_the_untaken_side_poisons_nothing_when_converted():
    """log(-x) on the side not taken is NaN: the converted kernel's value and gradient stay finite."""
    trace = unsafe_sides()
    vg = autodiff.value_and_grad(trace, [0, 1])
    flat = if_converted(vg, every)
    assert conds_anywhere(vg) == 2 and conds_anywhere(flat) == 0
    for x in (1.5, -0.5):
        args = [np.float64(x), np.float64(2.0)]
        want = run_trace(vg, args)
        with np.errstate(invalid="ignore", divide="ignore"):
            got = run_trace(flat, args)
        assert all(np.isfinite(v) for v in got)
        np.testing.assert_allclose(got, want, rtol=1e-15)


def guarded_loop(n):
    """inputs (x[n + 1],): s += x[i] * x[i] if x[i] > 0 (guard: x[i] < 5) else s -= x[i] (guard: x[i] > -3)."""
    b = Builder()
    x = b.input((n + 1,), F64)

    def side(limit, above):
        def make(bb, a):
            bb.guard((bb.greater if above else bb.less)(a[1], scalar(bb, limit)), True, why=f"limit {limit}")
            return [bb.add(a[0], bb.multiply(a[1], a[1])) if not above else bb.subtract(a[0], a[1])]
        return make

    def step(bb, i, cs, vs):
        (s,), (x,) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        (nxt,) = make_cond(bb, bb.greater(xi, scalar(bb, 0.0)), [s, xi], side(5.0, False), side(-3.0, True))
        return [nxt], []
    _, (s,) = make_loop(b, [scalar(b, 0.0)], [x], n, step)
    return b.build([s])


@pytest.mark.parametrize("convert", [True, False])
def test_guards_of_converted_branches_fail_only_on_the_side_taken(convert, monkeypatch):
    """x[i] = 7 fails the true side's guard (< 5) only when taken; -4 the false side's (> -3); 7 and -4
    on the sides that do not check them pass.  The compiled kernel (converted or not) reports the guard
    numbers of the reference executor."""
    monkeypatch.setenv("JITGRAD_IF_CONVERT_COST", "1000" if convert else "0")
    trace = guarded_loop(4)
    flat = conditional.flattened(trace, lambda n: 1)
    assert conds_anywhere(flat) == (0 if convert else 1)
    kernel = compile_trace(trace)
    fine = np.array([1.0, -2.0, 4.0, -1.0, 9.0])
    for args, index in (([fine], None), ([np.array([1.0, 7.0, 2.0, -1.0, 0.0])], 0),
                        ([np.array([1.0, -4.0, 2.0, -1.0, 0.0])], 1)):
        for run in (lambda a: run_trace(trace, a), lambda a: run_trace(flat, a), kernel):
            if index is None:
                np.testing.assert_allclose(run(args)[0], run_trace(trace, args)[0], rtol=1e-15)
                continue
            with pytest.raises(GuardFailed) as failed:
                run(args)
            assert failed.value.index == index


def test_guard_numbers_around_a_converted_cond_are_kept():
    trace = guarded_branches()
    flat = if_converted(trace, every)
    assert conds_anywhere(flat) == 0
    assert [g.params["why"] for g in flat.guards] == ["first", "< 5.0", "< -3.0", "last"]
    for x, index in ((11.0, 0), (7.0, 1), (-1.0, 2), (-4.5, 3), (2.0, None), (-4.0, None)):
        for t in (trace, flat):
            if index is None:
                assert run_trace(t, [np.float64(x)])[0] == x * x
                continue
            with pytest.raises(GuardFailed) as failed:
                run_trace(t, [np.float64(x)])
            assert failed.value.index == index


def nested(n):
    """s += (x if x > 1 else 2x) if x > 0 else (-x if x > -1 else x * x), over x[i]."""
    b = Builder()
    x = b.input((n,), F64)

    def inner(limit, yes, no):
        return lambda bb, a: make_cond(bb, bb.greater(a[1], scalar(bb, limit)), a, yes, no)

    def step(bb, i, cs, vs):
        (s,), (x,) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        (v,) = make_cond(bb, bb.greater(xi, scalar(bb, 0.0)), [s, xi],
                         inner(1.0, lambda b2, a: [a[1]], lambda b2, a: [b2.multiply(scalar(b2, 2.0), a[1])]),
                         inner(-1.0, lambda b2, a: [b2.negative(a[1])], lambda b2, a: [b2.multiply(a[1], a[1])]))
        return [bb.add(s, bb.sin(v))], []
    _, (s,) = make_loop(b, [scalar(b, 0.0)], [x], n, step)
    return b.build([s])


def nested_python(x):
    return sum(np.sin((v if v > 1 else 2 * v) if v > 0 else (-v if v > -1 else v * v)) for v in x)


def test_nested_conds_convert_inside_out_and_the_gradient_is_right():
    trace = nested(12)
    x = np.array([2.0, 0.5, -0.5, -2.0, 1.5, -0.2, 0.3, -3.0, 3.0, 0.9, -0.9, 1.1])
    flat = if_converted(trace, every)
    assert conds_anywhere(trace) == 3 and conds_anywhere(flat) == 0
    np.testing.assert_allclose(run_trace(flat, [x])[0], nested_python(x), rtol=1e-14)
    vg = autodiff.value_and_grad(trace, [0])
    kernel = compile_trace(vg)
    value, grad = kernel([x])
    np.testing.assert_allclose(value, nested_python(x), rtol=1e-14)
    np.testing.assert_allclose(grad, run_trace(vg, [x])[1], rtol=1e-14)
    forward, back = autodiff.vjp(trace, [0])
    check_vjp(lambda a: run_trace(trace, a), lambda a, cts: run_trace(back, run_trace(forward, a)[1:] + list(cts)),
              [x], np.random.default_rng(2))


def test_only_a_cond_whose_sides_cannot_fault_qualifies():
    """A branch reading an array at a computed index (out of bounds on the other side's operands), or
    holding a loop, making an array or computing on complex values, stays a branch; inner conds are
    judged after conversion."""
    b = Builder()
    x, v = b.input((), F64), b.input((4,), F64)
    i = b.astype(x, dtype=COUNTER_DTYPE)
    reads = make_cond(b, b.greater(x, scalar(b, 0.0)), [v, i, x],
                      lambda bb, a: [bb.index(a[0], a[1], spec=AT_I)], lambda bb, a: [a[2]])
    arrays = make_cond(b, b.greater(x, scalar(b, 1.0)), [v, x],
                       lambda bb, a: [bb.sum(bb.multiply(a[0], a[1]), axis=(0,), keepdims=False)], lambda bb, a: [a[1]])
    looped = make_cond(b, b.greater(x, scalar(b, 2.0)), [x],
                       lambda bb, a: make_loop(bb, [a[0]], [], 3, lambda b3, j, cs, vs: ([b3.sin(cs[0])], []))[1],
                       lambda bb, a: [a[0]])
    trace = b.build([reads[0], arrays[0], looped[0]])
    conds = [n for n in trace.nodes if n.op == "cond"]
    assert [branch_free(c.params["branches"]) for c in conds] == [False, False, False]
    flat = if_converted(trace, every)
    assert conds_anywhere(flat) == 3
    for xv in (-1.0, 0.5, 1.5, 3.0):
        args = [np.float64(xv), np.arange(4.0)]
        same_results(trace, flat, args)
        np.testing.assert_allclose(compile_trace(trace)(args)[0], run_trace(trace, args)[0])
    c = Builder()
    z = c.input((), np.complex128)
    make_cond(c, c.greater(c.input((), F64), scalar(c, 0.0)), [z], lambda bb, a: [bb.exp(a[0])], lambda bb, a: [a[0]])
    (complex_cond,) = [n for n in c.nodes if n.op == "cond"]
    assert not branch_free(complex_cond.params["branches"])      # a complex op may be a host call


@pytest.mark.parametrize("cost", ["0", "15", "1000"])
@pytest.mark.parametrize("name", ["signed_sum", "clipped", "unsafe_sides", "nested", "guarded_loop"])
def test_value_and_grad_compiled_with_and_without_conversion(name, cost, monkeypatch):
    monkeypatch.setenv("JITGRAD_IF_CONVERT_COST", cost)
    make = {"signed_sum": lambda: signed_sum(20), "clipped": lambda: clipped(25), "unsafe_sides": unsafe_sides,
            "nested": lambda: nested(10), "guarded_loop": lambda: guarded_loop(10)}[name]
    trace = with_scalar_output(make())
    wrt = [k for k, v in enumerate(trace.inputs) if v.dtype.kind == "f"]
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt, out=len(trace.outputs) - 1))
    rng = np.random.default_rng(len(name))
    for _ in range(3):
        args = [rng.uniform(-2, 2, v.shape) if v.ndim else np.float64(rng.uniform(-1, 1)) for v in trace.inputs]
        try:
            want = run_trace(vg, args)
        except GuardFailed as failed:
            with pytest.raises(GuardFailed) as got:
                compile_trace(vg)(args)
            assert got.value.index == failed.index
            continue
        got = compile_trace(vg)(args)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-300)


def test_the_branches_share_tape_slots_and_operands_are_not_taped():
    """The taping form of a cond in a loop body: one slot per pair of residuals of one type (not one
    per residual of each side), and a residual that is an operand of the cond is read, not taped."""
    b = Builder()
    x = b.input((9,), F64)

    def step(bb, i, cs, vs):
        (s,), (x,) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        bb.guard(bb.less(xi, scalar(bb, 100.0)), True, why="keeps the cond taped")
        (nxt,) = make_cond(bb, bb.greater(xi, scalar(bb, 0.0)), [s, xi],
                           lambda b2, a: [b2.add(a[0], b2.multiply(b2.sin(a[1]), a[1]))],
                           lambda b2, a: [b2.add(a[0], b2.multiply(b2.exp(a[1]), b2.cos(a[1])))])
        return [nxt], []
    _, (s,) = make_loop(b, [scalar(b, 0.0)], [x], 9, step)
    trace = b.build([s])
    forward, back = autodiff.vjp(trace, [0])
    (cond,) = [n for loop in forward.nodes if loop.op == "loop" for n in loop.params["body"].nodes if n.op == "cond"]
    true, false = cond.params["branches"]
    # the residuals: x, sin(x), cos(x) on the true side; x, exp(x), cos(x), -sin(x) on the false side;
    # x is the operand (not taped): 3 slots, not 2 + 3 (+ 2 for x), and no slot holds an input
    assert len(true.outputs) == len(false.outputs) == 1 + 3
    assert sorted(v.op for v in true.outputs[1:]) == ["cos", "fill", "sin"]
    assert sorted(v.op for v in false.outputs[1:]) == ["cos", "exp", "negative"]
    x0 = np.random.default_rng(5).normal(size=9)
    check_vjp(lambda a: run_trace(trace, a), lambda a, cts: run_trace(back, run_trace(forward, a)[1:] + list(cts)),
              [x0], np.random.default_rng(6))
    vg = autodiff.value_and_grad(trace, [0])
    got = compile_trace(vg)([x0])
    for g, w in zip(got, run_trace(vg, [x0])):
        np.testing.assert_allclose(g, w, rtol=1e-13)
