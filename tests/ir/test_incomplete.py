"""The incomplete gamma and beta functions: the numerical derivatives w.r.t. the shape parameters
(ir/incomplete.py) against mpmath; the ops' first derivatives w.r.t. every operand against finite
differences (the op table tests/op_cases.py covers second derivatives w.r.t. x); the refusal of second
derivatives w.r.t. a shape parameter; exact derivatives at the edges of the support; scipy.special's
gammainc, gammaincc, betainc, betaincc, stdtr, fdtr(c), chdtr(c), gdtr(c) as they ship under jit_grad (table-driven,
against finite differences), their compositions' values against SciPy on a grid of edge values, and the
compiled path against the reference executor."""
import mpmath
import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st

import gradcheck
import jitgrad
from e2e import assert_grad
from jitgrad.ir import Builder, incomplete, run_trace
from traced_helpers import call, trace

INF, NAN = np.inf, np.nan


def _mp_derivative(f, at):
    with mpmath.workdps(40):
        return float(mpmath.diff(f, at))


def _mp_gammainc_da(a, x):
    """dP/da, differentiating P below 1/2 and -Q above (so that nothing cancels)."""
    with mpmath.workdps(40):
        lower = mpmath.gammainc(a, 0, x, regularized=True) < 0.5
    if lower:
        return _mp_derivative(lambda s: mpmath.gammainc(s, 0, x, regularized=True), a)
    return -_mp_derivative(lambda s: mpmath.gammainc(s, x, mpmath.inf, regularized=True), a)


def _mp_betainc_partial(a, b, x, which):
    """dI_x(a, b)/da (which = 0) or /db, through I_x(a, b) = 1 - I_(1-x)(b, a) for x >= 1/2."""
    def direct(s):
        p, q = (s, b) if which == 0 else (a, s)
        return mpmath.betainc(p, q, 0, x, regularized=True)

    def mirrored(s):
        p, q = (s, b) if which == 0 else (a, s)
        return -mpmath.betainc(q, p, 0, 1 - mpmath.mpf(x), regularized=True)
    return _mp_derivative(direct if x < 0.5 else mirrored, (a, b)[which])


def _mp_stdtr_ddf(df, t):
    def cdf(nu):
        w = mpmath.mpf(t) ** 2 / (nu + mpmath.mpf(t) ** 2)
        return 0.5 + 0.5 * mpmath.sign(t) * mpmath.betainc(0.5, nu / 2, 0, w, regularized=True)
    return _mp_derivative(cdf, df)


GAMMA_POINTS = [(0.05, 0.01), (0.5, 2.0), (1.0, 1.0), (2.5, 0.3), (3.0, 7.0), (30.0, 25.0), (30.0, 40.0),
                (0.7, 60.0), (400.0, 410.0), (2.0, 1e-8)]
BETA_POINTS = [(0.5, 0.5, 0.3), (2.0, 3.0, 0.9), (2.0, 300.0, 0.5), (0.2, 4.0, 0.01), (30.0, 200.0, 0.12),
               (5.0, 0.7, 0.999), (1.0, 1.0, 0.5), (3.0, 2.0, 1e-6)]
T_POINTS = [(0.5, 3.0), (1.0, 1.0), (3.0, -40.0), (5.0, -0.1), (5.0, 1e-6), (30.0, -0.1), (50.0, -2.0)]


