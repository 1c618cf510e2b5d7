"""Python floats a loop changes (`t += dt`) are traced from the iteration after they change
(tracer/interpretation/rolling.py `_float_carries`): the time-stepping `while t < t_end:` rolls and
answers other `t_end` on one trace, a decision on such a float inside the body is a guard or cond,
and a Python-level use of one keeps the loop unrolled.  Checked against CPython and finite differences."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad


def stepping(p, t_end):
    t, x, v, k = 0.0, 1.0, 0.0, 0
    while t < t_end:
        a = -p[0] * np.sin(x) - p[1] * v
        v = v + 0.01 * a
        x = x + 0.01 * v
        t += 0.01
        k += 1
    return (x * x + v * v) * k      # the number of steps (Python's rounding of t decides it) matters


P = np.array([9.81, 0.1])


def test_a_time_stepping_while_loop_rolls_and_takes_other_end_times_on_one_trace():
    g = jitgrad.jit_grad(stepping, argnums=(0,))
    for t_end in (5.0, 5.0, 7.345, 12.0):
        assert_grad(stepping, P, t_end, grad_fn=g)
    info = g.cache_info()
    assert any("rolled" in line and "leaves on data" in line for line in info.paths[0].loops), info.paths[0].loops
    assert info.traces == 1
    for t_end in (0.004, 0.0):        # leaving before the loop op runs: other paths, answered right
        assert_grad(stepping, P, t_end, grad_fn=g)
    np.testing.assert_allclose(g(P, 7.345)[0], jitgrad.jit_grad(stepping, jit=False)(P, 7.345), rtol=1e-10)


def flipping(x, n):
    t, s = 0.0, x
    for _ in range(n):
        if t > 0.5:                  # a decision on the float carry, flipping once
            s = s * 1.5
        s = np.sin(s) + 0.5 * s
        t += 0.01
    return s


@pytest.mark.parametrize("n", [3, 40, 3000])
def test_a_decision_on_a_float_carry_follows_python(n):
    for jit in (None, False):
        assert_grad(flipping, np.float64(0.3), n, jit=jit)


def on_integers(p, t_end):
    t, x = 0.0, 1.0
    while t < t_end:
        x = x * (1.0 - 0.01 * p[0])
        if t.is_integer():           # a Python-level use of the float: the loop stays unrolled
            x = x * 1.0001
        t += 0.25
    return x


def test_a_python_level_use_of_a_float_carry_keeps_the_loop_unrolled():
    g = jitgrad.jit_grad(on_integers)
    assert_grad(on_integers, np.array([0.5]), 3.0, grad_fn=jitgrad.jit_grad(on_integers, argnums=(0,)))
    g(np.array([0.5]), 3.0)
    (loops,) = [p.loops for p in g.cache_info().paths]
    assert "not rolled: float.is_integer of a number the loop computes" in loops[0], loops
