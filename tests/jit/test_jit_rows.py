"""Row fusion (jit/rowgroups.py, fusion.emit_rows): reductions along the last axis fused with their
elementwise producers and consumers, one pass per row.  Softmax, log-softmax, log-sum-exp and a
layer norm over rows, with and without keepdims, on 2-D and 3-D operands, float32 and float64: the plan
forms a row group with the expected phases and the kernel matches the reference executor; their
gradients (compiled) match central differences; reductions along other axes followed by a broadcast
along the rows do not fuse and stay correct."""
import numpy as np
import pytest

import jitgrad
from gradcheck import check_vjp
from jitgrad.ir import Builder, run_trace
from jitgrad.ir.autodiff import value_and_grad
from jitgrad.ir.passes import optimize
from jitgrad.jit import compile_trace
from jitgrad.jit.plan import Plan

SHAPES = [(6, 37), (3, 4, 29)]
TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}


def row_reduce(b, op, x, keepdims):
    """op over the last axis; without keepdims reshaped back to R + (1,) to broadcast along the row."""
    axis = (x.ndim - 1,)
    r = getattr(b, op)(x, axis=axis, keepdims=keepdims)
    return r if keepdims else b.reshape(r, shape=x.shape[:-1] + (1,))


def softmax(b, x, keepdims):
    e = b.exp(b.subtract(x, row_reduce(b, "max", x, keepdims)))
    return [b.divide(e, row_reduce(b, "sum", e, keepdims))]


def log_softmax(b, x, keepdims):
    shifted = b.subtract(x, row_reduce(b, "max", x, keepdims))
    return [b.subtract(shifted, b.log(row_reduce(b, "sum", b.exp(shifted), keepdims)))]


def logsumexp(b, x, keepdims):
    top = row_reduce(b, "max", x, keepdims)
    return [b.add(b.log(row_reduce(b, "sum", b.exp(b.subtract(x, top)), keepdims)), top)]


def layer_norm(b, x, keepdims):
    n = b.fill((), x.dtype, float(x.shape[-1]))
    d = b.subtract(x, b.divide(row_reduce(b, "sum", x, keepdims), n))
    var = b.divide(row_reduce(b, "sum", b.multiply(d, d), keepdims), n)
    gamma = b.fill((x.shape[-1],), x.dtype, 1.5)
    return [b.multiply(b.divide(d, b.sqrt(b.add(var, b.fill((), x.dtype, 1e-5)))), gamma)]


PATTERNS = {"softmax": (softmax, 3), "log_softmax": (log_softmax, 3), "logsumexp": (logsumexp, 3),
            "layer_norm": (layer_norm, 3)}


def row_units(trace):
    return [u for u in Plan(trace).units if u.phases]


def check_kernel(trace, inputs, dtype):
    got = compile_trace(trace)(inputs)
    want = run_trace(trace, inputs)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("keepdims", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("name", PATTERNS)
def test_row_patterns_fuse_and_match_the_reference(name, shape, keepdims, dtype):
    build, phases = PATTERNS[name]
    b = Builder()
    x = b.input(shape, dtype)
    trace = b.build(build(b, x, keepdims))
    (unit,) = row_units(trace)
    assert unit.shape == shape and len(unit.phases) == phases
    assert "row" in unit.roles.values()
    rng = np.random.default_rng(3)
    check_kernel(trace, [(4 * rng.standard_normal(shape)).astype(dtype)], dtype)


@pytest.mark.parametrize("name", PATTERNS)
def test_gradients_of_row_patterns_fuse_and_match_finite_differences(name):
    """d/dx of <w, pattern(x)>: the gradient trace fuses its row reductions too (softmax's backward
    sum along the row), and the compiled gradient agrees with central differences."""
    build, _ = PATTERNS[name]
    shape = (5, 23)
    b = Builder()
    x, w = b.input(shape, np.float64), b.input(shape, np.float64)
    (y,) = build(b, x, True)
    loss = b.sum(b.multiply(w, b.broadcast_to(y, shape=shape)), axis=(0, 1), keepdims=False)
    trace = optimize(value_and_grad(b.build([loss]), [0]))
    assert row_units(trace)
    kernel = compile_trace(trace)
    rng = np.random.default_rng(4)
    args = [rng.standard_normal(shape), rng.standard_normal(shape)]
    check_kernel(trace, args, np.float64)
    check_vjp(lambda a: [kernel(a)[0]], lambda a, u: [kernel(a)[1] * u[0], None], args, rng, wrt=[0])


def softmax_xent(W, b, X, Y):
    logits = X @ W + b
    top = np.max(logits, axis=-1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - top), axis=-1)) + top[:, 0]
    return np.mean(lse - np.sum(Y * logits, axis=1))


