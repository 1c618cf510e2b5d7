"""Rolling Python loops into loop ops while tracing (tracer/interpretation/rolling.py): each pattern is traced, its
value compared with CPython's and with the reference executor on the recorded trace, its loop ops counted (or
the reason it stays unrolled checked), and its gradient compared with finite differences."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from test_speed_paths import smoothness, smoothness_grad
from jitgrad import ir
from jitgrad.ir.loops import loops_in
from jitgrad.pytree import flatten
from jitgrad.tracing import run_traced, trace_outputs


@pytest.fixture(autouse=True)
def roll_short_loops(monkeypatch):
    """These tests roll loops of any trip count (short ones stay unrolled by default: rolling.unroll_ops)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")

DT = 0.01


def traced(fn, *args):
    """(trace, ctx) of fn on args, the first argument traced; checks the value against CPython and the
    reference executor."""
    leaves, treedef = flatten((args, {}))
    ctx, result = run_traced(fn, leaves, treedef, [0])
    trace = ctx.builder.build(trace_outputs(ctx, result, False, fn)[0])
    expected = fn(*args)
    np.testing.assert_allclose(getattr(result, "value", result), expected, rtol=1e-13, atol=1e-300)
    inputs = [np.asarray(args[0])] + [array for _, array in ctx.env_arrays()]
    np.testing.assert_allclose(ir.run_trace(trace, inputs)[0], expected, rtol=1e-12, atol=1e-300)
    return trace, ctx


def top_loops(trace):
    return [n for n in trace.nodes if n.op == "loop"]


def not_rolled(ctx):
    return " / ".join(line for line in ctx.loops.report() if "not rolled" in line)


# -- the patterns ----------------------------------------------------------------------------------------
def pendulum(p, steps):
    g_over_l, damping, theta, omega = p[0], p[1], p[2], p[3]
    loss = 0.0
    for _ in range(steps):
        theta, omega = theta + DT * omega, omega - DT * (g_over_l * np.sin(theta) + damping * omega)
        loss = loss + theta * theta
    return loss * DT


P = np.array([9.81, 0.3, 1.0, 0.0])


@pytest.mark.parametrize("steps", [4, 10, 1000])
def test_pendulum_rolls_into_one_loop_of_constant_size(steps):
    trace, ctx = traced(pendulum, P, steps)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == steps and loop.params["n_carry"] == 3     # from the first iteration on
    assert len(trace.nodes) == 41                         # independent of the trip count
    assert ctx.loops.report() == [f"loop at {__file__}:{pendulum.__code__.co_firstlineno + 3}: rolled, {steps} "
                                  f"iterations in one loop op ({steps - 3} fast-forwarded), 3 carried values"]


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_short_loops_stay_unrolled(steps):
    trace, _ = traced(pendulum, P, steps)
    assert not top_loops(trace)


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4, 50])
def test_pendulum_gradient(steps):
    assert_grad(pendulum, P, steps, jit=False)


def accumulate(x, n):
    s = 0.0
    for _ in range(n):
        s = s + np.sin(x * 1.5).sum()
    return s


def test_accumulator():
    x = np.linspace(0.1, 1.0, 5)
    trace, _ = traced(accumulate, x, 100)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 100
    assert_grad(accumulate, x, 100, jit=False)


def array_carry(x, n):
    v = x.copy()
    for _ in range(n):
        v = 0.5 * v + np.tanh(x)
        v[0] = v[1] * 0.9                                 # an in-place write: carried, functionalized
    return (v * v).sum()


def test_array_carry_with_in_place_write():
    x = np.linspace(-1.0, 1.0, 4)
    trace, _ = traced(array_carry, x, 30)
    assert len(top_loops(trace)) == 1
    assert_grad(array_carry, x, 30, jit=False)


def nested(x, n, m):
    s = x * 0.0
    for _ in range(n):
        for _ in range(m):
            s = s * 0.9 + x
        s = np.sin(s)
    return s.sum()


def test_nested_loops_nest():
    x = np.array([0.3, -0.2])
    trace, _ = traced(nested, x, 20, 30)
    *inner, outer = top_loops(trace)                      # the first outer iterations' inner loops, the outer loop
    assert len(inner) == 3 and outer.params["trip"] == 19
    assert len(loops_in(outer.params["body"])) == 1
    assert_grad(nested, x, 8, 6, jit=False)


def branch_same_side(x, n):
    s = x
    for _ in range(n):
        if s > 0:
            s = s * 1.01 + 0.1
        else:
            s = s * 0.5
    return s


