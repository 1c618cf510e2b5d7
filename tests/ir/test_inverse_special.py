"""Inverse distribution functions (ir/inverse_special.py, tracer/rules/special*.py): scipy.special's ndtri,
ndtri_exp, gammaincinv, gammainccinv, betaincinv, betainccinv, stdtrit, fdtri, chdtri and binom, and the
ppf / isf of scipy.stats' continuous distributions, called as SciPy ships them: gradients w.r.t. the
probability and every shape / loc / scale parameter against finite differences (table-driven), second
derivatives, values against SciPy on edge values, the derivatives at p = 0 and 1, loud refusals, and the
compiled path against the reference executor."""
import numpy as np
import pytest
import scipy.special as sc
import scipy.special._ufuncs as scu
import scipy.stats as st

import jitgrad
from e2e import assert_grad
from jitgrad.ir import run_trace
from traced_helpers import call, trace

INF, NAN = np.inf, np.nan
RNG = np.random.default_rng(11)
P = RNG.uniform(0.05, 0.95, 4)
POS = RNG.uniform(0.6, 4.0, 4)


def _summed(fn):
    return lambda *args: np.sum(fn(*args))


# name -> (function of the differentiated arguments, arguments, argnums)
SPECIAL = {
    "ndtri": (sc.ndtri, (P,), 0),
    "ndtri_exp": (sc.ndtri_exp, (np.log(P),), 0),
    "gammaincinv": (sc.gammaincinv, (POS, P), (0, 1)),
    "gammainccinv": (sc.gammainccinv, (POS, P), (0, 1)),
    "betaincinv": (sc.betaincinv, (POS, POS[::-1], P), (0, 1, 2)),
    "betainccinv": (sc.betainccinv, (POS, POS[::-1], P), (0, 1, 2)),
    "stdtrit": (sc.stdtrit, (POS, P), (0, 1)),
    "fdtri": (sc.fdtri, (POS, 2 * POS[::-1], P), (0, 1, 2)),
    "chdtri": (sc.chdtri, (POS, P), (0, 1)),
    "binom": (sc.binom, (np.array([5.5, 7.2, 0.4, 3.0]), np.array([2.1, 3.0, -0.3, 1.0])), (0, 1)),
    "binom_scalar_k": (lambda n: sc.binom(n, 2.0), (POS + 2,), 0),
    "ufunc_out": (lambda a, p: sc.gammaincinv(a, p, out=np.zeros_like(p)), (POS, P), (0, 1)),
    "broadcast": (lambda a, p: sc.betaincinv(a[:, None], 1.5, p), (POS[:2], P), (0, 1)),
}

# distribution -> its shape parameters
DISTRIBUTIONS = {
    "norm": (), "t": (3.5,), "gamma": (2.5,), "beta": (2.0, 3.5), "chi2": (3.3,), "f": (3.0, 5.5),
    "invgamma": (2.5,), "expon": (), "lognorm": (0.7,), "logistic": (), "cauchy": (), "laplace": (),
    "uniform": (),
}
STATS = {f"{name}_{method}": (lambda q, loc, scale, *shape, _d=getattr(st, name), _m=method:
                              getattr(_d, _m)(q, *shape, loc=loc, scale=scale),
                              (P, 0.3, 1.7, *shape), tuple(range(3 + len(shape))))
         for name, shape in DISTRIBUTIONS.items() for method in ("ppf", "isf")}
STATS["frozen_gamma_ppf"] = (lambda q, a: st.gamma(a, scale=2.0).ppf(q), (P, 1.4), (0, 1))
STATS["norm_ppf_scalar"] = (lambda q, m: st.norm.ppf(q, m), (0.3, 0.5), (0, 1))
CASES = {**SPECIAL, **STATS}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args, argnums = CASES[name]
    assert_grad(_summed(fn), *args, argnums=argnums)


