"""The Fourier transforms compiled as native calls of numpy.fft's loops (jit/fftcall.py): every transform
against the reference executor (complex transforms bit for bit, a real operand's fft to rounding), per
norm, odd and even lengths, along the first, a middle and the last axis, in float32/complex64 too; fused
operands; traced user code (n= padding and truncation, fft2, fftn, rfftn, irfftn) compiled against the
reference; switching complexops.NATIVE off makes them host calls again; kernel forms list the loops;
gradients through real operands' transforms (whose VJPs are real transforms: ir/fft_rules.py) against
finite differences."""
import numpy as np
import pytest

from e2e import assert_grad
from test_complex_fft import trace_of
from jitgrad.ir import Builder, run_trace
from jitgrad.jit import compile_trace, complexops, fftcall
from jitgrad.jit.kernel import module_text
from jitgrad.jit.plan import Plan

NORMS = ("backward", "ortho", "forward")
rng = np.random.default_rng(11)


def hosted_ops(trace):
    plan = Plan(trace)
    return sorted({n.op for n in trace.nodes if id(n) in plan.hosted})


def _values(shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _in_double(dtype, norm, forward):
    """Whether NumPy computes this transform of a 32-bit operand in double precision: its factor is the
    Python int 1 (norm 'backward' forward, 'forward' inverse), and the transform is native only if not."""
    return np.dtype(dtype) in (np.float32, np.complex64) and norm == ("backward" if forward else "forward")


def _compiled_and_reference(build, shape, dtype, hosted=()):
    b = Builder()
    x = b.input(shape, dtype)
    trace = b.build([build(b, x)])
    assert hosted_ops(trace) == list(hosted)
    value = _values(shape, dtype)
    (got,), (want,) = compile_trace(trace)([value]), run_trace(trace, [value])
    assert got.dtype == want.dtype and got.shape == want.shape
    return got, want


CASES = [((7,), 0), ((8,), 0), ((3, 6), 1), ((5, 4), 0), ((2, 5, 3), 1), ((4, 1), 0), ((3, 2), 1)]


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_complex_fft_is_the_reference_bit_for_bit(shape, axis, norm, inverse, dtype):
    got, want = _compiled_and_reference(lambda b, x: b.fft(x, axis=axis, norm=norm, inverse=inverse), shape, dtype,
                                        ["fft"] * _in_double(dtype, norm, not inverse))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_real_transforms_are_the_reference_bit_for_bit(shape, axis, norm, dtype):
    spectrum, want = _compiled_and_reference(lambda b, x: b.rfft(x, axis=axis, norm=norm), shape, dtype,
                                             ["rfft"] * _in_double(dtype, norm, True))
    np.testing.assert_array_equal(spectrum, want)
    half = list(shape)
    for n in (2 * shape[axis] - 2, 2 * shape[axis] - 1):
        if n < 1:
            continue
        half[axis] = n // 2 + 1
        complex_dtype = np.result_type(dtype, np.complex64)
        got, want = _compiled_and_reference(lambda b, x: b.irfft(x, axis=axis, n=n, norm=norm), tuple(half),
                                            complex_dtype, ["irfft"] * _in_double(complex_dtype, norm, False))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, axis", CASES + [((1,), 0), ((2,), 0)])
def test_fft_of_a_real_operand_matches_the_reference(shape, axis, norm, inverse, dtype):
    """Transformed by the real loop and completed by Hermitian symmetry: the reference to rounding."""
    got, want = _compiled_and_reference(lambda b, x: b.fft(x, axis=axis, norm=norm, inverse=inverse), shape, dtype,
                                        ["fft"] * (dtype == np.float32))    # NumPy: always in double
    scale = np.max(np.abs(want))
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale * np.log2(shape[axis] + 1) * 4)


def test_fused_operands_are_materialized_once():
    """An elementwise chain into a transform and out of it: one kernel, no host call, the reference."""
    b = Builder()
    x = b.input((6, 16), np.float64)
    w = b.input((16,), np.float64)
    spectrum = b.fft(b.multiply(b.exp(x), w), axis=1, norm="ortho", inverse=False)
    back = b.irfft(b.multiply(b.rfft(x, axis=1, norm="backward"), b.fill((), np.complex128, 2j)),
                   axis=1, n=16, norm="backward")
    trace = b.build([b.absolute(spectrum), b.real(b.fft(spectrum, axis=0, norm="forward", inverse=True)), back])
    assert hosted_ops(trace) == []
    xs, ws = rng.standard_normal((6, 16)), np.hanning(16)
    for got, want in zip(compile_trace(trace)([xs, ws]), run_trace(trace, [xs, ws])):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def user_transforms(x):
    m = x.reshape(4, 6)
    parts = [np.fft.fft(m, n=8, axis=0, norm="ortho"), np.fft.ifft(m * 1j, n=4, norm="forward"),
             np.fft.rfft(m, n=9), np.fft.rfft(m, n=3, axis=0), np.fft.irfft(np.fft.rfft(m) * 1j, n=7),
             np.fft.fft2(m + 0.5j), np.fft.ifftn(m, s=(2, 5), axes=(0, 1)),
             np.fft.irfftn(np.fft.rfftn(m) * 2, s=m.shape, axes=(0, 1))]
    return sum(np.abs(p).sum() for p in parts)


