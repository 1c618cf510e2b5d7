"""Second-order optimization with exact, compiled derivatives of unmodified code: scipy.optimize.minimize
with the Hessian (trust-exact) and Hessian-vector products (Newton-CG), and least_squares with the
Jacobian of a vector-valued residual.

Run: python examples/newton.py
"""
import numpy as np
from scipy.optimize import least_squares, minimize, rosen

import jitgrad


def residuals(p, t, y):
    """Misfit of a damped oscillation a exp(-b t) cos(w t + phi) to samples y at times t (plain NumPy)."""
    a, b, w, phi = p
    return a * np.exp(-b * t) * np.cos(w * t + phi) - y


def main():
    x0 = np.full(8, -1.2)
    x0[::2] = 1.5
    hessian = jitgrad.hessian(rosen)
    trust = minimize(rosen, x0, jac=jitgrad.jit_grad(rosen), hess=hessian, method="trust-exact")
    print("trust-exact:", trust.message, f"f = {trust.fun:.2e} after {trust.nit} iterations")
    assert trust.success and np.allclose(trust.x, 1.0, atol=1e-6), trust

    hvp = jitgrad.hvp(rosen)
    newton = minimize(rosen, x0, jac=jitgrad.jit_grad(rosen), hessp=hvp, method="Newton-CG",
                      options={"xtol": 1e-10})
    print("Newton-CG:  ", newton.message, f"f = {newton.fun:.2e} after {newton.nit} iterations")
    assert newton.success and np.allclose(newton.x, 1.0, atol=1e-5), newton

    t = np.linspace(0.0, 6.0, 60)
    truth = np.array([2.0, 0.3, 2.5, 0.4])
    y = residuals(truth, t, 0.0) + 1e-3 * np.sin(17 * t)
    fit = least_squares(residuals, np.array([1.5, 0.2, 2.3, 0.2]), jac=jitgrad.jacobian(residuals), args=(t, y))
    print("least_squares:", fit.message, f"cost = {fit.cost:.2e}, parameters {np.round(fit.x, 4)}")
    assert fit.success and np.allclose(fit.x, truth, atol=1e-2), fit
    print(f"Hessian traced {hessian.cache_info().traces} time(s) for {trust.nit} iterations")
    return trust, newton, fit


if __name__ == "__main__":
    main()
