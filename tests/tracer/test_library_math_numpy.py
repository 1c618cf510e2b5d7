"""Gaps real libraries hit in `math` and NumPy (issue 12), called as the libraries call them: math.erf,
erfc, gamma, lgamma, cbrt and fsum with their derivatives; np.count_nonzero, np.searchsorted /
x.searchsorted / np.digitize (integer answers from traced data).  Gradients against finite differences on a
first (traced) and a second (cached) call; every guard is changed and seen to retrace."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sc

import jitgrad
from jitgrad.ir.polygamma import polygamma
from e2e import assert_grad, assert_grad_cached

X5 = np.array([0.3, -0.7, 2.5, -1.5, 4.0])


# -- math ---------------------------------------------------------------------------------------------------
MATH = {
    "erf": lambda x: math.erf(x[0]) * math.erf(x[1]) + math.erf(float(x[4])),
    "erfc": lambda x: math.erfc(x[0]) + math.erfc(x[1] * 3.0),
    "lgamma": lambda x: math.lgamma(x[2]) + math.lgamma(x[3]) + math.lgamma(x[0]),
    "gamma": lambda x: math.gamma(x[2]) - math.gamma(x[3]) + math.gamma(x[0]),
    "cbrt": lambda x: math.cbrt(x[1]) + math.cbrt(x[4] ** 2),
    "fsum_list": lambda x: math.fsum([x[0], 1e-20, x[1] * x[2], 3.0]),
    "fsum_array": lambda x: math.fsum(x * x) + math.fsum(v for v in x[:2]),
}


@pytest.mark.parametrize("name", sorted(MATH))
def test_math_function(name):
    assert_grad_cached(MATH[name], (X5,), (X5 + 0.05,))


def test_math_values_are_cpythons():
    g = jitgrad.value_and_grad(lambda x: math.lgamma(x[2]) + math.erf(x[0]) + math.gamma(x[3]))
    value, grad = g(X5)
    assert value == pytest.approx(math.lgamma(2.5) + math.erf(0.3) + math.gamma(-1.5), rel=1e-14)
    value, _ = g(X5 + 0.1)
    assert value == pytest.approx(math.lgamma(2.6) + math.erf(0.4) + math.gamma(-1.4), rel=1e-14)


def test_math_gamma_pole_and_overflow_retrace_and_raise():
    g = jitgrad.jit_grad(lambda x: math.gamma(x[0]) + math.lgamma(x[1]))
    g(np.array([2.5, 1.5]))
    for bad in ([-2.0, 1.5], [200.0, 1.5], [2.5, 0.0]):
        with pytest.raises((ValueError, OverflowError)):
            g(np.array(bad))
    assert g(np.array([3.5, 1.5]))[0] == pytest.approx(math.gamma(3.5) * sc.psi(3.5), rel=1e-12)


def test_math_special_functions_do_not_import_scipy():
    """A program using only `math` evaluates erf, lgamma and their derivatives (digamma, and trigamma in
    the Hessian) without importing SciPy; the results agree with SciPy's (checked in this process)."""
    program = """if True:
        import json, math, sys, numpy as np, jitgrad
        f = lambda x: math.erf(x[0]) + math.lgamma(x[1]) + math.gamma(x[2])
        x = np.array([0.4, 2.5, -0.5])
        grad, hess = jitgrad.jit_grad(f)(x), jitgrad.hessian(f)(x)
        print(json.dumps([grad.tolist(), hess.diagonal().tolist(), "scipy" in sys.modules]))"""
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    grad, hess, imported = json.loads(out)
    assert imported is False
    x = np.array([0.4, 2.5, -0.5])
    gamma_c = sc.gamma(x[2])
    np.testing.assert_allclose(grad, [2 / np.sqrt(np.pi) * np.exp(-x[0] ** 2), sc.psi(x[1]), gamma_c * sc.psi(x[2])],
                               rtol=1e-13)
    np.testing.assert_allclose(hess, [-4 * x[0] / np.sqrt(np.pi) * np.exp(-x[0] ** 2), sc.polygamma(1, x[1]),
                                      gamma_c * (sc.psi(x[2]) ** 2 + sc.polygamma(1, x[2]))], rtol=1e-12)


