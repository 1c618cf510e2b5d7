"""SciPy functions real libraries call (issue 12), as they ship: scipy.special's entropy terms and Huber
losses (so scipy.stats.entropy), scipy.spatial.distance.squareform, interpolants, filters, solve_ivp and
quad (differentiated under the integral sign).  Gradients against finite differences
on a first (traced) and a second (cached) call; values against SciPy's, edges of the domains included."""
import numpy as np
import pytest
import scipy.integrate as si_integrate
import scipy.interpolate as si
import scipy.ndimage as nd
import scipy.spatial.distance as sd
import scipy.special as sc
import scipy.stats as st

import jitgrad
from jitgrad.tracer.recording import audit
from e2e import assert_grad, assert_grad_cached

RNG = np.random.default_rng(12)
P = RNG.uniform(0.2, 2.0, 6)
Q = RNG.uniform(0.2, 2.0, 6)
R = RNG.normal(size=6) * 2
EDGES = np.array([0.0, -0.0, -1.0, 0.5, np.inf, np.nan, 2.0, 0.0, 1e-300, -np.inf])
EDGES2 = np.array([0.0, 1.0, 0.0, -1.0, 3.0, 1.0, np.inf, np.nan, 1e-300, 2.0])

ENTROPY_TERMS = {
    "entr": (lambda p, q: np.sum(sc.entr(p) * q), (P, Q), (0, 1)),
    "rel_entr": (lambda p, q: np.sum(sc.rel_entr(p, q)), (P, Q), (0, 1)),
    "kl_div": (lambda p, q: np.sum(sc.kl_div(p, q) * Q), (P, Q), (0, 1)),
    "huber": (lambda d, r: np.sum(sc.huber(d, r)), (1.3, R), (0, 1)),
    "pseudo_huber": (lambda d, r: np.sum(sc.pseudo_huber(d, r) * P), (1.3, R), (0, 1)),
    "entropy": (lambda p: st.entropy(p), (P,), 0),
    "entropy_base_axis": (lambda p: np.sum(st.entropy(p.reshape(2, 3), base=2.0, axis=1)), (P,), 0),
    "relative_entropy": (lambda p, q: st.entropy(p, q), (P, Q), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(ENTROPY_TERMS))
def test_entropy_terms_and_huber(name):
    fn, args, argnums = ENTROPY_TERMS[name]
    assert_grad_cached(fn, args, tuple(a * 1.1 for a in args), argnums=argnums)


@pytest.mark.parametrize("ufunc", [sc.entr, sc.rel_entr, sc.kl_div, sc.huber, sc.pseudo_huber],
                         ids=lambda u: u.__name__)
def test_entropy_terms_match_scipy_at_the_edges(ufunc):
    """Values of the compiled trace (second call) equal SciPy's, at 0, -0, negatives, inf, NaN and tiny."""
    def values(x, y):
        out = ufunc(x) if ufunc.nin == 1 else ufunc(x, y)
        return np.sum(np.where(np.isfinite(out), out, 0.0) * 0.0 + x), out
    g = jitgrad.value_and_grad(values, has_aux=True)
    for x, y in ((EDGES, EDGES2), (EDGES2, EDGES)):
        (_, got), _ = g(x, y)
        expected = ufunc(x) if ufunc.nin == 1 else ufunc(x, y)
        np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert g.cache_info().traces == 1


# -- squareform -----------------------------------------------------------------------------------------------
WEIGHTS = np.arange(16.0).reshape(4, 4)


def _to_matrix(v):
    return np.sum(sd.squareform(v) ** 2 * WEIGHTS)


def _to_vector(x):
    d = np.abs(np.subtract.outer(x, x)) + np.outer(x, x) ** 2
    d = d - np.diag(np.diag(d))                          # a valid distance matrix: symmetric, zero diagonal
    return np.sum(sd.squareform(d) * np.arange(6.0)) + np.sum(sd.squareform(d, checks=False) ** 2)


@pytest.mark.parametrize("fn", [_to_matrix, _to_vector])
def test_squareform(fn):
    x = RNG.uniform(0.5, 2.0, 6 if fn is _to_matrix else 4)
    x[:4] += np.arange(4)                                # distinct entries: |x_i - x_j| is differentiable
    assert_grad_cached(fn, (x,), (x * 1.05,))


def test_squareform_checks_are_guards():
    g = jitgrad.jit_grad(lambda x: np.sum(sd.squareform(np.outer(x, x))))
    with pytest.raises(ValueError, match="diagonal"):
        g(np.ones(3))
    h = jitgrad.jit_grad(lambda m: np.sum(sd.squareform(m) ** 2))
    m = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    np.testing.assert_allclose(h(m), [[0, 1, 2], [0, 0, 3], [0, 0, 0]] * np.array(2.0))
    with pytest.raises(ValueError, match="symmetric"):
        h(m + np.triu(m))                                # no longer symmetric: the guard retraces, SciPy raises


# -- scipy.interpolate: piecewise polynomials ----------------------------------------------------------------
KNOTS = np.array([0.0, 0.4, 1.1, 1.5, 2.3, 3.0])
VALUES = np.sin(KNOTS) + KNOTS ** 2 / 4
POINTS = np.array([-0.3, 0.2, 0.75, 1.3, 2.9, 3.4])      # two of them extrapolate


def _spline(inside=False, **options):
    def loss(y, t, x=KNOTS):
        spline = si.CubicSpline(x, y, **options)
        t = np.clip(t, 0.1, 2.9) if inside else t
        return np.sum(spline(t) * np.arange(1.0, 7.0)) + np.sum(spline(t, 1) ** 2) + spline(t[2], 2)
    return loss


SPLINES = {
    "not_a_knot": (_spline(), (0, 1)),
    "natural": (_spline(bc_type="natural"), (0, 1)),
    "clamped_no_extrapolation": (_spline(inside=True, bc_type="clamped", extrapolate=False), (0,)),
    "periodic_data_w.r.t._knots": (lambda x: _spline(bc_type="periodic")(
        np.cos(2 * np.pi * (x - x[0]) / (x[-1] - x[0])), POINTS, x), (0,)),
    "akima": (lambda y, t: np.sum(si.Akima1DInterpolator(KNOTS, y)(t[1:5]) ** 2), (0, 1)),
    "pchip": (lambda y, t: np.sum(si.PchipInterpolator(KNOTS, y)(t[1:5]) ** 2), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(SPLINES))
def test_piecewise_polynomial_interpolants(name):
    fn, argnums = SPLINES[name]
    args = (KNOTS,) if "knots" in name else (VALUES, POINTS)
    moved = (KNOTS * 1.02,) if "knots" in name else (VALUES * 1.1, POINTS + 0.05)
    assert_grad_cached(fn, args, moved, argnums=argnums if len(argnums) > 1 else argnums[0])


def test_spline_value_outside_without_extrapolation_is_nan():
    g = jitgrad.value_and_grad(lambda y, t: (np.sum(y), si.CubicSpline(KNOTS, y, extrapolate=False)(t)), has_aux=True)
    for t in (POINTS, POINTS[::-1] - 0.1):
        (_, got), _ = g(VALUES, t)
        np.testing.assert_allclose(got, si.CubicSpline(KNOTS, VALUES, extrapolate=False)(t), rtol=1e-14)
    assert g.cache_info().traces == 1


def test_spline_knots_must_stay_increasing():
    g = jitgrad.jit_grad(lambda x: np.sum(si.CubicSpline(x, VALUES)(POINTS)))
    g(KNOTS)
    with pytest.raises(ValueError, match="increasing"):
        g(KNOTS[[0, 2, 1, 3, 4, 5]])                     # SciPy's own check, a guard of the trace


# -- scipy.ndimage -------------------------------------------------------------------------------------------
IMAGE = RNG.normal(size=(5, 7))
RAMP = np.arange(35.0).reshape(5, 7)
MODES = ["reflect", "constant", "nearest", "mirror", "wrap", "grid-wrap", "grid-constant", "grid-mirror"]


@pytest.mark.parametrize("mode", MODES)
def test_gaussian_filter_every_mode(mode):
    """gaussian_filter w.r.t. the image, sigma and cval (traced through SciPy's kernel construction)."""
    fn = lambda image, sigma, cval: np.sum(nd.gaussian_filter(image, sigma, mode=mode, cval=cval) * RAMP)
    assert_grad_cached(fn, (IMAGE, 1.3, 0.3), (IMAGE * 0.5, 1.25, -0.2), argnums=(0, 1, 2))


def test_filter_values_match_scipy():
    g = jitgrad.value_and_grad(lambda x: (np.sum(x), nd.gaussian_filter(x, (0.8, 2.0), mode="nearest")
                                          + nd.convolve1d(x, [1.0, 2.0, -0.5], axis=0, origin=1)
                                          + nd.uniform_filter1d(x, 3, axis=1) + nd.sobel(x)), has_aux=True)
    for x in (IMAGE, IMAGE ** 2):
        (_, got), _ = g(x)
        expected = nd.gaussian_filter(x, (0.8, 2.0), mode="nearest") + nd.convolve1d(
            x, [1.0, 2.0, -0.5], axis=0, origin=1) + nd.uniform_filter1d(x, 3, axis=1) + nd.sobel(x)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)
    assert g.cache_info().traces == 1


def test_correlate1d_weights_and_float32():
    fn = lambda x, w: np.sum(nd.correlate1d(x, w, axis=1, mode="mirror") ** 2)
    assert_grad_cached(fn, (IMAGE, np.array([0.5, -1.0, 2.0, 0.25])), (IMAGE + 1, np.array([1.0, 0.0, 2.0, 3.0])),
                       argnums=(0, 1))
    assert_grad(lambda x: np.sum(nd.gaussian_filter1d(x, 1.5) ** 2), IMAGE.astype(np.float32))


# -- scipy.integrate.solve_ivp: the adaptive RK45 run traced, its step-size decisions guards ----------------
TIMES = np.array([0.5, 1.0, 2.0])


def _oscillator(theta, y0):
    sol = si_integrate.solve_ivp(lambda t, y, k: np.array([y[1], -k[0] * y[0] - k[1] * y[1] + np.sin(t)]),
                                 (0.0, 2.0), y0, t_eval=TIMES, args=(theta,), rtol=1e-8, atol=1e-10)
    assert sol.success and sol.status == 0
    return np.sum(sol.y[0] ** 2) + sol["y"][1, -1] + sol.t[-1]


def test_solve_ivp_rk45_wrt_parameters_and_initial_state():
    """(With the value audit on: RK45's error norms are rounding noise, 1e-20 where the terms cancel, and
    differ with the summation order between BLAS and the reference evaluation; the audit allows their
    measured rounding noise.  The decisions taken on them are guards, checked on every call.)"""
    assert audit.enabled()
    g = assert_grad_cached(_oscillator, (np.array([2.0, 0.3]), np.array([1.0, -0.5])),
                           (np.array([2.0, 0.3]) * 1.0001, np.array([1.0, -0.5])), argnums=(0, 1))
    assert len(g.cache_info().paths[0].guards) > 50             # the step-size decisions, on every call


# -- scipy.special.wofz: lmfit's Voigt profile ----------------------------------------------------------------
def _voigt(center, sigma, gamma):
    """lmfit.lineshapes.voigt as written there: the real part of the Faddeeva function."""
    x = np.linspace(-3.0, 3.0, 7)
    z = (x - center + 1j * gamma) / (sigma * np.sqrt(2.0))
    return np.sum(sc.wofz(z).real / (sigma * np.sqrt(2.0 * np.pi)) * np.arange(1.0, 8.0))


def test_wofz_voigt_profile():
    assert_grad_cached(_voigt, (0.3, 0.8, 0.5), (-0.2, 1.1, 0.7), argnums=(0, 1, 2))


def test_wofz_values_match_scipy():
    z = np.array([0.0, 1.5 + 0.2j, -2.0 + 3.0j, 0.1 - 0.4j, 30.0 + 1.0j])
    g = jitgrad.value_and_grad(lambda s: (s * 0.0, sc.wofz(z * s)), has_aux=True)
    for s in (1.0, 0.7):
        (_, got), _ = g(s)
        np.testing.assert_allclose(got, sc.wofz(z * s), rtol=1e-15)


# -- scipy.integrate.quad: differentiation under the integral sign ----------------------------------------------
def _damped(p, a, b):
    """quad as SciPy documents it: the parameter through args=, traced limits."""
    value, abserr = si_integrate.quad(lambda t, p, q: np.sin(p * t) * np.exp(-q * t), a, b, args=(p, 0.5))
    return value * 2.0 + abserr * 0.0


def _gaussian_tail(w):
    """A closure over values computed in the loss, an infinite limit."""
    k = w[0] ** 2 + 0.5
    value = si_integrate.quad(lambda t: np.exp(-k * t * t) * np.cos(w[1] * t), 0.0, np.inf)[0]
    return value + w[1]


def test_quad_wrt_parameter_and_limits():
    assert_grad_cached(_damped, (1.3, 0.2, 1.7), (0.9, -0.4, 2.5), argnums=(0, 1, 2))


def test_quad_closure_and_infinite_limit():
    assert_grad_cached(_gaussian_tail, (np.array([0.8, 1.5]),), (np.array([1.1, 0.4]),))


def test_quad_value_and_abserr_equal_scipys():
    """The compiled (value, abserr) pair is SciPy's for the same integrand, and the compiled kernel and the
    reference executor agree."""
    def both(p, b):
        value, abserr = si_integrate.quad(lambda t: np.log1p(p * t * t), 0.0, b)
        return value, (value, abserr)
    compiled = jitgrad.value_and_grad(both, argnums=(0, 1), has_aux=True)
    reference = jitgrad.value_and_grad(both, argnums=(0, 1), has_aux=True, jit=False)
    for p, b in ((0.7, 1.2), (2.0, 3.5)):
        expected = si_integrate.quad(lambda t: np.log1p(p * t * t), 0.0, b)
        (_, pair), grads = compiled(p, b)
        _, ref_grads = reference(p, b)
        np.testing.assert_allclose(pair, expected, rtol=1e-13)
        np.testing.assert_allclose(grads, ref_grads, rtol=1e-13)
        assert grads[1] == pytest.approx(np.log1p(p * b * b), rel=1e-13)      # d/db = f(b)
    assert compiled.cache_info().traces == 1


def test_quad_second_derivatives():
    """grad of grad and the Hessian (forward over reverse) are integrals of derivative traces too."""
    h = jitgrad.hessian(lambda x: _damped(x[0], x[1], x[2]))
    x = np.array([1.3, 0.2, 1.7])
    grad = jitgrad.jit_grad(lambda x: _damped(x[0], x[1], x[2]))
    eps = 1e-5
    fd = np.array([(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(h(x), fd, rtol=1e-5, atol=1e-7)
    gg = jitgrad.jit_grad(jitgrad.jit_grad(lambda p: _damped(p, 0.2, 1.7)))
    np.testing.assert_allclose(gg(1.3), fd[0, 0], rtol=1e-5)


def test_quad_forward_mode():
    primal, tangent = jitgrad.jvp(_damped, (1.3, 0.2, 1.7), (1.0, -0.5, 2.0))
    eps = 1e-6
    moved = [_damped(1.3 + d, 0.2 - d / 2, 1.7 + 2 * d) for d in (eps, -eps)]
    expected = (moved[0] - moved[1]) / (2 * eps)
    assert primal == pytest.approx(_damped(1.3, 0.2, 1.7), rel=1e-14)
    assert tangent == pytest.approx(expected, rel=1e-6)


def test_quad_limit_becoming_infinite_retraces():
    """Whether a traced limit is finite is a guard: an infinite one retraces (and has no derivative)."""
    def tail(p, b):
        return si_integrate.quad(lambda t: np.exp(-p * t), 0.0, b)[0]
    g = jitgrad.jit_grad(tail, argnums=(0, 1))
    assert g(1.5, 2.0)[1] == pytest.approx(np.exp(-3.0))
    dp, db = g(1.5, np.inf)
    assert dp == pytest.approx(-1 / 1.5 ** 2) and db == 0.0
    assert g.cache_info().traces == 2


def test_quad_in_a_loop_and_a_constant_integrand():
    def total(w):
        out = si_integrate.quad(lambda t: t * t, 0.0, 1.0)[0]          # no traced value: a constant
        for k in range(3):
            out = out + si_integrate.quad(lambda t: np.tanh(w[k] * t + k), -1.0, 1.0)[0]
        return out
    assert_grad_cached(total, (np.array([0.3, -0.7, 1.2]),), (np.array([0.5, 0.1, -0.2]),))


QUAD_OPTIONS = {
    "weight_cos": lambda p: si_integrate.quad(lambda t: np.exp(-p * t), 0.0, 3.0, weight="cos", wvar=2.0)[0],
    "points_epsabs": lambda p: si_integrate.quad(lambda t: np.exp(-p * t * t), 0.0, 3.0, points=[1.0, 2.0],
                                                 epsabs=1e-12)[0],
}


@pytest.mark.parametrize("name", sorted(QUAD_OPTIONS))
def test_quad_options_apply_to_the_derivative_integrals(name):
    assert_grad_cached(QUAD_OPTIONS[name], (0.7,), (1.3,))


class _Decay:
    def __init__(self, rate):
        self.rate = rate

    def density(self, t):
        return t ** 2 * np.exp(-self.rate * t) / (1.0 + t) ** 0.5      # Python float powers of t


def test_quad_of_a_bound_method_reading_a_traced_attribute():
    assert_grad_cached(lambda r, b: si_integrate.quad(_Decay(r * 1.5).density, 0.0, b)[0], (0.7, 2.0), (1.2, 3.0),
                       argnums=(0, 1))


def test_quad_refuses_a_branch_on_the_integration_variable():
    def piecewise(p):
        return si_integrate.quad(lambda t: p * t if t < 0.5 else p, 0.0, 1.0)[0]
    with pytest.raises(jitgrad.UnsupportedError, match="decision on the integration variable"):
        jitgrad.jit_grad(piecewise)(1.0)
