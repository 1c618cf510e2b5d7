"""A traced float used where NumPy needs a concrete value to size an array (`np.arange(0.0, T, dt)`
with a float argument T): the trace takes its value, guarded; another value traces again."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad


def integrate(p, t_end):
    x = 1.0
    for t in np.arange(0.0, t_end, 0.01):
        x = x + 0.01 * (-p[0] * x + np.cos(p[1] * t))
    return x


P = np.array([0.5, 0.3])


def test_a_float_range_bound_is_guarded_by_value():
    g = jitgrad.jit_grad(integrate, argnums=(0,))
    for t_end, traces in ((30.0, 1), (30.0, 1), (12.5, 2), (30.0, 2)):
        assert_grad(integrate, P, t_end, grad_fn=g)
        assert g.cache_info().traces == traces
    guards = [why for path in g.cache_info().paths for why, _, _ in path.guards]
    assert any("traced float used as an array size" in why for why in guards)
    assert any("rolled" in line for line in g.cache_info().paths[0].loops)


def test_the_float_bound_differentiated_has_a_zero_derivative():
    def count(t_end):
        return np.sum(np.arange(0.0, t_end, 0.5)) + 2.0 * t_end
    np.testing.assert_allclose(jitgrad.jit_grad(count)(np.float64(3.2)), 2.0)


def test_an_array_used_as_a_bound_still_refuses():
    def bad(x):
        return np.sum(np.arange(x))
    with pytest.raises(jitgrad.UnsupportedError, match="test_float_bounds.py"):
        jitgrad.jit_grad(bad)(np.array([3.0, 4.0]))
