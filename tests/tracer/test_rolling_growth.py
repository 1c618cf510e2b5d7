"""A `while` loop running far more iterations than the call that traced it answers from the same trace:
its loop op has no bound (a loop of a run-time trip count: tracer/interpretation/whileloops.py), and
its reverse mode tapes as many rows as the budget holds, a stack that grows with the iterations
taken, and runs the rest in segments, checkpointed (ir/loop_tape.py's `_continued`).
Calls running 1x, 10x, 100x, 1000x and 100,000x the traced count on one trace: values and gradients
against CPython and central differences (through the cached function), compiled against the reference
executor, forward mode, the tape budget 0 and the default, grad of grad (a jit_grad inside a traced
function keeps a capacity: past it, a call retraces)."""
import types

import numpy as np
import pytest

import jitgrad
from jitgrad import transforms
from jitgrad.ir import loop_tape
from jitgrad.tracer.interpretation import whileloops
from e2e import assert_grad


@pytest.fixture(autouse=True)
def every_loop_rolls(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def settle(x, rate, level):
    s = 0.0
    while x > level:
        x = x * rate - 0.001 * np.sin(x)
        s = s + x * np.cos(x)
    return s


# at rate 0.97 from x = 1: 4 iterations (traced), then 39, 417, 4022 (1x, 10x, 100x, 1000x)
TRACED, LEVELS = 0.9, (0.9, 0.3, 2e-6, 1e-55)


def iterations(x, rate, level):
    n = 0
    while x > level:
        x, n = x * rate - 0.001 * np.sin(x), n + 1
    return n


def test_the_levels_run_1x_to_1000x_the_traced_count():
    counts = [iterations(1.0, 0.97, level) for level in LEVELS]
    assert counts[0] == 4
    for times, count in zip((10, 100, 1000), counts[1:]):
        assert 0.9 * times < count / 4 < 1.1 * times


@pytest.mark.parametrize("jit", [False, True])
def test_one_trace_from_1x_to_1000x_the_traced_count(jit):
    f = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=jit)
    g = jitgrad.jit_grad(settle, argnums=(0,), jit=jit)       # (by rate: too stiff for differences)
    f(1.0, 0.97, TRACED)
    g(1.0, 0.97, TRACED)
    for level in LEVELS + (0.5,):
        value, grads = f(1.0, 0.97, level)
        assert value == pytest.approx(settle(1.0, 0.97, level), rel=1e-12)
        assert_grad(settle, 1.0, 0.97, level, argnums=0, grad_fn=g)
    assert f.cache_info().traces == 1 and g.cache_info().traces == 1


@pytest.mark.parametrize("budget", [64.0, 0.0])
def test_compiled_agrees_with_the_reference_past_the_traced_count(monkeypatch, budget):
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    reference = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=False)
    compiled = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=True)
    for level in LEVELS + (0.2, 0.003):
        want, got = reference(1.0, 0.97, level), compiled(1.0, 0.97, level)
        assert want[0] == pytest.approx(got[0], rel=1e-13)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-11)
    assert reference.cache_info().traces == compiled.cache_info().traces == 1


def test_the_budget_changes_the_segments_not_the_gradient(monkeypatch):
    """As many rows as the budget holds taped first, then segments of their square root (at least
    MIN_SEGMENT): with budget 0, one row, then segments of 16, recomputed: the same values."""
    default = jitgrad.value_and_grad(settle, argnums=(0, 1))
    want = [default(1.0, 0.97, level) for level in LEVELS]
    assert loop_tape._first_rows(None, 8) == (8 * 2 ** 20, 2896)
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", 0.0)
    assert loop_tape._first_rows(None, 8) == (1, loop_tape.MIN_SEGMENT)
    over = jitgrad.value_and_grad(settle, argnums=(0, 1))
    for level, (value, grads) in zip(LEVELS, want):
        got, got_grads = over(1.0, 0.97, level)
        assert got == pytest.approx(value, rel=1e-13)
        np.testing.assert_allclose(got_grads, grads, rtol=1e-11)
    assert default.cache_info().traces == over.cache_info().traces == 1