def test_branch_taking_the_same_side_is_a_guard_in_the_body():
    trace, _ = traced(branch_same_side, np.float64(0.5), 40)
    (loop,) = top_loops(trace)
    assert [n.op for n in loop.params["body"].nodes].count("guard") == 1
    assert_grad(branch_same_side, np.float64(0.5), 40, jit=False)


def branch_flips(x, n):
    s = x
    for _ in range(n):
        if s > 0:
            s = s - 0.25
        else:
            s = s * 1.5 - 0.01
    return s


def test_branch_flipping_becomes_a_cond_in_one_loop():
    trace, ctx = traced(branch_flips, np.float64(3.1), 40)
    (loop,) = top_loops(trace)
    assert [n.op for n in loop.params["body"].nodes].count("cond") == 1
    assert "guard" not in [n.op for n in loop.params["body"].nodes]
    assert "2 paths joined by conds" in ctx.loops.report()[0]
    assert_grad(branch_flips, np.float64(3.1), 40, jit=False)


def counter_decision(x, n):
    s = x
    for i in range(n):
        if i == 50:
            s = s * 2.0
        s = s * 0.99
    return s


@pytest.mark.parametrize("n", [40, 80])
def test_decision_on_the_counter_is_not_skipped(n):
    """`if i == 50:` is a decision on the counter's traced value (a guard or a cond in the body), so
    the loop rolls and the iteration it picks out still doubles s."""
    trace, ctx = traced(counter_decision, np.float64(1.5), n)
    assert top_loops(trace) and not not_rolled(ctx)
    for jit in (None, False):
        g = assert_grad(counter_decision, np.float64(1.5), n, jit=jit)
        np.testing.assert_allclose(g, 0.99 ** n * (2.0 if n > 50 else 1.0), rtol=1e-12)


LOG = []


def append_outside(x, n):
    s = x
    for _ in range(n):
        s = s * 0.9
        LOG.append(1)
    return s


def test_append_to_an_outside_list_is_not_rolled():
    LOG.clear()
    trace, ctx = traced(append_outside, np.float64(2.0), 10)
    assert not top_loops(trace)
    assert len(LOG) == 20                               # the traced run and CPython's
    assert "list.append() may change its object" in not_rolled(ctx)


def counter_after_loop(x, n):
    for i in range(n):
        x = x * 1.1
    return x * i


def test_the_counter_after_a_rolled_loop_is_its_last_value():
    trace, ctx = traced(counter_after_loop, np.float64(0.7), 12)
    assert len(top_loops(trace)) == 1


def while_loop(x, n):
    k = 0
    while k < n:
        x = x * 0.9 + 0.1
        k += 1
    return x


def test_while_loops_on_a_counter_roll():
    """`while k < n:` with `k += 1`: the comparison is a traced decision on the counter, the loop's
    exit (it rolled into a loop op leaving on its flag, not unrolled)."""
    trace, ctx = traced(while_loop, np.float64(0.4), 10)
    (loop,) = top_loops(trace)
    assert loop.params["exit"] is not None and not not_rolled(ctx)
    for n in (0, 1, 2, 3, 10, 3000):
        for jit in (None, False):
            assert_grad(while_loop, np.float64(0.4), n, jit=jit)


def library_loop(c):
    return np.polyval(c, 0.7) + np.polyval(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), c[0])


def test_loops_inside_library_code():
    c = np.array([0.5, -1.0, 2.0, 0.25, 3.0, 1.0])
    traced(library_loop, c)
    assert_grad(library_loop, c, jit=False)


def printing(x, n):
    for _ in range(n):
        x = x * 0.5
        print("step")
    return x


def test_print_in_the_body_is_not_rolled(capsys):
    trace, ctx = traced(printing, np.float64(1.0), 5)
    assert not top_loops(trace)
    assert "print" in not_rolled(ctx)
    assert capsys.readouterr().out.count("step") == 10


def caught(x, n):
    for _ in range(n):
        try:
            x = x * 0.5
            raise KeyError
        except KeyError:
            pass
    return x


def test_exceptions_in_the_body_are_not_rolled():
    trace, ctx = traced(caught, np.float64(1.0), 6)
    assert not top_loops(trace)
    assert "an exception (KeyError)" in not_rolled(ctx)


