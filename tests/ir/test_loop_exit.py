"""Loops with a continue flag (ir/loops.py's `exit`: a `while`, a `for` with `break`): the number of
iterations is a run-time result.  Reference evaluation against plain Python, forward and reverse mode
against central differences, the backward loop running as many iterations as the forward one, passes,
checkpointing."""
import numpy as np
import pytest

from jitgrad.ir import Builder, autodiff, loop_tape, passes, run_trace
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.printer import format_trace
from jitgrad.ir.verify import verify
from gradcheck import check_jvp, check_vjp
from jitgrad.jit import compile_trace
from loop_traces import (contraction, decaying_sum, newton_sqrt, newton_sqrt_python, sum_until_negative,
                         sum_until_negative_python)
from test_loop_ad import float_inputs, gradient_vjp, split_vjp, tangent_jvp, with_scalar_output

F = np.float64

# name -> (trace, arguments): Newton from several starts (iterations differ), break at 0..3 and never
CASES = {
    "newton_far": (newton_sqrt, [F(7.0), F(2.0)]),
    "newton_near": (newton_sqrt, [F(1.5), F(2.0)]),
    "newton_done": (lambda: newton_sqrt(tol=1e-3), [F(2.0), F(4.0)]),   # 0 iterations: false at once
    "break_at_2": (lambda: sum_until_negative(6), [np.array([0.5, 1.2, -0.3, 0.8, 0.4, 0.9]), F(1.7)]),
    "break_at_0": (lambda: sum_until_negative(6), [np.array([-0.5, 1.2, 0.3, 0.8, 0.4, 0.9]), F(1.7)]),
    "break_at_1": (lambda: sum_until_negative(6), [np.array([0.5, -1.2, 0.3, 0.8, 0.4, 0.9]), F(1.7)]),
    "break_at_3": (lambda: sum_until_negative(6), [np.array([0.5, 1.2, 0.3, -0.8, 0.4, 0.9]), F(1.7)]),
    "no_break": (lambda: sum_until_negative(6), [np.array([0.5, 1.2, 0.3, 0.8, 0.4, 0.9]), F(1.7)]),
    "contraction": (contraction, [np.array([0.3, -0.2, 0.5]), 0.3 * np.eye(3) + 0.1, np.array([0.1, 0.2, -0.1])]),
    "contraction_capacity": (lambda: contraction(capacity=5),
                             [np.array([0.3, -0.2, 0.5]), 0.3 * np.eye(3) + 0.1, np.array([0.1, 0.2, -0.1])]),
    "break_late": (lambda: sum_until_negative(3000), [np.r_[np.linspace(0.1, 1, 2500), -1.0, np.ones(499)],
                                                      F(0.3)]),
}

def python_value(name, args):
    if name.startswith("newton"):
        return newton_sqrt_python(*args, tol=1e-3 if name == "newton_done" else 1e-9)
    return sum_until_negative_python(*args)


@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("contraction")])
def test_reference_evaluation_matches_python(name):
    make, args = CASES[name]
    trace = make()
    verify(trace)
    np.testing.assert_allclose(run_trace(trace, args), python_value(name, args), rtol=1e-13)
    np.testing.assert_allclose(run_trace(passes.optimize(trace), args), python_value(name, args), rtol=1e-13)


@pytest.mark.parametrize("name", CASES)
def test_forward_mode(name):
    make, args = CASES[name]
    trace, rng = make(), np.random.default_rng(0)
    wrt = float_inputs(trace)
    f = lambda a: run_trace(trace, a)                                       # noqa: E731
    check_jvp(f, tangent_jvp(trace, wrt), args, rng, wrt=wrt)
    check_jvp(f, tangent_jvp(passes.optimize(trace), wrt), args, rng, wrt=wrt)


@pytest.mark.parametrize("name", CASES)
def test_reverse_mode(name):
    make, args = CASES[name]
    trace, rng = make(), np.random.default_rng(1)
    wrt = float_inputs(trace)
    check_vjp(lambda a: run_trace(trace, a), split_vjp(trace, wrt), args, rng, wrt=wrt)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("optimized", [False, True])
