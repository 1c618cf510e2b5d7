"""A traced value never escapes into user data: what a traced function stores into lists, dicts,
globals, closure cells and attributes of objects that outlive the call holds plain values once the
call returns (inside the call it stays traced, so reading it back keeps the derivative)."""
import numpy as np
import pytest

import jitgrad
from jitgrad.tracer.arrays.values import TracedArray

X = np.array([0.5, -1.0, 2.0])


def _no_traced(value):
    if type(value) is TracedArray:
        return False
    if isinstance(value, (list, tuple)):
        return all(_no_traced(v) for v in value)
    if isinstance(value, dict):
        return all(_no_traced(v) for v in value.values())
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return all(_no_traced(v) for v in vars(value).values())
    return True


@pytest.mark.filterwarnings("ignore::jitgrad.JitgradWarning")    # the log is guarded by value (issue 11.3)
def test_logging_losses_over_many_calls():
    history = []

    def loss(x):
        value = np.sum((x - 1.0) ** 2)
        history.append(float(value))        # the usual way to log a scipy.optimize run
        return value
    g = jitgrad.value_and_grad(loss)
    losses = []
    for k in range(12):
        value, grad = g(X * (k + 1))
        losses.append(value)
        assert np.allclose(grad, 2 * (X * (k + 1) - 1.0))
        assert history and all(type(h) is float for h in history)
        assert np.isclose(sum(history), sum(losses[:len(history)]))   # entries are the calls' losses
    assert np.allclose(history, losses[:len(history)])


class Recorder:
    def __init__(self):
        self.log, self.last, self.best = [], None, {}

    def loss(self, x):
        y = np.tanh(x)
        value = np.sum(y ** 2)
        self.log.append({"loss": float(value), "y": y, "pair": (value, y)})
        self.last = y
        self.best["value"] = value
        return np.sum(self.last * 2.0) + value      # read back in the same call: still traced


def test_objects_attributes_and_nested_containers_hold_plain_values():
    rec = Recorder()
    g = jitgrad.jit_grad(rec.loss)
    for k in range(3):
        grad = g(X + k)
        t = np.tanh(X + k)
        assert np.allclose(grad, (2.0 + 2 * t) * (1 - t ** 2))
    assert _no_traced(rec.log) and _no_traced(rec) and _no_traced(rec.best)
    assert type(rec.log[0]["pair"]) is tuple and isinstance(rec.log[0]["y"], np.ndarray)
    assert any(np.allclose(rec.last, np.tanh(X + k)) for k in range(3))     # a traced call's value
    assert sum(entry["loss"] for entry in rec.log) > 0


LAST = None


def stores_global(x):
    global LAST
    LAST = np.exp(x)
    return np.sum(LAST)


def test_global_written_holds_a_plain_array():
    grad = jitgrad.jit_grad(stores_global)(X)
    assert np.allclose(grad, np.exp(X))
    assert type(LAST) is np.ndarray and np.allclose(LAST, np.exp(X))


def test_nonlocal_written_and_exception_raised_after_the_store():
    seen = None

    def f(x):
        nonlocal seen
        seen = np.sum(x) * 3.0
        raise ValueError("after storing")
    with pytest.raises(ValueError, match="after storing"):
        jitgrad.jit_grad(f)(X)
    assert type(seen) is np.float64 and np.isclose(seen, 3.0 * np.sum(X))


def test_values_stored_by_a_nested_jit_grad_are_settled_by_the_outer_call():
    log = []

    def inner(y):
        log.append(np.sum(y ** 2))
        return np.sum(y ** 2)

    def outer(x):
        g = jitgrad.jit_grad(inner)(x * 2.0)
        return np.sum(g * x)
    grad = jitgrad.jit_grad(outer)(X)
    assert np.allclose(grad, 8.0 * X)           # d/dx sum(4x * x)
    assert _no_traced(log) and np.isclose(log[0], np.sum((2 * X) ** 2))