def test_traced_user_transforms_compile_natively_and_match():
    x = rng.standard_normal(24)
    trace, environment = trace_of(user_transforms, x)
    assert hosted_ops(trace) == []
    (got,), (want,) = compile_trace(trace)([x] + environment), run_trace(trace, [x] + environment)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_native_off_makes_transforms_host_calls(monkeypatch):
    b = Builder()
    z = b.input((8,), np.complex128)
    trace = b.build([b.fft(z, axis=0, norm="ortho", inverse=True), b.rfft(b.real(z), axis=0, norm="backward")])
    assert hosted_ops(trace) == []
    monkeypatch.setattr(complexops, "NATIVE", False)
    assert hosted_ops(trace) == ["fft", "real", "rfft"]
    zs = _values((8,), np.complex128)
    for got, want in zip(compile_trace(trace)([zs]), run_trace(trace, [zs])):
        np.testing.assert_array_equal(got, want)


def test_irfft_of_a_real_operand_stays_a_host_call():
    b = Builder()
    x = b.input((5,), np.float64)
    trace = b.build([b.irfft(x, axis=0, n=8, norm="ortho")])
    assert hosted_ops(trace) == ["irfft"]
    xs = rng.standard_normal(5)
    np.testing.assert_array_equal(compile_trace(trace)([xs])[0], run_trace(trace, [xs])[0])


def test_kernel_form_lists_the_loops_it_links():
    b = Builder()
    x = b.input((8,), np.float64)
    trace = b.build([b.absolute(b.fft(b.rfft(x, axis=0, norm="backward"), axis=0, norm="ortho", inverse=True))])
    kernel = compile_trace(trace)
    if kernel.form is not None:         # the disk cache is on
        assert kernel.form["pocketfft"] == ["jg_pocketfft_ifft_0", "jg_pocketfft_ifft_direction",
                                            "jg_pocketfft_rfft_n_even_0"]
    assert fftcall.available()


def real_spectra(x, norm):
    """Losses of the spectra of real operands: fft and ifft (odd and even lengths, along either axis of
    a matrix) and rfft, weighted so that every bin, the first and Nyquist ones included, counts."""
    m = x.reshape(3, 10)
    total = 0.0
    for n in (7, 10):
        for transform in (np.fft.fft, np.fft.ifft):
            spectrum = transform(m[:, :n], norm=norm)
            total = total + np.sum(np.abs(spectrum) ** 2 * np.linspace(0.5, 2.0, n)) + np.sum(spectrum.imag)
        half = np.fft.rfft(m[:, :n], norm=norm)
        total = total + np.sum((half.real + 2 * half.imag) * np.arange(1, half.shape[1] + 1))
    column = np.fft.fft(m, axis=0, norm=norm)
    return total + np.sum(np.real(column * np.conj(column[::-1])))


@pytest.mark.parametrize("jit", [None, False], ids=["compiled", "reference"])
@pytest.mark.parametrize("norm", NORMS)
def test_gradients_through_real_operands_match_finite_differences(norm, jit):
    assert_grad(real_spectra, rng.standard_normal(30), norm, jit=jit)


def filtered_steps(x, kernel):
    """A loop whose body filters through fft/ifft (a loop op when the loop rolls)."""
    for _ in range(6):
        x = np.real(np.fft.ifft(np.fft.fft(x) * kernel)) + 0.1 * np.sin(x)
    return np.sum(x ** 2 * np.linspace(1.0, 2.0, x.size))


@pytest.mark.parametrize("jit", [None, False], ids=["compiled", "reference"])
def test_transforms_inside_a_loop_body_match_finite_differences(jit):
    kernel = np.fft.fft(np.exp(-np.arange(16.0)))
    assert_grad(filtered_steps, rng.standard_normal(16), kernel, jit=jit)


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, axis", CASES + [((1,), 0), ((2,), 0)])
def test_real_part_of_a_complex_transform_is_a_real_transform(shape, axis, norm, inverse):
    """np.real(np.fft.ifft(z)): irfft of the Hermitian part of z (the module text calls irfft), the
    reference to rounding; a transform read otherwise too keeps the complex loop."""
    b = Builder()
    x = b.input(shape, np.complex128)
    spectrum = b.fft(x, axis=axis, norm=norm, inverse=inverse)
    only_real = b.build([b.multiply(b.real(spectrum), b.real(spectrum))])
    also_imag = b.build([b.real(spectrum), b.imag(spectrum)])
    z = _values(shape, np.complex128)
    for trace, real_loop in ((only_real, True), (also_imag, False)):
        assert hosted_ops(trace) == []
        assert ("@jg_pocketfft_irfft_0(" in module_text(trace)[0]) == real_loop
        for got, want in zip(compile_trace(trace)([z]), run_trace(trace, [z])):
            scale = np.max(np.abs(want))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-15 * scale * np.log2(shape[axis] + 1) * 4)
