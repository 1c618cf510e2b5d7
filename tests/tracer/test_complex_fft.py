"""Complex intermediates and numpy.fft: gradients of real losses of real parameters computed through
complex values, against finite differences, in reverse mode (jit_grad, compiled and reference) and
forward mode (autodiff.jvp of the traced function); the traced transforms equal NumPy's bit for bit;
compiled complex traces (host calls) equal the reference evaluation; unsupported cases are refused."""
import numpy as np
import pytest

import jitgrad
from e2e import assert_grad
from gradcheck import check_jvp
from jitgrad.ir import Builder, autodiff, run_trace
from jitgrad.jit import compile_trace
from jitgrad.tracer.interpretation import interpreter
from jitgrad.tracer.recording.context import TraceContext
from jitgrad.tracer.arrays.values import TracedArray

rng = np.random.default_rng(7)
X16 = rng.standard_normal(16)
X15 = rng.standard_normal(15)
K16 = rng.standard_normal(16)
W16 = np.linspace(0.5, 1.5, 16)
IMG = rng.standard_normal((4, 6))
CUBE = rng.standard_normal((3, 4, 5))


# --- the user code of the issue, as NumPy ships it ----------------------------------------------------
def spectral_power(x):
    return np.sum(np.abs(np.fft.fft(x)) ** 2)


def lowpass(x):
    X = np.fft.rfft(x)
    X[5:] = 0
    return np.sum(np.fft.irfft(X, n=x.size) ** 2 * W16)


def conv_fft(x, k):
    return np.real(np.fft.ifft(np.fft.fft(x) * np.fft.fft(k))).sum()


def phase(x):
    z = x[0::2] + 1j * x[1::2]
    return np.sum(np.angle(z) * np.abs(z) + (z * z.conj()).real)


def two_d(img):
    F = np.fft.fft2(img)
    return np.sum(np.abs(np.fft.fftshift(F)) ** 1.5)


def spectrum_parts(x):
    """A loss of the real and imaginary parts of rfft (DC and Nyquist bins included)."""
    X = np.fft.rfft(x, norm="ortho")
    return np.sum(X.real * np.arange(X.size)) + np.sum(np.imag(X) ** 2 * np.linspace(1, 2, X.size))


def from_parts(a, b, n):
    """irfft of a spectrum built from real parameters: the imaginary parts of the DC and (n even)
    Nyquist bins are ignored by irfft, so their gradient is 0."""
    return np.sum(np.fft.irfft(a + 1j * b, n=n) * np.arange(n))


def transforms(x):
    """Every 1-d transform with n= (padding and truncation), axis= and norm=."""
    m = x.reshape(4, 6)
    total = np.abs(np.fft.fft(m, n=8, axis=0, norm="ortho")).sum()
    total = total + np.abs(np.fft.ifft(m, n=4, norm="forward")).sum()
    total = total + np.abs(np.fft.rfft(m, n=9, axis=-1)).sum() + np.abs(np.fft.rfft(m, n=3, axis=0)).sum()
    total = total + (np.fft.irfft(np.fft.rfft(m) * 1j, n=7, norm="backward") ** 2).sum()
    total = total + (np.fft.hfft(m[:, :4] + 0.5j * m[:, 2:], n=5) ** 2).sum()
    return total + np.abs(np.fft.ihfft(m, axis=0, norm="ortho") ** 3).sum()


def n_dimensional(c):
    total = np.abs(np.fft.fftn(c, axes=(0, 2), norm="ortho")).sum()
    total = total + np.abs(np.fft.ifftn(c, s=(2, 6), axes=(0, 1))).sum()
    total = total + np.abs(np.fft.ifft2(c[0] * 1j + c[1])).sum()
    total = total + np.abs(np.fft.rfftn(c)).sum() + np.abs(np.fft.rfft2(c, s=(3, 4))).sum()
    total = total + (np.fft.irfftn(np.fft.rfftn(c) ** 2, s=c.shape, axes=(0, 1, 2)) ** 2).sum()
    total = total + (np.fft.irfft2(np.fft.rfft2(c[1]), s=(4, 7), norm="forward") ** 2).sum()
    return total + np.abs(np.fft.ifftshift(np.fft.fft(c, axis=1), axes=1) * np.fft.fftfreq(4)[:, None]).sum()


def arithmetic(x):
    """Complex arithmetic with arrays and Python complex scalars, holomorphic functions, parts."""
    z = x[:4] + 1j * x[4:8]
    w = (2 + 3j) * z - 1j + z / (x[8:12] + 3.0) + z ** 3 - 1 / (z + 4)
    w = np.exp(0.3 * w) + np.log(z + 5) + np.sqrt(z + 6) + np.sin(z) * np.cos(z) + np.square(z)
    w = w + np.reciprocal(z + 7j) + np.conj(z) * np.conjugate(w) + np.power(z, 2)
    return np.sum(np.real(w) + np.imag(w) ** 2 + np.absolute(w) + w.imag * z.real)


