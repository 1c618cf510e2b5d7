"""The shapes of code that the speed work relies on (issue 5's bench targets), each checked for the
right answer and for the structure that makes it fast: scalar-loop gradients scattered in place,
gemv for matrix-vector products, row-order reductions, transpose-free weight gradients, gradient-only
kernels and an optimizer that does not revisit settled nodes."""
import sys

import numpy as np
import pytest

import jitgrad
from jitgrad.ir import Builder, run_trace
from jitgrad.ir import passes
from jitgrad.ir.errors import GuardFailed
from jitgrad.ir.autodiff import value_and_grad
from jitgrad.jit import compile_trace
from jitgrad.jit.lower import lower

from test_jit_ops import assert_same


def smoothness(x):
    total = 0.0
    for i in range(1, len(x)):
        total = total + (x[i] - 0.5 * x[i - 1]) ** 2
    return total


def smoothness_grad(x):
    r = x[1:] - 0.5 * x[:-1]
    g = np.zeros(len(x))
    g[1:] += 2.0 * r
    g[:-1] -= r
    return g


def test_scalar_loop_gradient_is_one_in_place_scatter_chain(monkeypatch):
    monkeypatch.setenv("JITGRAD_ROLL", "0")            # the unrolled form (tests/tracer/test_rolling.py rolls it)
    x = np.random.default_rng(0).normal(size=40)
    g = jitgrad.jit_grad(smoothness)
    np.testing.assert_allclose(g(x), smoothness_grad(x), rtol=1e-12)
    np.testing.assert_allclose(g(x + 1.0), smoothness_grad(x + 1.0), rtol=1e-12)
    text = g.cache_info().paths[0].text
    assert "power" not in text.split("return")[0].split("index_add", 1)[1]   # x**1 simplified away
    assert not any(line.strip().startswith("%") and " = add " in line and "f64[40]" in line
                   for line in text.splitlines())
    assert text.count("index_add") == 2 * 39         # one per read of x[i]