# d/dp of dy/dp, and d/dp of dy/d(shape parameter) (which differentiates the numerical shape derivative)
def _inner_gradient(fn, argnum):
    return lambda *args: np.sum(jitgrad.jit_grad(_summed(fn), argnums=argnum)(*args))


SECOND = {
    "ndtri": (sc.ndtri, (P,), 0, 0),
    "gammaincinv_p_p": (sc.gammaincinv, (POS, P), 1, 1),
    "gammaincinv_a_p": (sc.gammaincinv, (POS, P), 0, 1),
    "betaincinv_b_p": (sc.betaincinv, (POS, POS[::-1], P), 1, 2),
    "stdtrit_p_df": (sc.stdtrit, (POS, P), 1, 0),
    "fdtri_p_p": (sc.fdtri, (POS, 2 * POS[::-1], P), 2, 2),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_derivatives(name):
    fn, args, inner, outer = SECOND[name]
    assert_grad(_inner_gradient(fn, inner), *args, argnums=outer)


@pytest.mark.parametrize("fn, args, op", [(sc.gammaincinv, (POS, P), "gammainc_da"),
                                          (sc.stdtrit, (POS, P), "stdtr_ddf")], ids=["gammaincinv", "stdtrit"])
def test_second_derivative_wrt_a_shape_parameter_is_refused(fn, args, op):
    with pytest.raises(jitgrad.UnsupportedError, match=op):
        jitgrad.jit_grad(_inner_gradient(fn, 0), argnums=0)(*args)


# -- values and derivatives at the edges ------------------------------------------------------------------
EDGE_P = np.array([-0.5, -0.0, 0.0, 1e-300, 0.3, 0.5, 1.0 - 1e-16, 1.0, 1.5, INF, NAN])
EDGE_SHAPE = np.array([-1.0, 0.0, 0.3, 2.5, INF, NAN])


@pytest.mark.parametrize("fn", [sc.ndtri, sc.gammaincinv, sc.gammainccinv, sc.betaincinv, sc.betainccinv,
                                sc.stdtrit, sc.fdtri, sc.chdtri, scu._beta_ppf], ids=lambda f: f.__name__)
def test_values_equal_scipy_on_edge_values(fn):
    grids = [EDGE_SHAPE] * (fn.nin - 1) + [EDGE_P]
    if fn is scu._beta_ppf:
        grids = grids[::-1]
    args = [g.ravel() for g in np.meshgrid(*grids, indexing="ij")]
    _, _, tr = trace(lambda *t: call(fn, *t), *args)
    (got,) = run_trace(tr, args)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, fn(*args))


def test_cauchy_quantiles_equal_scipy():
    q = np.array([1e-12, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 1 - 1e-12])
    for fn in (scu._cauchy_ppf, scu._cauchy_isf):
        _, _, tr = trace(lambda *t: call(fn, *t), q, 0.3, 1.7)
        np.testing.assert_allclose(run_trace(tr, [q, np.float64(0.3), np.float64(1.7)])[0], fn(q, 0.3, 1.7),
                                   rtol=2e-15, atol=0)


def test_inverse_gamma_derivatives_at_p_zero_and_one():
    """dy/dp = 1/density(y): inf at p = 0 for a > 1 (density 0), 0 for a < 1 (density inf), inf at p = 1;
    dy/da = 0 there (y is 0 or inf whatever a is); NaN outside [0, 1]."""
    a, p = np.array([0.5, 2.0, 0.5, 2.0, 2.0]), np.array([0.0, 0.0, 1.0, 1.0, 1.5])
    da, dp = jitgrad.jit_grad(_summed(sc.gammaincinv), argnums=(0, 1))(a, p)
    assert dp[:4].tolist() == [0.0, INF, INF, INF] and np.isnan(dp[4])
    assert da[:4].tolist() == [0.0] * 4 and np.isnan(da[4])