@pytest.mark.parametrize("order", range(4))
def test_polygamma_without_scipy_matches_scipy(order):
    x = np.concatenate([np.linspace(-20.3, 40.1, 1001), [1e-8, 0.5, 1e5, 1e300, np.nan]])
    expected = sc.polygamma(order, x)
    np.testing.assert_allclose(polygamma(order, x), expected, rtol=1e-11 if order == 0 else 2e-13)


# -- integer answers from traced data -----------------------------------------------------------------------
SORTED = np.array([-1.0, 0.0, 0.5, 1.2, 2.0])
QUERIES = np.array([-2.0, 0.3, 0.7, 1.9, 3.0, 0.1])


def _bins_weighted(x, edges):
    """A piecewise loss whose pieces come from searchsorted (left and right), the method and digitize."""
    left = np.searchsorted(edges, x)
    right = edges.searchsorted(x, side="right")
    return np.sum(x * x * (1 + left) + np.sin(x) * right + np.digitize(x, edges) * x) + np.sum(edges ** 2 * left[:5])


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_searchsorted_and_digitize(argnums):
    assert_grad_cached(_bins_weighted, (QUERIES, SORTED), (QUERIES + 0.2, SORTED * 1.1), argnums=argnums)


def test_searchsorted_values_match_numpy_nan_ties_and_sorter():
    edges = np.array([3.0, 1.0, np.nan, 1.0, 2.0])
    order = np.argsort(edges)
    q = np.array([1.0, np.nan, 0.0, 2.5, 1.0, 9.0])
    got = jitgrad.value_and_grad(lambda e, q: np.sum(q * np.searchsorted(e, q, sorter=order)
                                                      + q * np.searchsorted(e, q, side="right", sorter=order)),
                                 argnums=1)
    value, grad = got(edges, np.where(np.isnan(q), 0.5, q))
    qq = np.where(np.isnan(q), 0.5, q)
    expected = np.searchsorted(edges, qq, sorter=order) + np.searchsorted(edges, qq, side="right", sorter=order)
    np.testing.assert_array_equal(grad, expected)
    g = jitgrad.jit_grad(lambda q: np.sum(np.searchsorted(np.sort(edges), q) * q))
    np.testing.assert_array_equal(g(q), np.searchsorted(np.sort(edges), q))     # NaN sorts last


def test_searchsorted_guards_that_the_traced_array_stays_sorted():
    g = jitgrad.jit_grad(lambda e, q: np.sum(np.searchsorted(e, q) * q), argnums=1)
    g(SORTED, QUERIES)
    g(SORTED * 2, QUERIES)
    assert g.cache_info().hits == 1
    with pytest.raises(jitgrad.UnsupportedError, match="unsorted"):     # the guard fails: a new trace
        g(SORTED[::-1].copy(), QUERIES)


def test_digitize_decreasing_bins_and_the_monotonicity_guard():
    g = jitgrad.jit_grad(lambda x, bins: np.sum(np.digitize(x, bins, right=True) * x), argnums=0)
    decreasing = SORTED[::-1].copy()
    np.testing.assert_array_equal(g(QUERIES, decreasing), np.digitize(QUERIES, decreasing, right=True))
    np.testing.assert_array_equal(g(QUERIES, SORTED), np.digitize(QUERIES, SORTED, right=True))
    assert g.cache_info().traces == 2
    with pytest.raises(ValueError, match="monotonically"):
        g(QUERIES, np.array([0.0, 2.0, 1.0, 3.0, 4.0]))


def test_count_nonzero_is_computed_by_the_trace():
    f = lambda x: np.sum(x) * np.count_nonzero(x > 0.5) + np.sum(np.count_nonzero(x > 0, axis=0) * x[0])
    x = np.array([[0.1, 0.7], [0.9, -0.3]])
    g = assert_grad_cached(f, (x,), (x + 0.05,))
    assert_grad(f, x + 0.45, grad_fn=g)                   # one more entry above 0.5: the same trace
    assert g.cache_info().traces == 1


