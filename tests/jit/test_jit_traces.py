"""Whole traces compiled by jitgrad.jit against ir.run_trace: the VJP (forward + backward) traces of
every op case, fused elementwise/reduction chains, long scalar traces cut into chunks, guards in
chunked code.  Prints (does not assert) compile time against trace length."""
import time

import numpy as np
import pytest

from jitgrad.ir import Builder, run_trace
from jitgrad.ir.autodiff import value_and_grad, vjp
from jitgrad.jit import LoweringUnsupported, compile_trace

from op_cases import CASES, NO_MATRIX_DERIVATIVE, make_inputs
from test_jit_ops import assert_same, one_op_trace

from jitgrad.jit.rules import unlowered_ops

DIFF_CASES = [c for c in CASES if c.float_args and c.op not in unlowered_ops() | {"guard"} | NO_MATRIX_DERIVATIVE]


def check_compiled(trace, inputs, dtype):
    kernel = compile_trace(trace)
    want = run_trace(trace, inputs)
    got = kernel(inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_same(g, np.asarray(w), dtype)
    return want


@pytest.mark.parametrize("case", DIFF_CASES, ids=[c.name for c in DIFF_CASES])
def test_vjp_traces_compiled_match_reference(case, dtype=np.float64):
    """float64 only: the float32 lowering of every op is covered by test_jit_ops (keeps this file fast)."""
    rng = np.random.default_rng(abs(hash(case.name)) % 2**32)
    inputs = make_inputs(case, rng, dtype)
    trace = one_op_trace(case, inputs)
    if trace.outputs[0].dtype.kind != "f":
        return
    forward, backward = vjp(trace, case.float_args)
    fwd_out = check_compiled(forward, inputs, dtype)
    residuals = fwd_out[len(trace.outputs):]
    out = trace.outputs[0]
    cotangent = rng.standard_normal(out.shape).astype(out.dtype)
    check_compiled(backward, list(residuals) + [cotangent], dtype)


def test_fused_chain_with_broadcasts_reductions_and_views():
    rng = np.random.default_rng(0)
    b = Builder()
    x = b.input((7, 5), np.float64)
    y = b.input((5,), np.float64)
    z = b.input((), np.float64)
    t = b.tanh(b.multiply(x, y))
    u = b.add(b.sin(t), b.multiply(b.exp(b.negative(t)), z))       # t read twice: materialized
    v = b.transpose(u, perm=(1, 0))
    w = b.reshape(v, shape=(35,))
    s = b.sum(b.multiply(w, w), axis=(0,), keepdims=False)
    m = b.max(u, axis=(0,), keepdims=True)
    sl = b.index(u, spec=(("slice", 6, 4, -2), ("int", 1)))
    g = b.index(b.log1p(b.absolute(x)), b.const(np.array([[0, -1], [3, 2]])), spec=(("array", 0),))
    trace = b.build([s, m, b.subtract(u, m), sl, g, b.cumsum(u, axis=0)])
    check_compiled(trace, [rng.standard_normal((7, 5)), rng.standard_normal(5), np.asarray(0.3)], np.float64)


def test_value_and_grad_of_a_composite_function():
    rng = np.random.default_rng(1)
    b = Builder()
    w = b.input((4, 3), np.float64)
    x = b.input((5, 4), np.float64)
    h = b.tanh(b.dot_general(x, w, contract=((1,), (0,)), batch=((), ())))
    loss = b.sum(b.multiply(h, h), axis=(0, 1), keepdims=False)
    trace = value_and_grad(b.build([loss]), [0, 1])
    check_compiled(trace, [rng.standard_normal((4, 3)), rng.standard_normal((5, 4))], np.float64)


def scalar_chain_trace(n_steps, guard_every=0):
    """An unrolled Euler-like loop: x <- x + h * (a*x*(1-x) + sin(x)); 4-6 ops per step."""
    b = Builder()
    x0 = b.input((), np.float64)
    a = b.input((), np.float64)
    h = b.const(0.001)
    one = b.const(1.0)
    x = x0
    for i in range(n_steps):
        rate = b.add(b.multiply(b.multiply(a, x), b.subtract(one, x)), b.sin(x))
        x = b.add(x, b.multiply(h, rate))
        if guard_every and i % guard_every == 0:
            b.guard(b.less(x, b.const(1e6)), True)
    return b.build([x, b.multiply(x, a)])


@pytest.mark.parametrize("n_steps", [10, 700, 1700])
def test_long_scalar_traces_in_chunks(n_steps):
    trace = scalar_chain_trace(n_steps, guard_every=97)
    inputs = [np.asarray(0.2), np.asarray(1.5)]
    kernel = compile_trace(trace)
    want = run_trace(trace, inputs)
    for g, w in zip(kernel(inputs), want):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_guard_in_a_late_chunk_reports_its_index():
    from jitgrad.ir import GuardFailed
    trace = scalar_chain_trace(1500, guard_every=97)
    kernel = compile_trace(trace)
    inputs = [np.asarray(2e6), np.asarray(1.5)]     # overflows to nan after a few steps
    with pytest.raises(GuardFailed) as e:
        kernel(inputs)
    with pytest.raises(GuardFailed) as ref:
        run_trace(trace, inputs)
    assert e.value.index == ref.value.index > 0


def test_compile_time_of_scalar_traces_is_reported():
    for n_steps in (250, 2500):
        trace = scalar_chain_trace(n_steps)
        t0 = time.perf_counter()
        kernel = compile_trace(trace)
        total = time.perf_counter() - t0
        print(f"\n{len(trace.nodes)} scalar ops: lower {kernel.timings['lower'] * 1e3:.0f} ms, "
              f"LLVM {kernel.timings['compile'] * 1e3:.0f} ms, total {total * 1e3:.0f} ms")
        assert kernel([np.asarray(0.2), np.asarray(1.5)])[0].shape == ()


def test_unsupported_dtype_is_refused_at_compile_time():
    b = Builder()
    x = b.input((3,), np.float16)
    with pytest.raises(LoweringUnsupported):
        compile_trace(b.build([b.negative(x)]))


GEMM_CASES = [  # (x shape, y shape, contract, batch): all large enough for BLAS, every layout
    ((64, 80), (80, 96), ((1,), (0,)), ((), ())),
    ((80, 64), (80, 96), ((0,), (0,)), ((), ())),
    ((64, 80), (96, 80), ((1,), (1,)), ((), ())),
    ((80, 64), (96, 80), ((0,), (1,)), ((), ())),
    ((64, 80), (80,), ((1,), (0,)), ((), ())),
    ((3, 64, 80), (3, 80, 30), ((2,), (1,)), ((0,), (0,))),
    ((4, 16, 80), (4, 16, 96), ((0, 1), (0, 1)), ((), ())),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ys, contract, batch", GEMM_CASES)
def test_blas_products_match_reference(xs, ys, contract, batch, dtype):
    from jitgrad.jit.blas import gemm_layout
    rng = np.random.default_rng(3)
    b = Builder()
    x, y = b.input(xs, dtype), b.input(ys, dtype)
    d = b.dot_general(b.negative(x), y, contract=contract, batch=batch)   # a fused operand gets a buffer
    assert gemm_layout(d) is not None
    trace = b.build([d])
    inputs = [rng.standard_normal(xs).astype(dtype), rng.standard_normal(ys).astype(dtype)]
    got = compile_trace(trace)(inputs)[0]
    np.testing.assert_allclose(got, run_trace(trace, inputs)[0], rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-3 if dtype == np.float32 else 1e-12)


def test_fill_operand_of_a_host_called_op_is_materialized():
    """A `fill` normally fuses into its users as a constant; a host-called op (here triangular_solve)
    reads operands from memory, so the fill must get a buffer (regression: it read garbage)."""
    from jitgrad.ir import Builder, run_trace
    from jitgrad.jit import compile_trace
    b = Builder()
    r = b.input((2, 2), np.float64)
    ones = b.fill((2, 3), np.float64, 1.0)
    trace = b.build([b.triangular_solve(b.transpose(r, perm=(1, 0)), ones, lower=True)])
    upper = np.array([[2.0, 0.5], [0.0, 3.0]])
    np.testing.assert_allclose(compile_trace(trace)([upper])[0], run_trace(trace, [upper])[0], rtol=1e-14)


@pytest.mark.parametrize("op", ["index_add", "index_set"])
def test_index_update_of_a_0d_array_is_a_register(op):
    """The VJP of x[None] for a 0-d x (scipy.stats.multivariate_normal.logpdf of one mean) is an
    index_add into a 0-d zero: a register, not a buffer (was a KeyError in the lowering)."""
    b = Builder()
    x = b.input((), np.float64)
    v = b.input((1,), np.float64)
    out = b.emit(op, x, b.exp(v), spec=(("newaxis",),))
    trace = b.build([b.multiply(out, x)])
    check_compiled(trace, [np.asarray(0.7), np.array([-0.4])], np.float64)


def test_a_kernel_without_outputs_runs_its_guards():
    """A trace of guards only compiles to a kernel with no outputs (it used to fail when its fast call
    was made)."""
    from jitgrad.ir import GuardFailed
    b = Builder()
    x = b.input((3,), np.float64)
    b.guard(b.greater(b.sum(x, axis=(0,), keepdims=False), b.const(np.float64(0.0))), True, loc="t.py:1",
            why="sum(x) > 0")
    kernel = compile_trace(b.build([]))
    assert kernel([np.ones(3)]) == []
    with pytest.raises(GuardFailed):
        kernel([-np.ones(3)])
