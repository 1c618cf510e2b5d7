"""The loop op's core (ir/loops.py): shape rules, the reference executor, guard numbering through
bodies, the text form and the verifier, on loops built by hand.  (Its AD, passes and lowering have
their own tests.)"""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, IRError, run_trace
from jitgrad.ir.autodiff import value_and_grad
from jitgrad.ir.loops import COUNTER_DTYPE, count_guards, loops_in
from jitgrad.ir.parser import parse_trace
from jitgrad.ir.passes import cse, dce, optimize
from jitgrad.ir.printer import format_trace
from jitgrad.ir.ops import TUPLE
from jitgrad.ir.verify import verify

F64 = np.dtype(np.float64)
DT = 0.01


def euler_body():
    """One Euler step of a damped pendulum: carries (theta, omega, loss), invariants (g, damping);
    outputs the next carries and theta (stacked)."""
    b = Builder()
    _counter, theta, omega, loss, g, damping = (b.input((), COUNTER_DTYPE), *[b.input((), F64) for _ in range(5)])
    dt = b.const(np.float64(DT))
    new_theta = b.add(theta, b.multiply(dt, omega))
    accel = b.add(b.multiply(g, b.sin(theta)), b.multiply(damping, omega))
    new_omega = b.subtract(omega, b.multiply(dt, accel))
    new_loss = b.add(loss, b.multiply(new_theta, new_theta))
    return b.build([new_theta, new_omega, new_loss, new_theta])


def pendulum_trace(trip):
    b = Builder()
    p = b.input((4,), F64)
    g, damping, theta0, omega0 = (b.index(p, spec=(("int", k),)) for k in range(4))
    zero = b.fill((), F64, 0.0)
    loop = b.loop(theta0, omega0, zero, g, damping, body=euler_body(), trip=trip, n_carry=3)
    loss = b.loop_result(loop, index=2)
    thetas = b.loop_result(loop, index=3)
    return b.build([b.multiply(loss, b.const(np.float64(DT))), thetas])


def pendulum_python(p, trip):
    g, damping, theta, omega = p
    loss, thetas = 0.0, []
    for _ in range(trip):
        theta, omega = theta + DT * omega, omega - DT * (g * np.sin(theta) + damping * omega)
        loss = loss + theta * theta
        thetas.append(theta)
    return loss * DT, np.array(thetas, dtype=F64).reshape(trip)


@pytest.mark.parametrize("trip", [0, 1, 2, 3, 1000])
def test_reference_executor_runs_the_body_trip_times(trip):
    p = np.array([9.81, 0.3, 1.0, 0.2])
    loss, thetas = run_trace(pendulum_trace(trip), [p])
    want_loss, want_thetas = pendulum_python(p, trip)
    assert loss.shape == () and thetas.shape == (trip,) and thetas.dtype == F64
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13, atol=0)
    np.testing.assert_allclose(thetas, want_thetas, rtol=1e-13, atol=0)


def test_results_types_and_tuple_node():
    t = pendulum_trace(7)
    (loop,) = loops_in(t)
    assert loop.shape == () and loop.dtype == TUPLE
    results = [n for n in t.nodes if n.op == "loop_result"]
    assert [(r.shape, r.dtype) for r in results] == [((), F64), ((7,), F64)]


def counter_body(n):
    """Body reading x[i] and x[i + 1] of an invariant array and writing traj[i] = acc into a carry."""
    b = Builder()
    i, acc, traj, x = b.input((), COUNTER_DTYPE), b.input((), F64), b.input((n,), F64), b.input((n + 1,), F64)
    one = b.const(np.asarray(1, COUNTER_DTYPE))
    here = b.index(x, i, spec=(("array", 0),))
    there = b.index(x, b.add(i, one), spec=(("array", 0),))
    acc = b.add(acc, b.multiply(here, there))
    traj = b.index_set(traj, acc, i, spec=(("array", 0),))
    return b.build([acc, traj])


def test_counter_indexes_reads_and_writes():
    n = 5
    b = Builder()
    x = b.input((n + 1,), F64)
    loop = b.loop(b.fill((), F64, 0.0), b.fill((n,), F64, 0.0), x, body=counter_body(n), trip=n, n_carry=2)
    t = b.build([b.loop_result(loop, index=0), b.loop_result(loop, index=1)])
    xv = np.arange(1.0, n + 2.0)
    acc, traj = run_trace(t, [xv])
    assert np.allclose(traj, np.cumsum(xv[:-1] * xv[1:]))
    assert acc == traj[-1]