def test_value_and_grad(name, optimized):
    make, args = CASES[name]
    trace = with_scalar_output(make())
    rng = np.random.default_rng(2)
    wrt = float_inputs(trace)
    out = len(trace.outputs) - 1
    vg = autodiff.value_and_grad(trace, wrt, out=out)
    vg = passes.optimize(vg) if optimized else vg
    verify(vg)
    check_vjp(lambda a: run_trace(trace, a)[out], gradient_vjp(vg, len(trace.outputs), wrt), args, rng, wrt=wrt)


def test_backward_loop_runs_as_many_iterations_as_the_forward_one():
    """The backward loop's flag is `j < count`: its count result equals the forward loop's."""
    trace = newton_sqrt()
    vg = autodiff.value_and_grad(with_scalar_output(trace), [0, 1], out=3)
    loops = [n for n in vg.nodes if n.op == "loop"]
    assert len(loops) == 2 and all(n.params["exit"] is not None for n in loops)
    b = Builder()
    env = passes.replay(b, vg.nodes, passes.copy_inputs(b, vg.inputs))
    counts = [b.loop_result(env[id(n)], index=n.params["exit"]) for n in loops]
    forward, backward = run_trace(b.build(counts), [F(7.0), F(2.0)])
    assert forward == backward == newton_sqrt_python(7.0, 2.0)[1] > 3


def test_grad_of_grad():
    trace = newton_sqrt()
    g = autodiff.value_and_grad(trace, [0, 1], out=0)
    gg = autodiff.value_and_grad(g, [0, 1], out=len(trace.outputs) + 1)     # d/d(x0, a) of dx/da
    verify(gg)
    rng = np.random.default_rng(3)
    args = [F(7.0), F(2.0)]
    check_vjp(lambda a: run_trace(g, a)[len(trace.outputs) + 1],
              gradient_vjp(gg, len(g.outputs), [0, 1]), args, rng, wrt=[0, 1])


def test_text_form_round_trips():
    trace = newton_sqrt()
    text = format_trace(trace)
    assert "exit=2" in text
    assert format_trace(parse_trace(text)) == text


def contraction_python(x, w, c, tol=1e-12):
    xs = []
    while True:
        nx = np.tanh(w @ x + c)
        if np.sum((nx - x) ** 2) <= tol:
            return x, xs
        x = nx
        xs.append(nx)


def test_array_carry_and_stacked_rows():
    (make, args), (small, _) = CASES["contraction"], CASES["contraction_capacity"]
    x, xs, count = run_trace(make(), args)
    want, rows = contraction_python(*args)
    assert count == len(rows) > 5
    np.testing.assert_allclose(x, want, rtol=1e-14)
    np.testing.assert_allclose(xs[:len(rows)], rows, rtol=1e-14)
    assert not xs[len(rows):].any()                      # rows not taken are zeros
    x, xs, count = run_trace(small(), args)              # stopped by its capacity: 5 iterations
    assert count == 5 and xs.shape == (5, 3)
    np.testing.assert_allclose(x, rows[4], rtol=1e-14)


def check_compiled(trace, args):
    want = run_trace(trace, args)
    got = compile_trace(trace)([np.asarray(a) for a in args])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", CASES)
def test_compiled_against_reference(name):
    make, args = CASES[name]
    trace = make()
    check_compiled(trace, args)
    vg = passes.optimize(autodiff.value_and_grad(with_scalar_output(trace), float_inputs(trace),
                                                 out=len(trace.outputs)))
    check_compiled(vg, args)


@pytest.mark.parametrize("k", [0, 1, 7, 8, 9, 15, 16, 30, 57, 63, 64, 70])
@pytest.mark.parametrize("settings, trips", [({"TAPE_BUDGET_MB": 0.0}, [8, 7]), ({"CONTINUED_ROWS": 64}, [8, 7]),
                                             ({"CONTINUED_ROWS": 64, "SEGMENTS": 4}, [16, 6]),
                                             ({"CONTINUED_ROWS": 64, "SEGMENTS": 4, "TAPE_BUDGET_MB": 0.0}, [8, 7])])
