"""Loops inside library code roll (issue 10): SciPy's root finders and NumPy's polynomial evaluations are
Python loops whose iterations enter `np.errstate` (np.isclose, apply_where) and build small objects;
an errstate block left inside the iteration, stores into objects the iteration made and reads of their
attributes change nothing outside it.  Each is rolled (cache_info says so), its gradient is compared
with finite differences, the implicit-function derivative where there is one, and the compiled gradient
with the reference executor's."""
import numpy as np
import pytest
import scipy.optimize as so

import jitgrad
from e2e import assert_grad
from test_rolling import not_rolled, top_loops, traced


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def newton_root(p):
    """The root of x**3 + p[0] x - p[1] by Newton's method (its loop returns on `fval == 0` or when
    np.isclose says the step is below tol)."""
    return so.newton(lambda x: x ** 3 + p[0] * x - p[1], 1.0, fprime=lambda x: 3 * x ** 2 + p[0], tol=1e-13)


def newton_implicit(p, x):
    """d root / d p from the implicit function theorem."""
    return -np.array([x, -1.0]) / (3 * x ** 2 + p[0])


def rolled_in(g, filename):
    loops = g.cache_info().paths[-1].loops
    return any(filename in line and ": rolled" in line for line in loops), loops


# p = (2, 1) stops on fval == 0, p = (2, 1.5) on np.isclose (checked in the next test)
@pytest.mark.parametrize("p", [np.array([2.0, 1.0]), np.array([2.0, 1.5])], ids=["fval", "isclose"])
def test_newton_rolls_and_has_the_implicit_derivative(p):
    g = jitgrad.value_and_grad(newton_root)
    x, grad = g(p)
    assert x == pytest.approx(newton_root(p), rel=1e-15)
    rolled, loops = rolled_in(g, "_zeros_py.py")
    assert rolled and "leaves on data" in loops[0], loops
    np.testing.assert_allclose(grad, newton_implicit(p, x), rtol=1e-9)
    np.testing.assert_allclose(grad, assert_grad(newton_root, p, jit=False), rtol=1e-11)


def test_newton_leaving_by_the_other_test_retraces():
    """The rolled loop of p = (2, 1) leaves where fval == 0; with p = (2, 1.5) its iteration would leave
    on np.isclose, a guard after that exit in the body: the call retraces, and vice versa."""
    for first, second in (([2.0, 1.0], [2.0, 1.5]), ([2.0, 1.5], [2.0, 1.0])):
        g = jitgrad.value_and_grad(newton_root)
        for p in (np.array(first), np.array(second)):
            x, grad = g(p)
            assert x == pytest.approx(newton_root(p), rel=1e-15)
            np.testing.assert_allclose(grad, newton_implicit(p, x), rtol=1e-9)
        assert g.cache_info().traces == 2, g.cache_info().retraces


def test_newton_converging_in_other_counts_uses_one_trace():
    g = jitgrad.value_and_grad(newton_root)
    for b in (1.5, 2.5, 6.0, 20.0, 100.0):              # all stop on np.isclose, after 5 to 11 iterations
        p = np.array([1.0, b])
        x, grad = g(p)
        np.testing.assert_allclose(grad, newton_implicit(p, x), rtol=1e-9)
    assert g.cache_info().traces == 1, g.cache_info().retraces


def fixed_point(p):
    return so.fixed_point(lambda x: np.cos(p[0] * x) + p[1], 0.5, xtol=1e-13, method="iteration")


def test_fixed_point_iteration_rolls_and_has_the_implicit_derivative():
    p = np.array([0.8, 0.1])
    g = jitgrad.value_and_grad(fixed_point)
    x, grad = g(p)
    assert rolled_in(g, "_minpack_py.py")[0], g.cache_info().paths[0].loops
    a = p[0]
    implicit = -np.array([-x * np.sin(a * x), 1.0]) / (-a * np.sin(a * x) - 1.0)
    np.testing.assert_allclose(grad, implicit, rtol=1e-9)
    np.testing.assert_allclose(grad, jitgrad.jit_grad(fixed_point, jit=False)(p), rtol=1e-12)


def polynomials(c):
    return (np.polynomial.polynomial.polyval(0.7, c) + np.polynomial.hermite.hermval(0.3, c)
            + np.polyval(c, -0.6))


def test_numpy_polynomial_loops_roll():
    c = np.linspace(0.1, 1.0, 30)
    trace, ctx = traced(polynomials, c)
    assert len(top_loops(trace)) == 3, ctx.loops.report()
    files = " ".join(ctx.loops.report())
    assert "polynomial/polynomial.py" in files and "polynomial/hermite.py" in files and "_polynomial_impl" in files
    reference = assert_grad(polynomials, c, jit=False)
    np.testing.assert_allclose(jitgrad.jit_grad(polynomials)(c), reference, rtol=1e-12)


def errstate_in_body(x, n):
    s = x
    for _ in range(n):
        with np.errstate(divide="ignore", invalid="ignore"):
            s = s * 0.9 + np.log(np.abs(s) + 1.0)
    return s


def seterr_in_body(x, n):
    old = np.geterr()
    s = x
    try:
        for _ in range(n):
            np.seterr(under="warn")                     # sets the mode (a new one) in every iteration
            s = s * 0.9 + 1.0
    finally:
        np.seterr(**old)
    return s


def raising_errstate_in_body(x, n):
    s = x
    for _ in range(n):
        with np.errstate(divide="raise"):
            s = s * 0.9 + 1.0 / (s + 2.0)
    return s


def test_an_errstate_block_inside_the_iteration_rolls():
    trace, _ = traced(errstate_in_body, np.float64(0.3), 40)
    assert len(top_loops(trace)) == 1
    assert_grad(errstate_in_body, np.float64(0.3), 40, jit=False)
    g = jitgrad.jit_grad(errstate_in_body)
    g(0.3, 40)
    g(0.5, 40)
    assert g.cache_info().traces == 1                   # the block caches normally


@pytest.mark.parametrize("fn, why", [(seterr_in_body, "error mode"), (raising_errstate_in_body, "raises")])
def test_changing_or_raising_error_modes_stay_unrolled(fn, why):
    trace, ctx = traced(fn, np.float64(0.3), 20)
    assert not top_loops(trace)
    assert why in not_rolled(ctx)


class Step:
    def __init__(self, state, rate):
        self.state, self.rate = state, rate

    def advance(self):
        self.state = self.state * (1.0 - self.rate) + np.sin(self.state)
        return self.state


def objects_in_body(x, n):
    s = x
    for _ in range(n):
        s = Step(s, 0.1).advance()                       # attribute stores into an object the iteration made
    return s


def test_stores_into_objects_made_in_the_iteration_roll():
    trace, ctx = traced(objects_in_body, np.float64(0.7), 30)
    assert len(top_loops(trace)) == 1, ctx.loops.report()
    assert_grad(objects_in_body, np.float64(0.7), 30, jit=False)
