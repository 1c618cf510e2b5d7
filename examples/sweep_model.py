"""The model of examples/dask_sweep.py, in a module of its own so that Dask workers import it by name
(a function pickled by reference, as `jit_grad` functions are, is looked up in its module).

A ridge-regularised least-squares fit on a fixed data set, fitted by gradient descent for one ridge
weight per task; `fit` returns the weights, the loss and this worker's cache counters.
"""
import os

import numpy as np

import jitgrad

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 5))
Y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.1 * rng.normal(size=200)
STEPS, RATE = 50, 0.05


def loss(w, X, y, ridge):
    r = X @ w - y
    return np.mean(r * r) + ridge * np.sum(w * w)


grad = jitgrad.jit_grad(loss)


def fit(ridge):
    """Gradient descent on `loss` at this ridge weight: (ridge, weights, loss, counters of this worker)."""
    w = np.zeros(X.shape[1])
    for _ in range(STEPS):
        w = w - RATE * grad(w, X, Y, ridge)
    jitgrad.wait_compiled()          # (the record of a new trace is on disk before the task ends)
    return ridge, w, float(loss(w, X, Y, ridge)), counters()


def counters():
    """This worker process's cache counters: traces made here, traces restored from disk, pid."""
    info = grad.cache_info()
    return {"pid": os.getpid(), "traces": info.traces, "restored": info.restored, "hits": info.hits}
