"""Branches on data inside rolled loops (tracer/looptree.py, ir/conditional.py): a branch whose outcome
varies between iterations is recorded as a cond in the loop body, not as a split loop.  Each pattern is
traced (value against CPython and the reference executor), its loop and conds counted, and its
gradient (and grad of grad) compared with finite differences, compiled and by the reference executor."""
import math

import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from test_rolling import not_rolled, top_loops, traced


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    """These tests roll loops of any trip count (short ones stay unrolled by default: rolling.unroll_ops)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def conds_in(loop):
    return [n for n in loop.params["body"].nodes if n.op == "cond"]


def signed(x, w):
    s = 0.0
    for i in range(len(x)):
        if x[i] > 0:
            s += x[i]
        else:
            s -= 2 * x[i] * w
    return s


def unsafe(x):
    s = 0.0
    for i in range(len(x)):
        if x[i] > 0:
            s = s + np.sqrt(x[i]) * x[i]        # NaN for x[i] < 0: never evaluated there
        else:
            s = s + np.log(-x[i]) * s
    return s


def quickstart_loss(w, x, y, lam=0.1):
    pred = np.tanh(x @ w)
    err = pred - y
    total = 0.0
    for i in range(len(err)):          # the quickstart's loop
        e = float(err[i])
        if e > 0:
            total += e * e
        else:
            total += 0.5 * math.exp(e) * e * e
    return total / len(err) + lam * np.sum(w ** 2)


def clipped_ode(y0, k, n):
    traj = np.zeros(n)
    y = y0
    for i in range(n):
        if y < 1.0:                    # a clipped / piecewise update
            y = y + 0.1 * k * y
            traj[i] = y
        else:
            y = y - 0.3 * (y - 1.0) ** 2
            traj[i] = -y
    return np.sum(traj * traj) + y


def three_ways(x):
    s = 0.0
    for i in range(len(x)):
        if x[i] > 0.5:
            s = s * 0.5 + x[i]
        elif x[i] > -0.5:
            s = s + x[i] * x[i]
        else:
            s = s - np.exp(x[i])
    return s


def data(n, seed=0):
    return np.random.default_rng(seed).normal(size=n)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 500, 3000])
def test_flipping_branch_over_a_data_loop(n):
    """(3,000 iterations: the fast-forward runs the body with its cond natively.)"""
    x = data(n)
    trace, ctx = traced(signed, x, 0.3)
    loops = top_loops(trace)
    assert len(loops) <= 1
    if n >= 7:
        (loop,) = loops
        assert len(conds_in(loop)) == 1 and loop.params["trip"] == n
        assert "paths joined by conds" in ctx.loops.report()[0]
    for jit in (False, True):
        assert_grad(signed, x, 0.3, argnums=(0, 1), jit=jit)


def test_the_untaken_side_never_poisons_values_or_gradients():
    x = data(60, seed=1)
    trace, _ = traced(unsafe, x)
    (loop,) = top_loops(trace)
    assert conds_in(loop)
    for jit in (False, True):
        g = assert_grad(unsafe, x, jit=jit)
        assert np.all(np.isfinite(g))


def test_both_branches_write_a_carried_array_element():
    trace, ctx = traced(clipped_ode, np.float64(0.6), 1.3, 80)
    (loop,) = top_loops(trace)
    assert conds_in(loop) and loop.params["trip"] == 79
    for jit in (False, True):
        assert_grad(clipped_ode, np.float64(0.6), 1.3, 80, argnums=(0, 1), jit=jit)


def test_three_paths_nest_two_conds():
    x = data(300, seed=2)
    trace, ctx = traced(three_ways, x)
    (loop,) = top_loops(trace)
    (outer,) = conds_in(loop)
    inner = [n for t in outer.params["branches"] for n in t.nodes if n.op == "cond"]
    assert len(inner) == 1
    assert "3 paths" in ctx.loops.report()[0]
    for jit in (False, True):
        assert_grad(three_ways, x, jit=jit)


def test_the_quickstart_loop_rolls_into_one_loop():
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((200, 3)), rng.standard_normal(200), rng.standard_normal(3)
    g = jitgrad.jit_grad(quickstart_loss)
    assert_grad(quickstart_loss, w, x, y)
    g(w, x, y)
    (path,) = g.cache_info().paths
    assert path.backend == "llvm"
    (line,) = path.loops
    assert "rolled" in line and "2 paths joined by conds" in line
    g2 = g(w * 0.5, x, y)              # other signs of the errors: the same trace and kernel
    g(w * 0.5, x, y)
    info = g.cache_info()
    assert info.hits == 2 and info.traces == 1
    eps = 1e-6
    fd = [(quickstart_loss(w * 0.5 + eps * e, x, y) - quickstart_loss(w * 0.5 - eps * e, x, y)) / (2 * eps)
          for e in np.eye(3)]
    np.testing.assert_allclose(g2, fd, rtol=1e-6, atol=1e-8)


def same_side_then_flip(x, n):
    s = x
    for _ in range(n):
        if s > 0:
            s = s - 0.3 * s * s - 0.05
        else:
            s = s * 0.5 + 0.1
    return s


@pytest.mark.parametrize("jit", [False, True])
def test_a_guard_failing_mid_loop_on_a_later_call_adds_the_path(jit):
    f = jitgrad.value_and_grad(same_side_then_flip, jit=jit)
    value, grad = f(np.float64(-1e30), 20)                  # the same side in every iteration: a guard
    assert value == pytest.approx(same_side_then_flip(-1e30, 20), rel=1e-12)
    assert f.cache_info().traces == 1
    (line,) = f.cache_info().paths[0].loops
    assert "paths" not in line
    for x0 in (-3.3, 0.9, -0.7):                            # the guard fails mid-loop: retraced, joined
        value, grad = f(np.float64(x0), 20)
        assert value == pytest.approx(same_side_then_flip(x0, 20), rel=1e-12)
        eps = 1e-7
        fd = (same_side_then_flip(x0 + eps, 20) - same_side_then_flip(x0 - eps, 20)) / (2 * eps)
        assert grad == pytest.approx(fd, rel=1e-6)
    info = f.cache_info()
    assert any("guard failed" in r for r in info.retraces)
    assert any("2 paths joined by conds" in line for p in info.paths for line in p.loops)


def flip_mid_loop(x, n):
    s = x
    for i in range(n):
        if s < 3.0:
            s = s + 0.1
        else:
            s = s * 0.5
    return s


def test_a_guard_that_never_failed_stays_a_guard_and_the_retrace_builds_the_cond():
    f = jitgrad.jit_grad(flip_mid_loop)
    assert f(np.float64(-100.0), 200) == 1.0            # s < 3 throughout: a guard in the body
    (line,) = f.cache_info().paths[0].loops
    assert "paths" not in line
    assert f(np.float64(0.0), 200) == pytest.approx(0.5 ** _halvings(0.0, 200), rel=1e-12)
    info = f.cache_info()
    assert info.traces == 2 and "guard failed" in info.retraces[0]
    assert "2 paths joined by conds" in info.paths[1].loops[0]
    assert f(np.float64(-1.0), 200) == pytest.approx(0.5 ** _halvings(-1.0, 200), rel=1e-12)
    assert f.cache_info().traces == 2


def _halvings(x, n):
    """How many times flip_mid_loop(x, n) halves s (its derivative is 0.5 ** that)."""
    s, k = x, 0
    for _ in range(n):
        if s < 3.0:
            s = s + 0.1
        else:
            s, k = s * 0.5, k + 1
    return k


def test_grad_of_grad_through_a_cond():
    assert_grad(lambda x: np.sum(jitgrad.jit_grad(unsafe)(x) ** 2), data(40, seed=3))
    assert_grad(lambda x: jitgrad.jit_grad(clipped_ode, argnums=1)(np.float64(0.6), x, 60), 1.3)
    h = jitgrad.hessian(three_ways)(data(40, seed=4))
    assert h.shape == (40, 40) and np.allclose(h, h.T)


def test_a_cond_is_not_a_reason_to_stay_unrolled():
    x = data(100, seed=5)
    _, ctx = traced(three_ways, x)
    assert not not_rolled(ctx)


def test_a_row_read_accumulates_its_cotangent_in_place():
    """The reverse loop scatters the cotangent of `err[i]` into its accumulator (an index_add carry the
    JIT updates in place), not a dense add of an array per iteration."""
    from jitgrad.ir import autodiff, passes
    from jitgrad.ir.loops import loops_in
    rng = np.random.default_rng(0)
    trace, _ = traced(quickstart_loss, rng.standard_normal(3), rng.standard_normal((50, 3)), rng.standard_normal(50))
    vg = passes.optimize(autodiff.value_and_grad(trace, [0]))
    backward = loops_in(vg)[-1]
    body = backward.params["body"]
    accumulators = [v for v in body.outputs if v.shape == (50,)]
    assert accumulators and all(v.op == "index_add" for v in accumulators)


def one_side_each(x):
    a, b = 0.0, 1.0
    for i in range(len(x)):
        if x[i] > 0:
            a = a + x[i] * b
        else:
            b = b * np.exp(0.1 * x[i])
    return a + b


def test_variables_only_one_side_changes_are_carried_through_the_other():
    x = data(200, seed=6)
    trace, ctx = traced(one_side_each, x)
    (loop,) = top_loops(trace)
    assert conds_in(loop) and loop.params["n_carry"] == 2
    assert "2 paths joined by conds" in ctx.loops.report()[0]
    for jit in (False, True):
        assert_grad(one_side_each, x, jit=jit)


def int_select(x, w):
    s = 0.0
    for i in range(len(x)):
        s = s * 0.9 + w[int(x[i] * 3)] * x[i]           # a decision on an int: a fork per value seen
    return s


def test_a_decision_on_an_int_forks_by_value():
    x = np.random.default_rng(0).uniform(0.0, 0.99, 40)
    w = np.array([0.5, 1.0, 1.5, 2.0])
    trace, ctx = traced(int_select, x, w)
    (loop,) = top_loops(trace)
    assert len(conds_in(loop)) == 1 and "3 paths" in ctx.loops.report()[0], ctx.loops.report()
    assert_grad(int_select, x, w, jit=False)
    g = jitgrad.jit_grad(int_select, argnums=(0, 1))
    reference = jitgrad.jit_grad(int_select, argnums=(0, 1), jit=False)

    def check(x):
        for got, want in zip(g(x, w), reference(x, w)):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    for seed in (1, 2):              # other data, the same values (the first iteration is recorded as it ran)
        check(np.concatenate([x[:5], np.random.default_rng(seed).uniform(0.0, 0.99, 35)]))
    assert g.cache_info().traces == 1
    check(x * 1.3)                                       # a value never seen (3) fails the guard: retraced
    assert g.cache_info().traces == 2


@pytest.mark.parametrize("jit", [False, True])
def test_a_short_branchy_loop_rolls_whatever_its_length(monkeypatch, jit):
    """rolling.unroll_ops: the short-loop rule keeps short loops unrolled, but not one whose iterations
    took different sides of a branch on data (the quickstart's 8 rows): unrolled, each new pattern of
    signs would be a new trace.  One trace serves weights giving other patterns, each gradient right."""
    monkeypatch.delenv("JITGRAD_UNROLL_OPS")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal(8)
    g = jitgrad.jit_grad(quickstart_loss, jit=jit)
    w = rng.standard_normal(3)
    g(w, x, y)
    (line,) = g.cache_info().paths[0].loops
    assert "rolled" in line and "2 paths joined by conds" in line
    patterns = set()
    for _ in range(6):
        w = rng.standard_normal(3)
        err = np.tanh(x @ w) - y
        patterns.add(tuple(err[1:] > 0))
        eps = 1e-6
        fd = [(quickstart_loss(w + eps * e, x, y) - quickstart_loss(w - eps * e, x, y)) / (2 * eps) for e in np.eye(3)]
        np.testing.assert_allclose(g(w, x, y), fd, rtol=1e-6, atol=1e-8)
    assert len(patterns) > 2            # the weights gave several patterns of signs after row 0 ...
    info = g.cache_info()
    assert info.traces <= 2             # ... one trace (row 0, before the loop op, keeps its own guard)
    assert all("rolled" in p.loops[0] for p in info.paths)
