"""W6: logistic-regression negative log-likelihood with an L2 term, X 10000 x 100; gradient w.r.t. w."""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like


def logreg_nll(w, X, y, lam):
    """Objective: sum(log(1 + exp(Xw)) - y*Xw) + lam/2 * |w|^2, labels y in {0, 1}."""
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * np.sum(w * w)


def logreg_grad(w, X, y, lam):
    """Hand-written gradient X^T (sigmoid(Xw) - y) + lam*w."""
    z = X @ w
    return X.T @ (0.5 * (1.0 + np.tanh(0.5 * z)) - y) + lam * w


def _c_binder(lib, args):
    w, X, y, lam = args
    (g,) = outputs_like(w)
    work = np.zeros(X.shape[0])
    return bind(lib, "logreg_grad", w, X, y, lam, X.shape[0], X.shape[1], g, work, result=g)


def cases(mode):
    """X 10000 x 100 (200 x 10 in tiny mode), labels from a seeded logistic model."""
    rows, cols = (200, 10) if mode == "tiny" else (10000, 100)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(rows, cols))
    true_w = rng.normal(size=cols) / np.sqrt(cols)
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-X @ true_w))).astype(np.float64)
    w = 0.1 * rng.normal(size=cols)
    return [Case("W6", f"logreg {rows}x{cols}", logreg_nll, (w, X, y, 0.1), 0, logreg_grad,
                 grad_numba=logreg_grad, c_source="w6_logreg.c", c_binder=_c_binder, scale=rows,
                 tags=("main",))]
