"""Quickstart: differentiate an unmodified NumPy function with a loop, a branch on data and a helper.

Run: python examples/quickstart.py
"""
import math

import numpy as np

import jitgrad


def soft_threshold(r, lam):
    """A helper in plain NumPy: jitgrad inlines it."""
    return np.sign(r) * np.maximum(np.abs(r) - lam, 0.0)


def loss(w, x, y, lam=0.1):
    pred = np.tanh(x @ w)
    err = pred - y
    total = 0.0
    for i in range(len(err)):          # a Python loop over data
        e = float(err[i])              # float() keeps the derivative
        if e > 0:                      # a branch on data: recorded as a guard
            total += e * e
        else:
            total += 0.5 * math.exp(e) * e * e
    return total / len(err) + lam * np.sum(soft_threshold(w, 0.01) ** 2)


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal(8)
    w = rng.standard_normal(3)

    grad = jitgrad.jit_grad(loss)
    g = grad(w, x, y)

    eps = 1e-6
    fd = np.array([(loss(w + eps * e, x, y) - loss(w - eps * e, x, y)) / (2 * eps) for e in np.eye(3)])
    print("gradient          ", g)
    print("finite differences", fd)
    assert np.allclose(g, fd, rtol=1e-6, atol=1e-8), "gradient does not match finite differences"

    g2 = grad(w * 0.5, x, y)           # same shapes: reuses the cached trace while its guards hold
    info = grad.cache_info()
    print(f"traces: {info.traces}, hits: {info.hits}, misses: {info.misses}, backend: {info.paths[0].backend}")
    return g, g2


if __name__ == "__main__":
    main()