def test_the_api_reports_loops_and_a_new_trip_count_reuses_the_trace():
    f = jitgrad.value_and_grad(pendulum, jit=False)
    value, grad = f(P, 200)
    assert value == pytest.approx(pendulum(P, 200), rel=1e-12)
    value, grad = f(P, 300)       # the trip count is a run-time value (tests/api/test_trip_count.py)
    assert value == pytest.approx(pendulum(P, 300), rel=1e-12)
    assert (f.cache_info().traces, f.cache_info().promoted) == (1, 1)
    assert f.cache_info().paths[0].loops[0].endswith(
        "rolled, 200 iterations in one loop op (197 fast-forwarded), 3 carried values, bounded by int argument 1: "
        "other values of it reuse this trace (its loop ops then read the trip count at run time)")


def neighbours(x, n):
    s = 0.0
    for i in range(n - 1):
        s = s + x[i] * x[i + 1] + i * 0.5               # the counter as an index and as a float
    return s


def reversed_reads(x, n):
    s = x[0]
    for i in range(n):
        s = s * 0.99 + x[n - 1 - i]
    return s


@pytest.mark.parametrize("fn", [neighbours, reversed_reads])
def test_counter_as_an_affine_index(fn):
    x = np.linspace(0.1, 1.2, 12)
    trace, ctx = traced(fn, x, 12)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == (11 if fn is neighbours else 12)
    assert "not rolled" not in " ".join(ctx.loops.report())
    assert_grad(fn, x, 12, jit=False)


def trajectory(x, n):
    traj = np.zeros((n, 2))
    state = x
    for i in range(n):
        state = np.array([state[0] + 0.1 * state[1], state[1] - 0.1 * np.sin(state[0])])
        traj[i] = state
    return (traj * traj).sum()


def test_trajectory_written_row_by_row_into_one_buffer():
    x = np.array([0.5, -0.3])
    trace, ctx = traced(trajectory, x, 40)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 39 and loop.params["n_carry"] == 2
    assert_grad(trajectory, x, 40, jit=False)


def strided(x, n):
    s = 0.0
    for i in range(1, n, 3):
        s = s + x[i] * x[i - 1]
    return s


def test_strided_range():
    x = np.linspace(0.1, 2.0, 30)
    trace, _ = traced(strided, x, 30)
    assert len(top_loops(trace)) == 1
    assert_grad(strided, x, 30, jit=False)


def list_indexed(x, n):
    weights = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    s = x
    for i in range(n):
        s = s * weights[i]
    return s


def test_counter_indexing_a_list_is_not_rolled():
    trace, ctx = traced(list_indexed, np.float64(1.0), 7)
    assert not top_loops(trace)
    assert "the loop counter is used (an index of a list)" in not_rolled(ctx)


def test_a_body_guard_failing_on_a_later_call_retraces():
    f = jitgrad.value_and_grad(branch_flips, jit=False)
    value, _ = f(np.float64(100.0), 40)                   # the same side in every iteration
    assert value == pytest.approx(branch_flips(100.0, 40), rel=1e-12)
    value, grad = f(np.float64(3.1), 40)                  # the cached trace's body guard fails mid-loop
    assert value == pytest.approx(branch_flips(3.1, 40), rel=1e-12)
    assert f.cache_info().traces == 2
    assert "guard failed" in f.cache_info().retraces[0]


def growing(x, n):
    s = np.zeros(1) + x
    for _ in range(n):
        s = np.append(s, s[-1] * 0.9)       # a carry changing shape every iteration
    return np.sum(s)


def test_cache_info_shows_the_loops():
    f = jitgrad.jit_grad(growing, jit=False)
    f(np.float64(1.5), 40)
    (loops,) = [p.loops for p in f.cache_info().paths]
    assert len(loops) == 1 and "not rolled: no two consecutive iterations recorded the same operations" in loops[0]
    f = jitgrad.jit_grad(counter_decision, jit=False)
    f(np.float64(1.5), 80)
    (loops,) = [p.loops for p in f.cache_info().paths]
    assert len(loops) == 1 and "rolled, 79 iterations in one loop op" in loops[0]


def break_on_data(x, n):
    s = x
    for _ in range(n):
        s = s * 1.2 + 0.1
        if s > 50.0:
            break
    return s


def test_break_on_data_ends_the_loop_op_at_run_time():
    trace, ctx = traced(break_on_data, np.float64(0.5), 1000)   # breaks after ~20 iterations
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 999 and loop.params["exit"] is not None     # at most the rest of the range
    assert_grad(break_on_data, np.float64(0.5), 1000, jit=False)


