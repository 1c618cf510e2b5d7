"""Loops of a run-time trip count (ir/loops.py, trip=None: the count is the loop's last operand, its
stacked outputs have that many rows): one trace answers every count, 0, 1, 2, 3 and large, in the
reference executor and compiled (the JIT allocates the stacks per call, jit/loops.py); forward and
reverse mode against finite differences, the reverse mode's tape a stack of the run-time count; the
passes keep the count as the last operand."""
import numpy as np
import pytest

from jitgrad.ir import Builder, autodiff, loop_tape, loops, passes, run_trace
from jitgrad.ir.errors import IRError, RuntimeTripUnsupported
from jitgrad.ir.loops import COUNTER_DTYPE, UNBOUNDED, loops_in, runtime_rows
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import format_trace
from jitgrad.ir.verify import verify
from jitgrad.jit import compile_trace
from gradcheck import check_jvp, check_vjp
from loop_traces import DT, F64, array_step, pendulum_step, scalar

COUNTS = [0, 1, 2, 3, 700]


def runtime_loop(b, carries, invariants, count, step):
    """A loop of `count` (an intp Value) iterations of `step` (loop_traces' form); its results."""
    bb = Builder()
    i = bb.input((), COUNTER_DTYPE)
    cs = [bb.input(c.shape, c.dtype) for c in carries]
    vs = [bb.input(v.shape, v.dtype) for v in invariants]
    bb.input((), COUNTER_DTYPE)               # the count, which the body does not read
    nexts, ys = step(bb, i, cs, vs)
    body = bb.build(list(nexts) + list(ys))
    loop = b.loop(*carries, *invariants, count, body=body, trip=None, n_carry=len(carries))
    return [b.loop_result(loop, index=k) for k in range(len(body.outputs))]


def pendulum_loss_step(bb, i, cs, vs):
    """The pendulum's Euler step carrying the sum of theta^2 too (no stacked outputs)."""
    (theta, omega, total), (g, damping) = cs, vs
    (new_theta, new_omega), _ = pendulum_step(bb, i, [theta, omega], [g, damping])
    return [new_theta, new_omega, bb.add(total, bb.multiply(new_theta, new_theta))], []


def pendulum():
    """inputs (theta0, omega0, g, damping, n) -> (sum of theta^2 over n steps, final omega)."""
    b = Builder()
    theta0, omega0, g, damping = [b.input((), F64) for _ in range(4)]
    n = b.input((), COUNTER_DTYPE)
    theta, omega, total = runtime_loop(b, [theta0, omega0, b.fill((), F64, 0.0)], [g, damping], n,
                                       pendulum_loss_step)
    return b.build([total, omega])


def pendulum_python(theta, omega, g, damping, n):
    total = 0.0
    for _ in range(n):
        theta, omega = theta + DT * omega, omega - DT * (g * np.sin(theta) + damping * omega)
        total += theta * theta
    return total, omega


def rnn():
    """inputs (x0[3], W[3,3], c[3], n) -> (the sum of squares of x over n steps of tanh(W x + c), x)."""
    b = Builder()
    x0, w, c = b.input((3,), F64), b.input((3, 3), F64), b.input((3,), F64)
    n = b.input((), COUNTER_DTYPE)

    def step(bb, i, cs, vs):
        (x, s), (w, c) = cs, vs
        (nx,), _ = array_step(bb, i, [x], [w, c])
        return [nx, bb.add(s, bb.sum(bb.multiply(nx, nx), axis=(0,), keepdims=False))], []
    x, s = runtime_loop(b, [x0, b.fill((), F64, 0.0)], [w, c], n, step)
    return b.build([s, x])


def stacked():
    """inputs (a, n) -> (the sum of cos(a * t) for t < n, and the stacked sin(a * t) as an output)."""
    b = Builder()
    a, n = b.input((), F64), b.input((), COUNTER_DTYPE)

    def step(bb, i, cs, vs):
        at = bb.multiply(vs[0], bb.astype(i, dtype=F64))
        return [bb.add(cs[0], bb.cos(at))], [bb.sin(at)]
    s, ys = runtime_loop(b, [b.fill((), F64, 0.0)], [a], n, step)
    return b.build([s, ys])


PENDULUM_ARGS = [np.float64(0.8), np.float64(-0.3), np.float64(9.81), np.float64(0.4)]


def rnn_args(rng):
    return [rng.normal(size=3), 0.5 * rng.normal(size=(3, 3)), rng.normal(size=3)]


def test_reference_runs_every_count_of_one_trace():
    trace = pendulum()
    verify(trace)
    for n in COUNTS + [-4]:
        got = run_trace(trace, PENDULUM_ARGS + [np.intp(n)])
        np.testing.assert_allclose(got, pendulum_python(*PENDULUM_ARGS, max(n, 0)), rtol=1e-13, atol=0)