def test_checkpointed_matches_taped(monkeypatch, k, settings, trips):
    """64 iterations at most, over the tape budget or CONTINUED_ROWS: the first 8 taped (isqrt(64); or
    64 // SEGMENTS, within the budget), the rest in segments of 8, the last kept where it left, each
    recomputed from its checkpoint; leaving in the taped part, at its end, in a segment, at a segment's
    start or end, in the last, never (the capacity's end)."""
    trace = with_scalar_output(decaying_sum(64))
    x = np.linspace(0.2, 0.9, 64)
    if k < 64:
        x[k] = -1.0
    args = [x, F(0.9)]
    out = len(trace.outputs) - 1
    taped = autodiff.value_and_grad(trace, [0, 1], out=out)
    for name, value in settings.items():
        monkeypatch.setattr(loop_tape, name, value)
    checkpointed = autodiff.value_and_grad(trace, [0, 1], out=out)
    verify(checkpointed)
    assert [n.params["trip"] for n in checkpointed.nodes if n.op == "loop"] == trips + trips[::-1]  # backward
    want = run_trace(taped, args)
    assert want[1] == min(k, 64)
    for got in (run_trace(checkpointed, args), run_trace(passes.optimize(checkpointed), args),
                compile_trace(passes.optimize(checkpointed))(args)):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    rng = np.random.default_rng(4)
    check_vjp(lambda a: run_trace(trace, a)[out], gradient_vjp(checkpointed, len(trace.outputs), [0, 1]), args,
              rng, wrt=[0, 1])


@pytest.mark.parametrize("settings", [{"TAPE_BUDGET_MB": 0.0}, {"CONTINUED_ROWS": 8}])
@pytest.mark.parametrize("capacity", [9, 16, 40])
def test_continued_loop_with_stacked_rows(monkeypatch, settings, capacity):
    """The contraction (an array carry, its iterates stacked) of capacity 9, 16, 40, continued
    (isqrt(capacity) taped, then segments of as many): it leaves in a segment, at the capacity's end,
    or in the taped part (from its fixed point: values only); the stacked rows are the first part's,
    then the segments', cut at the capacity.  Value and gradient against the taped loop, the
    reference against the compiled kernel, the gradient against central differences."""
    _, args = CASES["contraction"]
    trace = with_scalar_output(contraction(capacity=capacity))
    out = len(trace.outputs) - 1
    fixed = contraction_python(*args)[0]
    for start in (args[0], fixed, np.array([0.05, 0.02, 0.05])):    # 9 iterations, 0, 21
        run = [start] + args[1:]
        taped = autodiff.value_and_grad(trace, [0, 1, 2], out=out)
        with monkeypatch.context() as m:
            for name, value in settings.items():
                m.setattr(loop_tape, name, value)
            continued = autodiff.value_and_grad(trace, [0, 1, 2], out=out)
        verify(continued)
        assert len([n for n in continued.nodes if n.op == "loop"]) == 4          # taped, segments, backward
        want = run_trace(taped, run)
        for got in (run_trace(continued, run), compile_trace(passes.optimize(continued))(run)):
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        if start is not fixed:      # (from the fixed point a difference step changes the count)
            check_vjp(lambda a: run_trace(trace, a)[out], gradient_vjp(continued, len(trace.outputs), [0, 1, 2]),
                      run, np.random.default_rng(5), wrt=[0, 1, 2])


@pytest.mark.parametrize("budget", [64.0, 0.0])
def test_grad_of_grad_of_a_continued_loop(monkeypatch, budget):
    """Newton (4-7 iterations) of capacity 64, continued after 8 (CONTINUED_ROWS 16); differentiated
    again, its segment loop (which stacks its checkpoints) is taped, or over the budget continued in turn."""
    monkeypatch.setattr(loop_tape, "CONTINUED_ROWS", 16)
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    trace = newton_sqrt()
    g = autodiff.value_and_grad(trace, [0, 1], out=0)
    gg = autodiff.value_and_grad(g, [0, 1], out=len(trace.outputs) + 1)     # d/d(x0, a) of dx/da
    verify(gg)
    rng = np.random.default_rng(3)
    for args in ([F(7.0), F(2.0)], [F(300.0), F(2.0)], [F(1.5), F(2.0)]):
        check_vjp(lambda a: run_trace(g, a)[len(trace.outputs) + 1],
                  gradient_vjp(gg, len(g.outputs), [0, 1]), args, rng, wrt=[0, 1])
        np.testing.assert_allclose(compile_trace(passes.optimize(gg))(args), run_trace(gg, args), rtol=1e-11)
