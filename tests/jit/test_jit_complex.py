"""Complex arithmetic compiled natively (jit/complexops.py: pairs of floats): every complex lowering against
the reference executor, on ordinary and special values (zeros, infinities, NaN, huge and tiny parts),
in complex128 and complex64, fused and materialized; the plan keeps only ops without a complex lowering
(power, sqrt, prod, ...) as host calls; spectral losses' gradients against finite differences."""
import numpy as np
import pytest

from e2e import assert_grad
from test_complex_fft import trace_of
from jitgrad.ir import Builder, autodiff, run_trace
from jitgrad.jit import compile_trace, complexops
from jitgrad.jit.plan import Plan

SPECIAL = [0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e300, -3e-310, 1e-200, 7e200]
TOL = {np.complex128: dict(rtol=1e-14, atol=0), np.complex64: dict(rtol=2e-6, atol=0)}


def complex_values(dtype, n, rng):
    """n values: random parts, then every pair of special parts."""
    pairs = [(a, b) for a in SPECIAL for b in SPECIAL]
    re = np.concatenate([rng.standard_normal(n), [a for a, _ in pairs]])
    im = np.concatenate([rng.standard_normal(n), [b for _, b in pairs]])
    z = np.empty(re.shape, dtype)
    with np.errstate(over="ignore"):
        z.real, z.imag = re, im
    return z


