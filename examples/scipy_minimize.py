"""scipy.optimize.minimize with an exact gradient from jitgrad, on an unmodified objective.

Run: python examples/scipy_minimize.py
"""
import numpy as np
from scipy.optimize import minimize, rosen

import jitgrad


def objective(x):
    """The Rosenbrock function plus a smooth penalty, written in plain NumPy."""
    return rosen(x) + 0.01 * np.sum(np.log1p(x ** 2))


def main():
    x0 = np.full(10, -1.2)
    result = minimize(objective, x0, jac=jitgrad.jit_grad(objective), method="BFGS")
    print(result.message, f"f = {result.fun:.3e} after {result.nit} iterations, {result.njev} gradients")
    assert result.success, result.message
    return result


if __name__ == "__main__":
    main()
