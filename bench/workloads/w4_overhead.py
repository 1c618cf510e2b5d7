"""W4: sum(x*x) on 8 elements: the per-call overhead of each implementation."""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like


def sum_of_squares(x):
    """Objective: sum(x*x)."""
    return np.sum(x * x)


def sum_of_squares_grad(x):
    """Hand-written gradient 2x."""
    return 2.0 * x


def _c_binder(lib, args):
    (x,) = args
    (g,) = outputs_like(x)
    return bind(lib, "sum_of_squares_grad", x, len(x), g, result=g)


def cases(mode):
    """Eight seeded elements in every mode."""
    x = np.random.default_rng(4).normal(size=8)
    return [Case("W4", "sum(x*x) n=8", sum_of_squares, (x,), 0, sum_of_squares_grad,
                 grad_numba=sum_of_squares_grad, c_source="w4_overhead.c", c_binder=_c_binder,
                 scale=8, tags=("main",))]