def assert_matches(got, want, dtype):
    """got equals want (to the precision of complex `dtype` for floating results)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, equal_nan=True, **TOL[dtype])
    else:
        np.testing.assert_array_equal(got, want)


def hosted_ops(trace):
    plan = Plan(trace)
    return sorted({n.op for n in trace.nodes if id(n) in plan.hosted})


UNARY = ["negative", "conj", "real", "imag", "absolute", "exp"]
BINARY = ["add", "subtract", "multiply", "divide", "equal", "not_equal"]


def _run_both(trace, inputs):
    assert hosted_ops(trace) == []
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        yield got, want


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("op", UNARY)
def test_unary_complex_op_matches_the_reference(op, dtype):
    z = complex_values(dtype, 40, np.random.default_rng(1))
    if op == "exp":                          # keep exp's argument where NumPy's cexp and ours agree to a few ulp
        z = z[np.isfinite(z) & (np.abs(z.real) < 600) & (np.abs(z.imag) < 1e5)]
    b = Builder()
    x = b.input(z.shape, dtype)
    trace = b.build([b.emit(op, x), b.emit(op, b.multiply(x, x))])     # materialized and fused
    with np.errstate(all="ignore"):
        for got, want in _run_both(trace, [z]):
            assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("op", BINARY)
def test_binary_complex_op_matches_the_reference(op, dtype):
    rng = np.random.default_rng(2)
    z = complex_values(dtype, 30, rng)
    w = np.roll(complex_values(dtype, 30, rng), 7)
    real = rng.standard_normal(z.shape).astype(np.float32 if dtype == np.complex64 else np.float64)
    b = Builder()
    x, y, r = b.input(z.shape, dtype), b.input(w.shape, dtype), b.input(real.shape, real.dtype)
    s = b.fill((), dtype, 0.5 - 2j)
    trace = b.build([b.emit(op, x, y), b.emit(op, x, r), b.emit(op, r, y), b.emit(op, s, b.negative(y))])
    with np.errstate(all="ignore"):
        for got, want in _run_both(trace, [z, w, real]):
            assert_matches(got, want, dtype)


def test_division_special_cases_equal_numpy():
    """NumPy's Smith division: zero divisors give infinities or NaN, large divisors do not overflow."""
    a = np.array([1 + 1j, 1 + 0j, 0j, 1e300 + 1e300j, 1 + 2j, np.inf + 0j, 3 - 4j])
    d = np.array([0j, 0j, 0j, 1e300 + 1e300j, 1e-300 + 1e-300j, 1 + 1j, 1e308 - 1e308j])
    b = Builder()
    x, y = b.input(a.shape, a.dtype), b.input(d.shape, d.dtype)
    trace = b.build([b.divide(x, y)])
    with np.errstate(all="ignore"):
        want = a / d
    (got,) = compile_trace(trace)([a, d])
    np.testing.assert_allclose(got, want, rtol=1e-15, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_division_by_a_real_divisor_is_numpys_bit_for_bit(dtype):
    """A real divisor (cast to complex: imaginary part +0) takes the one-division form of Smith's method;
    every special numerator over every special divisor equals NumPy's quotient, signed zeros aside."""
    part = np.finfo(dtype).dtype
    z = complex_values(dtype, 20, np.random.default_rng(4))
    c = np.concatenate([np.random.default_rng(5).standard_normal(20), SPECIAL]).astype(part)
    z, c = np.repeat(z, c.size), np.tile(c, z.size)
    b = Builder()
    x, y = b.input(z.shape, dtype), b.input(c.shape, part)
    trace = b.build([b.divide(x, y), b.divide(x, b.astype(y, dtype=dtype))])
    with np.errstate(all="ignore"):
        want = z / c
        for got in compile_trace(trace)([z, c]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_casts_where_and_structure_match_the_reference(dtype):
    rng = np.random.default_rng(3)
    z = complex_values(dtype, 8, rng)[:12].reshape(3, 4)
    b = Builder()
    x = b.input(z.shape, dtype)
    other = np.complex64 if dtype == np.complex128 else np.complex128
    outs = [b.astype(x, dtype=other), b.astype(x, dtype=np.float64), b.astype(x, dtype=np.bool_),
            b.astype(x, dtype=np.int32), b.astype(b.real(x), dtype=dtype),
            b.astype(b.astype(b.imag(x), dtype=np.int64), dtype=dtype),
            b.where(b.emit("not_equal", x, b.fill((), dtype, 0)), x, b.fill((), dtype, 1j)),
            b.transpose(x, perm=(1, 0)), b.reshape(x, shape=(2, 6)),
            b.broadcast_to(b.conj(x), shape=(2, 3, 4)), b.index(x, spec=(("slice", 2, 3, -1), ("int", 2))),
            b.concatenate(x, b.index(x, spec=(("slice", 0, 3, 1), ("slice", 3, 2, -1))), b.real(x), axis=1)]
    trace = b.build(outs)
    with np.errstate(all="ignore"):
        for got, want in _run_both(trace, [z]):
            assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("axis, keepdims", [((0, 1), False), ((0,), False), ((1,), True), ((), False)])
def test_complex_sums_match_the_reference(dtype, axis, keepdims):
    z = (np.random.default_rng(4).standard_normal((5, 7)) * (1 - 2j)).astype(dtype)
    b = Builder()
    x = b.input(z.shape, dtype)
    trace = b.build([b.sum(x, axis=axis, keepdims=keepdims), b.sum(b.multiply(x, x), axis=axis, keepdims=keepdims)])
    for got, want in _run_both(trace, [z]):
        np.testing.assert_allclose(got, want, rtol=1e-13 if dtype == np.complex128 else 1e-5)


def test_ops_without_a_complex_lowering_stay_host_calls():
    b = Builder()
    z = b.input((6,), np.complex128)
    trace = b.build([b.sqrt(z), b.emit("prod", z, axis=(0,), keepdims=False), b.add(z, z)])
    assert hosted_ops(trace) == ["prod", "sqrt"]
    zs = np.random.default_rng(5).standard_normal(6) + 1j
    for got, want in zip(compile_trace(trace)([zs]), run_trace(trace, [zs])):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_native_off_makes_every_complex_node_a_host_call(monkeypatch):
    b = Builder()
    z = b.input((6,), np.complex128)
    trace = b.build([b.absolute(b.add(z, b.fill((), np.complex128, 1j)))])
    assert hosted_ops(trace) == []
    monkeypatch.setattr(complexops, "NATIVE", False)
    assert hosted_ops(trace) == ["absolute", "add", "fill"]
    zs = np.arange(6) * (1 - 1j)
    (got,) = compile_trace(trace)([zs])
    np.testing.assert_allclose(got, np.abs(zs + 1j), rtol=1e-15)


# --- spectral losses (bench/spectral.py): gradients against finite differences ------------------------
K = np.fft.fftfreq(32) * 32
WINDOW = np.hanning(32)
WEIGHT = 1.0 / (1.0 + K * K)


def power(x):
    return np.sum(WEIGHT * np.abs(np.fft.fft(x * WINDOW)) ** 2)


def derivative(x):
    F = np.fft.fft(x)
    d = np.real(np.fft.ifft(1j * K * F))
    return np.sum(WINDOW * d * d) + np.sum(WEIGHT * np.real(F * np.conj(F))) / x.size


def phase_shift(x):
    z = np.exp(1j * x) * (x[::-1] - 2j) / (1.5 + x * 1j)
    return np.sum(np.abs(np.fft.ifft(z)) + np.imag(z) ** 2)


@pytest.mark.parametrize("fn", [power, derivative, phase_shift], ids=lambda f: f.__name__)
def test_spectral_loss_gradients_match_finite_differences(fn):
    x = np.random.default_rng(6).standard_normal(32)
    assert_grad(fn, x)
    assert_grad(fn, x, jit=False)


def test_spectral_gradient_has_no_host_call():
    trace, environment = trace_of(derivative, np.random.default_rng(7).standard_normal(32))
    forward, backward = autodiff.vjp(trace, [0])
    assert any(v.dtype.kind == "c" for v in forward.nodes + backward.nodes)
    assert {"fft"} <= {v.op for v in forward.nodes + backward.nodes}
    assert hosted_ops(forward) == hosted_ops(backward) == []
