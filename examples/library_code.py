"""Library code as it ships: gradients of scipy.special, scipy.stats, numpy.polynomial and numpy.linalg
functions, passed to jitgrad unmodified (SciPy's array-API machinery, rv_continuous, the polynomial
classes and LAPACK-backed routines included), each checked against its closed form.

Run: python examples/library_code.py
"""
import numpy as np
import scipy.special
import scipy.stats
from numpy.polynomial import Chebyshev, polynomial

import jitgrad


def check(name, got, expected):
    print(f"{name:34s} max |error| = {np.max(np.abs(np.asarray(got) - expected)):.2e}")
    assert np.allclose(got, expected, rtol=1e-10, atol=1e-12), f"{name}: {got} != {expected}"


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5)

    # scipy.special.logsumexp: the gradient is the softmax
    g = jitgrad.jit_grad(scipy.special.logsumexp)(x)
    check("scipy.special.logsumexp", g, np.exp(x) / np.sum(np.exp(x)))

    # scipy.stats.norm.logpdf w.r.t. x, loc and scale: -z/s, z/s, (z^2 - 1)/s with z = (x - loc)/s
    gx, gloc, gscale = jitgrad.jit_grad(scipy.stats.norm.logpdf, argnums=(0, 1, 2))(1.3, 0.4, 2.0)
    z = (1.3 - 0.4) / 2.0
    check("scipy.stats.norm.logpdf", [gx, gloc, gscale], [-z / 2.0, z / 2.0, (z * z - 1) / 2.0])

    # scipy.stats CDFs (incomplete beta and gamma functions inside): d/dx of the t and gamma CDFs is the density
    u = np.array([0.4, 1.1, 2.5])
    g_t = jitgrad.jit_grad(lambda v: np.sum(scipy.stats.t.cdf(v, 3.5, loc=0.2)))(u)
    check("scipy.stats.t.cdf d/dx = t.pdf", g_t, scipy.stats.t.pdf(u, 3.5, loc=0.2))
    g_gamma = jitgrad.jit_grad(lambda v: np.sum(scipy.stats.gamma(2.5).cdf(v)))(u)
    check("scipy.stats.gamma.cdf d/dx", g_gamma, scipy.stats.gamma.pdf(u, 2.5))

    # numpy.polynomial: polyval and a Chebyshev series, w.r.t. the point and the coefficients
    coef = np.array([0.5, -1.0, 2.0, 0.25])
    t = 0.3
    gt, gc = jitgrad.jit_grad(polynomial.polyval, argnums=(0, 1))(t, coef)
    check("numpy.polynomial.polyval d/dx", gt, polynomial.polyval(t, polynomial.polyder(coef)))
    check("numpy.polynomial.polyval d/dc", gc, t ** np.arange(4))
    series = jitgrad.jit_grad(lambda c, u: Chebyshev(c)(u))(coef, t)
    check("Chebyshev(c)(x) d/dc = T_k(x)", series, np.cos(np.arange(4) * np.arccos(t)))

    # numpy.linalg: d log|det A| = A^-T and d sum(inv(A) * W) = -A^-T W A^-T
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    w = rng.standard_normal((3, 3))
    g_logdet = jitgrad.jit_grad(lambda m: np.linalg.slogdet(m)[1])(a)
    check("numpy.linalg.slogdet", g_logdet, np.linalg.inv(a).T)
    g_inv = jitgrad.jit_grad(lambda m: np.sum(np.linalg.inv(m) * w))(a)
    inv_t = np.linalg.inv(a).T
    check("numpy.linalg.inv", g_inv, -inv_t @ w @ inv_t)
    return g, gx, g_t, g_gamma, gc, series, g_logdet, g_inv


if __name__ == "__main__":
    main()
