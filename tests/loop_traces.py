"""Traces with loop ops built by hand (ir.Builder), shared by the loop pass and loop AD tests, each with
the plain Python it means.  `make_loop(b, carries, invariants, trip, step)` builds a loop whose body is
`step(bb, i, carries, invariants) -> (next_carries, ys)` on a fresh builder."""
import numpy as np

from jitgrad.ir import Builder
from jitgrad.ir.loops import COUNTER_DTYPE

F64 = np.dtype(np.float64)
DT = 0.05
AT_I = (("array", 0),)


def make_loop(b, carries, invariants, trip, step):
    """The loop node and its results (final carries, then stacked ys) emitted into `b`."""
    bb = Builder()
    i = bb.input((), COUNTER_DTYPE)
    cs = [bb.input(c.shape, c.dtype) for c in carries]
    vs = [bb.input(v.shape, v.dtype) for v in invariants]
    nexts, ys = step(bb, i, cs, vs)
    body = bb.build(list(nexts) + list(ys))
    loop = b.loop(*carries, *invariants, body=body, trip=trip, n_carry=len(carries))
    return loop, [b.loop_result(loop, index=k) for k in range(len(body.outputs))]


def scalar(b, x):
    return b.const(np.float64(x))


def pendulum_step(bb, i, cs, vs):
    """Euler step of a damped pendulum; carries (theta, omega), invariants (g, damping); ys: theta."""
    theta, omega = cs
    g, damping = vs
    dt = scalar(bb, DT)
    new_theta = bb.add(theta, bb.multiply(dt, omega))
    accel = bb.add(bb.multiply(g, bb.sin(theta)), bb.multiply(damping, omega))
    new_omega = bb.subtract(omega, bb.multiply(dt, accel))
    return [new_theta, new_omega], [new_theta]


def pendulum(trip):
    """inputs (theta0, omega0, g, damping) -> (sum of theta^2 over steps, final omega)."""
    b = Builder()
    theta0, omega0, g, damping = [b.input((), F64) for _ in range(4)]
    _, (theta, omega, thetas) = make_loop(b, [theta0, omega0], [g, damping], trip, pendulum_step)
    return b.build([b.sum(b.multiply(thetas, thetas), axis=(0,), keepdims=False), omega])


def pendulum_python(theta, omega, g, damping, trip):
    total = 0.0
    for _ in range(trip):
        theta, omega = theta + DT * omega, omega - DT * (g * np.sin(theta) + damping * omega)
        total += theta * theta
    return total, omega


def array_step(bb, i, cs, vs):
    """x <- tanh(W x + c) with W, c invariants; ys: sum(x)."""
    (x,), (w, c) = cs, vs
    nx = bb.tanh(bb.add(bb.dot_general(w, x, contract=((1,), (0,)), batch=((), ())), c))
    return [nx], [bb.sum(nx, axis=(0,), keepdims=False)]


def array_rnn(trip, n=3):
    """inputs (x0[n], W[n,n], c[n]) -> (final x, stacked sums)."""
    b = Builder()
    x0, w, c = b.input((n,), F64), b.input((n, n), F64), b.input((n,), F64)
    _, (x, sums) = make_loop(b, [x0], [w, c], trip, array_step)
    return b.build([x, sums])


def accumulate_step(bb, i, cs, vs):
    """s <- s + sin(x[i]) * y[i] (a pure accumulator over invariant arrays read with the counter)."""
    (s,), (x, y) = cs, vs
    return [bb.add(s, bb.multiply(bb.sin(bb.index(x, i, spec=AT_I)), bb.index(y, i, spec=AT_I)))], []


def accumulator(trip):
    """inputs (x[trip], y[trip]) -> sum(sin(x) * y)."""
    b = Builder()
    x, y = b.input((trip,), F64), b.input((trip,), F64)
    _, (s,) = make_loop(b, [b.fill((), F64, 0.0)], [x, y], trip, accumulate_step)
    return b.build([s])


def trajectory_step(bb, i, cs, vs):
    """state <- state * a + cos(state); traj[i] = state (index_set into a carried buffer)."""
    (state, traj), (a,) = cs, vs
    new = bb.add(bb.multiply(state, a), bb.cos(state))
    return [new, bb.index_set(traj, new, i, spec=AT_I)], []


def trajectory(trip, n=2):
    """inputs (state0[n], a[n]) -> (traj[trip, n], final state)."""
    b = Builder()
    s0, a = b.input((n,), F64), b.input((n,), F64)
    _, (state, traj) = make_loop(b, [s0, b.fill((trip, n), F64, 0.0)], [a], trip, trajectory_step)
    return b.build([b.sum(b.multiply(traj, traj), axis=(0, 1), keepdims=False), state])


def nested(outer_trip, inner_trip):
    """inputs (x0, w): x <- x + DT * sum_{j<inner} sin(w * x + j) per outer step -> final x."""
    b = Builder()
    x0, w = b.input((), F64), b.input((), F64)

    def inner_step(bb, j, cs, vs):
        (acc,), (x, w) = cs, vs
        jf = bb.astype(j, dtype=F64)
        return [bb.add(acc, bb.sin(bb.add(bb.multiply(w, x), jf)))], []

    def outer_step(bb, i, cs, vs):
        (x,), (w,) = cs, vs
        _, (total,) = make_loop(bb, [bb.fill((), F64, 0.0)], [x, w], inner_trip, inner_step)
        return [bb.add(x, bb.multiply(scalar(bb, DT), total))], []

    _, (x,) = make_loop(b, [x0], [w], outer_trip, outer_step)
    return b.build([x])