# -- attributes and introspection libraries use --------------------------------------------------------------
def test_device_view_and_getattr_static():
    import inspect

    def f(x, labels):
        x = x.copy()
        assert x.device == "cpu"
        assert inspect.getattr_static(x, "__narwhals_dataframe__", None) is None
        assert inspect.getattr_static(x, "shape") is np.ndarray.__dict__["shape"]
        y = x.view()
        y[0] = 2 * y[0]                                    # written through to x
        tagged = np.dtype(labels.dtype, metadata={"unique": np.unique(labels)})
        return np.sum(x.view(np.ndarray) ** 2) + np.sum(x * labels.view(tagged)) * tagged.metadata["unique"][0]
    x, labels = np.array([0.5, -1.0, 2.0]), np.array([2, 1, 2])
    g = assert_grad_cached(f, (x, labels), (x + 0.1, labels))
    assert_grad(f, x, labels - 1, grad_fn=g)             # other labels: the metadata guard retraces
    assert g.cache_info().traces == 2
    with pytest.raises(jitgrad.UnsupportedError, match="reinterpreting"):
        jitgrad.jit_grad(lambda x: np.sum(x.view(np.int64)))(x)
    with pytest.raises(jitgrad.UnsupportedError, match="metadata"):
        jitgrad.jit_grad(lambda x: np.sum(x.view(np.dtype(x.dtype, metadata={"m": x}))))(x)


