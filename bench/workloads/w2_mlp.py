"""W2: MLP 64-256-256-1 with tanh, batch 256, mean squared error; gradient w.r.t. all weights.

The C gradient calls the BLAS dgemm that scipy ships (pointer from scipy.linalg.cython_blas), so the
"limit" row uses the same BLAS as NumPy.
"""
import ctypes

import numpy as np

from . import Case
from ..cbuild import bind, outputs_like

WIDTHS = (64, 256, 256, 1)

def mlp_loss(params, X, y):
    """Objective: mean((mlp(X) - y)**2) for params = (W1, b1, W2, b2, W3, b3)."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    out = h2 @ W3 + b3
    return np.mean((out[:, 0] - y) ** 2)

def mlp_grad(params, X, y):
    """Hand-written backpropagation; returns the gradient tuple in the order of params."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    out = h2 @ W3 + b3
    g_out = (2.0 / X.shape[0]) * (out - y.reshape(-1, 1))
    g_a2 = (g_out @ W3.T) * (1.0 - h2 * h2)
    g_a1 = (g_a2 @ W2.T) * (1.0 - h1 * h1)
    return (X.T @ g_a1, np.sum(g_a1, axis=0), h1.T @ g_a2, np.sum(g_a2, axis=0),
            h2.T @ g_out, np.sum(g_out, axis=0))

def _dgemm_pointer():
    import scipy.linalg.cython_blas as cython_blas
    capsule = cython_blas.__pyx_capi__["dgemm"]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.c_void_p(get_pointer(capsule, get_name(capsule)))

def _c_binder(lib, args):
    params, X, y = args
    grads = outputs_like(*params)
    batch, hidden = X.shape[0], WIDTHS[1]
    work = np.zeros(4 * batch * hidden + batch)
    return bind(lib, "mlp_grad", _dgemm_pointer(), X, y, batch, *params, *grads, work, result=grads)

def cases(mode):
    """Batch 256 (16 in tiny mode); Glorot-scaled seeded weights."""
    batch = 16 if mode == "tiny" else 256
    rng = np.random.default_rng(2)
    params = []
    for fan_in, fan_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        params += [rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in), 0.1 * rng.normal(size=fan_out)]
    X = rng.normal(size=(batch, WIDTHS[0]))
    y = rng.normal(size=batch)
    return [Case("W2", f"mlp batch={batch}", mlp_loss, (tuple(params), X, y), 0, mlp_grad,
                 grad_numba=mlp_grad, c_source="w2_mlp.c", c_binder=_c_binder, scale=batch,
                 tags=("main",))]