def nested_python(x, w, outer_trip, inner_trip):
    for _ in range(outer_trip):
        x = x + DT * sum(np.sin(w * x + j) for j in range(inner_trip))
    return x


def guarded(trip):
    """inputs (x0, k): x <- x * k + 0.1 with a guard `x < 100` in the body -> final x."""
    b = Builder()
    x0, k = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (x,), (k,) = cs, vs
        bb.guard(bb.less(x, scalar(bb, 100.0)), True, why="x < 100")
        return [bb.add(bb.multiply(x, k), scalar(bb, 0.1))], []

    _, (x,) = make_loop(b, [x0], [k], trip, step)
    return b.build([x])


def int_carry(trip):
    """inputs (x0, a): an integer carry n counts 1, 2, ...; x <- x * a + n -> final x (and n)."""
    b = Builder()
    x0, a = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (x, n), (a,) = cs, vs
        n = bb.add(n, bb.const(np.int64(1)))
        return [bb.add(bb.multiply(x, a), bb.astype(n, dtype=F64)), n], []

    _, (x, n) = make_loop(b, [x0, b.const(np.int64(0))], [a], trip, step)
    return b.build([x, n])


def make_while(b, carries, invariants, trip, step):
    """A loop with a continue flag (ir/loops.py's `exit`): `step(bb, i, carries, invariants) -> (go,
    next_carries, ys)`; returns (node, final carries + stacked ys, count)."""
    bb = Builder()
    i = bb.input((), COUNTER_DTYPE)
    cs = [bb.input(c.shape, c.dtype) for c in carries]
    vs = [bb.input(v.shape, v.dtype) for v in invariants]
    go, nexts, ys = step(bb, i, cs, vs)
    body = bb.build(list(nexts) + list(ys) + [go])
    exit = len(body.outputs) - 1
    loop = b.loop(*carries, *invariants, body=body, trip=trip, n_carry=len(carries), exit=exit)
    return loop, [b.loop_result(loop, index=k) for k in range(exit)], b.loop_result(loop, index=exit)


def newton_sqrt(capacity=64, tol=1e-9):
    """inputs (x0, a) -> (the Newton iterate for sqrt(a) once |x^2 - a| <= tol, the iterations as a
    float, sum of the iterates' squares): `while abs(x * x - a) > tol: x = (x + a / x) / 2`."""
    b = Builder()
    x0, a = b.input((), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (x,), (a,) = cs, vs
        go = bb.greater(bb.absolute(bb.subtract(bb.multiply(x, x), a)), scalar(bb, tol))
        nx = bb.multiply(scalar(bb, 0.5), bb.add(x, bb.divide(a, x)))
        return go, [nx], [nx]
    _, (x, xs), count = make_while(b, [x0], [a], capacity, step)
    return b.build([x, b.astype(count, dtype=F64), b.sum(b.multiply(xs, xs), axis=(0,), keepdims=False)])


def newton_sqrt_python(x, a, tol=1e-9):
    count, total = 0, 0.0
    while abs(x * x - a) > tol:
        x = 0.5 * (x + a / x)
        count += 1
        total += x * x
    return x, float(count), total


def sum_until_negative(n):
    """inputs (x[n], w) -> the sum of w * x[i] ** 2 over i until the first x[i] < 0 (a `for` with
    `break`), and the count: `for i in range(n): if x[i] < 0: break; s += w * x[i] ** 2`."""
    b = Builder()
    x, w = b.input((n,), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (s,), (x, w) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        go = bb.logical_not(bb.less(xi, scalar(bb, 0.0)))
        return go, [bb.add(s, bb.multiply(w, bb.multiply(xi, xi)))], []
    _, (s,), count = make_while(b, [scalar(b, 0.0)], [x, w], n, step)
    return b.build([s, b.astype(count, dtype=F64)])


def sum_until_negative_python(x, w):
    s, count = 0.0, 0
    for xi in x:
        if xi < 0:
            break
        s += w * xi * xi
        count += 1
    return s, float(count)


def contraction(capacity=200, n=3, tol=1e-12):
    """inputs (x0[n], W[n,n], c[n]) -> (the fixed point of x <- tanh(W x + c) where a step moves x by
    at most tol, the stacked iterates): `while True: nx = f(x); if sum((nx - x)**2) <= tol: break;
    x = nx` (an array carry, array rows stacked)."""
    b = Builder()
    x0, w, c = b.input((n,), F64), b.input((n, n), F64), b.input((n,), F64)

    def step(bb, i, cs, vs):
        (x,), (w, c) = cs, vs
        nx = bb.tanh(bb.add(bb.dot_general(w, x, contract=((1,), (0,)), batch=((), ())), c))
        d = bb.subtract(nx, x)
        return bb.greater(bb.sum(bb.multiply(d, d), axis=(0,), keepdims=False), scalar(bb, tol)), [nx], [nx]
    _, (x, xs), count = make_while(b, [x0], [w, c], capacity, step)
    return b.build([x, xs, b.astype(count, dtype=F64)])


def decaying_sum(n):
    """inputs (x[n], w) -> s after `s = 0.5; for i in range(n): if x[i] < 0: break; s = s * w + x[i]**2`
    (the carry taped: no stacked output, so checkpointable), and the count."""
    b = Builder()
    x, w = b.input((n,), F64), b.input((), F64)

    def step(bb, i, cs, vs):
        (s,), (x, w) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        go = bb.logical_not(bb.less(xi, scalar(bb, 0.0)))
        return go, [bb.add(bb.multiply(s, w), bb.multiply(xi, xi))], []
    _, (s,), count = make_while(b, [scalar(b, 0.5)], [x, w], n, step)
    return b.build([s, b.astype(count, dtype=F64)])