def walk(x, rate, step):
    s = 0.0
    while x > 0.0:
        x = x - step * (1.0 + 0.1 * np.sin(rate * x))
        s = s + x * rate
    return s


@pytest.mark.parametrize("budget", [64.0, 0.0])
def test_a_hundred_thousand_times_the_traced_count_on_one_trace(monkeypatch, budget):
    """Traced at 10 iterations, called at ~97,000 and ~970,000: no capacity, no retrace; the tape
    grows (or, with budget 0, segments of 16 iterations are recomputed); the gradient of the
    Riemann-like sum (rate) against its closed-form-free reference: the reference executor at 9,700."""
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    f = jitgrad.value_and_grad(walk, argnums=(0, 1))
    reference = jitgrad.value_and_grad(walk, argnums=(0, 1), jit=False)
    f(1.0, 0.7, 0.1)
    want = reference(1.0, 0.7, 1e-4)
    got = f(1.0, 0.7, 1e-4)
    assert got[0] == pytest.approx(want[0], rel=1e-13)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-11)
    assert_grad(walk, 1.0, 0.7, 1e-4, argnums=(1,), grad_fn=jitgrad.jit_grad(walk, argnums=(1,)))
    for step in (1e-5, 1e-6):
        value, grads = f(1.0, 0.7, step)
        assert value == pytest.approx(walk(1.0, 0.7, step), rel=1e-9)
        eps = 1e-6
        fd = (walk(1.0, 0.7 + eps, step) - walk(1.0, 0.7 - eps, step)) / (2 * eps)
        assert grads[1] == pytest.approx(fd, rel=1e-5)
    assert f.cache_info().traces == 1


@pytest.mark.parametrize("jit", [False, True])
def test_a_nested_jit_grad_past_its_capacity_retraces(monkeypatch, jit):
    """Inside a traced function (differentiated again) a `while` loop keeps a capacity."""
    monkeypatch.setattr(whileloops, "MIN_CAPACITY", 8)
    inner = jitgrad.jit_grad(settle, argnums=0, jit=jit)
    f = jitgrad.value_and_grad(lambda x, r, level: inner(x, r, level), argnums=(0, 1), jit=jit)
    f(1.0, 0.97, TRACED)                            # capacity 256 * max(8, 4 * 4) = 4096
    assert iterations(1.0, 0.97, 1e-55) < 4096 < iterations(1.0, 0.97, 1e-60)
    for level in (1e-55, 1e-60):
        value, grads = f(1.0, 0.97, level)
        assert value == pytest.approx(inner(1.0, 0.97, level), rel=1e-12)
    info = f.cache_info()
    assert info.traces == 2 and "left before the capacity its trace gave it" in info.retraces[0]


@pytest.mark.parametrize("jit", [False, True])
def test_vjp_keeps_a_capacity(monkeypatch, jit):
    """jitgrad.vjp's tapes are residuals passed from its forward kernel to its backward one (of static
    shapes): its `while` loops keep a capacity.  Within it, one trace, the cotangents those of
    value_and_grad; past it, a retrace, and the right cotangents."""
    monkeypatch.setattr(whileloops, "MIN_CAPACITY", 8)
    want = jitgrad.value_and_grad(settle, argnums=(0, 1))
    vjp = transforms.VjpFunction(settle, 3, None, jit)
    assert iterations(1.0, 0.97, 2e-6) < 256 * 8 and 256 * 4 * 4 < iterations(1.0, 0.97, 1e-60)
    for level, traces in ((TRACED, 1), (0.3, 1), (2e-6, 1), (1e-60, 2)):      # capacity 256 x 8 to 256 x 16
        value, vjp_fn = vjp(1.0, 0.97, level)
        value_w, grads_w = want(1.0, 0.97, level)
        assert value == pytest.approx(value_w, rel=1e-13)
        np.testing.assert_allclose(vjp_fn(1.0)[:2], grads_w, rtol=1e-11)
        assert vjp.cache_info().traces == traces
    assert "left before the capacity its trace gave it" in vjp.cache_info().retraces[0]