def reductions(x):
    z = (x[:6] * (1 - 2j)).astype(np.complex128).reshape(2, 3) + 0.5j
    m = np.array([[1 + 1j, 2], [0.5, -1j], [3, 1j]])
    total = np.abs(z.sum(axis=0)).sum() + np.abs(z.mean()) + np.abs(np.cumsum(z, axis=1)).sum()
    total = total + np.abs(z @ m).sum() + np.abs(np.dot(z, m)).sum() + np.abs(np.einsum("ij,jk->ik", z, m)).sum()
    return total + np.real(np.vdot(z, z * 1j + 2)) + np.abs(np.matmul(m.T, z.T)).sum()


def writes(x):
    """Complex setitem (a real value into a complex array, a complex array made with np.zeros)."""
    X = np.fft.fft(x)
    X[3:13] = 0
    X[1] = X[1] * 2j
    Y = np.zeros(8, dtype=complex)
    Y[:4] = X[:4] + x[:4] * 1j
    return np.sum(np.abs(np.fft.ifft(X)) ** 2) + np.sum(np.abs(Y) ** 2) + np.real_if_close(Y * 0 + 1).sum()


def float32_spectrum(x):
    X = np.fft.rfft(x.astype(np.float32))
    return np.sum(np.abs(X * np.float32(0.5)) ** 2)


PROGRAMS = {
    "spectral_power": (spectral_power, (X16,)),
    "lowpass": (lowpass, (X16,)),
    "conv_fft": (conv_fft, (X16, K16)),
    "phase": (phase, (X16,)),
    "two_d": (two_d, (IMG,)),
    "spectrum_parts_even": (spectrum_parts, (X16,)),
    "spectrum_parts_odd": (spectrum_parts, (X15,)),
    "transforms": (transforms, (rng.standard_normal(24),)),
    "n_dimensional": (n_dimensional, (CUBE,)),
    "arithmetic": (arithmetic, (rng.uniform(0.2, 1.0, 12),)),
    "reductions": (reductions, (X16,)),
    "writes": (writes, (X16,)),
}