def test_stacked_outputs_have_the_run_time_rows():
    trace = stacked()
    assert runtime_rows(trace.outputs[1])
    for n in COUNTS:
        s, ys = run_trace(trace, [np.float64(0.3), np.intp(n)])
        assert ys.shape == (n,)
        np.testing.assert_allclose(ys, np.sin(0.3 * np.arange(n)))
        assert s == pytest.approx(np.sum(np.cos(0.3 * np.arange(n))), abs=1e-12)


def test_text_round_trip_and_verifier():
    trace = stacked()
    text = format_trace(trace)
    assert "trip=None" in text and "f64[?]" in text
    assert format_trace(parse_trace(text)) == text
    b = Builder()
    a, n = b.input((), F64), b.input((), F64)                    # a float where the count must be
    body = Builder()
    body.input((), COUNTER_DTYPE)
    x = body.input((), F64)
    body.input((), F64)
    with pytest.raises(IRError, match="trip=None"):
        b.loop(a, n, body=body.build([x]), trip=None, n_carry=1)


@pytest.mark.parametrize("make,args", [(pendulum, lambda rng: PENDULUM_ARGS), (rnn, rnn_args)])
def test_compiled_matches_reference_for_every_count(make, args):
    trace, rng = make(), np.random.default_rng(0)
    kernel = compile_trace(trace)
    for n in COUNTS:
        inputs = args(rng) + [np.intp(n)]
        for got, want in zip(kernel(inputs), run_trace(trace, inputs)):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


def _gradient(trace, wrt):
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt, out=0))
    verify(vg)
    return vg


@pytest.mark.parametrize("budget", [64.0, 1e-4, 0.0])
@pytest.mark.parametrize("make,args", [(pendulum, lambda rng: PENDULUM_ARGS), (rnn, rnn_args)])
def test_reverse_mode_against_finite_differences_compiled_and_reference(monkeypatch, make, args, budget):
    """The gradient's taping loop stacks a tape of the run-time count (its first rows, as many as the
    budget holds: all of them at 64 MB; a few, or one, at 1e-4 and 0 MB, then segments of 16 from
    checkpoints, their tapes recomputed); its backward loop runs as many iterations (trip 0: the
    cotangents pass through)."""
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    trace, rng = make(), np.random.default_rng(1)
    wrt = [k for k, v in enumerate(trace.inputs) if v.dtype.kind == "f"]
    vg = _gradient(trace, wrt)
    assert any(runtime_rows(node) for node in vg.nodes if node.op == "loop_result")   # a tape of run-time rows
    kernel = compile_trace(vg)
    n_out = len(trace.outputs)
    for n in COUNTS:
        inputs = args(rng) + [np.intp(n)]
        want = run_trace(vg, inputs)
        for got, w in zip(kernel(inputs), want):
            np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-300)

        def vjp(a, cts, n_out=n_out):
            grads = run_trace(vg, list(a))[n_out:]
            result = [None] * len(a)
            for i, g in zip(wrt, grads):
                result[i] = g * cts[0]
            return result
        check_vjp(lambda a: run_trace(trace, a)[0], vjp, inputs, rng, wrt=wrt)
        if n == 0:                                        # no iteration: d(total)/d(inputs) = 0
            assert all(not np.any(g) for g in want[n_out:])


@pytest.mark.parametrize("budget,most", [(64.0, 5000), (1e-4, 330)])
def test_over_the_budget_no_stack_grows_with_the_count(monkeypatch, budget, most):
    """At 5,000 iterations the reference executor's longest stack: the whole tape within the budget;
    over it, a few rows taped, then 312 checkpoints of segments of 16 (each segment's tape 16 rows)."""
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    seen, stack = [], loops._stack
    monkeypatch.setattr(loops, "_stack", lambda kept, y, rows: seen.append(rows) or stack(kept, y, rows))
    run_trace(_gradient(pendulum(), [0, 1, 2, 3]), PENDULUM_ARGS + [np.intp(5000)])
    assert most - 20 < max(seen) <= most, seen