def test_index_add_chain_updates_one_buffer_in_place():
    b = Builder()
    x = b.input((50,), np.float64)
    acc = b.multiply(x, x)
    for i in range(30):
        acc = b.index_add(acc, b.index(x, spec=(("int", i % 50),)), spec=(("int", (7 * i) % 50),))
    trace = b.build([acc, b.index_add(acc, b.fill((), np.float64, 1.0), spec=(("int", 0),))])
    _, lowering = lower(trace, "inplace_probe")
    assert lowering.ws_size <= 3 * 50 * 8           # not one buffer per update
    inputs = [np.random.default_rng(1).normal(size=50)]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        assert_same(got, want, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, y_shape, contract", [
    ((300, 40), (40, 1), ((1,), (0,))),      # X @ w: N = 1
    ((300, 1), (300, 40), ((0,), (0,))),     # r^T X: M = 1, left operand transposed
    ((1, 300), (300, 40), ((1,), (0,))),     # M = 1
    ((300, 40), (1, 40), ((1,), (1,))),      # N = 1, right operand transposed
    ((1, 300), (40, 300), ((1,), (1,))),     # M = 1, right operand transposed
])
def test_matrix_vector_products_through_gemv(dtype, x_shape, y_shape, contract):
    b = Builder()
    x, y = b.input(x_shape, dtype), b.input(y_shape, dtype)
    trace = b.build([b.dot_general(x, y, contract=contract, batch=((), ()))])
    text, _ = lower(trace, "gemv_probe")
    assert "gemv" in text and "gemm" not in text
    rng = np.random.default_rng(2)
    inputs = [rng.normal(size=x_shape).astype(dtype), rng.normal(size=y_shape).astype(dtype)]
    assert_same(compile_trace(trace)(inputs)[0], run_trace(trace, inputs)[0], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("axis", [(0,), (1,), (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_keeping_the_last_axis(dtype, op, axis, keepdims):
    b = Builder()
    x = b.input((3, 4, 5), dtype)
    trace = b.build([b.emit(op, x, axis=axis, keepdims=keepdims)])
    a = (np.random.default_rng(3).normal(size=(3, 4, 5)) * 3).astype(dtype)
    if dtype == np.float64:
        a[1, 2, 3] = np.nan
    got, want = compile_trace(trace)([a])[0], run_trace(trace, [a])[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("axis", [(1,), (0,), (0, 1)])
def test_float_extremes_vectorized_propagate_nan_and_infinities(dtype, op, axis):
    """max/min of floats (LLVM's maximum/minimum, reduced in vector registers) against NumPy on rows
    long enough to vectorize: a NaN anywhere in a row (first, middle, last element) makes the row's
    result NaN, infinities win or lose as in NumPy, rows without NaN are exact."""
    b = Builder()
    x = b.input((6, 203), dtype)
    y = b.emit(op, x, axis=axis, keepdims=False)
    trace = b.build([y, b.emit("sum", b.emit("exp", x), axis=(0, 1), keepdims=False),
                     b.emit(op, b.emit("negative", x), axis=(0, 1), keepdims=False)])
    text, _ = lower(trace, "extreme_probe")
    assert f"llvm.{'maximum' if op == 'max' else 'minimum'}" in text
    a = np.random.default_rng(4).normal(size=(6, 203)).astype(dtype)
    a[1, 0], a[2, 101], a[3, 202] = np.nan, np.nan, np.nan
    a[4, 7], a[5, 9] = np.inf, -np.inf
    got, want = compile_trace(trace)([a]), run_trace(trace, [a])
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)         # NaNs in the same places, every other value exact

def test_weight_gradients_need_no_transpose():
    def loss(w, h, t):
        return np.sum((np.tanh(h @ w) - t) ** 2)
    rng = np.random.default_rng(4)
    w, h, t = rng.normal(size=(30, 20)), rng.normal(size=(50, 30)), rng.normal(size=(50, 20))
    g = jitgrad.jit_grad(loss)
    y = np.tanh(h @ w)
    np.testing.assert_allclose(g(w, h, t), h.T @ (2 * (y - t) * (1 - y * y)), rtol=1e-10)
    assert "transpose" not in g.cache_info().paths[0].text


def test_plain_gradient_kernel_has_only_the_gradient_output():
    g = jitgrad.jit_grad(lambda x: np.sum(x * x))
    x = np.arange(8.0)
    np.testing.assert_array_equal(g(x), 2 * x)
    np.testing.assert_array_equal(g(x), 2 * x)   # the cached (fast) path
    assert g.cache_info().paths[0].text.rstrip().splitlines()[-2].strip().count("%") == 1
    value, grad = jitgrad.value_and_grad(lambda x: np.sum(x * x))(x)
    assert value == np.sum(x * x) and np.array_equal(grad, 2 * x)


def test_gradients_of_several_arguments_compute_no_loss():
    """jit_grad returns no value: with a tuple of argnums the kernel's loss output is a zero and the
    loss's own terms (here the log and the sum over rows of y * logits) are not computed;
    value_and_grad and has_aux compute it."""
    def loss(w, b, x, y):
        logits = x @ w + b
        return np.mean(np.log(np.sum(np.exp(logits), axis=1)) - np.sum(y * logits, axis=1))

    rng = np.random.default_rng(5)
    w, b, x = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(6, 4))
    y = np.eye(3)[rng.integers(0, 3, size=6)]
    g = jitgrad.jit_grad(loss, argnums=(0, 1))
    want = jitgrad.jit_grad(loss, argnums=(0, 1), jit=False)(w, b, x, y)
    for _ in range(2):
        for got, ref in zip(g(w, b, x, y), want):
            np.testing.assert_allclose(got, ref, rtol=1e-12)
    text = g.cache_info().paths[0].text
    assert " log " not in text and "fill {shape=(), dtype=f64, value=0}" in text
    with_value = jitgrad.value_and_grad(loss, argnums=(0, 1))
    value, grads = with_value(w, b, x, y)
    np.testing.assert_allclose(value, loss(w, b, x, y), rtol=1e-12)
    assert " log " in with_value.cache_info().paths[0].text
    (aux_value, aux), _ = jitgrad.value_and_grad(lambda *a: (loss(*a), 1.0), argnums=(0, 1), has_aux=True)(w, b, x, y)
    np.testing.assert_allclose(aux_value, value, rtol=1e-12)


def test_optimize_keeps_unchanged_nodes_and_reaches_the_fixed_point():
    b = Builder()
    x = b.input((), np.float64)
    y = x
    for k in range(200):
        y = b.add(b.multiply(y, b.fill((), np.float64, 1.0)), b.sin(y))
    trace = value_and_grad(b.build([y]), [0])
    once = passes.optimize(trace)
    assert not any(n.op == "multiply" and n.args[1].op == "fill" and n.args[1].params["value"] == 1.0
                   for n in once.nodes)
    again = passes.optimize(once)
    assert [n.op for n in again.nodes] == [n.op for n in once.nodes]
    assert all(a is b_ for a, b_ in zip(again.nodes, once.nodes))
    x0 = np.array(0.3)
    for got, want in zip(run_trace(once, [x0]), run_trace(trace, [x0])):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_static_arguments_take_the_fast_path_and_are_checked():
    def power_sum(x, n, flag):
        return np.sum(x ** n) if flag else np.sum(x)
    g = jitgrad.jit_grad(power_sum)
    x = np.arange(1.0, 5.0)
    np.testing.assert_allclose(g(x, 2, True), 2 * x)
    np.testing.assert_allclose(g(x, 2, True), 2 * x)
    assert g._fast is not None
    np.testing.assert_allclose(g(x, 3, True), 3 * x ** 2)      # another static value: retrace
    np.testing.assert_allclose(g(x, 2, True), 2 * x)
    np.testing.assert_allclose(g(x, 3, 1), 3 * x ** 2)         # 1 is not True: its own key
    np.testing.assert_allclose(g(x, 2, False), np.ones(4))
    np.testing.assert_allclose(g(x + 1, 3, True), 3 * (x + 1) ** 2)
    assert g.cache_info().traces == 4



def test_wrapper_allocates_outputs_and_releases_them_on_every_exit():
    """The FASTCALL wrapper makes the outputs itself: fresh, owned, writeable arrays on success (one
    array, or a list of several), and none left behind when a guard exits or it declines the arrays
    (the float64 dtype's reference count, which every output holds, comes back to where it was)."""
    b = Builder()
    x = b.input((5,), np.float64)
    big = b.emit("greater", b.emit("sum", x, axis=(0,), keepdims=False), b.const(0.0))
    b.guard(big, True, "sum > 0", "here")
    kernel = compile_trace(b.build([b.emit("multiply", x, x), b.emit("exp", x)]))
    x0 = np.arange(1.0, 6.0)
    first, second = kernel.fast_call(x0)
    np.testing.assert_array_equal(first, x0 * x0)
    np.testing.assert_allclose(second, np.exp(x0), rtol=1e-15)
    assert first.flags.owndata and first.flags.writeable and first is not kernel.fast_call(x0)[0]
    float64 = np.dtype(np.float64)
    before = sys.getrefcount(float64)
    for _ in range(200):
        with pytest.raises(GuardFailed):
            kernel.fast_call(-x0)
        np.testing.assert_array_equal(kernel.fast_call(x0[::-1].copy()[::-1])[0], x0 * x0)   # declined
    assert sys.getrefcount(float64) == before