def test_unique_of_a_traced_array_takes_numpys_sorting_path():
    f = lambda x: np.sum(np.unique(x) ** 2 * np.arange(1.0, np.unique(x).size + 1))
    g = assert_grad_cached(f, (np.array([2.0, 1.0, 3.0, 0.5]),), (np.array([2.5, 1.0, -3.0, 0.7]),))
    value, _ = jitgrad.value_and_grad(f)(np.array([2.0, 1.0, 2.0, 3.0]))
    assert value == f(np.array([2.0, 1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g(np.array([2.0, 1.0, 2.0, 3.0])), [[8.0, 2.0, 0.0, 18.0]])  # a new pattern
    assert g.cache_info().traces == 2


LABELS = np.array([3.0, 1.0, 2.0])


def test_writing_into_a_copy_of_an_environment_array():
    def f(x):
        a = LABELS.copy()
        a.sort()
        b = LABELS.flatten()
        b[0] = x[0]
        return np.sum(a * x) + np.sum(b * x)
    assert_grad_cached(f, (np.ones(3),), (np.arange(3.0),))
    with pytest.raises(jitgrad.UnsupportedError, match="copy it first"):
        jitgrad.jit_grad(lambda x: LABELS.sort() or np.sum(x))(np.ones(3))


# -- np.vectorize, x.flat and boolean masks passed in ----------------------------------------------------------
def _bump(t):
    return math.sin(t) * t if t > 0.5 else t * t


def _bump_pair(t, s):
    return t * s, math.exp(t - s)


VECTORIZE = {
    "scalar_function": lambda x: np.sum(np.vectorize(_bump)(x) * x),
    "broadcast_and_two_outputs": lambda x: np.sum(np.vectorize(_bump_pair)(x.reshape(2, 3), x[:3])[1]),
    "otypes": lambda x: np.sum(np.vectorize(_bump, otypes=[float])(x[0])),
    "signature": lambda x: np.sum(np.vectorize(lambda r: r * r.sum(), signature="(n)->(n)")(x.reshape(2, 3))),
}


@pytest.mark.parametrize("name", sorted(VECTORIZE))
def test_vectorize(name):
    x = np.array([0.3, 1.2, 0.7, -0.4, 2.0, 0.1])
    assert_grad_cached(VECTORIZE[name], (x,), (x + 0.02,))


def test_vectorize_branch_in_the_scalar_function_is_guarded():
    g = jitgrad.jit_grad(lambda x: np.sum(np.vectorize(_bump)(x)))
    np.testing.assert_allclose(g(np.array([0.3, 1.2])), [0.6, np.sin(1.2) + 1.2 * np.cos(1.2)])
    np.testing.assert_allclose(g(np.array([0.7, 0.2])), [np.sin(0.7) + 0.7 * np.cos(0.7), 0.4])
    assert g.cache_info().traces == 2


def _flat(x):
    a = np.zeros(3)
    a.flat[0] = x[0]                                       # a write through .flat into an array made here
    y = np.outer(x, x).T + a
    y.flat[1] = 5 * x[0]
    y.flat[[0, 4]] = x[1:]
    return np.sum(y * np.arange(9.0).reshape(3, 3)) + x.flat[2] * len(x.flat) + sum(v * v for v in x.flat) \
        + np.sum(y.flat.copy() ** 2)


def test_flat():
    x = np.array([0.3, 1.2, 0.7])
    assert_grad_cached(_flat, (x,), (x * 2,))


def _masked(x, mask):
    picked = x[mask]
    buffer = np.zeros(mask.sum())
    buffer[:] = picked ** 2
    if (~mask).any():
        return np.sum(buffer) + np.mean(x[~mask])
    return np.sum(buffer) * np.count_nonzero(mask)


def test_boolean_mask_argument():
    """x[mask] with the mask an argument: the mask is guarded, a changed mask traces anew."""
    x, mask = np.array([0.3, 1.2, 0.7, -0.4]), np.array([True, False, True, True])
    g = assert_grad_cached(_masked, (x, mask), (x * 1.5, mask))
    for other in (~mask, np.ones(4, bool), mask):
        assert_grad(_masked, x, other, grad_fn=g)
    assert g.cache_info().traces == 3


# -- np.roots and np.linalg.eigvals (complex eigenvalues of a real matrix) --------------------------------------
def _roots_loss(c):
    r = np.roots(c)
    return np.sum(np.abs(r) * np.arange(1.0, r.size + 1)) + np.sum(np.real(r) ** 2)


@pytest.mark.parametrize("coefficients", [[1.0, -3.0, 2.0], [1.0, 0.5, 2.0, -1.0], [2.0, -1.0, 0.3, 0.7, -0.2]],
                         ids=["real_roots", "complex_pair", "quartic"])
def test_roots_of_a_real_polynomial(coefficients):
    c = np.array(coefficients)
    assert_grad_cached(_roots_loss, (c,), (c * np.linspace(1.0, 1.05, c.size),))


def test_irr_as_numpy_financial_computes_it():
    """numpy_financial.irr: the rate whose discount factor is the positive real root of the cash flows'
    polynomial (the mask of real positive roots is guarded)."""
    def irr(values):
        res = np.roots(values[::-1])
        mask = (res.imag == 0) & (res.real > 0)
        rate = 1 / res[mask].real - 1
        return rate[np.argmin(np.abs(rate))]
    flows = np.array([-100.0, 39.0, 59.0, 55.0, 20.0])
    grad = assert_grad_cached(irr, (flows,), (flows * 1.01,))
    assert grad(flows)[0].shape == (5,)


def test_eigvals_real_or_complex_is_guarded():
    f = lambda a: np.sum(np.abs(np.linalg.eigvals(a)) * np.arange(1.0, 3.0))
    rotation = np.array([[0.5, 1.2], [-1.2, 0.5]])                    # a complex pair
    g = assert_grad_cached(f, (rotation,), (rotation * 1.1,))
    assert_grad(f, np.array([[2.0, 1.0], [0.5, 1.0]]), grad_fn=g)    # real eigenvalues
    # NumPy before 2.5 answers a real array for real eigenvalues (a guarded kind: retraced); 2.5 on, complex
    always_complex = np.iscomplexobj(np.linalg.eigvals(np.eye(1)))
    assert g.cache_info().traces == (1 if always_complex else 2)
    with pytest.raises(jitgrad.UnsupportedError, match="second derivatives"):
        jitgrad.hessian(f)(rotation)
