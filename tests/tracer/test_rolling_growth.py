"""A `while` loop running far more iterations than the call that traced it answers from the same trace:
its loop op may take 16 x 4x the traced count (tracer/interpretation/whileloops.py), and its reverse
mode tapes the first 1/16 of that and checkpoints the rest (ir/loop_tape.py's `_continued`).
Values and gradients against CPython and central differences (through the cached function), compiled
against the reference executor, taped against checkpointed; a call past the capacity retraces."""
import types

import numpy as np
import pytest

import jitgrad
from jitgrad import transforms
from jitgrad.ir import loop_tape
from jitgrad.tracer.interpretation import whileloops
from e2e import assert_grad


@pytest.fixture(autouse=True)
def small_capacities(monkeypatch):
    """Every loop rolls; a capacity of 16 x (4 x traced count, at least 8), of which 1/16 is taped
    (short test loops continue their while loops, checkpointed)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")
    monkeypatch.setattr(whileloops, "MIN_CAPACITY", 8)
    monkeypatch.setattr(loop_tape, "TAPED_EXIT_ROWS", 16)


def settle(x, rate, level):
    s = 0.0
    while x > level:
        x = x * rate - 0.001 * np.sin(x)
        s = s + x * np.cos(x)
    return s


LEVELS = (0.5, 0.3, 1e-3, 0.9, 1e-5, 0.2)     # about 20, 32, 200, 3, 325, 38 iterations at rate 0.97


def iterations(x, rate, level):
    n = 0
    while x > level:
        x, n = x * rate - 0.001 * np.sin(x), n + 1
    return n


@pytest.mark.parametrize("jit", [False, True])
def test_a_while_loop_running_50x_its_traced_count_uses_the_same_trace(jit):
    f = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=jit)
    g = jitgrad.jit_grad(settle, argnums=(0,), jit=jit)       # (by rate: too stiff for differences)
    counts = [iterations(1.0, 0.97, level) for level in LEVELS]
    assert counts[0] < 25 and max(counts) > 12 * counts[0]
    for level in LEVELS:
        value, grads = f(1.0, 0.97, level)
        assert value == pytest.approx(settle(1.0, 0.97, level), rel=1e-12)
        assert_grad(settle, 1.0, 0.97, level, argnums=0, grad_fn=g)
    assert f.cache_info().traces == 1 and g.cache_info().traces == 1
    assert 50 * counts[0] < iterations(2.0, 0.9912, 1e-5) < 60 * counts[0]     # past the taped 4x: continued
    value, grads = f(2.0, 0.9912, 1e-5)
    assert value == pytest.approx(settle(2.0, 0.9912, 1e-5), rel=1e-12)
    assert_grad(settle, 2.0, 0.9912, 1e-5, argnums=0, grad_fn=g)
    assert f.cache_info().traces == 1 and g.cache_info().traces == 1


@pytest.mark.parametrize("budget", [64.0, 0.0])
def test_compiled_agrees_with_the_reference_past_the_traced_count(monkeypatch, budget):
    monkeypatch.setattr(loop_tape, "TAPE_BUDGET_MB", budget)
    reference = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=False)
    compiled = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=True)
    for x, rate, level in [(1.0, 0.97, 0.5), (1.0, 0.97, 0.9), (2.0, 0.9912, 1e-5), (1.0, 0.97, 0.003)]:
        want, got = reference(x, rate, level), compiled(x, rate, level)
        assert want[0] == pytest.approx(got[0], rel=1e-13)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-11)
    assert reference.cache_info().traces == compiled.cache_info().traces == 1


def test_checkpointed_continuation_matches_taped(monkeypatch):
    monkeypatch.setattr(loop_tape, "TAPED_EXIT_ROWS", 2 ** 40)      # one taped loop of the whole capacity
    taped = jitgrad.value_and_grad(settle, argnums=(0, 1))
    want = [taped(1.0, 0.97, 0.5), taped(2.0, 0.9912, 1e-5)]
    monkeypatch.setattr(loop_tape, "TAPED_EXIT_ROWS", 16)
    continued = jitgrad.value_and_grad(settle, argnums=(0, 1))
    for (value, grads), args in zip(want, [(1.0, 0.97, 0.5), (2.0, 0.9912, 1e-5)]):
        got, got_grads = continued(*args)
        assert got == pytest.approx(value, rel=1e-13)
        np.testing.assert_allclose(got_grads, grads, rtol=1e-11)
    assert taped.cache_info().traces == continued.cache_info().traces == 1


@pytest.mark.parametrize("jit", [False, True])
def test_a_call_past_the_capacity_retraces(jit):
    f = jitgrad.value_and_grad(settle, argnums=(0, 1), jit=jit)
    traced = iterations(1.0, 0.97, 0.9)
    assert traced == 4                                 # capacity 16 * max(8, 4 * 4) = 256
    f(1.0, 0.97, 0.9)
    assert iterations(1.0, 0.97, 0.003) < 256 < iterations(1.0, 0.97, 1e-5)
    for level in (0.003, 1e-5):
        value, grads = f(1.0, 0.97, level)
        assert value == pytest.approx(settle(1.0, 0.97, level), rel=1e-12)
    info = f.cache_info()
    assert info.traces == 2 and "left before the capacity its trace gave it" in info.retraces[0]
    assert_grad(settle, 1.0, 0.97, 0.003, argnums=0, jit=jit)


def test_forward_mode_past_the_traced_count():
    fresh = types.FunctionType(settle.__code__, settle.__globals__)      # a jvp cache of its own
    for level in (0.5, 1e-5, 0.9):
        value, tangent = jitgrad.jvp(fresh, (1.0, 0.97, level), (0.0, 1.0, 0.0))
        eps = 1e-7
        fd = (settle(1.0, 0.97 + eps, level) - settle(1.0, 0.97 - eps, level)) / (2 * eps)
        assert value == pytest.approx(settle(1.0, 0.97, level), rel=1e-12)
        assert tangent == pytest.approx(fd, rel=1e-6)
    assert transforms._transform_of(fresh, transforms.JvpFunction, 3).cache_info().traces == 1
