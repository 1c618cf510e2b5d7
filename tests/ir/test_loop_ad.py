"""Differentiation through loop ops (ir/loop_ad.py, ir/loop_tape.py): forward and reverse mode against
central finite differences (tests/gradcheck.py), every transformed trace verified and run with the
reference executor; tapes, checkpointing, guards, nested loops, grad of grad."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, UnsupportedError, autodiff, loop_tape, passes, run_trace
from jitgrad.ir.loops import loops_in
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import format_trace
from jitgrad.ir.verify import verify
from gradcheck import check_jvp, check_vjp
from loop_traces import (F64, accumulator, array_rnn, guarded, int_carry, make_loop, nested, nested_python, pendulum,
                         pendulum_python, trajectory)

# name -> (trace, argument drawer)
PROGRAMS = {
    "pendulum": (lambda: pendulum(12), lambda rng: [np.float64(0.8), np.float64(-0.3), np.float64(9.81),
                                                    np.float64(0.4)]),
    "array_carries": (lambda: array_rnn(5), lambda rng: [rng.normal(size=3), 0.5 * rng.normal(size=(3, 3)),
                                                         rng.normal(size=3)]),
    "accumulator": (lambda: accumulator(6), lambda rng: [rng.normal(size=6), rng.normal(size=6)]),
    "trajectory": (lambda: trajectory(4), lambda rng: [rng.uniform(0.1, 0.5, 2), rng.uniform(0.5, 0.9, 2)]),
    "nested": (lambda: nested(3, 4), lambda rng: [np.float64(0.3), np.float64(0.7)]),
    "guarded": (lambda: guarded(5), lambda rng: [np.float64(0.5), np.float64(1.3)]),
    "int_carry": (lambda: int_carry(4), lambda rng: [np.float64(0.5), np.float64(0.9)]),
    **{f"trip{n}": (lambda n=n: pendulum(n), lambda rng: [np.float64(0.8), np.float64(-0.3), np.float64(9.81),
                                                          np.float64(0.4)]) for n in (0, 1, 2, 3, 1000)},
}


def float_inputs(trace):
    return [i for i, v in enumerate(trace.inputs) if v.dtype.kind == "f"]


def float_outputs_of(trace):
    floats = [k for k, v in enumerate(trace.outputs) if v.dtype.kind == "f"]
    return lambda args: [run_trace(trace, args)[k] for k in floats]


def per_arg(args, wrt, values):
    result = [None] * len(args)
    for i, v in zip(wrt, values):
        result[i] = v
    return result


def split_vjp(trace, wrt):
    forward, backward = autodiff.vjp(trace, wrt)
    verify(forward)
    verify(backward)
    n = len(trace.outputs)

    def vjp(args, cts):
        residuals = run_trace(forward, args)[n:]
        return per_arg(args, wrt, run_trace(backward, residuals + list(cts)))
    return vjp


def tangent_jvp(trace, wrt):
    jt = autodiff.jvp(trace, wrt)
    verify(jt)
    n = len(trace.outputs)

    def jvp(args, tangents):
        ts = [tangents[i] if tangents[i] is not None else np.zeros_like(args[i]) for i in wrt]
        return run_trace(jt, list(args) + ts)[n:]
    return jvp


def with_scalar_output(trace):
    """`trace` plus a last output: the sum of squares of its outputs plus their sum."""
    b = Builder()
    env = passes.replay(b, trace.nodes, passes.copy_inputs(b, trace.inputs))
    total = None
    for v in trace.outputs:
        g = env[id(v)]
        axes = tuple(range(g.ndim))
        s = b.add(b.sum(b.multiply(g, g), axis=axes, keepdims=False), b.sum(g, axis=axes, keepdims=False))
        total = s if total is None else b.add(total, s)
    return b.build([env[id(v)] for v in trace.outputs] + [total])


def gradient_vjp(vg, n_outputs, wrt):
    return lambda args, cts: per_arg(args, wrt, [g * cts[0] for g in run_trace(vg, args)[n_outputs:]])


@pytest.mark.parametrize("name", PROGRAMS)
def test_forward_mode(name):
    make, draw = PROGRAMS[name]
    trace, rng = make(), np.random.default_rng(0)
    wrt = float_inputs(trace)
    check_jvp(float_outputs_of(trace), tangent_jvp(trace, wrt), draw(rng), rng, wrt=wrt)
    check_jvp(float_outputs_of(trace), tangent_jvp(passes.optimize(trace), wrt), draw(rng), rng, wrt=wrt)


@pytest.mark.parametrize("name", PROGRAMS)
def test_reverse_mode_split(name):
    make, draw = PROGRAMS[name]
    trace, rng = make(), np.random.default_rng(1)
    wrt = float_inputs(trace)
    check_vjp(float_outputs_of(trace), split_vjp(trace, wrt), draw(rng), rng, wrt=wrt)


@pytest.mark.parametrize("name", PROGRAMS)
@pytest.mark.parametrize("optimized", [False, True])
def test_value_and_grad(name, optimized):
    make, draw = PROGRAMS[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(2)
    wrt = float_inputs(trace)
    out = len(trace.outputs) - 1
    vg = autodiff.value_and_grad(trace, wrt, out=out)
    vg = passes.optimize(vg) if optimized else vg
    verify(vg)
    check_vjp(lambda a: run_trace(trace, a)[out], gradient_vjp(vg, len(trace.outputs), wrt), draw(rng), rng,
              wrt=wrt)


def test_pendulum_values_match_python():
    args = [0.8, -0.3, 9.81, 0.4]
    vg = passes.optimize(autodiff.value_and_grad(pendulum(1000), [0, 1, 2, 3], out=0))
    results = run_trace(vg, [np.float64(a) for a in args])
    np.testing.assert_allclose(results[0], pendulum_python(*args, 1000)[0], rtol=1e-12)
    eps, fd = 1e-6, []
    for k in range(4):
        up, down = list(args), list(args)
        up[k] += eps
        down[k] -= eps
        fd.append((pendulum_python(*up, 1000)[0] - pendulum_python(*down, 1000)[0]) / (2 * eps))
    np.testing.assert_allclose(results[2:], fd, rtol=1e-5)


def test_nested_values_match_python():
    out = run_trace(nested(3, 4), [np.float64(0.3), np.float64(0.7)])[0]
    np.testing.assert_allclose(out, nested_python(0.3, 0.7, 3, 4), rtol=1e-13)


def tape_results(trace):
    """The stacked outputs of the forward (taping) loops of a value_and_grad trace, by shape."""
    return [n for n in trace.nodes if n.op == "loop_result" and n.ndim and n.args[0] in loops_in(trace)]


def test_accumulator_needs_no_tape():
    trace = accumulator(50)
    vg = passes.optimize(autodiff.value_and_grad(trace, [0, 1]))
    forward = [n for n in vg.nodes if n.op == "loop"][0]
    assert len(forward.params["body"].outputs) == forward.params["n_carry"]    # no stacked output
    verify(vg)


def test_invariant_residuals_are_not_taped():
    trace = pendulum(20)
    forward, backward = autodiff.vjp(trace, [0, 1, 2, 3])
    (loop,) = [n for n in forward.nodes if n.op == "loop"]
    body = loop.params["body"]
    stacked = body.outputs[loop.params["n_carry"]:]
    # thetas (the pendulum's own output), then omega, sin(theta), cos(theta); never g nor damping
    assert [v.op for v in stacked] == ["add", "input", "sin", "cos"]
    assert stacked[1] is body.inputs[2]


def test_residuals_of_invariants_only_are_computed_once():
    b = Builder()
    x0, k = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (x,), (k,) = cs, vs
        return [bb.multiply(bb.sin(x), bb.exp(k))], []
    _, (x,) = make_loop(b, [x0], [k], 5, step)
    trace = b.build([x])
    for vg in (autodiff.value_and_grad(trace, [0, 1]), autodiff.vjp(trace, [0, 1])[0]):
        loop = [n for n in vg.nodes if n.op == "loop"][0]
        body = loop.params["body"]
        assert [v.op for v in body.outputs[1:]] == ["sin", "cos"]   # taped; exp(k) is not
        assert "exp" not in [n.op for n in body.nodes]
        assert "exp" in [n.op for n in vg.nodes]
    rng = np.random.default_rng(6)
    check_vjp(lambda a: run_trace(trace, a), split_vjp(trace, [0, 1]), [np.float64(0.4), np.float64(-0.2)], rng)


REVERSE_TEXT = """trace (%0: f64[], %1: f64[]) {
  %2 = loop %0, %1 {trip=3, n_carry=1} : loop
    trace (%0: i64[], %1: f64[], %2: f64[]) {
      %3 = sin %1 : f64[]
      %4 = multiply %3, %2 : f64[]
      %5 = cos %1 : f64[]
      return %4, %3, %5
    }
  %3 = loop_result %2 {index=1} : f64[3]
  %4 = loop_result %2 {index=2} : f64[3]
  %5 = loop_result %2 {index=0} : f64[]
  %6 = fill {shape=(), dtype=f64, value=1.0} : f64[]
  %7 = fill {shape=(), dtype=f64, value=0} : f64[]
  %8 = loop %6, %7, %3, %4, %1 {trip=3, n_carry=2} : loop
    trace (%0: i64[], %1: f64[], %2: f64[], %3: f64[3], %4: f64[3], %5: f64[]) {
      %6 = const {value=2} : i64[]
      %7 = subtract %6, %0 : i64[]
      %8 = index %3, %7 {spec=(('array', 0),)} : f64[]
      %9 = index %4, %7 {spec=(('array', 0),)} : f64[]
      %10 = multiply %1, %5 : f64[]
      %11 = multiply %1, %8 : f64[]
      %12 = multiply %10, %9 : f64[]
      %13 = add %2, %11 : f64[]
      return %12, %13
    }
  %9 = loop_result %8 {index=0} : f64[]
  %10 = loop_result %8 {index=1} : f64[]
  return %5, %9, %10
}"""


@pytest.mark.skipif(np.dtype(np.intp) != np.int64, reason="the text names the counter's dtype, i64 here")
def test_reverse_trace_text():
    """x <- sin(x) * k, 3 times: the taping loop stacks sin(x) and cos(x) (the residuals of the carry;
    k is not taped), the backward loop runs t = 2 - j, reads the tape rows at t and carries the
    cotangent of x and the accumulated cotangent of k."""
    b = Builder()
    x0, k = b.input((), F64), b.input((), F64)
    _, (x,) = make_loop(b, [x0], [k], 3,
                        lambda bb, i, cs, vs: ([bb.multiply(bb.sin(cs[0]), vs[0])], []))
    vg = passes.optimize(autodiff.value_and_grad(b.build([x]), [0, 1]))
    assert format_trace(vg) == REVERSE_TEXT
    assert format_trace(parse_trace(REVERSE_TEXT)) == REVERSE_TEXT


def test_reverse_trace_text_shows_taping_and_backward_loops():
    forward, backward = autodiff.vjp(pendulum(7), [0, 1, 2, 3])
    text = format_trace(forward) + "\n" + format_trace(backward)
    assert "loop" in format_trace(forward) and "cos" in format_trace(forward)
    bwd_text = format_trace(backward)
    assert "{trip=7, n_carry=4}" in bwd_text             # 2 carry cotangents + 2 invariant accumulators
    assert "subtract" in bwd_text and "index" in bwd_text   # t = 6 - j; tape rows read at t
    assert text.count("trip=7") == 2


def test_guards_stay_in_the_forward_part():
    trace = with_scalar_output(guarded(5))
    vg = autodiff.value_and_grad(trace, [0, 1], out=1)
    assert len(vg.guards) == 1
    forward, backward = autodiff.vjp(guarded(5), [0, 1])
    assert len(forward.guards) == 1 and len(backward.guards) == 0
    with pytest.raises(GuardFailed):
        run_trace(vg, [np.float64(50.0), np.float64(3.0)])


# ---- second order ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pendulum", "array_carries", "accumulator", "nested", "trip0", "trip1"])
def test_hessian_vector_product_by_grad_of_grad(name):
    """d/dx <grad f(x), v>, by value_and_grad of a value_and_grad trace, against finite differences of
    the gradient."""
    make, draw = PROGRAMS[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(3)
    wrt = float_inputs(trace)
    n, out = len(trace.outputs), len(trace.outputs) - 1
    vg = passes.optimize(autodiff.value_and_grad(trace, wrt, out=out))
    b = Builder()
    env = passes.replay(b, vg.nodes, passes.copy_inputs(b, vg.inputs))
    vs = [b.input(vg.inputs[i].shape, vg.inputs[i].dtype) for i in wrt]
    dot = None
    for g, v in zip(vg.outputs[n:], vs):
        term = b.sum(b.multiply(env[id(g)], v), axis=tuple(range(v.ndim)), keepdims=False)
        dot = term if dot is None else b.add(dot, term)
    gv = b.build([dot])
    hvp = passes.optimize(autodiff.value_and_grad(gv, wrt))
    verify(hvp)
    args = draw(rng)
    directions = [rng.normal(size=np.shape(args[i])) for i in wrt]
    got = run_trace(hvp, list(args) + directions)[1:]
    grad = lambda a: run_trace(vg, a)[n:]
    eps = 1e-5
    for k, i in enumerate(wrt):
        e = np.zeros(np.shape(args[i]))
        for idx in np.ndindex(e.shape):
            up, down = list(args), list(args)
            e[...] = 0
            e[idx] = eps
            up[i], down[i] = args[i] + e, args[i] - e
            fd = sum(np.sum((gu - gd) / (2 * eps) * d) for gu, gd, d in zip(grad(up), grad(down), directions))
            np.testing.assert_allclose(np.asarray(got[k])[idx], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["pendulum", "trajectory", "nested"])
def test_jvp_of_reverse_mode(name):
    make, draw = PROGRAMS[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(4)
    wrt = float_inputs(trace)
    n = len(trace.outputs)
    vg = autodiff.value_and_grad(trace, wrt, out=n - 1)
    gradient = lambda a: run_trace(vg, a)[n:]
    hvp = tangent_jvp(vg, wrt)
    check_jvp(gradient, lambda a, ts: hvp(a, ts)[-len(wrt):], draw(rng), rng, wrt=wrt)


# ---- checkpointing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make,trip", [(pendulum, 1000), (pendulum, 17), (array_rnn, 30), (trajectory, 11),
                                       (lambda n: nested(n, 3), 10), (guarded, 13)])
def test_checkpointed_matches_taped(monkeypatch, make, trip):
    trace = with_scalar_output(make(trip))
    wrt = float_inputs(trace)
    out = len(trace.outputs) - 1
    rng = np.random.default_rng(5)
    args = [rng.uniform(0.2, 0.6, v.shape) if v.ndim else np.float64(rng.uniform(0.2, 0.6)) for v in trace.inputs]
    taped = autodiff.value_and_grad(trace, wrt, out=out)
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    checkpointed = autodiff.value_and_grad(trace, wrt, out=out)
    forward, backward = autodiff.vjp(trace, wrt)
    assert backward.guards == [] and len(forward.guards) == 2 * len(trace.guards)    # segments, tail
    verify(checkpointed)
    # the forward part keeps checkpoints, not a tape as long as the loop
    outer = [n for n in checkpointed.nodes if n.op == "loop"][0]
    assert outer.params["trip"] < trip
    want = run_trace(taped, args)
    for got in (run_trace(checkpointed, args), run_trace(passes.optimize(checkpointed), args)):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    cts = [np.ones(np.shape(o)) for o in run_trace(trace, args)]
    split = run_trace(backward, run_trace(forward, args)[len(trace.outputs):] + cts)
    np.testing.assert_allclose(np.concatenate([np.ravel(g) for g in split]),
                               np.concatenate([np.ravel(g) for g in run_taped_vjp(trace, wrt, args, cts)]),
                               rtol=1e-12, atol=1e-14)


def residual_elements(trace, wrt):
    forward, _ = autodiff.vjp(trace, wrt)
    return sum(v.size for v in forward.outputs[len(trace.outputs):])


def test_checkpointing_stores_about_sqrt_trip_iterations(monkeypatch):
    full = pendulum(1000)
    trace = type(full)(full.inputs, full.nodes, [full.outputs[1]])     # the final omega
    taped = residual_elements(trace, [0, 1, 2, 3])
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    checkpointed = residual_elements(trace, [0, 1, 2, 3])
    assert taped >= 3000                        # 3 residuals per iteration
    # 32 segments of 31 steps: the 2 carries at each segment's start; the 8-step tail's tape; g, damping
    assert checkpointed <= 2 * 32 + 3 * 8 + 2


def run_taped_vjp(trace, wrt, args, cts):
    old, loop_tape.TAPE_BUDGET_MB = loop_tape.TAPE_BUDGET_MB, 64.0
    try:
        forward, backward = autodiff.vjp(trace, wrt)
    finally:
        loop_tape.TAPE_BUDGET_MB = old
    return run_trace(backward, run_trace(forward, args)[len(trace.outputs):] + cts)


def test_tape_budget_comes_from_the_environment(monkeypatch):
    import importlib
    monkeypatch.setenv("JITGRAD_LOOP_TAPE_MB", "0.5")
    try:
        assert importlib.reload(loop_tape).TAPE_BUDGET_MB == 0.5
    finally:
        monkeypatch.delenv("JITGRAD_LOOP_TAPE_MB")
        importlib.reload(loop_tape)
    assert loop_tape.TAPE_BUDGET_MB == 64.0


def test_forward_mode_stores_nothing():
    full = pendulum(50)
    trace = type(full)(full.inputs, full.nodes, [full.outputs[1]])     # the final omega
    jt = passes.optimize(autodiff.jvp(trace, [0, 1, 2, 3]))
    (loop,) = loops_in(jt)
    assert loop.params["n_carry"] == 4 and len(loop.params["body"].outputs) == 4   # (theta, omega) + tangents


def test_an_active_complex_carry_is_refused_not_zero():
    b = Builder()
    x0 = b.input((), F64)
    z0 = b.astype(x0, dtype=np.complex128)
    _, (z,) = make_loop(b, [z0], [], 3, lambda bb, i, cs, vs: ([bb.multiply(cs[0], cs[0])], []))
    trace = b.build([b.real(z)])
    for transform in (autodiff.jvp, autodiff.value_and_grad, autodiff.vjp):
        with pytest.raises(UnsupportedError, match="complex"):
            transform(trace, [0])
