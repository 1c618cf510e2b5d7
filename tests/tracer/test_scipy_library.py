"""SciPy as it ships, differentiated by jitgrad.jit_grad: scipy.special (logsumexp, softmax, log_softmax and
the special functions composed from gammaln), scipy.stats distributions' pdf/logpdf/cdf/logcdf/sf/logsf
with loc/scale and shape parameters, scipy.spatial.distance metrics with cdist/pdist, scipy.integrate,
scipy.optimize's Rosenbrock functions and scipy.linalg.expm/norm.  Gradients are checked against finite
differences of the same code run by CPython (tests/e2e.py), table-driven; the issue's five acceptance
functions are passed to jit_grad directly and also checked against closed forms."""
import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sl
import scipy.optimize as so
import scipy.spatial.distance as sd
import scipy.special as sc
import scipy.stats as st

import jitgrad
from e2e import assert_grad

RNG = np.random.default_rng(11)
REAL = RNG.normal(size=5)
POS = RNG.uniform(0.5, 3.0, 5)
WEIGHTS = RNG.uniform(0.5, 2.0, 5)
MATRIX = RNG.normal(size=(2, 3))
RAMP = np.arange(1.0, 7.0).reshape(2, 3)


# -- acceptance: library functions passed to jit_grad directly --------------------------------------------
def test_logsumexp_passed_directly():
    grad = assert_grad(sc.logsumexp, REAL)
    np.testing.assert_allclose(grad, np.exp(REAL) / np.exp(REAL).sum(), rtol=1e-12)


def test_var_passed_directly():
    grad = assert_grad(np.var, REAL)
    np.testing.assert_allclose(grad, 2 * (REAL - REAL.mean()) / REAL.size, rtol=1e-12)


def test_cov_passed_directly():
    grad = assert_grad(np.cov, REAL)            # a 1-d sample: the (0-d) unbiased variance
    np.testing.assert_allclose(grad, 2 * (REAL - REAL.mean()) / (REAL.size - 1), rtol=1e-12)


def test_linalg_norm_passed_directly():
    grad = assert_grad(np.linalg.norm, REAL)
    np.testing.assert_allclose(grad, REAL / np.sqrt(np.sum(REAL ** 2)), rtol=1e-12)


def test_norm_logpdf_passed_directly():
    grad = assert_grad(st.norm.logpdf, 0.7)
    assert grad == pytest.approx(-0.7, rel=1e-12)
    loc_scale = assert_grad(st.norm.logpdf, 0.7, 0.2, 1.5, argnums=(0, 1, 2))
    z = (0.7 - 0.2) / 1.5
    np.testing.assert_allclose(loc_scale, [-z / 1.5, z / 1.5, (z * z - 1) / 1.5], rtol=1e-12)


