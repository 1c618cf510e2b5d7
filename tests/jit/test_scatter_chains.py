"""A loop body reading several rows of one invariant array (x[i], x[i + 1]: the Rosenbrock loop): the
backward loop accumulates their cotangents by scattering into one carried buffer (ir/autodiff.py's
sum_cotangents follows a chain of scatters), which the JIT updates in place (jit/loops.py's
in_place_carries follows a chain of updates).  Checked: the trace forms, the gradient against central
differences, the compiled loops against the reference executor."""
import numpy as np
import pytest

from jitgrad.ir import Builder, autodiff, passes, run_trace
from jitgrad.ir.loops import COUNTER_DTYPE
from jitgrad.jit import compile_trace, loops

from gradcheck import check_vjp
from loop_traces import AT_I, F64, make_loop, scalar


def rosenbrock(n):
    """inputs (x[n],) -> sum over i < n-1 of 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2."""
    b = Builder()
    x = b.input((n,), F64)

    def step(bb, i, cs, vs):
        (total,), (x,) = cs, vs
        xi = bb.index(x, i, spec=AT_I)
        nxt = bb.index(x, bb.add(i, bb.const(np.asarray(1, COUNTER_DTYPE))), spec=AT_I)
        r = bb.subtract(nxt, bb.multiply(xi, xi))
        s = bb.subtract(scalar(bb, 1.0), xi)
        return [bb.add(total, bb.add(bb.multiply(scalar(bb, 100.0), bb.multiply(r, r)), bb.multiply(s, s)))], []

    _, (total,) = make_loop(b, [b.fill((), F64, 0.0)], [x], n - 1, step)
    return b.build([total])


def rosenbrock_python(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def backward_loop(trace):
    """The last loop of `trace` (the backward loop of a value_and_grad trace)."""
    return [n for n in trace.nodes if n.op == "loop"][-1]


def test_rows_scatter_into_the_accumulator_without_a_whole_array_add():
    """The backward body adds no array (its accumulator output is a chain of index_adds on its
    carry), and the gradient is right."""
    n = 12
    trace = rosenbrock(n)
    vg = passes.optimize(autodiff.value_and_grad(trace, [0]))
    loop = backward_loop(vg)
    body = loop.params["body"]
    assert not [v for v in body.nodes if v.op == "add" and v.shape == (n,)]
    (acc,) = [k for k in range(loop.params["n_carry"]) if body.inputs[1 + k].shape == (n,)]
    update, chain = body.outputs[acc], 0
    while update.op == "index_add":
        update, chain = update.args[0], chain + 1
    assert update is body.inputs[1 + acc] and chain >= 2
    x = np.random.default_rng(3).normal(size=n)
    value, grad = run_trace(vg, [x])
    np.testing.assert_allclose(value, rosenbrock_python(x), rtol=1e-12)
    forward, back = autodiff.vjp(trace, [0])
    check_vjp(lambda a: run_trace(trace, a), lambda a, cts: run_trace(back, run_trace(forward, a)[1:] + list(cts)),
              [x], np.random.default_rng(4))
    got = compile_trace(vg)([x])
    np.testing.assert_allclose(got[0], value, rtol=1e-12)
    np.testing.assert_allclose(got[1], grad, rtol=1e-12, atol=1e-12)


def test_a_sum_with_a_dense_cotangent_stays_an_add():
    """acc + a chain of scatters into something other than zeros is an add (the scatters would be
    applied to the wrong base otherwise)."""
    b = Builder()
    acc, base, v = b.input((4,), F64), b.input((4,), F64), b.input((), F64)
    i = b.const(np.asarray(1, COUNTER_DTYPE))
    total = autodiff.sum_cotangents(b, acc, b.index_add(b.index_add(base, v, i, spec=AT_I), v, i, spec=AT_I))
    assert total.op == "add"
    zeros = b.fill((4,), F64, 0)
    chained = autodiff.sum_cotangents(b, acc, b.index_add(b.index_add(zeros, v, i, spec=AT_I), v, i, spec=AT_I))
    assert chained.op == "index_add" and chained.args[0].op == "index_add" and chained.args[0].args[0] is acc


def chain_body(n, read_between):
    """Body (i, acc[n], x[n]) -> acc with acc[i] += x[i] then acc[i + 1] += 2 x[i]; `read_between`: the
    second update's value also reads the first update's result (so it cannot be in place)."""
    bb = Builder()
    i, acc, x = bb.input((), COUNTER_DTYPE), bb.input((n,), F64), bb.input((n,), F64)
    xi = bb.index(x, i, spec=AT_I)
    first = bb.index_add(acc, xi, i, spec=AT_I)
    value = bb.multiply(scalar(bb, 2.0), xi)
    if read_between:
        value = bb.add(value, bb.index(first, i, spec=AT_I))
    second = bb.index_add(first, value, bb.add(i, bb.const(np.asarray(1, COUNTER_DTYPE))), spec=AT_I)
    return bb.build([second])


@pytest.mark.parametrize("read_between", [False, True])
@pytest.mark.parametrize("trip", [0, 1, 2, 7])
def test_a_chain_of_updates_of_a_carry_is_in_place(read_between, trip):
    n = 8
    b = Builder()
    acc, x = b.input((n,), F64), b.input((n,), F64)
    loop = b.loop(acc, x, body=chain_body(n, read_between), trip=trip, n_carry=1)
    trace = b.build([b.loop_result(loop, index=0)])
    assert loops.in_place_carries(loop) == ([] if read_between else [0])
    rng = np.random.default_rng(trip)
    inputs = [rng.normal(size=n), rng.normal(size=n)]
    want = run_trace(trace, [a.copy() for a in inputs])
    got = compile_trace(trace)([a.copy() for a in inputs])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-15)