def test_ndtri_and_stdtrit_derivatives_at_p_zero_and_one():
    assert jitgrad.jit_grad(_summed(sc.ndtri))(np.array([0.0, 1.0])).tolist() == [INF, INF]
    assert jitgrad.jit_grad(_summed(sc.ndtri_exp))(np.array([-INF, 0.0])).tolist() == [0.0, INF]
    ddf, dp = jitgrad.jit_grad(_summed(sc.stdtrit), argnums=(0, 1))(np.array([3.0, 3.0, 3.0]),
                                                                      np.array([0.0, 0.5, 1.0]))
    assert ddf.tolist() == [0.0, 0.0, 0.0]
    assert dp[[0, 2]].tolist() == [INF, INF]
    np.testing.assert_allclose(dp[1], 1 / st.t.pdf(0.0, 3.0), rtol=1e-14)


def test_stats_ppf_at_q_zero_and_one_is_the_support_bound():
    """SciPy writes _a * scale + loc at q = 0 and _b * scale + loc at q = 1: derivative 0 w.r.t. q, 1 w.r.t.
    loc, the bound _a or _b w.r.t. scale; an infinite bound is a constant (derivatives 0, not NaN)."""
    q = np.array([0.0, 1.0, 1.5])
    for dist, shape, bounds in ((st.norm, (), (-INF, INF)), (st.gamma, (2.5,), (0.0, INF))):
        loss = jitgrad.jit_grad(lambda q, loc, scale: np.sum(dist.ppf(q, *shape, loc=loc, scale=scale)[:2]),
                                argnums=(0, 1, 2))
        grads = loss(q, 0.3, 1.7)
        finite = [b for b in bounds if np.isfinite(b)]
        assert grads[0].tolist() == [0.0, 0.0, 0.0] and grads[1:] == (len(finite), sum(finite))


def test_binom_outside_its_gamma_region_is_refused():
    with pytest.raises(jitgrad.UnsupportedError, match="binom"):
        jitgrad.jit_grad(_summed(sc.binom))(np.array([3.0, 2.0]), np.array([5.0, 1.0]))


def test_binom_guard_retraces_when_leaving_the_region():
    grad = jitgrad.jit_grad(_summed(sc.binom))
    grad(np.array([3.5, 2.0]), np.array([1.0, 1.5]))
    with pytest.raises(jitgrad.UnsupportedError, match="binom"):
        grad(np.array([3.5, 2.0]), np.array([5.0, 1.5]))


@pytest.mark.parametrize("name", ["gammaincinv", "betaincinv", "fdtri", "ndtri", "t_ppf", "beta_isf"])
def test_compiled_gradient_equals_the_reference_executor(name):
    fn, args, argnums = CASES[name]
    compiled = jitgrad.jit_grad(_summed(fn), argnums=argnums)(*args)
    reference = jitgrad.jit_grad(_summed(fn), argnums=argnums, jit=False)(*args)
    for c, r in zip(compiled if isinstance(argnums, tuple) else [compiled],
                    reference if isinstance(argnums, tuple) else [reference]):
        np.testing.assert_allclose(c, r, rtol=1e-14, atol=0)


@pytest.mark.parametrize("method", ["ppf", "isf"])
def test_stats_quantile_masks_are_guarded(method):
    """A kernel compiled on 0 < q < 1 is not reused for q at 0, 1, outside [0, 1] or NaN (values as SciPy)."""
    fn = jitgrad.value_and_grad(lambda q, scale: np.sum(getattr(st.gamma, method)(q, 2.5, scale=scale) * q))
    edges = np.array([0.3, 0.0, 1.0, 1.5, 0.6])
    for q in (P[:4], np.array([0.2, 0.4, 0.6, 0.8]), edges, np.array([0.3, 0.4, NAN, 0.1])):
        value, grad = fn(q, 1.7)
        expected = np.sum(getattr(st.gamma, method)(q, 2.5, scale=1.7) * q)
        np.testing.assert_allclose(value, expected, rtol=1e-14)