BIG = list(range(100))


def extend_outside(x, n):
    acc = BIG
    for _ in range(n):
        x = x * 0.5
        acc += [1]
    return x


def test_in_place_operator_on_an_outside_list_is_not_rolled():
    trace, ctx = traced(extend_outside, np.float64(1.0), 8)
    assert not top_loops(trace)
    assert "'+=' on a list" in not_rolled(ctx)


class Box:
    pass


def attribute_store(x, n, box):
    for _ in range(n):
        x = x * 0.5
        box.last = 1.0
    return x


def test_attribute_store_in_the_body_is_not_rolled():
    trace, ctx = traced(attribute_store, np.float64(1.0), 6, Box())
    assert not top_loops(trace)
    assert "a store to the attribute 'last'" in not_rolled(ctx)


def type_checks(x, n):
    for i in range(n):
        if isinstance(i, int) and type(i) is int:
            x = x * 0.5
    return x


def test_type_checks_on_the_counter_roll():
    trace, ctx = traced(type_checks, np.float64(1.0), 9)
    assert len(top_loops(trace)) == 1


def aliased(x, n):
    a = x.copy()
    b = a
    for _ in range(n):
        a[0] = a[0] * 0.5 + b[1]
        b[1] = a[0] * 0.25
    return a.sum() + b.sum()


def test_one_array_in_two_variables_written_in_place():
    x = np.array([1.0, 2.0, 3.0])
    trace, _ = traced(aliased, x, 12)
    assert len(top_loops(trace)) == 1
    assert_grad(aliased, x, 12, jit=False)


def counter_out(x, n):
    for i in range(n):
        x = x * 0.5
        if x < 0.01:
            break
    return x, i


def test_a_counter_left_by_break_reaches_the_caller_as_an_int():
    f = jitgrad.value_and_grad(counter_out, has_aux=True, jit=False)
    (value, i), grad = f(np.float64(1.0), 100)
    assert type(i) is int and i == counter_out(1.0, 100)[1]


def test_smoothness_rolls_and_its_cached_gradient_is_right():
    x = np.random.default_rng(0).normal(size=40)
    trace, _ = traced(smoothness, x)
    (loop,) = top_loops(trace)
    assert loop.params["trip"] == 39
    g = jitgrad.jit_grad(smoothness, jit=False)
    np.testing.assert_allclose(g(x), smoothness_grad(x), rtol=1e-12)
    np.testing.assert_allclose(g(x + 1.0), smoothness_grad(x + 1.0), rtol=1e-12)
    assert g.cache_info().hits == 1


WEIGHTS = np.array([0.5, -0.25, 0.125])


def global_weights(x, n):
    s = x
    for _ in range(n):
        s = np.tanh(WEIGHTS * s + 0.1 * x)
    return s.sum()


def test_a_global_array_read_in_the_body_is_an_invariant():
    x = np.array([0.3, 0.2, -0.1])
    trace, ctx = traced(global_weights, x, 20)
    assert len(top_loops(trace)) == 1
    assert_grad(global_weights, x, 20, jit=False)


def previous_counter(x, n):
    s = 0.0
    prev = 0
    for i in range(1, n):
        s = s + x[i] * x[prev]                          # the counter of the iteration before
        prev = i
    return s


def manual_counter(x, n):
    s = 0.0
    k = 2
    for _ in range(n):
        s = s * 0.9 + x[k]
        k += 1
    return s


@pytest.mark.parametrize("fn", [previous_counter, manual_counter])
def test_values_affine_in_the_counter(fn):
    x = np.linspace(0.1, 1.5, 24)
    trace, ctx = traced(fn, x, 20)
    assert len(top_loops(trace)) == 1
    assert_grad(fn, x, 20, jit=False)


def manual_counter_decision(x, n):
    k = 0
    for _ in range(n):
        k += 1
        if k == 12:
            x = x * 2.0
        x = x * 0.9
    return x


def test_a_decision_on_a_manual_counter_is_not_skipped():
    """A counted int (`k += 1`) compared in the body is a traced decision: the loop rolls, the
    iteration it picks out still doubles x."""
    trace, ctx = traced(manual_counter_decision, np.float64(1.0), 30)
    assert len(top_loops(trace)) == 1 and not not_rolled(ctx)
    for jit in (None, False):
        g = assert_grad(manual_counter_decision, np.float64(1.0), 30, jit=jit)
        np.testing.assert_allclose(g, 2.0 * 0.9 ** 30, rtol=1e-12)


