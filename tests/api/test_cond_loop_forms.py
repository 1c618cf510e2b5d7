"""Rolled loops with branches on data, end to end: the forms that make them fast (a differentiated cond's
branches sharing tape slots, small conds compiled branch-free: ir/cond_ad.py, jit/conditional.py) keep
the gradient exact, against finite differences and the reference executor, with conversion on and off;
the quickstart's loop tapes 3 rows per iteration and its backward cond runs branch-free."""
import math

import numpy as np
import pytest

import jitgrad
from jitgrad.jit import conditional, rules
from e2e import assert_grad
from test_rolling_cond import quickstart_loss


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def loops_of(trace):
    return [n for n in trace.nodes if n.op == "loop"]


def conds_of(loop):
    return [n for n in loop.params["body"].nodes if n.op == "cond"]


def test_the_quickstart_loop_shares_tape_slots_and_its_backward_cond_is_branch_free():
    rng = np.random.default_rng(0)
    x, y, w = rng.standard_normal((200, 3)), rng.standard_normal(200), rng.standard_normal(3)
    g = jitgrad.jit_grad(quickstart_loss, argnums=(0,))
    assert_grad(quickstart_loss, w, x, y, grad_fn=g)
    (path,) = g.cache_info().paths
    forward, backward = loops_of(path.trace)
    body = forward.params["body"]
    # e is the cond's operand (recomputed), and the false side's exp(e), 0.5 exp(e), 0.5 exp(e) e share
    # the slots the true side fills with zeros: 3 tapes, not 5
    assert len(body.outputs) - forward.params["n_carry"] == 3
    kernel_trace = conditional.flattened(path.trace, rules.op_cost)
    forward, backward = loops_of(kernel_trace)
    assert len(conds_of(forward)) == 1 and conds_of(backward) == []   # the exp side stays a branch
    reference = jitgrad.jit_grad(quickstart_loss, jit=False)(w, x, y)
    np.testing.assert_allclose(g(w, x, y)[0], reference, rtol=1e-12)


def clipped_step(x, w):
    s = 0.0
    for i in range(len(x)):
        v = float(x[i]) * w
        if v > 1.0:
            s = s + 2.0 * v - 1.0
        elif v > 0.0:
            s = s + v * v
        else:
            s = s - 0.5 * v
    return s


def guarded_sqrt(x, w):
    s = 0.0
    for i in range(len(x)):
        v = float(x[i])
        if v > 0:
            s = s + math.sqrt(v) * w          # math.sqrt: a domain guard inside the branch
        else:
            s = s - v * w * w
    return s


@pytest.mark.parametrize("cost", ["0", "1000"])
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("f", [clipped_step, guarded_sqrt, quickstart_loss])
def test_branchy_loops_with_conversion_on_and_off(f, jit, cost, monkeypatch):
    """Signs flipping every iteration and nested ifs: gradients against finite differences, and the second
    call (other data, other sides; its first iteration, interpreted before the loop, on the same side)
    from the same trace."""
    monkeypatch.setenv("JITGRAD_IF_CONVERT_COST", cost)
    rng = np.random.default_rng(1)
    if f is quickstart_loss:
        first = (rng.standard_normal(3), rng.standard_normal((40, 3)), rng.standard_normal(40))
        second = (first[0] * -0.7, first[1], first[2])
    else:
        flips = np.abs(rng.standard_normal(30)) + 0.2
        flips[1::2] *= -1
        flips[::5] *= 3
        first, second = (flips, 0.8), (np.concatenate([flips[:1], -flips[:0:-1]]), 1.3)   # (first row: one side)
    g = jitgrad.jit_grad(f, argnums=(0,), jit=jit)
    for args in (first, second):
        assert_grad(f, *args, grad_fn=g)
    assert g.cache_info().traces == 1


def reread(x, w):
    s = 0.0
    for i in range(len(x)):
        if x[i] > 0:                       # x[i] read again inside each branch
            s += x[i] * w
        else:
            s -= 0.5 * x[i] * x[i]
    return s


@pytest.mark.parametrize("jit", [True, False])
def test_a_row_read_again_inside_the_branches_is_the_one_read_before(jit):
    """The branches' x[i] is the body's own (ir/cond_passes.with_computed_operands, before AD): the
    backward cond returns scalars (no array cotangent per iteration) and the gradient is right."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(60)
    g = jitgrad.jit_grad(reread, argnums=(0, 1), jit=jit)
    assert_grad(reread, x, 0.7, argnums=(0, 1), grad_fn=g)
    assert_grad(reread, np.concatenate([x[:1], -x[1:]]), 1.3, argnums=(0, 1), grad_fn=g)
    assert g.cache_info().traces == 1
    (path,) = g.cache_info().paths
    backward = loops_of(path.trace)[-1]
    for cond in conds_of(backward):
        assert all(v.shape == () for t in cond.params["branches"] for v in t.outputs)