def test_forward_mode_against_finite_differences_compiled_and_reference():
    trace, rng = rnn(), np.random.default_rng(2)
    wrt = [0, 1, 2]
    jt = passes.optimize(autodiff.jvp(trace, wrt))
    verify(jt)
    kernel = compile_trace(jt)
    for n in COUNTS:
        args = rnn_args(rng) + [np.intp(n)]
        tangents = [rng.normal(size=np.shape(args[i])) for i in wrt]
        for got, want in zip(kernel(args + tangents), run_trace(jt, args + tangents)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
        check_jvp(lambda a: run_trace(trace, a), lambda a, ts: run_trace(jt, list(a) + [
            ts[i] if ts[i] is not None else np.zeros_like(a[i]) for i in wrt])[2:], args, rng, wrt=wrt)


def test_forward_over_reverse_and_reverse_over_reverse():
    """jvp of the gradient (the tape's tangent is a stack of the run-time rows too) matches finite
    differences of the gradient; differentiating the backward loop in reverse mode again (the cotangent
    of a run-time stack) is refused with RuntimeTripUnsupported (the API then traces with the count)."""
    trace, rng = pendulum(), np.random.default_rng(3)
    wrt = [0, 1, 2, 3]
    vg = _gradient(trace, wrt)
    hv = passes.optimize(autodiff.jvp(vg, wrt))
    verify(hv)
    kernel = compile_trace(hv)
    for n in COUNTS:
        args = PENDULUM_ARGS + [np.intp(n)]
        v = [np.float64(x) for x in rng.normal(size=4)]
        got = run_trace(hv, args + v)
        for c, r in zip(kernel(args + v), got):
            np.testing.assert_allclose(c, r, rtol=1e-12, atol=1e-300)
        eps = 1e-6
        up = run_trace(vg, [a + eps * d for a, d in zip(PENDULUM_ARGS, v)] + [np.intp(n)])[2:]
        down = run_trace(vg, [a - eps * d for a, d in zip(PENDULUM_ARGS, v)] + [np.intp(n)])[2:]
        np.testing.assert_allclose(got[-4:], [(u - d) / (2 * eps) for u, d in zip(up, down)], rtol=1e-5,
                                   atol=1e-8)
    b = Builder()
    env = passes.replay(b, vg.nodes, passes.copy_inputs(b, vg.inputs))
    gsum = b.build([b.add(env[id(vg.outputs[2])], env[id(vg.outputs[3])])])
    with pytest.raises(RuntimeTripUnsupported):
        autodiff.value_and_grad(gsum, wrt)


def _nested(stacks):
    """A static loop of 4 steps whose body holds a loop of a run-time count n (an invariant): with
    `stacks`, that loop stacks sin(a x_t) and a second one reads its rows back (a run-time stack made
    and read inside the outer body), else it carries x only."""
    b = Builder()
    x0, a = b.input((), F64), b.input((), F64)
    n = b.input((), COUNTER_DTYPE)
    bb = Builder()
    bb.input((), COUNTER_DTYPE)
    x, a_in, n_in = bb.input((), F64), bb.input((), F64), bb.input((), COUNTER_DTYPE)

    def inner(bi, j, ci, vi):
        s = bi.sin(bi.multiply(vi[0], ci[0]))
        return [bi.add(ci[0], bi.multiply(scalar(bi, DT), s))], ([s] if stacks else [])
    y, *rows = runtime_loop(bb, [x], [a_in], n_in, inner)
    if stacks:
        def reread(bi, j, ci, vi):
            row = bi.index(vi[0], bi.subtract(vi[1], j), spec=(("array", 0),))
            return [bi.add(ci[0], row)], []
        (back,) = runtime_loop(bb, [bb.fill((), F64, 0.0)], [rows[0], bb.add(n_in, bb.const(np.intp(-1)))],
                               n_in, reread)
        y = bb.add(y, back)
    loop = b.loop(x0, a, n, body=bb.build([bb.multiply(y, scalar(bb, 0.9))]), trip=4, n_carry=1)
    return b.build([b.loop_result(loop, index=0)])


def _nested_python(x, a, n, stacks):
    for _ in range(4):
        rows = []
        for _ in range(n):
            rows.append(np.sin(a * x))
            x = x + DT * rows[-1]
        x = 0.9 * (x + (sum(reversed(rows)) if stacks else 0.0))
    return x


def test_run_time_stacks_inside_a_loop_body_compile():
    """The stack's pointer lies in the body's workspace (the kernel keeps and frees it)."""
    trace = _nested(stacks=True)
    kernel = compile_trace(trace)
    for count in COUNTS:
        args = [np.float64(0.7), np.float64(1.3), np.intp(count)]
        want = run_trace(trace, args)
        assert want[0] == pytest.approx(_nested_python(0.7, 1.3, count, True), rel=1e-12)
        np.testing.assert_allclose(kernel(args), want, rtol=1e-12)


def test_reverse_mode_of_a_loop_holding_a_run_time_loop():
    """Its tape would stack the inner loop's tapes (run-time stacks): refused (RuntimeTripUnsupported);
    forward mode carries tangents through both, compiled and in the reference executor."""
    trace = _nested(stacks=False)
    with pytest.raises(RuntimeTripUnsupported):
        autodiff.value_and_grad(trace, [0, 1])
    jt = passes.optimize(autodiff.jvp(trace, [0, 1]))
    kernel = compile_trace(jt)
    for count in COUNTS:
        args = [np.float64(0.7), np.float64(1.3), np.intp(count)]
        want = run_trace(jt, args + [np.float64(1.0), np.float64(-0.5)])
        np.testing.assert_allclose(kernel(args + [np.float64(1.0), np.float64(-0.5)]), want, rtol=1e-12)
        eps = 1e-6
        fd = (_nested_python(0.7 + eps, 1.3 - 0.5 * eps, count, False)
              - _nested_python(0.7 - eps, 1.3 + 0.5 * eps, count, False)) / (2 * eps)
        assert want[1] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_passes_keep_the_count_last():
    """DCE keeps the count the body does not read; hoisting invariant code (new invariants) and a carry
    passed through (made an invariant) leave it the last operand."""
    b = Builder()
    x0, k, c0 = b.input((), F64), b.input((), F64), b.input((), F64)
    n = b.input((), COUNTER_DTYPE)

    def step(bb, i, cs, vs):
        x, c = cs
        scale = bb.exp(vs[0])                      # invariant code: hoisted
        return [bb.add(bb.multiply(x, scale), c), c], []
    x, c = runtime_loop(b, [x0, c0], [k], n, step)
    trace = b.build([x])
    for done in (passes.dce(trace), passes.optimize(trace)):
        verify(done)
        (loop,) = loops_in(done)
        assert loop.params["trip"] is None and loop.args[-1] is done.inputs[3]
        for count in COUNTS:
            args = [np.float64(0.5), np.float64(-0.2), np.float64(0.1), np.intp(count)]
            np.testing.assert_allclose(run_trace(done, args), run_trace(trace, args), rtol=1e-14)
    assert len(loops_in(passes.optimize(trace))[0].args) == 4    # x; c, exp(k) as invariants; n


def _while(b, x0, a, tol):
    """while x > tol: x <- a x + 0.01 sin(x); s <- s + x^2 (a loop of no bound: trip None, its count
    UNBOUNDED, ending on its flag)."""
    bb = Builder()
    bb.input((), COUNTER_DTYPE)
    x, s, a_in, tol_in = bb.input((), F64), bb.input((), F64), bb.input((), F64), bb.input((), F64)
    bb.input((), COUNTER_DTYPE)
    nx = bb.add(bb.multiply(a_in, x), bb.multiply(scalar(bb, 0.01), bb.sin(x)))
    body = bb.build([nx, bb.add(s, bb.multiply(nx, nx)), bb.greater(x, tol_in)])
    loop = b.loop(x0, b.fill((), F64, 0.0), a, tol, b.const(np.intp(UNBOUNDED)), body=body, trip=None,
                  n_carry=2, exit=2)
    return [b.loop_result(loop, index=k) for k in range(3)]


def while_trace():
    b = Builder()
    x0, a, tol = b.input((), F64), b.input((), F64), b.input((), F64)
    x, s, count = _while(b, x0, a, tol)
    return b.build([s, x, count])


def while_python(x, a, tol):
    s, n = 0.0, 0
    while x > tol:
        x = a * x + 0.01 * np.sin(x)
        s, n = s + x * x, n + 1
    return s, x, n


@pytest.mark.parametrize("budget", [64.0, 0.0])
def test_a_while_loop_of_no_bound_grows_its_tape(monkeypatch, budget):
    """0, 1, 2, 3 and ~2,000 iterations on one trace: values against Python, the gradient (its tape a
    growing stack, or with budget 0 checkpointed segments of 16) compiled against the reference and
    against finite differences."""
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    trace = while_trace()
    verify(trace)
    vg = _gradient(trace, [0, 1, 2])
    kernel = compile_trace(vg)
    iterates = [1.0]
    for _ in range(3):
        iterates.append(0.9 * iterates[-1] + 0.01 * np.sin(iterates[-1]))
    between = [(iterates[k - 1] + iterates[k]) / 2 for k in (1, 2, 3)]      # k iterations
    for tol, n in ((2.0, 0), (between[0], 1), (between[1], 2), (between[2], 3), (1e-100, None)):
        args = [np.float64(1.0), np.float64(0.9), np.float64(tol)]
        s, x, count = run_trace(trace, args)
        want_s, want_x, want_n = while_python(1.0, 0.9, tol)
        assert (count, s, x) == (want_n, pytest.approx(want_s, rel=1e-13), pytest.approx(want_x, rel=1e-13))
        assert n is None or count == n
        want = run_trace(vg, args)
        for got, w in zip(kernel(args), want):
            np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-300)
        eps = 1e-7
        fd = [(while_python(1.0 + eps * e[0], 0.9 + eps * e[1], tol)[0]
               - while_python(1.0 - eps * e[0], 0.9 - eps * e[1], tol)[0]) / (2 * eps) for e in np.eye(2)]
        np.testing.assert_allclose(want[3:5], fd, rtol=1e-6, atol=1e-9)