def live_view(x, n):
    buf = x * 1.0
    head = buf[:2]                                        # a view of the array written in the loop
    for _ in range(n):
        buf[1:] = buf[:-1] * 0.5 + 0.1
    return head.sum() + buf.sum()


def test_a_live_view_of_a_written_array_stays_correct():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    traced(live_view, x, 9)


def test_short_loops_stay_unrolled_by_the_measured_rule(monkeypatch):
    """rolling.unroll_ops: a loop whose remaining iterations record fewer operations than
    JITGRAD_UNROLL_OPS stays unrolled (it runs faster), with the reason; a long one rolls."""
    monkeypatch.delenv("JITGRAD_UNROLL_OPS")
    from bench.workloads.w1_pendulum import pendulum, pendulum_grad
    p = np.array([9.81, 0.3, 1.0, 0.0])
    for steps, rolled in ((50, False), (3000, True)):
        g = jitgrad.jit_grad(pendulum)
        np.testing.assert_allclose(g(p, steps), pendulum_grad(p, steps), rtol=1e-10, atol=1e-14)
        path = g.cache_info().paths[0]
        assert bool(loops_in(path.trace)) is rolled
        if not rolled:
            assert any("short" in line and "JITGRAD_UNROLL_OPS" in line for line in path.loops), path.loops



def _matrix_filter(q, obs):
    """A filter step per observation on 2x2 matrices (each op a small loop nest, not scalar code)."""
    F = np.array([[1.0, 0.1], [0.0, 1.0]])
    x, P = np.zeros(2), np.eye(2)
    for y in obs:
        x, P = F @ x, F @ P @ F.T + q[0] * np.eye(2)
        k = P[:, 0] / (P[0, 0] + q[1])
        x, P = x + k * (y - x[0]), P - np.outer(k, P[0])
    return np.sum(x ** 2) + np.trace(P)


def test_the_short_loop_rule_weighs_array_ops_by_their_elements(monkeypatch):
    """rolling._work: an op on an array counts as min(elements, ELEMENT_WEIGHT) operations, so a loop of
    small-matrix ops rolls where counting each op once would keep it unrolled (rolled, such loops were
    measured faster at run time too)."""
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "4000")     # 100 steps of ~39 ops: below it when each counts once
    from jitgrad.tracer.interpretation import rolling
    q, obs = np.array([0.05, 0.2]), np.sin(np.arange(100) * 0.3)
    for weight, rolled in ((1, False), (rolling.ELEMENT_WEIGHT, True)):
        monkeypatch.setattr(rolling, "ELEMENT_WEIGHT", weight)
        g = jitgrad.jit_grad(_matrix_filter, argnums=(0,))
        assert_grad(_matrix_filter, q, obs, grad_fn=g)
        path = g.cache_info().paths[0]
        assert bool(loops_in(path.trace)) is rolled, path.loops
        if not rolled:
            assert any("short" in line for line in path.loops), path.loops
        np.testing.assert_allclose(g(q, obs[::-1])[0], jitgrad.jit_grad(_matrix_filter, jit=False)(q, obs[::-1]),
                                   rtol=1e-12)


NOTES = []


def noting_sometimes(x, n):
    """Appends to an outside list in a few iterations (where a decision on data says so): the
    iterations between roll, the noting ones are interpreted."""
    s = x
    for i in range(n):
        s = np.sin(s) * 0.5 + 0.6 * np.cos(0.03 * i)
        if s > 1.0272:                         # (in iterations 209 to 211)
            NOTES.append(float(s))
    return s


def test_iterations_without_outside_changes_roll_between_those_with_them():
    NOTES.clear()
    noting_sometimes(np.float64(0.3), 400)
    expected, NOTES[:] = list(NOTES), []
    trace, ctx = traced(noting_sometimes, np.float64(0.3), 400)
    assert len(expected) == 3 and NOTES == expected * 2                  # the traced run's, then CPython's
    assert len(top_loops(trace)) == 2 and "not rolled" not in " ".join(ctx.loops.report()), ctx.loops.report()
    g = jitgrad.value_and_grad(noting_sometimes)
    for _ in range(2):                                 # traced, then cached: the appends replayed
        NOTES.clear()
        value, _ = g(np.float64(0.3), 400)
        assert NOTES == expected and value == noting_sometimes(np.float64(0.3), 400)
    assert g.cache_info().traces == 1
    assert_grad(noting_sometimes, np.float64(0.3), 400)
