"""W1b: the Rosenbrock function written as a Python loop over x[i] (n = 100)."""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like


def rosenbrock(x):
    """Objective: sum of 100*(x[i+1] - x[i]**2)**2 + (1 - x[i])**2, one element at a time."""
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return total


def rosenbrock_grad(x):
    """Hand-written gradient, the same loop."""
    g = np.zeros(len(x))
    for i in range(len(x) - 1):
        r = x[i + 1] - x[i] ** 2
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * r
    return g


def _c_binder(lib, args):
    (x,) = args
    (g,) = outputs_like(x)
    return bind(lib, "rosenbrock_grad", x, len(x), g, result=g)


def cases(mode):
    """n = 100 (10 in tiny mode), seeded normal inputs."""
    n = 10 if mode == "tiny" else 100
    x = np.random.default_rng(1).normal(size=n)
    return [Case("W1", f"rosenbrock n={n}", rosenbrock, (x,), 0, rosenbrock_grad,
                 grad_numba=rosenbrock_grad, c_source="w1_rosenbrock.c", c_binder=_c_binder,
                 scale=n, trace_grows=True, tags=("main",))]
