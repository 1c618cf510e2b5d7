"""The value audit catches an IR value that does not compute what NumPy computed while tracing."""
import numpy as np
import pytest

import jitgrad
from jitgrad.ir.evaluate import EVAL
from jitgrad.tracer.recording import audit


def test_audit_is_on_in_the_suite():
    assert audit.enabled()


def test_mistranslated_operation_fails_at_the_users_line(monkeypatch):
    monkeypatch.setitem(EVAL, "sin", EVAL["cos"])   # IR 'sin' now means cos
    g = jitgrad.jit_grad(lambda x: np.sum(np.sin(x)))
    with pytest.raises(jitgrad.TraceError, match="computes values different") as info:
        g(np.array([0.1, 0.2]))
    line = test_mistranslated_operation_fails_at_the_users_line.__code__.co_firstlineno + 2
    assert info.value.loc.endswith(f"test_audit.py:{line}")


def test_rounding_differences_are_tolerated_but_wrong_values_are_not():
    x = np.linspace(0.0, 1.0, 7)
    assert audit._agrees(x * (1 + 1e-12), x)
    assert not audit._agrees(x * (1 + 1e-6), x)
    assert not audit._agrees(np.where(x > 0.5, np.nan, x), x)
    assert audit._agrees(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]))
    assert not audit._agrees(np.array([-np.inf, 1.0]), np.array([np.inf, 1.0]))
    assert not audit._agrees(np.array([1, 2]), np.array([1, 3]))
    assert audit._agrees(np.float32(1.0) + np.float32(1e-6), np.array(np.float32(1.0)))


def _sum_in_reverse(args, params):
    """A `sum` of a vector in another order than NumPy's: equal up to rounding."""
    (x,) = args
    return np.asarray(sum(reversed(x.tolist()), 0.0), dtype=x.dtype)


CANCELLING = np.array([0.1, 0.2, 0.3, -0.6])     # sums to 1.1e-16 in NumPy's order, 2.8e-17 reversed


def test_values_that_cancel_to_rounding_noise_are_not_reported(monkeypatch):
    """A rule summing in another order is right, even where the sum cancels to rounding noise (a
    difference of 8e-17 on a value of 1e-16: far outside a tolerance relative to the value itself)."""
    monkeypatch.setitem(EVAL, "sum", _sum_in_reverse)
    assert np.sum(CANCELLING) != _sum_in_reverse([CANCELLING], {})
    g = jitgrad.jit_grad(lambda x: np.sum(x) * 3.0 + np.sum(x * x))
    np.testing.assert_allclose(g(CANCELLING), 3.0 + 2 * CANCELLING)


def test_a_wrong_value_that_cancels_is_still_reported(monkeypatch):
    """A rule that drops a term is caught in the same cancelling sum: the difference (0.3) is far above
    the rounding noise of terms of order 1."""
    monkeypatch.setitem(EVAL, "sum", lambda args, params: _sum_in_reverse([args[0][1:]], params))
    with pytest.raises(jitgrad.TraceError, match="computes values different"):
        jitgrad.jit_grad(lambda x: np.sum(x) * 3.0)(CANCELLING)
    with pytest.raises(jitgrad.TraceError, match="computes values different"):
        jitgrad.jit_grad(lambda x: np.sum(x * 1e-9) * 3.0)(CANCELLING + 1.0)
