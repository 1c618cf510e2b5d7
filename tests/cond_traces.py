"""Traces with cond ops built by hand (ir.Builder), shared by the cond IR, AD and JIT tests, each with the
plain Python it means.  `make_cond(b, pred, operands, if_true, if_false)` builds a cond whose branches
are `if_true(bb, operands) -> outputs` (and `if_false`) on fresh builders."""
import numpy as np

from jitgrad.ir import Builder
from loop_traces import AT_I, F64, make_loop, scalar


def make_cond(b, pred, operands, if_true, if_false):
    """The cond's results, emitted into `b`."""
    branches = []
    for side in (if_true, if_false):
        bb = Builder()
        ins = [bb.input(v.shape, v.dtype) for v in operands]
        branches.append(bb.build(list(side(bb, ins))))
    node = b.cond(pred, *operands, branches=tuple(branches))
    return [b.cond_result(node, index=k) for k in range(len(branches[0].outputs))]


def unsafe_sides(_=None):
    """inputs (x, y): x * y if x > 0 else log(-x) * y (the untaken side is NaN where the other is taken)."""
    b = Builder()
    x, y = b.input((), F64), b.input((), F64)
    (r,) = make_cond(b, b.greater(x, scalar(b, 0.0)), [x, y],
                     lambda bb, a: [bb.multiply(bb.multiply(a[0], a[0]), a[1])],
                     lambda bb, a: [bb.multiply(bb.log(bb.negative(a[0])), a[1])])
    return b.build([r])


def unsafe_sides_python(x, y):
    return x * x * y if x > 0 else np.log(-x) * y


def _signed_step(bb, i, cs, vs):
    """s += sqrt(x[i]) * x[i] if x[i] > 0 else s -= 2 * x[i] * w (sqrt is NaN on the other side)."""
    (s,), (x, w) = cs, vs
    xi = bb.index(x, i, spec=AT_I)
    (nxt,) = make_cond(bb, bb.greater(xi, scalar(bb, 0.0)), [s, xi, w],
                       lambda b2, a: [b2.add(a[0], b2.multiply(b2.sqrt(a[1]), a[1]))],
                       lambda b2, a: [b2.subtract(a[0], b2.multiply(b2.multiply(scalar(b2, 2.0), a[1]), a[2]))])
    return [nxt], [nxt]


def signed_sum(n):
    """inputs (x[n + 1], w): the flipping branch over a data loop of n steps -> (final s, every s)."""
    b = Builder()
    x, w = b.input((n + 1,), F64), b.input((), F64)
    _, (s, ss) = make_loop(b, [scalar(b, 0.0)], [x, w], n, _signed_step)
    return b.build([s, ss])


def signed_sum_python(x, w):
    s, ss = 0.0, []
    for xi in x[:-1]:
        s = s + np.sqrt(xi) * xi if xi > 0 else s - 2 * xi * w
        ss.append(s)
    return s, np.array(ss)


def _clipped_step(bb, i, cs, vs):
    """traj[i] = y; y <- y + dt*(y*k) if y < 1 else y - dt*(y-1)**2 (a piecewise ODE step)."""
    (y, traj), (k,) = cs, vs
    traj = bb.index_set(traj, y, i, spec=AT_I)
    (nxt,) = make_cond(bb, bb.less(y, scalar(bb, 1.0)), [y, k],
                       lambda b2, a: [b2.add(a[0], b2.multiply(scalar(b2, 0.1), b2.multiply(a[0], a[1])))],
                       lambda b2, a: [b2.subtract(a[0], b2.multiply(scalar(b2, 0.3), _square(b2, b2.subtract(
                           a[0], scalar(b2, 1.0)))))])
    return [nxt, traj], []


def _square(b, x):
    return b.multiply(x, x)


def clipped(n):
    """inputs (y0, k): the trajectory of a piecewise ODE, every state written into a carried array (n + 1 rows)."""
    b = Builder()
    y0, k = b.input((), F64), b.input((), F64)
    _, (y, traj) = make_loop(b, [y0, b.fill((n + 1,), F64, 0.0)], [k], n, _clipped_step)
    return b.build([y, traj])


def clipped_python(y, k, n):
    traj = np.zeros(n + 1)
    for i in range(n):
        traj[i] = y
        y = y + 0.1 * y * k if y < 1 else y - 0.3 * (y - 1) * (y - 1)
    return y, traj


def guarded_branches():
    """input x: guard x < 10; x * x by either branch, each with a guard (x < 5 when x > 0, else x < -3);
    guard on the result."""
    b = Builder()
    x = b.input((), F64)
    b.guard(b.less(x, scalar(b, 10.0)), True, why="first")

    def side(limit):
        def make(bb, a):
            bb.guard(bb.less(a[0], scalar(bb, limit)), True, why=f"< {limit}")
            return [bb.multiply(a[0], a[0])]
        return make
    (r,) = make_cond(b, b.greater(x, scalar(b, 0.0)), [x], side(5.0), side(-3.0))
    b.guard(b.less(r, scalar(b, 20.0)), True, why="last")
    return b.build([r])
