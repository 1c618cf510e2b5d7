"""A loop's first iteration taken into its loop op (tracer/interpretation/opening.py): when it differs
from the next ones only by a carried value starting as a Python number, the loop op starts at it, so a
later call taking another branch in it, or leaving the loop in it (`break`, `continue`), uses the same
trace.  A first iteration that does other work stays recorded as it ran, and a call deciding one of its
guards otherwise retraces.  Values against CPython, gradients against central differences, compiled
against the reference executor."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from test_rolling import top_loops, traced
from test_rolling_exits import skip_negative, until_negative


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def opened_by_a_flag(x, w):
    first = True
    s = 0.0
    for i in range(x.shape[0]):
        if first:                   # the first iteration does other work: it stays as it ran
            first = False
            if x[i] > 0:
                s = x[i]
            continue
        s = s * w + x[i] ** 2
    return s


def decided_in_python(x):
    s = 0.0
    for i in range(x.shape[0]):
        if s > 0.5:                 # in the first iteration a decision on the number 0.0, no guard
            s = s * 0.5
        s = s + x[i]
    return s


def patterns(n, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=n) for _ in range(4)]
    xs[1][0], xs[2][0] = -abs(xs[1][0]), abs(xs[2][0])
    xs.append(-np.abs(xs[0]))
    xs.append(np.abs(xs[0]))
    return xs


@pytest.mark.parametrize("jit", [False, True])
def test_continue_in_the_first_iteration_uses_the_same_trace(jit):
    f = jitgrad.value_and_grad(skip_negative, jit=jit)
    g = jitgrad.jit_grad(skip_negative, argnums=(0,), jit=jit)
    for x in patterns(40):
        value, _ = f(x)
        assert value == pytest.approx(skip_negative(x), rel=1e-13, abs=1e-15)
        assert_grad(skip_negative, x, grad_fn=g)
    assert f.cache_info().traces == 1 and g.cache_info().traces == 1
    assert "rolled, 40 iterations in one loop op" in f.cache_info().paths[0].loops[0]


def test_the_loop_op_starts_at_the_first_iteration():
    x = np.linspace(0.1, 1.0, 30)
    trace, _ = traced(until_negative, x, 1.5)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 30 and loop.params["exit"] is None
    assert not [n for n in trace.nodes if n.op == "guard"]            # the first iteration's went in


@pytest.mark.parametrize("jit", [False, True])
def test_break_in_the_first_iteration_uses_the_same_trace(jit):
    f = jitgrad.value_and_grad(until_negative, argnums=(0, 1), jit=jit)
    for k in (20, 0, 1, 39, 2):
        x = np.linspace(0.1, 1.0, 40)
        x[k] = -1.0
        value, (gx, gw) = f(x, 1.5)
        assert value == pytest.approx(until_negative(x, 1.5), rel=1e-13)
        np.testing.assert_allclose(gx[:k], 3.0 * x[:k], rtol=1e-13)
        assert not gx[k:].any() and gw == pytest.approx(until_negative(x, 1.0), rel=1e-13)
    assert f.cache_info().traces == 1
    assert_grad(until_negative, np.r_[-1.0, np.linspace(0.1, 1.0, 9)], 0.7, argnums=(0, 1), jit=jit)


@pytest.mark.parametrize("jit", [False, True])
def test_a_first_iteration_doing_other_work_stays_and_its_guard_retraces(jit):
    x = np.linspace(0.1, 1.0, 30)
    trace, _ = traced(opened_by_a_flag, x, 0.5)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 29
    f = jitgrad.value_and_grad(opened_by_a_flag, argnums=(0, 1), jit=jit)
    for first in (0.3, 0.7, -0.4):
        x[0] = first
        value, _ = f(x, 0.5)
        assert value == pytest.approx(opened_by_a_flag(x, 0.5), rel=1e-13)
        assert_grad(opened_by_a_flag, x, 0.5, argnums=(0, 1), jit=jit)
    info = f.cache_info()
    assert info.traces == 2 and "truth value of a traced value" in info.retraces[0]


@pytest.mark.parametrize("jit", [False, True])
def test_a_python_decision_in_the_first_iteration_keeps_it_out(jit):
    x = np.full(30, 0.3)
    trace, _ = traced(decided_in_python, x)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 29                       # the first iteration recorded no guard there
    f = jitgrad.value_and_grad(decided_in_python, jit=jit)
    for x in (np.full(30, 0.3), np.linspace(0.9, 0.1, 30), np.linspace(0.1, 0.6, 30)):
        value, _ = f(x)
        assert value == pytest.approx(decided_in_python(x), rel=1e-13)
        assert_grad(decided_in_python, x, jit=jit)
    assert f.cache_info().traces == 1


def int_start(x, w):
    s = 0
    for i in range(x.shape[0]):
        s = s + w * x[i] ** 2
    return s


def test_an_int_accumulator_starts_the_loop_op_as_a_float():
    x = np.linspace(0.1, 1.0, 30)
    trace, _ = traced(int_start, x, 2.0)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 30
    f = jitgrad.value_and_grad(int_start, argnums=(0, 1))
    for w in (2.0, -0.5):
        value, grads = f(x, w)
        assert value == pytest.approx(int_start(x, w), rel=1e-14)
    assert f.cache_info().traces == 1
    assert_grad(int_start, x, 0.3, argnums=(0, 1))