def test_gammainc_da_matches_mpmath():
    a, x = np.array(GAMMA_POINTS).T
    np.testing.assert_allclose(incomplete.gammainc_da(a, x), [_mp_gammainc_da(*p) for p in GAMMA_POINTS],
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("which", [0, 1])
def test_betainc_partials_match_mpmath(which):
    a, b, x = np.array(BETA_POINTS).T
    got = (incomplete.betainc_da, incomplete.betainc_db)[which](a, b, x)
    np.testing.assert_allclose(got, [_mp_betainc_partial(*p, which) for p in BETA_POINTS], rtol=1e-12, atol=0)


def test_stdtr_ddf_matches_mpmath():
    df, t = np.array(T_POINTS).T
    np.testing.assert_allclose(incomplete.stdtr_ddf(df, t), [_mp_stdtr_ddf(*p) for p in T_POINTS],
                               rtol=1e-12, atol=0)


def test_numerical_derivatives_are_nan_outside_the_domain_and_zero_where_flat():
    assert np.isnan(incomplete.gammainc_da([0.0, -1.0, 2.0], [1.0, 1.0, -1.0])).all()
    assert incomplete.gammainc_da([2.0, 0.5], [0.0, INF]).tolist() == [0.0, 0.0]
    assert np.isnan(incomplete.betainc_da([-1.0, 2.0], [2.0, 2.0], [0.5, 1.5])).all()
    assert incomplete.betainc_db([2.0, 0.5], [3.0, 0.5], [0.0, 1.0]).tolist() == [0.0, 0.0]
    assert incomplete.stdtr_ddf([3.0, 3.0, 3.0], [0.0, INF, -INF]).tolist() == [0.0, 0.0, 0.0]


# -- the ops' derivative rules ------------------------------------------------------------------------------
def one_op(op, *args):
    b = Builder()
    return b.build([b.emit(op, *[b.input(np.shape(a), np.asarray(a).dtype) for a in args])])


OP_ARGS = {
    "gammainc": ([0.7, 2.0, 4.5], [0.4, 2.5, 3.0]),
    "gammaincc": ([0.7, 2.0, 4.5], [1.4, 0.5, 6.0]),
    "betainc": ([0.6, 2.0, 5.0], [1.5, 0.8, 3.0], [0.3, 0.6, 0.85]),
    "betaincc": ([0.6, 2.0, 5.0], [1.5, 0.8, 3.0], [0.1, 0.5, 0.7]),
    "stdtr": ([0.8, 3.0, 12.0], [-1.5, 0.2, 2.5]),
    "fdtr": ([0.7, 2.0, 9.0], [1.5, 4.0, 30.0], [0.3, 1.2, 8.0]),
    "fdtrc": ([0.7, 2.0, 9.0], [1.5, 4.0, 30.0], [0.1, 2.2, 0.9]),
}


@pytest.mark.parametrize("op", sorted(OP_ARGS))
def test_first_derivatives_wrt_every_operand(op):
    args = [np.array(a) for a in OP_ARGS[op]]
    gradcheck.check_trace(one_op(op, *args), args, np.random.default_rng(0), order=1)


@pytest.mark.parametrize("op, name", [("gammainc", "gammainc_da"), ("betainc", "betainc_d[ab]"),
                                      ("stdtr", "stdtr_ddf"), ("fdtr", "betainc_d[ab]")])
def test_second_derivative_wrt_a_shape_parameter_is_refused(op, name):
    args = [np.array(a) for a in OP_ARGS[op]]
    backward = gradcheck.reverse_trace(one_op(op, *args))
    with pytest.raises(jitgrad.UnsupportedError, match=name):
        gradcheck.reverse_trace(backward)


# d/d(variable) of the derivative w.r.t. a shape parameter, the shape parameters traced but not differentiated
# (the rules are asked only for active operands): (function, its arguments, the shape parameter's position,
# the variable's position, the numerical derivative op in the trace)
MIXED = {
    "gammainc_da": (sc.gammainc, (np.array([0.7, 2.0, 4.5]), np.array([0.4, 2.5, 3.0])), 0, 1),
    "betainc_da": (sc.betainc, (np.array([0.6, 2.0, 5.0]), np.array([1.5, 0.8, 3.0]),
                                np.array([0.3, 0.6, 0.85])), 0, 2),
    "betainc_db": (sc.betainc, (np.array([0.6, 2.0, 5.0]), np.array([1.5, 0.8, 3.0]),
                                np.array([0.3, 0.6, 0.85])), 1, 2),
    "stdtr_ddf": (sc.stdtr, (np.array([0.8, 3.0, 12.0]), np.array([-1.5, 0.2, 2.5])), 0, 1),
}


def _shape_derivative(fn, parameter):
    """(*args) -> sum of d fn / d args[parameter], by a jit_grad called inside the traced function."""
    return lambda *args: np.sum(jitgrad.jit_grad(lambda *a: np.sum(fn(*a)), argnums=parameter)(*args))


@pytest.mark.parametrize("name", sorted(MIXED))
def test_derivative_of_a_shape_derivative_wrt_the_variable(name):
    fn, args, parameter, variable = MIXED[name]
    assert_grad(_shape_derivative(fn, parameter), *args, argnums=variable)


@pytest.mark.parametrize("name", sorted(MIXED))
def test_derivative_of_a_shape_derivative_wrt_the_shape_parameter_is_refused(name):
    fn, args, parameter, _ = MIXED[name]
    with pytest.raises(jitgrad.UnsupportedError, match=name):
        jitgrad.jit_grad(_shape_derivative(fn, parameter), argnums=parameter)(*args)


# -- edges ---------------------------------------------------------------------------------------------------
def test_gammainc_derivatives_at_the_edges():
    a, x = np.array([0.5, 1.0, 2.0, 2.0, 0.5]), np.array([0.0, 0.0, 0.0, INF, INF])
    for fn, sign in ((sc.gammainc, 1), (sc.gammaincc, -1)):
        da, dx = jitgrad.jit_grad(lambda a, x: np.sum(fn(a, x)), argnums=(0, 1))(a, x)
        assert da.tolist() == [0.0] * 5
        assert (sign * dx).tolist() == [INF, 1.0, 0.0, 0.0, 0.0]


def test_betainc_derivatives_at_the_edges():
    a, b = np.array([0.5, 1.0, 2.0, 2.0, 2.0]), np.array([2.0, 3.0, 2.0, 1.0, 0.5])
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    da, db, dx = jitgrad.jit_grad(lambda a, b, x: np.sum(sc.betainc(a, b, x)), argnums=(0, 1, 2))(a, b, x)
    assert da.tolist() == db.tolist() == [0.0] * 5
    np.testing.assert_allclose(dx, [INF, 3.0, 0.0, 2.0, INF], rtol=1e-14)


def test_fdtr_derivatives_at_zero_and_infinity():
    dfn, dfd, x = np.array([1.0, 2.0, 4.0, 3.0]), np.array([3.0, 3.0, 3.0, 3.0]), np.array([0.0, 0.0, 0.0, INF])
    grads = jitgrad.jit_grad(lambda *args: np.sum(sc.fdtr(*args)), argnums=(0, 1, 2))(dfn, dfd, x)
    assert grads[0].tolist() == grads[1].tolist() == [0.0] * 4
    np.testing.assert_allclose(grads[2], [INF, 1.0, 0.0, 0.0], rtol=1e-14)


def test_stdtr_derivatives_at_zero_and_infinity():
    df, t = np.array([3.0, 0.7, 3.0]), np.array([0.0, 0.0, INF])
    ddf, dt = jitgrad.jit_grad(lambda df, t: np.sum(sc.stdtr(df, t)), argnums=(0, 1))(df, t)
    assert ddf.tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(dt, [*st.t.pdf(0.0, df[:2]), 0.0], rtol=1e-13)


# -- scipy.special as it ships ---------------------------------------------------------------------------
RNG = np.random.default_rng(5)
POS = RNG.uniform(0.5, 3.0, 4)
UNIT = RNG.uniform(0.1, 0.9, 4)
REAL = RNG.normal(size=4)
# dP(a, x)/dx by jit_grad, differentiated again below w.r.t. x and a (a closed form, differentiable)
GAMMA_DENSITY = jitgrad.jit_grad(lambda x, a: np.sum(sc.gammainc(a, x)))
# name -> (loss, arguments, argnums)
CASES = {
    "gammainc": (lambda a, x: np.sum(sc.gammainc(a, x) * x), (POS, POS[::-1]), (0, 1)),
    "gammaincc": (lambda a, x: np.sum(sc.gammaincc(a, x) ** 2), (POS, POS[::-1]), (0, 1)),
    "betainc": (lambda a, b, x: np.sum(sc.betainc(a, b, x)), (POS, POS[::-1], UNIT), (0, 1, 2)),
    "betaincc": (lambda a, b, x: np.sum(sc.betaincc(a, b, x)), (POS, POS[::-1], UNIT), (0, 1, 2)),
    "stdtr": (lambda df, t: np.sum(sc.stdtr(df, t)), (POS, REAL), (0, 1)),
    "chdtr": (lambda v, x: np.sum(sc.chdtr(v, x)), (POS, POS[::-1]), (0, 1)),
    "chdtrc": (lambda v, x: np.sum(sc.chdtrc(v, x)), (POS, POS[::-1]), (0, 1)),
    "gdtr": (lambda a, b, x: np.sum(sc.gdtr(a, b, x)), (POS, POS[::-1], UNIT), (0, 1, 2)),
    "gdtrc": (lambda a, b, x: np.sum(sc.gdtrc(a, b, x)), (POS, POS[::-1], UNIT), (0, 1, 2)),
    "fdtr": (lambda m, n, x: np.sum(sc.fdtr(m, n, x)), (POS, POS[::-1] * 3, POS), (0, 1, 2)),
    "fdtrc": (lambda m, n, x: np.sum(sc.fdtrc(m, n, x)), (POS, POS[::-1], POS * 5), (0, 1, 2)),
    "broadcast_scalar_shape": (lambda a, x: np.sum(sc.gammainc(a, x)), (1.7, POS), (0, 1)),
    "ufunc_out": (lambda a, x: np.sum(sc.gammainc(a, x, out=np.zeros_like(x))), (POS, UNIT), (0, 1)),
    "stats_t_logcdf": (lambda x, df: np.sum(st.t.logcdf(x, df, loc=0.1)), (REAL, 3.5), (0, 1)),
    "stats_beta_logsf": (lambda x, a, b: np.sum(st.beta(a, b).logsf(x)), (UNIT, 1.5, 2.5), (0, 1, 2)),
    "density_wrt_x_and_a": (lambda x, a: np.sum(GAMMA_DENSITY(x, a)), (POS, 2.5), (0, 1)),
    "second_order_in_x": (lambda x: np.sum(jitgrad.jit_grad(lambda y: np.sum(sc.betainc(2.0, 3.0, y)))(x)),
                          (UNIT,), 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args, argnums = CASES[name]
    assert_grad(fn, *args, argnums=argnums)


@pytest.mark.parametrize("fn", [sc.chdtr, sc.chdtrc, sc.gdtr, sc.gdtrc], ids=lambda f: f.__name__)
def test_composed_values_equal_scipy_on_edge_values(fn):
    values = np.array([-1.0, -0.0, 0.0, 0.3, 1.0, 7.5, 1e300, INF, -INF, NAN])
    grid = np.meshgrid(*[values] * fn.nin, indexing="ij")
    args = [g.ravel() for g in grid]
    _, _, tr = trace(lambda *t: call(fn, *t), *args)
    (got,) = run_trace(tr, args)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(got, fn(*args), rtol=1e-13, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", ["gammainc", "betainc", "stdtr", "stats_t_logcdf", "stats_beta_logsf"])
def test_compiled_gradient_equals_the_reference_executor(name):
    fn, args, argnums = CASES[name]
    compiled = jitgrad.jit_grad(fn, argnums=argnums)(*args)
    reference = jitgrad.jit_grad(fn, argnums=argnums, jit=False)(*args)
    for c, r in zip(compiled, reference):
        np.testing.assert_allclose(c, r, rtol=1e-14, atol=0)
