"""Long dependency chains compile (issue 11, point 1): a time-stepped simulation vectorised over an
array with in-place updates, a Kalman filter over many observations, and a leaky integrator whose
forward state is one fused chain through every step.  Each gradient is compiled (backend 'llvm', not
the fallback) and equals the reference executor's (jit=False), which equals finite differences.  The 2,000-step
versions were run by hand (see the branch report); these sizes keep each test to a few seconds.  With
rolling on, a 2,000-observation filter, over `range` or over the array itself, is one loop op: tested
at full size below (first calls measured on a 2-core machine under load: about 1.5 s for either form;
the loop over the array unrolled took 784 s)."""
import time

import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from jitgrad.pytree import flatten

STEPS = {"simulation": 400, "kalman": 150, "leaky": 600}   # leaky: a 1,200-node fused chain


def simulation(x0, k, steps):
    x = x0.copy()
    for _ in range(steps):
        x[1:] -= k * (x[1:] - x[:-1])
    return np.sum(x * x)


def _kalman_step(m, p, y, q, r):
    """One predict/update step of a constant-velocity model (2x2 matrices): the new state and the
    observation's negative log-likelihood term."""
    a = np.array([[1.0, 1.0], [0.0, 1.0]])
    h = np.array([[1.0, 0.0]])
    m = a @ m
    p = a @ p @ a.T + q * np.eye(2)
    s = h @ p @ h.T + r
    gain = p @ h.T / s
    v = y - h @ m
    return m + gain @ v, p - gain @ h @ p, np.sum(v * v / s + np.log(s))


def kalman(obs, q, r):
    """Negative log-likelihood of the model over `obs`, a loop over the array itself."""
    m, p, nll = np.zeros(2), np.eye(2), 0.0
    for y in obs:
        m, p, term = _kalman_step(m, p, y, q, r)
        nll = nll + term
    return nll


def leaky(u):
    x = np.zeros(u.shape[1])
    for t in range(len(u)):
        x = 0.9 * x + u[t]
    return np.sum(np.tanh(x))


def _case(name):
    rng = np.random.default_rng(7)
    n = STEPS[name]
    if name == "simulation":
        return (lambda x0, k: simulation(x0, k, n)), (rng.normal(size=32), 0.3), (0, 1)
    if name == "kalman":
        return kalman, (np.cumsum(rng.normal(size=n)) * 0.1, 0.1, 0.5), (0, 1, 2)
    return leaky, (rng.normal(size=(n, 16)) * 0.1,), 0


@pytest.mark.parametrize("name", sorted(STEPS))
def test_long_chain_compiles_and_matches_reference_and_finite_differences(name, monkeypatch):
    monkeypatch.setenv("JITGRAD_ROLL", "0")     # the unrolled chains (rolled loops: tests/tracer/test_rolling.py)
    fn, args, argnums = _case(name)
    g = jitgrad.jit_grad(fn, argnums=argnums)
    compiled = g(*args)
    path = g.cache_info().paths[0]
    assert path.backend == "llvm", path.note
    reference = assert_grad(fn, *args, argnums=argnums, jit=False)     # against finite differences
    for got, want in zip(flatten(compiled)[0], flatten(reference)[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for got, first in zip(flatten(g(*args))[0], flatten(compiled)[0]):   # the cached call
        np.testing.assert_array_equal(got, first)


def kalman_indexed(obs, q, r):
    """kalman, reading the observations by index."""
    m, p, nll = np.zeros(2), np.eye(2), 0.0
    for t in range(len(obs)):
        m, p, term = _kalman_step(m, p, obs[t], q, r)
        nll = nll + term
    return nll


@pytest.mark.parametrize("fn", [kalman_indexed, kalman], ids=["range", "over the array"])
def test_two_thousand_observation_filter_rolls_compiles_and_matches_reference(fn):
    obs = np.cumsum(np.random.default_rng(7).normal(size=2000)) * 0.1
    g = jitgrad.jit_grad(fn, argnums=(0, 1, 2))
    start = time.perf_counter()
    compiled = g(obs, 0.1, 0.5)
    first_call = time.perf_counter() - start
    path = g.cache_info().paths[0]
    assert path.backend == "llvm" and len(path.loops) == 1 and "rolled, 1999 iterations" in path.loops[0], path
    assert len(path.trace.nodes) < 500, (len(path.trace.nodes), first_call)      # not 2,000 steps' worth
    reference = jitgrad.jit_grad(fn, argnums=(0, 1, 2), jit=False)(obs, 0.1, 0.5)
    for got, want in zip(compiled, reference):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    dq, dr = assert_grad(lambda q, r: fn(obs, q, r), 0.1, 0.5, argnums=(0, 1))
    np.testing.assert_allclose((compiled[1], compiled[2]), (dq, dr), rtol=1e-9)
    np.testing.assert_array_equal(g(obs, 0.1, 0.5)[0], compiled[0])      # the cached call