def layer_norm_3d(x, g):
    mu = np.mean(x, axis=2, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return np.sum(np.tanh((x - mu) / np.sqrt(var + 1e-5) * g))


def test_jit_grad_of_softmax_cross_entropy_and_layer_norm_match_finite_differences():
    """Through the API (axis=-1 and axis=1 spelled both ways); the gradient agrees with central
    differences and with the hand-written gradient of the classifier."""
    rng = np.random.default_rng(5)
    W, bias, X = 0.3 * rng.standard_normal((6, 11)), rng.standard_normal(11), rng.standard_normal((9, 6))
    Y = np.eye(11)[rng.integers(0, 11, size=9)]
    g = jitgrad.jit_grad(softmax_xent, argnums=(0, 1))
    gW, gb = g(W, bias, X, Y)
    p = np.exp(X @ W + bias)
    G = (p / p.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    np.testing.assert_allclose(gW, X.T @ G, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, G.sum(axis=0), rtol=1e-12, atol=1e-14)
    jitgrad.check_grads(lambda W, b: softmax_xent(W, b, X, Y), (W, bias), order=1, modes=("rev",))
    x, gain = rng.standard_normal((2, 3, 17)), rng.standard_normal(17)
    jitgrad.check_grads(layer_norm_3d, (x, gain), order=1, modes=("rev",))
    gx, _ = jitgrad.jit_grad(layer_norm_3d, argnums=(0, 1))(x, gain)
    assert gx.shape == x.shape


def test_reductions_along_other_axes_do_not_fuse_and_stay_correct():
    """x - mean over axis 0 (a column reduction read back along the rows), a 3-D reduction over the
    middle axis, and a column sum read in the same pass: no row group, results as the reference."""
    rng = np.random.default_rng(6)
    b = Builder()
    x = b.input((7, 13), np.float64)
    centred = b.subtract(x, b.sum(x, axis=(0,), keepdims=True))
    col = b.sum(x, axis=(0,), keepdims=False)
    trace = b.build([b.exp(centred), b.multiply(x, col)])
    assert not row_units(trace)
    check_kernel(trace, [rng.standard_normal((7, 13))], np.float64)
    b = Builder()
    z = b.input((3, 5, 4), np.float64)
    e = b.exp(b.subtract(z, b.max(z, axis=(1,), keepdims=True)))
    trace = b.build([b.divide(e, b.sum(e, axis=(1,), keepdims=True))])
    assert not row_units(trace)
    check_kernel(trace, [rng.standard_normal((3, 5, 4))], np.float64)


def test_column_and_total_reductions_join_a_row_group():
    """softmax - y with its column sums (a bias gradient) and a total: one group; the column sum
    accumulates along the rows in its own buffer, the total over the whole group."""
    rng = np.random.default_rng(7)
    b = Builder()
    x, y = b.input((8, 21), np.float64), b.input((8, 21), np.float64)
    (p,) = softmax(b, x, True)
    g = b.subtract(p, y)
    col = b.sum(g, axis=(0,), keepdims=False)
    total = b.sum(b.multiply(g, g), axis=(0, 1), keepdims=False)
    trace = b.build([g, col, total])
    (unit,) = row_units(trace)
    assert sorted(unit.roles.values()) == ["col", "full", "full", "row", "row", "total"]
    check_kernel(trace, [rng.standard_normal((8, 21)), rng.standard_normal((8, 21))], np.float64)


def test_a_value_that_reads_the_group_follows_it():
    """A 0-d value of a row reduction (the loss of the rows) is computed after the group, and a row
    value read through a reshape and a broadcast keeps its row."""
    rng = np.random.default_rng(8)
    b = Builder()
    x = b.input((4, 9), np.float64)
    s = b.sum(b.exp(x), axis=(1,), keepdims=False)
    loss = b.sum(b.log(s), axis=(0,), keepdims=False)
    scaled = b.divide(b.exp(x), b.broadcast_to(b.reshape(s, shape=(4, 1)), shape=(4, 9)))
    trace = b.build([loss, scaled])
    (unit,) = row_units(trace)
    position = [k for k, u in enumerate(Plan(trace).units) if u.phases or loss in u.nodes]
    assert len(position) == 2 and Plan(trace).units[position[1]].nodes == [loss]
    check_kernel(trace, [rng.standard_normal((4, 9))], np.float64)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_integer_rows_fuse_exactly(dtype):
    """x - max along the row and the count of positive entries per row (a bool sum), integers: one
    group, exactly the reference's values."""
    rng = np.random.default_rng(9)
    b = Builder()
    x = b.input((5, 19), dtype)
    shifted = b.subtract(x, b.max(x, axis=(1,), keepdims=True))
    count = b.sum(b.greater(x, b.fill((), dtype, 0)), axis=(1,), keepdims=True)
    trace = b.build([b.multiply(shifted, count), b.sum(shifted, axis=(1,), keepdims=False)])
    assert row_units(trace)
    inputs = [rng.integers(-50, 50, size=(5, 19)).astype(dtype)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        assert got.dtype == np.asarray(want).dtype and np.array_equal(got, want)


def test_float32_column_sums_stay_out_of_a_row_group():
    """A float32 column sum accumulates in float64 (rules.accumulator_dtype), which a column member's
    in-buffer accumulation cannot: it stays a reduction of its own, after the group."""
    rng = np.random.default_rng(10)
    b = Builder()
    x = b.input((6, 33), np.float32)
    (p,) = softmax(b, x, True)
    col = b.sum(p, axis=(0,), keepdims=False)
    trace = b.build([p, col])
    (unit,) = row_units(trace)
    assert col not in unit.nodes
    check_kernel(trace, [rng.standard_normal((6, 33)).astype(np.float32)], np.float32)


def softmax_loop(w, x):
    """A rolled loop whose body holds a softmax along the rows (the body's plan forms the group)."""
    total = 0.0
    for k in range(6):
        z = x * w[k]
        e = np.exp(z - np.max(z, axis=1, keepdims=True))
        total = total + np.sum(e / np.sum(e, axis=1, keepdims=True) * x)
    return total


def test_row_groups_inside_a_loop_body_match_finite_differences(monkeypatch):
    monkeypatch.setenv("JITGRAD_UNROLL_OPS", "0")         # rolled, however short
    rng = np.random.default_rng(11)
    w, x = rng.standard_normal(6), rng.standard_normal((4, 9))
    g = jitgrad.jit_grad(softmax_loop)
    g(w, x)
    assert g.cache_info().paths[0].loops and "not rolled" not in g.cache_info().paths[0].loops[0]
    np.testing.assert_allclose(g(w, x), jitgrad.jit_grad(softmax_loop, jit=False)(w, x), rtol=1e-12, atol=1e-14)
    jitgrad.check_grads(softmax_loop, (w, x), order=1, modes=("rev",))


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("axis, keepdims", [((1,), True), ((1,), False), ((0,), False), ((0, 1), False)])
def test_extremum_cotangent_divides_once_per_slice_and_matches(op, axis, keepdims):
    """The cotangent of max/min shares g among the tied positions as g/k broadcast times the mask: the
    divide is one per reduced slice (not per element); compiled (with ties) it matches the reference
    executor (exp within an ulp), and away from ties the gradient agrees with central differences."""
    shape = (7, 19)
    b = Builder()
    x, w = b.input(shape, np.float64), b.input(shape, np.float64)
    r = getattr(b, op)(b.multiply(x, w), axis=axis, keepdims=keepdims)
    trace = b.build([b.sum(b.exp(r), axis=tuple(range(r.ndim)), keepdims=False)])
    grad = optimize(value_and_grad(trace, [0]))
    divides = [n for n in grad.nodes if n.op == "divide"]
    assert divides and all(n.size == r.size for n in divides)
    rng = np.random.default_rng(6)
    tied = np.round(rng.standard_normal(shape), 1)
    tied[:, :3] = tied[:1, :1]                         # ties along every axis
    for args in ([tied, np.ones(shape)], [rng.standard_normal(shape), rng.standard_normal(shape)]):
        got, want = compile_trace(grad)(args), run_trace(grad, args)
        for g, v in zip(got, want):
            np.testing.assert_allclose(g, v, rtol=1e-14, atol=0)
    kernel = compile_trace(grad)
    check_vjp(lambda a: [kernel(a)[0]], lambda a, u: [kernel(a)[1] * u[0], None], args, rng, wrt=[0])


def test_softmax_cross_entropy_through_blas_matches_the_hand_gradient_and_finite_differences():
    """Sizes where both products go through BLAS and G is written over the logits' buffer (liveness
    in place): the gradient equals the hand-written one and central differences."""
    rng = np.random.default_rng(11)
    W, bias, X = 0.2 * rng.standard_normal((16, 40)), rng.standard_normal(40), rng.standard_normal((32, 16))
    Y = np.eye(40)[rng.integers(0, 40, size=32)]
    gW, gb = jitgrad.jit_grad(softmax_xent, argnums=(0, 1))(W, bias, X, Y)
    p = np.exp(X @ W + bias)
    G = (p / p.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    np.testing.assert_allclose(gW, X.T @ G, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, G.sum(axis=0), rtol=1e-12, atol=1e-15)
    jitgrad.check_grads(lambda W, b: softmax_xent(W, b, X, Y), (W, bias), order=1, modes=("rev",))