def nested_trace(outer, inner, guarded=False):
    """sum over (j, k) of x[j] * y[k], an inner loop over y inside an outer loop over x; with
    `guarded`, the inner body checks y[k] > 0 and the outer body checks x[j] > 0."""
    bi = Builder()
    k, acc, xj, y = bi.input((), COUNTER_DTYPE), bi.input((), F64), bi.input((), F64), bi.input((inner,), F64)
    yk = bi.index(y, k, spec=(("array", 0),))
    if guarded:
        bi.guard(bi.greater(yk, bi.const(np.float64(0.0))), True, loc="inner.py:1", why="y[k] > 0")
    inner_body = bi.build([bi.add(acc, bi.multiply(xj, yk))])

    bo = Builder()
    j, acc, x, y = bo.input((), COUNTER_DTYPE), bo.input((), F64), bo.input((outer,), F64), bo.input((inner,), F64)
    xj = bo.index(x, j, spec=(("array", 0),))
    if guarded:
        bo.guard(bo.greater(xj, bo.const(np.float64(0.0))), True, loc="outer.py:1", why="x[j] > 0")
    inner_loop = bo.loop(acc, xj, y, body=inner_body, trip=inner, n_carry=1)
    outer_body = bo.build([bo.loop_result(inner_loop, index=0)])

    b = Builder()
    x, y = b.input((outer,), F64), b.input((inner,), F64)
    if guarded:
        b.guard(b.greater(b.sum(x, axis=(0,), keepdims=False), b.const(np.float64(-1e9))), True,
                loc="top.py:1", why="before")
    loop = b.loop(b.fill((), F64, 0.0), x, y, body=outer_body, trip=outer, n_carry=1)
    total = b.loop_result(loop, index=0)
    if guarded:
        b.guard(b.less(total, b.const(np.float64(1e9))), True, loc="top.py:2", why="after")
    return b.build([total])


def test_nested_loops():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0])
    (total,) = run_trace(nested_trace(3, 2), [x, y])
    assert np.isclose(total, x.sum() * y.sum())


def test_guards_are_numbered_through_bodies_and_checked_every_iteration():
    t = nested_trace(3, 2, guarded=True)
    assert [g.params["why"] for g in t.guards] == ["before", "x[j] > 0", "y[k] > 0", "after"]
    assert count_guards(t) == 4
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, 4.0])
    run_trace(t, [x, y])
    for bad_x, bad_y, index in [([1.0, -2.0, 3.0], y, 1), (x, [0.5, -4.0], 2), ([1e10, 1.0, 1.0], y, 3)]:
        with pytest.raises(GuardFailed) as failed:
            run_trace(t, [np.array(bad_x), np.array(bad_y)])
        assert failed.value.index == index


def test_text_form_round_trips_with_nested_bodies():
    for t in (pendulum_trace(10), nested_trace(3, 2, guarded=True)):
        text = format_trace(t)
        assert "loop" in text and "    trace (%0: i64[]" in text
        again = parse_trace(text)
        assert format_trace(again) == text
        verify(again)


def test_text_form_of_a_loop():
    text = format_trace(pendulum_trace(100))
    assert "%6 = loop %3, %4, %5, %1, %2 {trip=100, n_carry=3} : loop" in text
    assert "%8 = loop_result %6 {index=3} : f64[100]" in text


@pytest.mark.parametrize("mutate, message", [
    (lambda body: body.outputs.__setitem__(0, body.inputs[0]), "carry 0 enters the body as float64"),
    (lambda body: body.inputs.pop(), "body takes"),
])
def test_shape_rule_rejects_mismatched_bodies(mutate, message):
    body = euler_body()
    mutate(body)
    b = Builder()
    args = [b.input((), F64) for _ in range(5)]
    with pytest.raises(IRError, match=message):
        b.loop(*args, body=body, trip=3, n_carry=3)


def test_shape_rule_rejects_bad_params():
    b = Builder()
    args = [b.input((), F64) for _ in range(5)]
    with pytest.raises(IRError, match="trip"):
        b.loop(*args, body=euler_body(), trip=-1, n_carry=3)
    with pytest.raises(IRError, match="counter"):
        b.loop(*args[1:], body=parse_trace("trace (%0: f64[], %1: f64[], %2: f64[], %3: f64[]) {\n"
                                           "  return %1\n}"), trip=1, n_carry=1)
    loop = b.loop(*args, body=euler_body(), trip=3, n_carry=3)
    with pytest.raises(IRError, match="out of range"):
        b.loop_result(loop, index=4)
    with pytest.raises(IRError, match="a loop"):
        b.loop_result(args[0], index=0)


def test_verifier_checks_bodies():
    t = pendulum_trace(5)
    (loop,) = loops_in(t)
    body = loop.params["body"]
    body.nodes.append(body.nodes[0])          # a node twice: broken body
    with pytest.raises(IRError, match="in its body"):
        verify(t)


def test_passes_keep_loops_and_never_fold_or_merge_different_bodies():
    b = Builder()
    zero = b.fill((), F64, 0.0)
    g, damping = b.const(np.float64(9.81)), b.const(np.float64(0.3))
    one = b.fill((), F64, 1.0)
    first = b.loop(one, zero, zero, g, damping, body=euler_body(), trip=4, n_carry=3)
    second = b.loop(one, zero, zero, g, damping, body=euler_body(), trip=4, n_carry=3)
    unused = b.loop(one, zero, zero, g, damping, body=euler_body(), trip=9, n_carry=3)
    b.loop_result(unused, index=0)
    t = b.build([b.loop_result(first, index=2), b.loop_result(second, index=2)])
    want = run_trace(t, [])
    for p in (dce, cse, optimize):
        out = p(t)
        assert len(loops_in(dce(out))) == 2, p.__name__
        assert np.array_equal(run_trace(out, []), want)


def test_reverse_mode_through_a_loop_is_not_zero():
    """(Loop AD itself is tested in test_loop_ad.py.)"""
    p = np.array([9.81, 0.3, 1.0, 0.2])
    grad = run_trace(value_and_grad(pendulum_trace(3), [0], out=0), [p])[-1]
    eps = 1e-6
    fd = [(pendulum_python(p + eps * e, 3)[0] - pendulum_python(p - eps * e, 3)[0]) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
