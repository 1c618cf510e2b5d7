"""W8: softmax cross-entropy of a linear classifier (batch 512, 256 features, 1,000 classes), the
log-sum-exp written the usual stable way (max subtracted); gradient w.r.t. the weights and the bias.
Its cost floor is its two matrix products (logits X W and the weight gradient X^T G): the C gradient
calls the BLAS dgemm that scipy ships for both and does the rest in one pass per row, and
`bench/softmax_row.py` times the two products alone.
"""
import numpy as np

from . import Case
from ..cbuild import bind, outputs_like
from .w2_mlp import _dgemm_pointer


def softmax_xent(W, b, X, Y):
    """Objective: mean over rows of logsumexp(X W + b) - <Y, X W + b>, Y one-hot labels."""
    logits = X @ W + b
    top = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - top), axis=1)) + top[:, 0]
    return np.mean(lse - np.sum(Y * logits, axis=1))


def softmax_xent_grad(W, b, X, Y):
    """Hand-written gradient: G = (softmax(X W + b) - Y) / n; (X^T G, column sums of G)."""
    logits = X @ W + b
    e = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    G = (e / np.sum(e, axis=1, keepdims=True) - Y) / X.shape[0]
    return X.T @ G, np.sum(G, axis=0)


def _c_binder(lib, args):
    W, b, X, Y = args
    grads = outputs_like(W, b)
    work = np.zeros(X.shape[0] * W.shape[1])
    return bind(lib, "softmax_xent_grad", _dgemm_pointer(), W, b, X, Y, X.shape[0], X.shape[1], W.shape[1],
                *grads, work, result=grads)


def sizes(mode):
    """(batch, features, classes): 512 x 256 -> 1,000 (32 x 16 -> 10 in tiny mode)."""
    return (32, 16, 10) if mode == "tiny" else (512, 256, 1000)


def inputs(mode):
    """Seeded weights, bias, features and one-hot labels."""
    n, f, c = sizes(mode)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(n, f))
    Y = np.zeros((n, c))
    Y[np.arange(n), rng.integers(0, c, size=n)] = 1.0
    return 0.05 * rng.normal(size=(f, c)), 0.1 * rng.normal(size=c), X, Y


def cases(mode):
    """One case: the classifier at the sizes of `sizes(mode)`."""
    n, f, c = sizes(mode)
    return [Case("W8", f"softmax batch={n}", softmax_xent, inputs(mode), (0, 1), softmax_xent_grad,
                 grad_numba=softmax_xent_grad, c_source="w8_softmax.c", c_binder=_c_binder, scale=n,
                 tags=("main",))]
