"""A matrix read by a matrix-vector and a vector-matrix product (jit/matvecpairs.py): both become sums
the row groups fuse; the rewritten trace computes what the original does (reference executor), the
kernel matches the reference, gradients through it match central differences, and products of
matrices read one way only keep BLAS."""
import numpy as np
import pytest

import jitgrad
from jitgrad.ir import Builder, run_trace
from jitgrad.jit import compile_trace
from jitgrad.jit.matvecpairs import MIN_ROW, rowwise_matvecs
from jitgrad.jit.plan import Plan

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-5)}


N = MIN_ROW        # the shortest rows fused


def _pair_trace(dtype, column, left, n=N):
    """X (7, n), v (n,) or (n, 1): r = tanh(X @ v); out = X.T @ r (as dot_general(r, X) when `left`)."""
    b = Builder()
    x = b.input((7, n), dtype)
    v = b.input((n, 1) if column else (n,), dtype)
    z = b.emit("dot_general", x, v, contract=((1,), (0,)), batch=((), ()))
    r = b.emit("tanh", z)
    if left and not column:
        out = b.emit("dot_general", r, x, contract=((0,), (0,)), batch=((), ()))
    else:
        out = b.emit("dot_general", x, r, contract=((0,), (0,)), batch=((), ()))
    return b.build([out, b.emit("sum", z, axis=tuple(range(z.ndim)), keepdims=False)])


def _inputs(trace, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=v.shape).astype(v.dtype) for v in trace.inputs]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("column,left", [(False, False), (True, False), (False, True)])
def test_both_products_become_fused_sums_and_compute_the_same(dtype, column, left):
    trace = _pair_trace(dtype, column, left)
    rewritten = rowwise_matvecs(trace)
    assert not any(n.op == "dot_general" for n in rewritten.nodes)
    assert [(v.shape, v.dtype) for v in rewritten.outputs] == [(v.shape, v.dtype) for v in trace.outputs]
    inputs = _inputs(trace)
    want = run_trace(trace, inputs)
    for got in (run_trace(rewritten, inputs), compile_trace(trace)(inputs)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, **TOL[dtype])
    assert any(getattr(u, "phases", None) for u in Plan(rewritten).units)       # one row group


def _dot(b, a, c, contract):
    return b.emit("dot_general", a, c, contract=contract, batch=((), ()))


def test_short_rows_keep_blas():
    trace = _pair_trace(np.float64, False, False, n=MIN_ROW - 1)
    assert rowwise_matvecs(trace) is trace


def test_products_of_a_matrix_read_one_way_keep_blas():
    b = Builder()
    x, v, m = b.input((7, N), np.float64), b.input((N,), np.float64), b.input((N, 3), np.float64)
    trace = b.build([_dot(b, x, v, ((1,), (0,))), _dot(b, x, m, ((1,), (0,)))])
    assert rowwise_matvecs(trace) is trace
    b = Builder()
    x, v, m = b.input((N, N), np.float64), b.input((N,), np.float64), b.input((N, 3), np.float64)
    x2 = b.input((N + 3, N), np.float64)
    z = _dot(b, x, v, ((1,), (0,)))                                  # x: read along its rows only
    out = _dot(b, x2, _dot(b, x2, z, ((1,), (0,))), ((0,), (0,)))   # x2: read both ways
    mixed = rowwise_matvecs(b.build([out, _dot(b, x, m, ((1,), (0,)))]))
    assert [n.args[0] for n in mixed.nodes if n.op == "dot_general"] == [mixed.inputs[0]] * 2
    inputs = _inputs(mixed)
    for g, w in zip(run_trace(mixed, inputs), run_trace(b.build([out, _dot(b, x, m, ((1,), (0,)))]), inputs)):
        np.testing.assert_allclose(g, w, **TOL[np.float64])


def test_logistic_regression_gradient_through_the_fused_pass():
    def nll(w, X, y, lam):
        z = X @ w
        return np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * np.sum(w * w)

    rng = np.random.default_rng(6)
    X, w = rng.normal(size=(300, N)), rng.normal(size=N) * 0.1
    y = (rng.random(300) < 0.5).astype(float)
    compiled, reference = jitgrad.jit_grad(nll), jitgrad.jit_grad(nll, jit=False)
    np.testing.assert_allclose(compiled(w, X, y, 0.1), reference(w, X, y, 0.1), rtol=1e-11, atol=1e-11)
    h = 1e-6
    fd = np.array([(nll(w + h * e, X, y, 0.1) - nll(w - h * e, X, y, 0.1)) / (2 * h) for e in np.eye(N)])
    np.testing.assert_allclose(compiled(w, X, y, 0.1), fd, rtol=1e-6, atol=1e-6)
    assert " dot_general " in compiled.cache_info().paths[0].text      # the trace keeps it; the kernel sums