def test_forward_mode_past_the_traced_count():
    fresh = types.FunctionType(settle.__code__, settle.__globals__)      # a jvp cache of its own
    for level in (TRACED,) + LEVELS:
        value, tangent = jitgrad.jvp(fresh, (1.0, 0.97, level), (0.0, 1.0, 0.0))
        eps = 1e-7
        fd = (settle(1.0, 0.97 + eps, level) - settle(1.0, 0.97 - eps, level)) / (2 * eps)
        assert value == pytest.approx(settle(1.0, 0.97, level), rel=1e-12)
        assert tangent == pytest.approx(fd, rel=1e-6)
    assert transforms._transform_of(fresh, transforms.JvpFunction, 3).cache_info().traces == 1


def decay(x, level):
    s = 0.0
    while x > level:
        x = x * 0.97 - 0.01 * np.sin(x) ** 2
        s = s + x * x
    return s


def test_grad_of_grad_past_the_traced_count():
    """Reverse over reverse (the segment loop and its backward loop differentiated again) and the
    Hessian (forward over reverse), against central differences of the first derivative."""
    second = jitgrad.jit_grad(jitgrad.jit_grad(decay))
    hess = jitgrad.hessian(decay)
    first = jitgrad.jit_grad(decay, jit=False)
    eps = 1e-5
    for level in (0.85, 0.3, 2e-6):             # 5 iterations (traced), 34, 422
        fd = (first(1.0 + eps, level) - first(1.0 - eps, level)) / (2 * eps)
        assert second(1.0, level) == pytest.approx(fd, rel=1e-6)
        assert hess(1.0, level) == pytest.approx(fd, rel=1e-6)
    assert second.cache_info().traces == 1 and hess.cache_info().traces == 1


def first_above(x, level):
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > level:
            break
        s = s + np.sin(x[i]) * x[i]
    return s


@pytest.mark.parametrize("n", [40, 20000])          # taped; in segments (SEGMENTED_ROWS iterations or more)
def test_a_break_moving_later_on_later_calls(n):
    x = np.linspace(0.0, 1.0, n)
    g = jitgrad.jit_grad(first_above, argnums=(0,))
    reference = jitgrad.value_and_grad(first_above, argnums=0, jit=False)
    compiled = jitgrad.value_and_grad(first_above, argnums=0, jit=True)
    for level in (0.3, 0.6, 0.95):
        grad, = assert_grad(first_above, x, level, argnums=(0,), grad_fn=g)
        assert np.count_nonzero(grad) == np.count_nonzero(x <= level) - 1     # (x[0] = 0: sin(0) * 0)
        want, got = reference(x, level), compiled(x, level)
        assert got[0] == pytest.approx(want[0], rel=1e-13)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert g.cache_info().traces == reference.cache_info().traces == compiled.cache_info().traces == 1


def relax(x, a):
    s = 0.1
    for i in range(300):
        y = s + x + 0.001 * i
        while y > 0.1:                      # (its count: from the outer loop's carry)
            y = y * a
        s = s * 0.5 + y * x
    return s


@pytest.mark.parametrize("jit", [False, True])
def test_a_while_loop_inside_a_rolled_loop(jit):
    """A `while` loop in the body of another loop keeps a capacity (its tape, taped by the outer loop,
    has a static number of rows): the outer loop rolls, gradients against central differences, one
    trace for two starts whose inner loops run different counts."""
    g = jitgrad.jit_grad(relax, argnums=(0, 1), jit=jit)
    for x in (1.0, 3.0):
        assert_grad(relax, x, 0.9, argnums=(0, 1), grad_fn=g)
    info = g.cache_info()
    assert info.traces == 1 and any("rolled, 299 iterations" in r for r in info.paths[0].loops)
