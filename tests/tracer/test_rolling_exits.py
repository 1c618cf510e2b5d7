"""Loops whose trip count depends on data, rolled into one loop op that ends at run time (ir/loops.py's
`exit`): `while` loops (tracer/interpretation/whileloops.py) and `for` loops left by `break`, `return` or stepping
over iterations with `continue`.  Values and gradients against CPython and central differences,
compiled against the reference executor, one trace for every count past the interpreted first
iterations, forward mode, grad of grad."""
import numpy as np
import pytest

import jitgrad
from jitgrad.ir import loop_tape
from e2e import assert_grad


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    """Roll loops of any trip count (short ones stay unrolled by default: rolling.unroll_ops)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def newton_sqrt(a, x):
    while abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def fixed_point(c, x):
    x_new = np.cos(c * x)
    while abs(x_new - x) > 1e-13:
        x = x_new
        x_new = np.cos(c * x)
    return x_new * c


def until_negative(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0:
            break
        s = s + w * x[i] ** 2
    return s


def first_above(x, level):
    for i in range(x.shape[0]):
        if x[i] * level > 1.0:
            return x[i] * level
    return level


def skip_negative(x):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0:
            continue
        s = s + np.sin(x[i]) * x[i]
    return s


def iterations(fn, *args):
    """How many times the loop of `fn` ran (by CPython), counting calls of the body."""
    count = 0
    if fn is newton_sqrt:
        a, x = args
        while abs(x * x - a) > 1e-12:
            x, count = 0.5 * (x + a / x), count + 1
    return count


def with_break_at(k, n=40):
    x = np.linspace(0.1, 1.0, n)
    if k < n:
        x[k] = -1.0
    return x


@pytest.mark.parametrize("jit", [False, True])
def test_newton_while_loop_one_trace_for_every_count(jit):
    f = jitgrad.value_and_grad(newton_sqrt, argnums=(0, 1), jit=jit)
    seen = set()
    for a, x in [(2.0, 50.0), (2.0, 1000.0), (3.0, 7000.0), (5.0, 1e6), (2.0, 60.0), (2.0, 1.5), (2.0, 1.42)]:
        value, (da, dx) = f(a, x)
        assert value == newton_sqrt(a, x)
        assert da == pytest.approx(0.5 / np.sqrt(a), rel=1e-9) and abs(dx) < 1e-12
        seen.add(iterations(newton_sqrt, a, x))
    assert len(seen) == 6 and min(seen) == 3
    info = f.cache_info()
    assert info.traces == 1
    assert "leaves on data at run time" in info.paths[0].loops[0]


@pytest.mark.parametrize("jit", [False, True])
def test_newton_gradient_against_finite_differences(jit):
    assert_grad(newton_sqrt, 2.0, 30.0, argnums=(0, 1), jit=jit)


@pytest.mark.parametrize("jit", [False, True])
def test_fixed_point_iteration(jit):
    assert_grad(fixed_point, 0.7, 0.1, argnums=0, jit=jit)
    f = jitgrad.value_and_grad(fixed_point, jit=jit)
    for c in (0.7, 0.5, 0.9, 0.3):
        value, grad = f(c, 0.1)
        assert value == pytest.approx(fixed_point(c, 0.1), rel=1e-13)
    assert f.cache_info().traces == 1


@pytest.mark.parametrize("jit", [False, True])
def test_break_at_counts_past_the_first_iteration_share_one_trace(jit):
    """The first iteration is recorded as it ran; from the second on, every count takes one trace."""
    f = jitgrad.value_and_grad(until_negative, argnums=(0, 1), jit=jit)
    for k in (20, 1, 39, 2, 3, 40, 5):        # 40: no break (the range's end: a second trace)
        x = with_break_at(k)
        value, (gx, gw) = f(x, 1.5)
        assert value == pytest.approx(until_negative(x, 1.5), rel=1e-13)
        np.testing.assert_allclose(gx[:min(k, 40)], 3.0 * x[:min(k, 40)], rtol=1e-13)
        assert not gx[k:].any()
        assert gw == pytest.approx(until_negative(x, 1.0), rel=1e-13)
    assert f.cache_info().traces == 2


@pytest.mark.parametrize("k", [0, 1, 2, 3, 25, 399])
@pytest.mark.parametrize("jit", [False, True])
def test_break_gradient(k, jit):
    assert_grad(until_negative, with_break_at(k, 400), 0.7, argnums=(0, 1), jit=jit)


@pytest.mark.parametrize("jit", [False, True])
def test_return_from_inside_a_for_loop(jit):
    f = jitgrad.value_and_grad(first_above, argnums=(0, 1), jit=jit)
    x = np.linspace(0.0, 2.0, 200)
    for level in (0.9, 0.7, 1.3, 5.0):
        value, grads = f(x, level)
        assert value == pytest.approx(first_above(x, level), rel=1e-13)
    assert f.cache_info().traces == 1
    assert_grad(first_above, x, 0.8, argnums=(0, 1), jit=jit)


@pytest.mark.parametrize("jit", [False, True])
def test_continue_on_data(jit):
    x = np.sin(np.arange(60.0) * 1.3)
    assert_grad(skip_negative, x, jit=jit)


def test_forward_mode_through_a_while_loop():
    value, tangent = jitgrad.jvp(newton_sqrt, (2.0, 40.0), (1.0, 0.0))
    assert value == newton_sqrt(2.0, 40.0)
    assert tangent == pytest.approx(0.5 / np.sqrt(2.0), rel=1e-9)
    value, tangent = jitgrad.jvp(fixed_point, (0.7, 0.1), (1.0, 0.0))
    eps = 1e-6
    fd = (fixed_point(0.7 + eps, 0.1) - fixed_point(0.7 - eps, 0.1)) / (2 * eps)
    assert tangent == pytest.approx(fd, rel=1e-6)


def test_grad_of_grad_through_a_while_loop():
    h = jitgrad.hessian(newton_sqrt, argnums=0)
    for a in (2.0, 3.0):
        assert h(a, 40.0) == pytest.approx(-0.25 * a ** -1.5, rel=1e-7)


def test_compiled_and_reference_agree_on_a_long_while_loop():
    def slow_decay(x, rate):
        while x > 1e-3:
            x = x * rate
        return x
    reference = jitgrad.value_and_grad(slow_decay, argnums=1, jit=False)
    compiled = jitgrad.value_and_grad(slow_decay, argnums=1, jit=True)
    for rate in (0.999, 0.9995, 0.99):
        want, got = reference(5.0, rate), compiled(5.0, rate)
        assert want[0] == got[0] == slow_decay(5.0, rate)
        assert want[1] == pytest.approx(got[1], rel=1e-12)
    assert compiled.cache_info().traces == 1


def damped(theta, rate):
    omega = 0.0
    while abs(theta) + abs(omega) > 1e-3:
        theta, omega = theta + 0.01 * omega, omega - 0.01 * (9.81 * np.sin(theta) + rate * omega)
    return theta * theta + omega


@pytest.mark.parametrize("jit", [False, True])
def test_checkpointed_while_loop_matches_taped(monkeypatch, jit):
    taped = jitgrad.value_and_grad(damped, argnums=(0, 1), jit=jit)
    want = [taped(0.8, rate) for rate in (2.0, 3.0)]
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    checkpointed = jitgrad.value_and_grad(damped, argnums=(0, 1), jit=jit)
    for rate, (value, grads) in zip((2.0, 3.0), want):
        got, got_grads = checkpointed(0.8, rate)
        assert got == value == pytest.approx(damped(0.8, rate), rel=1e-12)
        np.testing.assert_allclose(got_grads, grads, rtol=1e-10)
    assert checkpointed.cache_info().traces == 1
    assert_grad(damped, 0.8, 2.5, argnums=(0, 1), jit=jit)


def returns_after_an_effect(x):
    seen = {}
    for i in range(x.shape[0]):
        seen[i] = 0               # (a list appended to would roll: tracer/interpretation/appends.py)
        if x[i] > 0.5:
            return x[i] * len(seen)
    return x[0]


def test_a_loop_left_by_return_reports_why_it_was_not_rolled():
    f = jitgrad.value_and_grad(returns_after_an_effect, jit=False)
    x = np.linspace(0.0, 1.0, 50)
    assert f(x)[0] == returns_after_an_effect(x)
    (loops,) = [p.loops for p in f.cache_info().paths]
    assert len(loops) == 1 and "not rolled: the loop counter is used (an index of a dict)" in loops[0], loops


def leaving_before_a_branch(p, t_end):
    """The exit (`break`) comes before a branch on data whose one side checks a decision of its own,
    which fails in the iteration that leaves (Python never gets there): the loop op evaluates its
    whole body in that iteration, so it takes the traced count instead of leaving at run time."""
    t, x = 0.0, 1.0
    while True:
        if t >= t_end:
            break
        if x > 0.0:
            x = x - 0.3 * p[0]
            if t < t_end:
                x = x * 1.0
        else:
            x = x + p[1]
        t += 0.01
    return x


def test_a_loop_leaving_before_a_branch_that_checks_a_decision_runs_its_traced_count():
    g = jitgrad.jit_grad(leaving_before_a_branch, argnums=(0,))
    for t_end, traces in ((3.0, 1), (3.0, 1), (4.0, 2), (2.5, 3)):
        assert_grad(leaving_before_a_branch, np.array([1.0, 0.5]), t_end, grad_fn=g)
        assert g.cache_info().traces == traces
    loops = g.cache_info().paths[0].loops
    assert "rolled" in loops[0] and "2 paths" in loops[0] and "leaves on data" not in loops[0], loops
    assert_grad(leaving_before_a_branch, np.array([1.0, 0.5]), 3.0, jit=False)