# -- scipy.special -----------------------------------------------------------------------------------------
# name -> (loss, arguments, argnums)
SPECIAL = {
    "logsumexp_axis_keepdims": (lambda x: np.sum(sc.logsumexp(x, axis=1, keepdims=True) * RAMP[:, :1]), (MATRIX,), 0),
    "logsumexp_b": (lambda x, b: sc.logsumexp(x, b=b), (REAL, WEIGHTS), (0, 1)),
    "logsumexp_return_sign": (lambda x, b: sc.logsumexp(x, b=b, return_sign=True)[0], (REAL, WEIGHTS), (0, 1)),
    "softmax": (lambda x: np.sum(sc.softmax(x, axis=0) * RAMP), (MATRIX,), 0),
    "log_softmax": (lambda x: np.sum(sc.log_softmax(x, axis=1) * RAMP), (MATRIX,), 0),
    "expit": (lambda x: np.sum(sc.expit(x) * WEIGHTS), (REAL,), 0),
    "logit": (lambda p: np.sum(sc.logit(p) ** 2), (POS / 4,), 0),
    "xlogy": (lambda x, y: np.sum(sc.xlogy(x, y)), (REAL, POS), (0, 1)),
    "log_expit": (lambda x: np.sum(sc.log_expit(x) * WEIGHTS), (REAL * 20,), 0),
    "log1p_expm1": (lambda x: np.sum(sc.log1p(x) + sc.expm1(x)), (POS,), 0),
    "gamma": (lambda x: np.sum(sc.gamma(x) * WEIGHTS), (np.array([-2.5, -1.3, -0.4, 0.6, 3.2]),), 0),
    "loggamma": (lambda x: np.sum(sc.loggamma(x)), (POS,), 0),
    "poch": (lambda z, m: np.sum(sc.poch(z, m)), (np.array([-2.5, 0.7, 3.0]), np.array([0.7, 1.2, 2.0])), (0, 1)),
    "betaln": (lambda a, b: np.sum(sc.betaln(a, b)), (POS, POS[::-1].copy()), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special(name):
    fn, args, argnums = SPECIAL[name]
    assert_grad(fn, *args, argnums=argnums)


def test_log_expit_stays_finite_far_in_the_tails():
    grad = jitgrad.jit_grad(lambda x: np.sum(sc.log_expit(x)))(np.array([-800.0, 800.0]))
    np.testing.assert_allclose(grad, [1.0, 0.0], atol=1e-300)


# -- scipy.stats -----------------------------------------------------------------------------------------
X = np.array([0.3, 0.7, 1.5, 2.2])
UNIT = np.array([0.2, 0.45, 0.6, 0.9])
# family -> (x, shape parameters, methods traced); every method gets loc and scale too
FAMILIES = {
    "norm": (X, (), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "t": (X, (3.5,), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "gamma": (X, (2.5,), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "beta": (UNIT, (2.0, 3.0), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "invgamma": (X, (2.2,), ("cdf", "logcdf", "sf", "logsf")),
    "f": (X, (2.5, 6.0), ("logpdf", "cdf", "logcdf", "sf", "logsf")),
    "expon": (X, (), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "lognorm": (X, (0.7,), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "logistic": (X, (), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "laplace": (X, (), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "cauchy": (X, (), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
    "uniform": (UNIT, (), ("logpdf", "pdf", "cdf", "sf")),
    "chi2": (X, (3.0,), ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")),
}
STATS_CASES = [(family, method) for family, (_, _, methods) in FAMILIES.items() for method in methods]


@pytest.mark.parametrize("family, method", STATS_CASES, ids=[f"{f}.{m}" for f, m in STATS_CASES])
def test_stats_method_wrt_x_loc_scale_and_shapes(family, method):
    x, shapes, _ = FAMILIES[family]
    dist = getattr(st, family)

    def loss(x, loc, scale, *shapes):
        return np.sum(getattr(dist, method)(x, *shapes, loc=loc, scale=scale) * np.arange(1, 5))
    assert_grad(loss, x, -0.1, 1.3, *shapes, argnums=tuple(range(3 + len(shapes))))


def test_stats_frozen_distribution():
    assert_grad(lambda x, mu, s: np.sum(st.norm(mu, s).logpdf(x)), X, 0.4, 2.0, argnums=(0, 1, 2))


def test_stats_outside_the_support_is_guarded():
    """Entries outside the support are constants (-inf, 0) chosen by a guarded mask: moving an entry out
    of the support retraces instead of reusing the kernel."""
    grad = jitgrad.jit_grad(lambda x: np.sum(st.expon.pdf(x)))
    inside, outside = np.array([0.5, 1.0]), np.array([-0.5, 1.0])
    np.testing.assert_allclose(grad(inside), -np.exp(-inside), rtol=1e-12)
    np.testing.assert_allclose(grad(outside), [0.0, -np.exp(-1.0)], rtol=1e-12)
    np.testing.assert_allclose(grad(inside), -np.exp(-inside), rtol=1e-12)


def test_stats_bad_parameters_give_nan_like_scipy():
    value_and_grad = jitgrad.value_and_grad(lambda x, s: np.sum(st.norm.logpdf(x, scale=s)), argnums=(0,))
    value, _ = value_and_grad(X, -1.0)
    assert np.isnan(value)


def test_stats_frozen_cdfs_wrt_x_and_shape():
    assert_grad(lambda x, a: np.sum(st.gamma(a).cdf(x)), X, 2.5, argnums=(0, 1))
    assert_grad(lambda x, df: np.sum(st.t(df, loc=0.3).logsf(x)), REAL, 4.0, argnums=(0, 1))


def test_stats_cdf_derivative_is_the_density():
    grad = jitgrad.jit_grad(lambda x, df: np.sum(st.t.cdf(x, df, loc=0.2, scale=1.5)))(REAL, 3.5)
    np.testing.assert_allclose(grad, st.t.pdf(REAL, 3.5, loc=0.2, scale=1.5), rtol=1e-12)


def test_stats_ppf_derivative_is_the_reciprocal_density():
    grad = jitgrad.jit_grad(lambda q: np.sum(st.gamma.ppf(q, 2.5, scale=1.5)))(UNIT)
    np.testing.assert_allclose(grad, 1 / st.gamma.pdf(st.gamma.ppf(UNIT, 2.5, scale=1.5), 2.5, scale=1.5),
                               rtol=1e-12)


# -- scipy.spatial.distance --------------------------------------------------------------------------------
U, V = RNG.normal(size=5), RNG.normal(size=5)
COV = np.diag(WEIGHTS) + 0.1
# metric -> (arguments, argnums)
METRICS = {
    "euclidean": ((U, V), (0, 1)), "sqeuclidean": ((U, V), (0, 1)), "cityblock": ((U, V), (0, 1)),
    "cosine": ((U, V), (0, 1)), "correlation": ((U, V), (0, 1)), "chebyshev": ((U, V), (0, 1)),
    "minkowski": ((U, V, 3), (0, 1)), "braycurtis": ((np.abs(U), np.abs(V)), (0, 1)),
    "canberra": ((U, V), (0, 1)), "seuclidean": ((U, V, WEIGHTS), (0, 1, 2)),
    "mahalanobis": ((U, V, COV), (0, 1, 2)),
}


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_distance_metric(metric):
    args, argnums = METRICS[metric]
    assert_grad(getattr(sd, metric), *args, argnums=argnums)


def test_weighted_euclidean():
    assert_grad(sd.euclidean, U, V, WEIGHTS, argnums=(0, 1, 2))


XA, XB = RNG.normal(size=(7, 3)), RNG.normal(size=(3, 3))
# (metric, keyword arguments) for cdist and pdist; seuclidean and mahalanobis take V / VI from the data
PAIRWISE = [("euclidean", {}), ("cityblock", {}), ("minkowski", {"p": 3}), ("cosine", {}),
            ("sqeuclidean", {"w": WEIGHTS[:3]}), ("seuclidean", {}), ("mahalanobis", {})]


@pytest.mark.parametrize("metric, kwargs", PAIRWISE, ids=[m for m, _ in PAIRWISE])
def test_cdist_and_pdist(metric, kwargs):
    ramp = np.arange(1.0, 1.0 + XA.shape[0] * XB.shape[0]).reshape(XA.shape[0], -1)
    assert_grad(lambda a, b: np.sum(sd.cdist(a, b, metric, **kwargs) * ramp), XA, XB, argnums=(0, 1))
    assert_grad(lambda a: np.sum(sd.pdist(a, metric, **kwargs) * np.arange(21.0)), XA)


def test_cdist_with_a_callable_metric():
    assert_grad(lambda a: np.sum(sd.cdist(a, XB, lambda u, v: np.sum((u - v) ** 4))), XA)


# -- scipy.integrate, scipy.optimize, scipy.linalg ---------------------------------------------------------
GRID = np.array([0.0, 0.2, 0.5, 0.6, 1.0])
LIBRARY = {
    "simpson_x": (lambda y: si.simpson(y, x=GRID), (REAL,), 0),
    "simpson_dx": (lambda y: si.simpson(y, dx=0.3), (REAL,), 0),
    "simpson_wrt_grid": (lambda x: si.simpson(REAL, x=x), (GRID,), 0),
    "trapezoid": (lambda y, x: si.trapezoid(y, x), (REAL, GRID), (0, 1)),
    "cumulative_trapezoid": (lambda y: np.sum(si.cumulative_trapezoid(y, dx=0.5, initial=0) * WEIGHTS), (REAL,), 0),
    "cumulative_trapezoid_2d": (lambda y: np.sum(si.cumulative_trapezoid(y, axis=1) ** 2), (MATRIX,), 0),
    "rosen": (so.rosen, (REAL,), 0),
    "rosen_der": (lambda x: so.rosen_der(x) @ WEIGHTS, (REAL,), 0),
    "expm": (lambda a: np.sum(sl.expm(a) * np.arange(9.0).reshape(3, 3)), (RNG.normal(size=(3, 3)) / 2,), 0),
    "expm_batched": (lambda a: np.sum(sl.expm(a) ** 2), (RNG.normal(size=(2, 3, 3)) / 2,), 0),
    "scipy_linalg_norm": (lambda a: sl.norm(a) + sl.norm(a, 1, axis=0).sum(), (MATRIX,), 0),
}


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_function(name):
    fn, args, argnums = LIBRARY[name]
    assert_grad(fn, *args, argnums=argnums)


def test_gradient_of_rosen_der_is_rosen_hess():
    hvp = jitgrad.jit_grad(lambda x: so.rosen_der(x) @ WEIGHTS)(REAL)
    np.testing.assert_allclose(hvp, so.rosen_hess(REAL) @ WEIGHTS, rtol=1e-12)
    second = jitgrad.jit_grad(lambda x: jitgrad.jit_grad(so.rosen)(x) @ WEIGHTS)(REAL)
    np.testing.assert_allclose(second, so.rosen_hess(REAL) @ WEIGHTS, rtol=1e-12)


def test_expm_gradient_matches_the_frechet_derivative():
    a, e = RNG.normal(size=(3, 3)) / 2, RNG.normal(size=(3, 3))
    grad = jitgrad.jit_grad(lambda a: np.sum(sl.expm(a) * e))(a)
    np.testing.assert_allclose(grad, sl.expm_frechet(a.T, e, compute_expm=False), rtol=1e-10)


# -- tracer support the SciPy code needed ------------------------------------------------------------------
def test_bitwise_operators_on_an_integer_and_a_boolean():
    """SciPy's masks mix ints and bools (`1 & (scale > 0)`): NumPy's integer results, traced exactly."""
    ints = np.array([-3, 0, 4, 5])

    def loss(x):
        flags = x > 0
        return np.sum(x * (ints & flags) + x * (flags | ints) + x * (ints ^ flags) + x * (1 & flags))
    x = np.array([1.0, -2.0, 3.0, -0.5])
    flags = x > 0
    expected = (ints & flags) + (flags | ints) + (ints ^ flags) + (1 & flags)
    np.testing.assert_array_equal(jitgrad.jit_grad(loss)(x), expected)


def test_map_applies_a_compiled_function_with_a_rule():
    grad = jitgrad.jit_grad(lambda x, y: sum(np.sum(v) for v in map(np.exp, (x, y))), argnums=(0, 1))(REAL, POS)
    np.testing.assert_allclose(grad[0], np.exp(REAL))
    np.testing.assert_allclose(grad[1], np.exp(POS))


def test_bitwise_operators_on_python_bools_stay_bool():
    def loss(x):
        t = float(x[0])
        return t * (((t > 0) & (t < 5)) + (True & (t < 5)) + ((t > 9) | False))
    np.testing.assert_array_equal(jitgrad.jit_grad(loss)(np.array([2.0, 1.0])), [2.0, 0.0])
