"""Every op compiled by jitgrad.jit against the reference executor ir.run_trace, on the op-case table
(tests/op_cases.py: broadcasting, 0-d, size-1 and empty shapes) in float64 and float32, with
contiguous, non-contiguous and negatively strided inputs; plus guards, index bounds, and the
interface checks (fresh outputs, shape/dtype mismatch refused before native code runs)."""
import numpy as np
import pytest

from jitgrad.ir import Builder, GuardFailed, run_trace
from jitgrad.jit import LoweringUnsupported, compile_trace
from jitgrad.jit.rules import unlowered_ops

from op_cases import CASES, make_inputs

TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-6, atol=2e-6)}


def one_op_trace(case, inputs):
    """A trace with one input per operand and the case's op as its only node and output."""
    b = Builder()
    args = [b.input(x.shape, x.dtype) for x in inputs]
    params = dict(case.params)
    if case.op == "const":
        return b.build([b.const(params["value"])])
    if case.op == "fill":
        return b.build([b.fill(params["shape"], params["dtype"], params["value"])])
    return b.build([b.emit(case.op, *args, **params)])


def assert_same(got, want, dtype):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if got.dtype.kind in "fc":          # complex arithmetic is compiled too (jit/complexops.py)
        np.testing.assert_allclose(got, want, **TOL[dtype])
    else:
        np.testing.assert_array_equal(got, want)


def strided_variant(x, rng):
    """The same values as x, held in a non-contiguous, negatively strided view."""
    if x.ndim == 0:
        return x
    big = np.empty(tuple(2 * d for d in x.shape), dtype=x.dtype)
    view = big[tuple(slice(None, None, -2) for _ in x.shape)]
    view[...] = x
    return view


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_compiled_matches_reference(case, dtype):
    rng = np.random.default_rng(abs(hash(case.name)) % 2**32)
    inputs = make_inputs(case, rng, dtype)
    trace = one_op_trace(case, inputs)
    if case.op in UNLOWERED:
        with pytest.raises(LoweringUnsupported):
            compile_trace(trace)
        return
    kernel = compile_trace(trace)
    want = run_trace(trace, inputs)
    for variant in (inputs, [strided_variant(x, rng) for x in inputs]):
        got = kernel(variant)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w, dtype)


UNLOWERED = unlowered_ops()      # argsort, special functions, linear algebra: not lowered yet


def test_guard_failure_reports_its_index():
    b = Builder()
    x = b.input((), np.float64)
    y = b.input((), np.float64)
    b.guard(b.greater(x, b.const(0.0)), True)
    b.guard(b.less(y, b.const(1.0)), True)
    t = b.build([b.multiply(x, y)])
    k = compile_trace(t)
    assert float(k([np.asarray(2.0), np.asarray(0.5)])[0]) == 1.0
    with pytest.raises(GuardFailed) as e:
        k([np.asarray(2.0), np.asarray(3.0)])
    assert e.value.index == 1
    with pytest.raises(GuardFailed) as e:
        k([np.asarray(-2.0), np.asarray(3.0)])
    assert e.value.index == 0


def test_out_of_range_index_is_refused():
    b = Builder()
    x = b.input((5,), np.float64)
    i = b.input((3,), np.intp)
    t = b.build([b.index(x, i, spec=(("array", 0),))])
    k = compile_trace(t)
    x0 = np.arange(5.0)
    np.testing.assert_array_equal(k([x0, np.array([0, -1, 4])])[0], [0.0, 4.0, 4.0])
    for bad in ([0, 5, 1], [-6, 0, 0]):
        with pytest.raises(IndexError):
            k([x0, np.array(bad)])


def test_mismatched_inputs_are_refused_and_outputs_are_fresh():
    b = Builder()
    x = b.input((3,), np.float64)
    t = b.build([b.exp(x), x])
    k = compile_trace(t)
    with pytest.raises(TypeError):
        k([np.zeros(4)])
    with pytest.raises(TypeError):
        k([np.zeros(3, np.float32)])
    a = np.arange(3.0)
    first = k([a])
    second = k([a + 1])
    np.testing.assert_allclose(first[0], np.exp(a))
    np.testing.assert_array_equal(first[1], a)
    assert first[1] is not a and not np.shares_memory(first[0], second[0])


def test_unusual_arrays_take_the_checked_path():
    b = Builder()
    x = b.input((4,), np.float64)
    k = compile_trace(b.build([b.multiply(x, x)]))
    a = np.arange(4.0)
    for variant in (a.astype(">f8"), a[::-1][::-1], np.arange(8.0)[::2], a.view(np.ndarray)):
        np.testing.assert_array_equal(k([variant])[0], np.asarray(variant) ** 2)
    with pytest.raises(TypeError):
        k([a.reshape(2, 2)])
    with pytest.raises(TypeError):
        k([a, a])


def test_ops_without_native_code_run_as_host_calls_and_raise_like_numpy():
    b = Builder()
    a = b.input((3, 3), np.float64)
    spd = b.add(b.dot_general(a, a, contract=((0,), (0,)), batch=((), ())), b.fill((3, 3), np.float64, 0.5))
    trace = b.build([b.sum(b.emit("cholesky", spd), axis=(0, 1), keepdims=False), b.emit("det", a)])
    kernel = compile_trace(trace)
    x = np.random.default_rng(5).standard_normal((3, 3))
    for g, w in zip(kernel([x]), run_trace(trace, [x])):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    b = Builder()
    m = b.input((2, 2), np.float64)
    kernel = compile_trace(b.build([b.emit("cholesky", m)]))
    with pytest.raises(np.linalg.LinAlgError):
        kernel([-np.eye(2)])
    from jitgrad.jit import hostcall
    assert isinstance(hostcall.take_error(), RuntimeError)   # taken once: never reported again