@pytest.mark.parametrize("jit", [None, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_reverse_mode_matches_finite_differences(name, jit):
    fn, args = PROGRAMS[name]
    argnums = tuple(range(len(args)))
    grads = assert_grad(fn, *args, argnums=argnums, jit=jit)
    again = jitgrad.jit_grad(fn, argnums=argnums, jit=jit)
    for first, second in zip(grads, (again(*args), again(*args))[1]):
        np.testing.assert_allclose(second, first, rtol=1e-12, atol=1e-12)
    assert [p.backend for p in again.cache_info().paths] == ["llvm" if jit is None else "reference"]


@pytest.mark.parametrize("n", [6, 7])
def test_irfft_ignores_the_imaginary_parts_of_dc_and_nyquist(n):
    a, b = rng.standard_normal(n // 2 + 1), rng.standard_normal(n // 2 + 1)
    ga, gb = assert_grad(from_parts, a, b, n, argnums=(0, 1))
    ignored = [0, n // 2] if n % 2 == 0 else [0]
    assert np.all(gb[ignored] == 0) and np.all(gb[1:n // 2] != 0) and np.all(ga != 0)


def test_float32_stays_float32():
    x = X16.astype(np.float32)
    g = assert_grad(float32_spectrum, x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, jitgrad.jit_grad(float32_spectrum, jit=False)(x), rtol=1e-5)


# --- forward mode and the compiled traces, on the traced function ---------------------------------------
def trace_of(fn, *xs):
    """(trace of `fn` interpreted on traced inputs `xs` with its one output, the arrays it read from
    globals: the trace's further inputs)."""
    ctx = TraceContext()
    with ctx.active():
        inputs = [TracedArray(ctx.builder.input(x.shape, x.dtype), x.copy()) for x in xs]
        out = interpreter.call(fn, inputs, {})
    environment = sorted((e.index, e.getter.get()) for e in ctx.env if e.kind == "array")
    return ctx.builder.build([out.ir]), [value for _, value in environment]


@pytest.mark.parametrize("name", PROGRAMS)
def test_forward_mode_matches_finite_differences(name):
    fn, args = PROGRAMS[name]
    trace, environment = trace_of(fn, *args)
    tangent_trace = autodiff.jvp(trace, list(range(len(args))))

    def jvp(xs, tangents):
        return run_trace(tangent_trace, list(xs) + environment + list(tangents))[1]
    check_jvp(lambda xs: np.asarray(fn(*xs)), jvp, list(args), np.random.default_rng(0))


@pytest.mark.parametrize("name", ["spectral_power", "lowpass", "n_dimensional", "arithmetic", "writes"])
def test_compiled_complex_traces_equal_the_reference(name):
    fn, args = PROGRAMS[name]
    trace, environment = trace_of(fn, *args)
    forward, backward = autodiff.vjp(trace, list(range(len(args))))
    assert any(v.dtype.kind == "c" for v in forward.nodes + backward.nodes)
    inputs = list(args) + environment
    residuals = run_trace(forward, inputs)
    for got, want in zip(compile_trace(forward)(inputs), residuals):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    back_inputs = residuals[1:] + [np.asarray(1.0)]
    for got, want in zip(compile_trace(backward)(back_inputs), run_trace(backward, back_inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


# --- the traced transforms are NumPy's ------------------------------------------------------------------
TRANSFORMS = [
    (np.fft.fft, {}), (np.fft.fft, {"n": 11, "norm": "ortho"}), (np.fft.ifft, {"n": 5, "axis": 0}),
    (np.fft.rfft, {"norm": "forward"}), (np.fft.rfft, {"n": 13, "axis": 0}), (np.fft.irfft, {}),
    (np.fft.irfft, {"n": 9, "norm": "ortho"}), (np.fft.hfft, {"n": 7}), (np.fft.ihfft, {"axis": 0}),
    (np.fft.fft2, {}), (np.fft.ifft2, {"s": (3, 5), "axes": (0, 1)}), (np.fft.fftn, {"axes": (1,)}),
    (np.fft.ifftn, {}),
    (np.fft.rfft2, {}), (np.fft.irfft2, {"s": (4, 9), "axes": (0, 1)}), (np.fft.rfftn, {"norm": "ortho"}),
    (np.fft.irfftn, {"axes": (0, 1)}), (np.fft.fftshift, {}), (np.fft.ifftshift, {"axes": 0}),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("transform, kwargs", TRANSFORMS, ids=[f"{t.__name__}{k}" for t, k in TRANSFORMS])
def test_traced_transform_is_numpys_bit_for_bit(transform, kwargs, dtype):
    x = rng.standard_normal((6, 8)).astype(dtype)
    if transform in (np.fft.rfft, np.fft.rfft2, np.fft.rfftn, np.fft.ihfft) and dtype == np.complex128:
        x = x.real.copy()
    want = transform(x, **kwargs)
    trace, _ = trace_of(lambda a: transform(a, **kwargs), x)
    (got,) = run_trace(trace, [x])
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


# --- refusals ---------------------------------------------------------------------------------------------
def test_differentiation_wrt_a_complex_input_is_refused():
    trace, _ = trace_of(lambda z: np.abs(z).sum(), np.array([1 + 2j, 3j]))
    with pytest.raises(jitgrad.UnsupportedError, match="only real float inputs"):
        autodiff.value_and_grad(trace, [0])


@pytest.mark.parametrize("fn", [lambda x: np.sign(x * 1j).real.sum(), lambda x: np.maximum(x * 1j, 1j).imag.sum(),
                                lambda x: np.linalg.det(np.outer(x, x) * 1j + np.eye(3)).real])
def test_ops_without_complex_derivatives_are_refused(fn):
    with pytest.raises(jitgrad.UnsupportedError, match="complex") as info:
        jitgrad.jit_grad(fn)(np.array([0.5, 1.0, 2.0]))
    assert "test_complex_fft.py" in str(info.value)


def test_the_ad_transform_refuses_them_too():
    b = Builder()
    x = b.input((2,), np.float64)
    z = b.multiply(x, b.fill((), np.complex128, 1j))
    y = b.real(b.sign(z))
    with pytest.raises(jitgrad.UnsupportedError, match="sign on complex"):
        autodiff.value_and_grad(b.build([b.sum(y, axis=(0,), keepdims=False)]), [0])


def test_constant_complex_values_may_use_any_op():
    def f(x):
        y = np.zeros(3, complex) + 1j
        return np.sum(x * np.sign(y).imag * np.maximum(y, 2j).imag)
    assert_grad(f, np.array([0.5, 1.0, 2.0]))


def test_fft_out_argument_is_refused_at_the_users_line():
    def f(x):
        out = np.empty(4, complex)
        return np.abs(np.fft.fft(x, out=out)).sum()
    with pytest.raises(jitgrad.UnsupportedError, match="out=") as info:
        jitgrad.jit_grad(f)(X16[:4])
    assert "test_complex_fft.py" in str(info.value)


# --- the JIT: complex values are buffers computed by host calls ----------------------------------------------
def test_compiled_trace_returns_complex_inputs_constants_and_0d_values():
    b = Builder()
    z = b.input((3,), np.complex64)
    x = b.input((), np.float32)
    scaled = b.multiply(z, x)                                 # complex x real 0-d register operand
    total = b.sum(scaled, axis=(0,), keepdims=False)          # a 0-d complex value
    parts = b.add(b.real(total), b.imag(b.fill((), np.complex64, 2 - 1j)))
    trace = b.build([z, b.const(np.array([1j, 2], np.complex64)), b.fill((2,), np.complex64, 1 + 1j),
                     total, parts, z])
    inputs = [np.array([1 + 2j, -1j, 3], np.complex64), np.asarray(np.float32(1.5))]
    for got, want in zip(compile_trace(trace)(inputs), run_trace(trace, inputs)):
        assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("scalar", [1j, 2 + 3j, 0.5, 2])
def test_python_scalars_are_weak_with_complex_arrays(scalar):
    x = rng.standard_normal(4).astype(np.float32)
    trace, _ = trace_of(lambda a: (a * 1j + scalar) * scalar, x)
    (got,) = run_trace(trace, [x])
    want = (x * 1j + scalar) * scalar
    assert got.dtype == want.dtype == np.complex64 and np.array_equal(got, want)
