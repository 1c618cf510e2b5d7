"""W3: sum(tanh(x)*sin(y)**2 + exp(-x*x)*y) over 1e6 float64 elements; gradient w.r.t. x and y."""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like


def elementwise(x, y):
    """Objective: one fused elementwise expression, summed."""
    return np.sum(np.tanh(x) * np.sin(y) ** 2 + np.exp(-x * x) * y)


def elementwise_grad(x, y):
    """Hand-written NumPy gradient (x, y)."""
    t = np.tanh(x)
    s = np.sin(y)
    e = np.exp(-x * x)
    return (1.0 - t * t) * s * s - 2.0 * x * e * y, t * np.sin(2.0 * y) + e


def elementwise_grad_loops(x, y):
    """The same gradient as one explicit loop (the form numba compiles well)."""
    gx = np.empty_like(x)
    gy = np.empty_like(y)
    for i in range(x.shape[0]):
        t = np.tanh(x[i])
        s = np.sin(y[i])
        e = np.exp(-x[i] * x[i])
        gx[i] = (1.0 - t * t) * s * s - 2.0 * x[i] * e * y[i]
        gy[i] = t * np.sin(2.0 * y[i]) + e
    return gx, gy


def _c_binder(lib, args):
    x, y = args
    grads = outputs_like(x, y)
    return bind(lib, "elementwise_grad", x, y, len(x), *grads, result=grads)


def make_case(n, tags=("main",)):
    """The case with n seeded normal elements in x and y."""
    rng = np.random.default_rng(3)
    return Case("W3", f"elementwise n={n:.0e}", elementwise, (rng.normal(size=n), rng.normal(size=n)),
                (0, 1), elementwise_grad, grad_numba=elementwise_grad_loops,
                c_source="w3_elementwise.c", c_binder=_c_binder, scale=n, tags=tags)


def cases(mode):
    """1e6 elements (1e3 in tiny mode)."""
    return [make_case(1000 if mode == "tiny" else 10 ** 6)]


def scaling(mode):
    """Scaling sweep over the array size."""
    sizes = {"tiny": (100, 1000), "quick": (100, 10 ** 4, 10 ** 6), "full": tuple(10 ** k for k in range(2, 8))}
    return [make_case(n, tags=("scaling",)) for n in sizes[mode]]
