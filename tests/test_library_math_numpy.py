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
