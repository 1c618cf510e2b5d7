"""scipy.special called as it ships inside functions differentiated by jitgrad.jit_grad: gradients against
finite differences (tests/e2e.py), table-driven, plus closed forms where the naive composition would go
wrong: expit and log_ndtr far in the tails, xlogy's x-derivative at x = 0, polygamma orders, float32,
ufunc keywords, and the refusal of a traced polygamma order; the Bessel functions (their derivatives by the
recurrences, the refusal of a traced order) and the compositions gammasgn, pdtr and exprel on edge values."""
import numpy as np
import pytest
import scipy.special as sc

import jitgrad
from e2e import assert_grad

RNG = np.random.default_rng(3)
POS = RNG.uniform(0.5, 3.0, 5)
REAL = RNG.uniform(-2.0, 2.0, 5)
UNIT = RNG.uniform(0.1, 0.9, 5)

# name -> (loss, arguments, argnums)
CASES = {
    "erf": (lambda x: np.sum(sc.erf(x) * x), (REAL,), 0),
    "erfc": (lambda x: np.sum(sc.erfc(x) ** 2), (REAL,), 0),
    "gammaln": (lambda x: np.sum(sc.gammaln(x)), (POS,), 0),
    "gammaln_negative": (lambda x: np.sum(sc.gammaln(x)), (-POS + 0.05 * (np.round(POS) == POS),), 0),
    "digamma": (lambda x: np.sum(sc.digamma(x) * x), (POS,), 0),
    "psi": (lambda x: np.sum(sc.psi(x)), (POS,), 0),
    "polygamma_1": (lambda x: np.sum(sc.polygamma(1, x)), (POS,), 0),
    "polygamma_3": (lambda x: np.sum(sc.polygamma(3, x)), (POS,), 0),
    "expit": (lambda x: np.sum(sc.expit(x) * x), (REAL * 5,), 0),
    "logit": (lambda p: np.sum(sc.logit(p) ** 2), (UNIT,), 0),
    "xlogy": (lambda x, y: np.sum(sc.xlogy(x, y)), (REAL, POS), (0, 1)),
    "xlog1py": (lambda x, y: np.sum(sc.xlog1py(x, y)), (REAL, POS - 0.4), (0, 1)),
    "ndtr": (lambda x: np.sum(sc.ndtr(x) * x), (REAL,), 0),
    "log_ndtr": (lambda x: np.sum(sc.log_ndtr(x)), (REAL * 4,), 0),
    "scalar_float": (lambda t: float(sc.erf(t)) * sc.gammaln(t + 1.0), (0.7,), 0),
    "ufunc_out": (lambda x: np.sum(sc.erf(x, out=np.zeros_like(x))), (REAL,), 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args, argnums = CASES[name]
    assert_grad(fn, *args, argnums=argnums)


def test_expit_tails_have_finite_exact_derivatives():
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    g = jitgrad.jit_grad(lambda x: np.sum(sc.expit(x)))(x)
    e = np.exp(-np.abs(x))
    np.testing.assert_allclose(g, e / (1 + e) ** 2, rtol=1e-12, atol=0)


def test_log_ndtr_far_tail():
    x = np.array([-40.0, -10.0, 5.0])
    g = jitgrad.jit_grad(lambda x: np.sum(sc.log_ndtr(x)))(x)
    np.testing.assert_allclose(g, np.exp(-x * x / 2 - sc.log_ndtr(x)) / np.sqrt(2 * np.pi), rtol=1e-12)
    assert abs(g[0] - 40.0) < 0.1        # the inverse Mills ratio ~ -x


def test_xlogy_at_zero():
    x, y = np.array([0.0, 0.0, 0.0, 1.0]), np.array([2.0, 0.0, np.inf, 3.0])
    gx, gy = jitgrad.jit_grad(lambda x, y: np.sum(sc.xlogy(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, [np.log(2.0), 0.0, 0.0, np.log(3.0)], rtol=1e-15)
    np.testing.assert_allclose(gy[[0, 3]], [0.0, 1 / 3], rtol=1e-15)
    assert jitgrad.jit_grad(lambda x, y: np.sum(sc.xlogy(x, y)))(x, y).dtype == np.float64


@pytest.mark.parametrize("fn", [sc.erf, sc.gammaln, sc.digamma, sc.expit, lambda x: sc.polygamma(2, x),
                                lambda x: sc.jv(1.5, x), lambda x: sc.erfinv(x / 4), sc.k1, sc.i0e, sc.exprel,
                                lambda x: sc.beta(x, x), lambda x: sc.pdtr(2, x)])
def test_float32_stays_float32(fn):
    x = POS.astype(np.float32)
    g = jitgrad.jit_grad(lambda x: np.sum(fn(x)))(x)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))


def test_polygamma_closed_form():
    g = jitgrad.jit_grad(lambda x: np.sum(sc.polygamma(2, x)))(POS)
    np.testing.assert_allclose(g, sc.polygamma(3, POS), rtol=1e-12)


def test_traced_polygamma_order_is_refused():
    with pytest.raises(jitgrad.UnsupportedError, match="polygamma"):
        jitgrad.jit_grad(lambda x: np.sum(sc.polygamma(x * 0.0 + 1.0, x)))(POS)


def test_bessel_derivative_is_the_recurrence_for_an_order_argument():
    v = np.array([0.5, 1.0, 2.5, -1.5, 3.0])
    g = jitgrad.jit_grad(lambda v, x: np.sum(sc.jv(v, x) + sc.kv(v, x)), argnums=1)(v, POS)
    want = (sc.jv(v - 1, POS) - sc.jv(v + 1, POS)) / 2 - (sc.kv(v - 1, POS) + sc.kv(v + 1, POS)) / 2
    np.testing.assert_allclose(g, want, rtol=1e-12)


def test_traced_bessel_order_is_refused():
    with pytest.raises(jitgrad.UnsupportedError, match="jv"):
        jitgrad.jit_grad(lambda v: np.sum(sc.jv(v, POS)))(POS)


def test_erfinv_derivative_closed_form():
    g = jitgrad.jit_grad(lambda x: np.sum(sc.erfinv(x)))(UNIT)
    np.testing.assert_allclose(g, np.sqrt(np.pi) / 2 * np.exp(sc.erfinv(UNIT) ** 2), rtol=1e-13)


EDGES = np.array([0.0, -0.0, -1.0, -2.0, -1.5, -2.5, 0.5, 3.0, np.inf, -np.inf, np.nan, 1e-300])


@pytest.mark.parametrize("fn", [sc.gammasgn, sc.rgamma, lambda x: sc.pdtr(x, 1.5), lambda x: sc.pdtrc(x, 0.7),
                                lambda x: sc.pdtr(2.0, x), sc.exprel])
def test_compositions_give_scipys_values_on_edges(fn):
    value, _ = jitgrad.value_and_grad(lambda x: np.sum(fn(x) * np.arange(1.0, 13.0)))(EDGES)
    want = np.sum(fn(EDGES) * np.arange(1.0, 13.0))
    np.testing.assert_equal(np.isnan(value), np.isnan(want))
    if not np.isnan(want):
        np.testing.assert_allclose(value, want, rtol=1e-14)


def test_beta_refuses_infinite_arguments_and_guards_finiteness():
    g = jitgrad.jit_grad(lambda p: np.sum(sc.beta(p, 2.5)))
    p = np.array([0.5, 1.5, 3.0])
    fd = [(np.sum(sc.beta(p + 1e-6 * e, 2.5)) - np.sum(sc.beta(p - 1e-6 * e, 2.5))) / 2e-6 for e in np.eye(3)]
    np.testing.assert_allclose(g(p), fd, rtol=1e-7)
    with pytest.raises(jitgrad.UnsupportedError, match="infinite arguments"):
        g(np.array([0.5, np.inf, 3.0]))          # the cached trace's guard fails, the retrace refuses
    with pytest.raises(jitgrad.UnsupportedError, match="infinite arguments"):
        jitgrad.jit_grad(lambda a: sc.beta(a, np.inf))(1.5)
