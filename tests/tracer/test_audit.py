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
