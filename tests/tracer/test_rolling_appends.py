"""Loops that append to a list made before them (tracer/interpretation/appends.py): the values appended
are stacked outputs of the loop op, the list holds their rows after it, and np.array/np.stack of the
list records one slice of the stacked output.  Values against CPython, gradients against central
differences, compiled against the reference executor; what keeps a loop unrolled says why."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from test_rolling import not_rolled, top_loops, traced
from jitgrad.ir import passes
from jitgrad.pytree import flatten

P = np.array([0.5, 0.3])


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")


def decay(p, n):
    x = 1.0
    traj = []
    for i in range(n):
        x = x + 0.01 * (-p[0] * x + np.sin(p[1] * i))
        traj.append(x)
    return np.sum(np.array(traj) ** 2) if traj else p[0] * 0.0


def oscillator(p, n):
    s = np.array([1.0, 0.0])
    traj = [s]
    marks = []
    for _ in range(n):
        s = s + 0.01 * np.array([s[1], -p[0] * np.sin(s[0])])
        traj.append(s)
        marks.append(0.5)
    return np.sum(np.stack(traj) ** 2) + np.sum(np.vstack(traj) * p[1]) + sum(marks)


def two_lists(p, n):
    x, v = p[0], p[1]
    xs, vs = [], []
    for i in range(n):
        xs.append(x)                 # the carry as it enters the iteration
        v = v - 0.1 * x
        x = x + 0.1 * v
        vs.append(v * v)
    return np.sum(np.asarray(xs) * np.concatenate([np.zeros(0)] + [np.reshape(w, (1,)) for w in vs]))


def with_aux(p, n):
    x = p[0]
    traj = [p[1]]
    for _ in range(n):
        x = np.cos(x) * p[1]
        traj.append(x)
    return np.sum(np.array(traj)), traj


def leaves(tree):
    return [np.asarray(v) for v in flatten(tree)[0]]


def loop_line(f):
    return f.cache_info().paths[0].loops[0]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 40])
@pytest.mark.parametrize("fn", [decay, oscillator, two_lists])
@pytest.mark.parametrize("jit", [False, True])
def test_values_and_gradients(fn, n, jit):
    f = jitgrad.value_and_grad(fn, jit=jit)
    for p in (P, P * 1.3):
        value, _ = f(p, n)
        assert value == pytest.approx(fn(p, n), rel=1e-12, abs=1e-300)
        assert_grad(fn, p, n, jit=jit)
    assert f.cache_info().traces == 1
    if n >= 4:
        assert "rolled" in loop_line(f) and "appended to lists per iteration" in loop_line(f)


def test_the_trace_does_not_grow_with_the_trip_count():
    sizes = []
    for n in (50, 500):
        trace, ctx = traced(decay, P, n)
        assert len(top_loops(trace)) == 1 and not not_rolled(ctx)
        trace = passes.dce(trace)       # (the rows np.array did not need: one index node per row)
        sizes.append(len(trace.nodes))
    assert sizes[0] == sizes[1]
    assert not [node for node in trace.nodes if node.op == "concatenate"]


@pytest.mark.parametrize("jit", [False, True])
def test_the_list_after_the_call_holds_cpythons_values(jit):
    f = jitgrad.jit_grad(with_aux, has_aux=True, jit=jit)
    for p in (P, P * 0.7):
        grad, traj = f(p, 30)
        want = with_aux(p, 30)[1]
        assert type(traj) is list and len(traj) == 31
        np.testing.assert_allclose(np.array(leaves(traj)), np.array(want), rtol=1e-13)
        assert_grad(lambda q, n: with_aux(q, n)[0], p, 30)
    assert "rolled, 30 iterations" in loop_line(f)


def test_five_thousand_steps():
    f = jitgrad.value_and_grad(decay)
    value, grad = f(P, 5000)
    assert value == pytest.approx(decay(P, 5000), rel=1e-11)
    assert "rolled, 5000 iterations in one loop op" in loop_line(f)
    assert_grad(decay, P, 5000, grad_fn=jitgrad.jit_grad(decay, argnums=(0,)))
    assert f.cache_info().paths[0].ops < 100


def clipped(p, n):
    x = p[0]
    traj = []
    for _ in range(n):
        x = x * p[1] + 0.3
        if x > 1.0:                  # never on the first call's data: a guard of the body
            x = x - 1.0
        traj.append(x)
    return np.sum(np.array(traj) ** 2), traj


@pytest.mark.parametrize("jit", [False, True])
def test_a_guard_failing_mid_loop_on_a_later_call(jit):
    f = jitgrad.jit_grad(clipped, has_aux=True, jit=jit)
    for p in (np.array([0.1, 0.5]), np.array([0.1, 0.9]), np.array([0.1, 0.5])):
        _, traj = f(p, 30)
        np.testing.assert_allclose(np.array(leaves(traj)), np.array(clipped(p, 30)[1]), rtol=1e-13)
        assert_grad(lambda q, n: clipped(q, n)[0], p, 30)


def nested_appends(p, n):
    out = []
    x = p[0]
    for _ in range(n):
        for _ in range(5):
            x = x * p[1] + 0.1
            out.append(x)
    return np.sum(np.array(out) ** 2)


@pytest.mark.parametrize("jit", [False, True])
def test_a_list_appended_to_in_a_nested_loop(jit):
    assert_grad(nested_appends, P, 6, jit=jit)
    f = jitgrad.value_and_grad(nested_appends, jit=jit)
    assert f(P, 6)[0] == pytest.approx(nested_appends(P, 6), rel=1e-12)
    assert any("rolled" in line for line in f.cache_info().paths[0].loops)


def read_in_loop(p, n):
    x = p[0]
    traj = []
    for _ in range(n):
        x = x * p[1] + 0.1
        traj.append(x)
        if len(traj) == 7:           # a decision on the list's length: on a counter of the loop
            x = x * 2.0
    return np.sum(np.array(traj))


def last_read(p, n):
    traj = [p[0]]
    for _ in range(n):
        traj.append(traj[-1] * p[1])   # the last item: carried
    return np.sum(np.array(traj))


def before_last_read(p, n):
    traj = [p[0], p[1]]
    for _ in range(n):
        traj.append(traj[-2] * p[1])   # any other read of the list keeps the loop unrolled
    return np.sum(np.array(traj))


def nested_length(p, n):
    traj = []
    x = p[0]
    for _ in range(n):
        for _ in range(3):
            x = x * p[1] + 0.1
            traj.append(x)
            if len(traj) > 1000:     # the length steps with both loops: no counter of either
                x = x * 2.0
    return np.sum(np.array(traj))


@pytest.mark.parametrize("n", [3, 12, 40])
@pytest.mark.parametrize("fn", [read_in_loop, last_read])
def test_a_list_read_by_len_and_its_last_item_rolls(fn, n):
    trace, ctx = traced(fn, P, n)
    if n > 3:
        assert top_loops(trace) and all(": rolled" in line for line in ctx.loops.report()), ctx.loops.report()
    for jit in (None, False):
        f = jitgrad.value_and_grad(fn, jit=jit)
        for p in (P, P * 1.3):
            assert f(p, n)[0] == pytest.approx(fn(p, n), rel=1e-13)
        assert f.cache_info().traces == 1
        assert_grad(fn, P, n, jit=jit)


def tuple_append(p, n):
    x = p[0]
    pairs = []
    for _ in range(n):
        x = x * p[1]
        pairs.append((x, x * x))
    return np.sum(np.array(pairs))


def written_later(p, n):
    s = np.array([p[0], p[1]])
    traj = []
    for _ in range(n):
        s *= 0.9                     # the list holds one array: CPython's list sees every write
        traj.append(s)
    return np.sum(np.array(traj))


def held_elsewhere(p, n):
    traj = []
    alias = traj
    x = p[0]
    for _ in range(n):
        x = x * p[1]
        traj.append(x)
    return np.sum(np.array(alias))


KEPT = {}


def stored_first(p, n):
    traj = [p[0]]
    KEPT["traj"] = traj              # other code may read it while the loop runs
    x = p[0]
    for _ in range(n):
        x = x * p[1]
        traj.append(x)
    return np.sum(np.array(traj))


def appended_before(p, n):
    traj = []
    traj.append(p[0])                # (the tracer's notes of this call hold the list: not "elsewhere")
    x = p[0]
    for _ in range(n):
        x = np.sin(x) * p[1]
        traj.append(x)
    return np.sum(np.array(traj) ** 2)


@pytest.mark.parametrize("jit", [False, True])
def test_a_list_appended_to_before_the_loop(jit):
    f = jitgrad.value_and_grad(appended_before, jit=jit)
    assert f(P, 25)[0] == pytest.approx(appended_before(P, 25), rel=1e-13)
    assert "rolled, 25 iterations" in loop_line(f)
    assert_grad(appended_before, P, 25, jit=jit)


def appended_by_map(p, n):
    x = p[0]
    traj = []
    for _ in range(n):
        x = x * p[1] + 0.1
        list(map(traj.append, [x, x * x]))       # appends compiled code makes: not seen one by one
    return np.sum(np.array(traj))


@pytest.mark.parametrize("fn, why", [
    (appended_by_map, "list.append() may change its object"),
    (stored_first, "read in the loop or held elsewhere"),
    (before_last_read, "read in the loop or held elsewhere"), (nested_length, "len() of a list the loop appends to"),
    (tuple_append, "append of a tuple"), (written_later, "written in place"),
    (held_elsewhere, "read in the loop or held elsewhere")])
def test_what_keeps_the_loop_unrolled_says_why(fn, why):
    trace, ctx = traced(fn, P, 12)
    assert not top_loops(trace)
    assert why in not_rolled(ctx)
    assert_grad(fn, P, 12)


def test_rows_in_another_order_are_stacked_one_by_one():
    def reverse(p, n):
        x = p[0]
        traj = []
        for _ in range(n):
            x = x * p[1] + 0.2
            traj.append(x)
        return np.sum(np.array(traj[::-1]) * np.arange(n))
    trace, _ = traced(reverse, P, 20)
    assert len(top_loops(trace)) == 1
    assert_grad(reverse, P, 20)


def test_another_trip_count_traces_again():
    f = jitgrad.value_and_grad(decay)
    for n, traces in ((40, 1), (50, 2), (40, 2), (3, 3)):
        value, _ = f(P, n)
        assert value == pytest.approx(decay(P, n), rel=1e-12)
        assert f.cache_info().traces == traces          # (the list's length is the count: it is keyed)
