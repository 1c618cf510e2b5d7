"""Loops writing rows of an array (`traj[i] = x`): linear work in the trip count, in the gradient's
backward loop and in the tracer's fast-forward.

Both were quadratic: the VJP of a write at one position built a mask of winning writes (a fill of the
whole array per iteration) and zeroed the cotangent in a copy (it was read after the write), and the
fast-forward ran the body with its guards as a continue flag, where every array carry is copied each
iteration.  Checked here by structure (what the backward body builds, which carries are updated in
place, which form the fast-forward runs), and the answers against CPython and finite differences."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from jitgrad.ir.loops import loops_in
from jitgrad.jit import loops
from jitgrad.tracer.interpretation import fastforward


def filled(p, n):
    traj = np.zeros(n)
    x = 1.0
    for i in range(n):
        x = x + 0.01 * (-p[0] * x + np.sin(p[1] * i))
        traj[i] = x
    return np.sum(traj ** 2)


P = np.array([0.5, 0.3])


def gradient_trace(fn, *args):
    g = jitgrad.jit_grad(fn)
    g(*args)
    (path,) = g.cache_info().paths
    return path.trace


def test_the_backward_loop_of_row_writes_updates_its_cotangent_in_place():
    n = 3000
    trace = gradient_trace(filled, P, n)
    backward = [node for node in trace.nodes if node.op == "loop"][-1]
    body = backward.params["body"]
    wide = [node.op for node in body.nodes if node.shape == (n,)]
    assert wide == ["index_set"], wide          # no fill of the whole array per iteration (the mask)
    carry = next(k for k, v in enumerate(body.inputs[1:]) if v.shape == (n,))
    assert carry in loops.in_place_carries(backward)


@pytest.mark.parametrize("n", [1, 2, 3, 2500])
def test_row_writes_gradient(n):
    g = assert_grad(filled, P, n)
    np.testing.assert_allclose(g, jitgrad.jit_grad(filled, jit=False)(P, n), rtol=1e-11)


def test_a_carry_read_after_its_write_is_not_updated_in_place():
    """The element read must come before the write to share the buffer: a read of the written carry
    after the write (another position) keeps two buffers, and the answer is right."""
    from jitgrad.ir import Builder
    from jitgrad.ir.loops import COUNTER_DTYPE
    from jitgrad.jit import compile_trace
    f64 = np.dtype(np.float64)
    b = Builder()
    i, traj = b.input((), COUNTER_DTYPE), b.input((8,), f64)
    nxt = b.add(i, b.const(np.asarray(1, COUNTER_DTYPE)))
    written = b.index_set(traj, b.const(np.asarray(2.0)), i, spec=(("array", 0),))
    later = b.index(traj, nxt, spec=(("array", 0),))          # after the write: must see the old buffer
    body = b.build([b.index_set(written, b.add(later, b.const(np.asarray(1.0))), nxt, spec=(("array", 0),))])
    b = Builder()
    x = b.input((8,), f64)
    loop = b.loop(x, body=body, trip=7, n_carry=1)
    assert loops.in_place_carries(loop) == []
    trace = b.build([b.loop_result(loop, index=0)])
    x0 = np.arange(8.0)
    expected = x0.copy()
    for t in range(7):
        old = expected[t + 1]
        expected[t] = 2.0
        expected[t + 1] = old + 1.0
    (got,) = compile_trace(trace)([x0])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(jitgrad.ir.run_trace(trace, [x0])[0], expected)


def test_fast_forward_of_row_writes_runs_without_a_flag_first(monkeypatch):
    """Long enough to be fast-forwarded natively: the first native run keeps the guards as guards (no
    continue flag, so the written carry is one buffer)."""
    seen = []
    real = fastforward._loop_trace
    monkeypatch.setattr(fastforward, "_loop_trace", lambda *a: seen.append(a[4]) or real(*a))
    n = fastforward.NATIVE_MIN_TRIP + 500
    assert_grad(filled, P, n)
    assert seen[:1] == [False]


def until_wall(p, n, wall):
    """Writes rows until x passes `wall` (a data-dependent break after many iterations)."""
    traj = np.zeros(n)
    x = 0.0
    for i in range(n):
        x = x + 0.001 * p[0] * (1.0 + np.cos(p[1] * i) ** 2)
        if x > wall:
            break
        traj[i] = x
    return np.sum(traj * traj) + x


def test_a_guard_failing_in_the_fast_forward_of_row_writes_falls_back_to_the_flag(monkeypatch):
    seen = []
    real = fastforward._loop_trace
    monkeypatch.setattr(fastforward, "_loop_trace", lambda *a: seen.append(a[4]) or real(*a))
    n = 4 * fastforward.NATIVE_MIN_TRIP
    p = np.array([1.0, 0.2])
    assert_grad(until_wall, p, n, 5.0)          # leaves after ~3,300 iterations, inside the fast-forward
    assert seen[:2] == [False, True]
    for loop in loops_in(gradient_trace(until_wall, p, n, 5.0)):
        assert loop.params["trip"] < n


def test_an_index_past_the_end_raises_as_python_does():
    def overrun(p, n):
        traj = np.zeros(n - 10)
        x = 1.0
        for i in range(n):
            x = x * (1.0 + 1e-4 * p[0])
            traj[i] = x
        return np.sum(traj)
    n = fastforward.NATIVE_MIN_TRIP + 500
    with pytest.raises(IndexError):
        overrun(P, n)
    with pytest.raises(IndexError):
        jitgrad.jit_grad(overrun)(P, n)


def decaying_fill(p, n, level):
    traj = np.zeros(n)
    x, i = 1.0, 0
    while x > level:
        x = x * (1.0 - 1e-3 * p[0] * (1.1 + np.sin(p[1] * i)))
        traj[i] = x
        i += 1
    return np.sum(traj ** 2)


@pytest.mark.parametrize("level", [0.5, 0.05])
def test_a_while_loop_writing_rows_past_a_quarter_of_its_array(level):
    """The gradient's continued `while` loop tapes 4x the iterations traced first; when that passes
    the array's end (5,441 iterations traced, 20,000 rows), the backward pass's segments not taken
    ran their discarded iteration at a counter the loop never reached: an index out of bounds (an
    IndexError where Python runs fine)."""
    p, n = np.array([0.5, 0.3]), 20000
    g = assert_grad(decaying_fill, p, n, level)
    np.testing.assert_allclose(g, jitgrad.jit_grad(decaying_fill, jit=False)(p, n, level), rtol=1e-10)


def fill_then_peek(p, n, level):
    """A `while` loop writing rows, then a read of the row its discarded last iteration would write."""
    traj = np.zeros(n)
    x, i = 1.0, 0
    while x > level:
        x = x * (1.0 - 1e-2 * p[0] * (1.1 + np.sin(p[1] * i)))
        traj[i] = x
        i += 1
    return np.sum(traj ** 2) + 100.0 * traj[i] + 10.0 * traj[i - 1]


def test_a_loop_with_exit_writes_its_rows_in_place_and_its_discarded_iteration_writes_nothing():
    from jitgrad.jit.exitwrites import predicated
    p, n = np.array([0.5, 0.3]), 2000
    trace = gradient_trace(fill_then_peek, p, n, 0.2)
    exits = [node for node in loops_in(trace) if node.params["exit"] is not None]
    assert exits
    in_place = [loops.in_place_carries(node, body=predicated(node.params["body"], node.params["n_carry"],
                                                             node.params["exit"])) for node in exits]
    assert any(in_place) and not any(loops.in_place_carries(node) for node in exits)
    g = assert_grad(fill_then_peek, p, n, 0.2)
    np.testing.assert_allclose(g, jitgrad.jit_grad(fill_then_peek, jit=False)(p, n, 0.2), rtol=1e-10)
    value = jitgrad.value_and_grad(fill_then_peek)(p, n, 0.2)[0]
    np.testing.assert_allclose(value, fill_then_peek(p, n, 0.2), rtol=1e-12)


@pytest.mark.parametrize("spare", [0, 1])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5000])
def test_while_on_a_counter_writing_rows(n, spare):
    """(`spare` 0: the array ends where the loop does; the discarded iteration's write is past it.)"""
    def counted_fill(p, n):
        traj = np.zeros(n + spare)
        x, i = 1.0, 0
        while i < n:
            x = x * (1.0 - 1e-3 * p[0] * (1.1 + np.sin(p[1] * i)))
            traj[i] = x
            i += 1
        return np.sum(traj ** 2) + (5.0 * traj[n - 1 + spare] if n + spare else 0.0)
    g = assert_grad(counted_fill, P, n)
    np.testing.assert_allclose(g, jitgrad.jit_grad(counted_fill, jit=False)(P, n), rtol=1e-10, atol=1e-300)
