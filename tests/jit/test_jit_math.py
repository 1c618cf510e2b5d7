"""Accuracy of the JIT's inline math (jit/polymath.py) in ulps against a long-double reference, over
wide ranges, and exact agreement with NumPy on special values (inf, nan, -0.0, subnormals, huge
arguments; the latter go through the precise libm twin for sin/cos)."""
import numpy as np
import pytest

from jitgrad.ir import Builder
from jitgrad.jit import compile_trace

N = 20000
# op -> (bound in ulps, ranges); "log" ranges are sampled log-uniformly
CASES = {
    "exp": (1.0, [(-700, 700), (-1, 1), (-745.2, -700), (700, 709.78), (-1e-10, 1e-10)]),
    "expm1": (2.5, [(-1, 1), (-40, 40), (-1e-8, 1e-8), (30, 45)]),
    "log": (1.0, [(0, 10), ("log", 1e-300, 1e300), (1 - 1e-6, 1 + 1e-6), ("log", 5e-324, 2e-308)]),
    "log1p": (2.0, [(-0.999, 1), (-1e-8, 1e-8), ("log", 1e-300, 1e300), (-1, -0.5)]),
    "tanh": (2.0, [(-3, 3), (-30, 30), (-1e-6, 1e-6), (0.55, 0.7), (15, 25), ("log", 1e-300, 1e-3)]),
    "sin": (2.0, [(-np.pi, np.pi), (-1e4, 1e4), (-1e8, 1e8), (-1e12, 1e12)]),
    "cos": (2.0, [(-np.pi, np.pi), (-1e4, 1e4), (-1e8, 1e8), (-1e12, 1e12)]),
}
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-310,
                     1e308, -1e308, 709.8, -746.0, 1e-20, -1e-20, -1.0, 1e20, 1e300, -1e300, 3e15])


def assert_subnormals_not_flushed():
    """A shared library built with -ffast-math (crtfastmath) turns on FTZ/DAZ for the whole process,
    which changes NumPy's and the kernels' results near 0; say so instead of reporting ulp errors."""
    assert (np.array([5e-324]) * 1.0)[0] != 0, "FTZ/DAZ is on in this process (a -ffast-math .so was loaded)"


def unary_kernel(op, n):
    b = Builder()
    x = b.input((n,), np.float64)
    return compile_trace(b.build([b.emit(op, x)]))


def sample(rng, spec):
    if spec[0] == "log":
        return np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]), N))
    return rng.uniform(spec[0], spec[1], N)


def _ldexp_forms():
    """Both ways exp scales by 2^n (jit/polymath.py _scale) where this host has the one-instruction form."""
    from jitgrad.jit import engine
    return [False, True] if engine.native_ldexp() else [False]


@pytest.fixture(params=_ldexp_forms(), ids=lambda native: "vscalef" if native else "two-step scale")
def ldexp_form(request, monkeypatch):
    from jitgrad.jit import engine
    monkeypatch.setitem(engine._state, "ldexp", request.param)
    return request.param


@pytest.mark.parametrize("op", list(CASES))
def test_inline_math_within_its_ulp_bound(op, ldexp_form):
    assert_subnormals_not_flushed()
    bound, ranges = CASES[op]
    kernel = unary_kernel(op, N)
    fn = getattr(np, op)
    rng = np.random.default_rng(7)
    for spec in ranges:
        x = sample(rng, spec)
        got = kernel([x])[0]
        ref = fn(x.astype(np.longdouble))
        spacing = np.spacing(np.abs(ref).astype(np.float64))
        ulps = np.abs((got - ref) / np.where(spacing == 0, 5e-324, spacing)).astype(np.float64)
        assert np.isnan(got).sum() == np.isnan(fn(x)).sum()
        assert np.nanmax(ulps) <= bound, (op, spec, np.nanmax(ulps))


@pytest.mark.parametrize("op", list(CASES))
def test_inline_math_special_values_match_numpy(op, ldexp_form):
    assert_subnormals_not_flushed()
    kernel = unary_kernel(op, len(SPECIALS))
    got = kernel([SPECIALS])[0]
    with np.errstate(all="ignore"):
        want = getattr(np, op)(SPECIALS)
        close = np.abs(got - want) <= 3 * np.spacing(np.abs(want))
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    assert np.all(same | close), [(x, g, w) for x, g, w, ok in zip(SPECIALS, got, want, same | close) if not ok]


def test_huge_sin_arguments_rerun_with_libm():
    kernel = unary_kernel("sin", 3)
    x = np.array([1e300, 0.5, 2.0 ** 60])
    np.testing.assert_array_equal(kernel([x])[0], np.sin(x))
    np.testing.assert_allclose(kernel([x[[1, 1, 1]]])[0], np.sin(x[[1, 1, 1]]), rtol=5e-16)


def test_tanh_saturates_exactly_and_keeps_sign_zero_and_subnormals():
    big = np.array([19.1, 20.0, 22.0, 1e3, 1e300, np.inf])
    tiny = np.array([5e-324, 1e-310, 2.2250738585072014e-308, 1e-200])
    x = np.concatenate([big, -big, tiny, -tiny, [0.0, -0.0, np.nan]])
    got = unary_kernel("tanh", len(x))([x])[0]
    np.testing.assert_array_equal(got[:12], np.sign(x[:12]))
    np.testing.assert_array_equal(got[12:20], x[12:20])
    assert got[20] == 0 and not np.signbit(got[20]) and np.signbit(got[21]) and np.isnan(got[22])


def sin_and_cos_trace(shape, dtype=np.float64):
    """sin(x) * cos(x) + cos(x) of one operand, then sin(2x): one sincos (per loop body), one sin."""
    b = Builder()
    x = b.input(shape, dtype)
    s, c = b.emit("sin", x), b.emit("cos", x)
    return b.build([b.add(b.multiply(s, c), c), b.emit("sin", b.add(x, x))])


@pytest.mark.parametrize("shape, dtype, sincos", [((), np.float64, 1), ((), np.float32, 0),
                                                  ((5,), np.float64, 0)])
def test_sin_and_cos_of_one_operand_share_one_libm_call(shape, dtype, sincos):
    """jit/mathfns.py: where libm is called (straight-line code and the precise twin), sin and cos of one
    operand are one sincos call; the results equal NumPy's.  Arrays use the inline polynomials, whose
    shared instructions LLVM merges itself (no sincos); float32 operands are widened per call (none)."""
    from jitgrad.jit.lower import lower
    trace = sin_and_cos_trace(shape, dtype)
    for precise in (False, True):
        text, _ = lower(trace, "k", precise_math=precise)
        calls = text.count("call void @jg_libm_sincos")
        assert calls == (sincos if not precise or dtype != np.float64 else 1), (precise, calls)
    kernel = compile_trace(trace)
    for x in (np.asarray(0.7, dtype), np.asarray(-1e9, dtype), np.asarray(3e15, dtype)):
        x = np.full(shape, x, dtype)
        got = kernel([x])
        xs = x.astype(np.float64)
        want = [np.sin(xs) * np.cos(xs) + np.cos(xs), np.sin(xs + xs)]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.astype(dtype), rtol=4e-16 if dtype == np.float64 else 1e-6, atol=1e-300)


@pytest.mark.parametrize("cpu, features, width", [("emeraldrapids", "+avx2,+avx512f", 512),
                                                  ("skylake-avx512", "+avx2,+avx512f", None),
                                                  ("znver3", "+avx2,-avx512f", None)])
def test_loops_prefer_512_bit_vectors_only_where_the_core_keeps_its_clock(monkeypatch, cpu, features, width):
    from jitgrad.jit import emit, engine
    monkeypatch.setitem(engine._state, "features", features)
    monkeypatch.delitem(engine._state, "width", raising=False)
    monkeypatch.setattr(engine.llvm, "get_host_cpu_name", lambda: cpu)
    assert engine.vector_width() == width
    text = emit.attributes()
    assert text.count('"prefer-vector-width"="512"') == (3 if width else 0)
    assert "#3 = { nounwind noinline optnone }" in text


@pytest.mark.parametrize("width", [None, 512])
def test_kernels_at_either_vector_width_match_the_reference(monkeypatch, width):
    """exp, a row max, sum and a masked divide compiled at 256 (LLVM's tuning) and 512 bits: equal to
    the reference executor within the inline math's ulp and the reassociated sums' rounding."""
    from jitgrad.ir import run_trace
    from jitgrad.jit import engine
    from jitgrad.jit.kernel import module_text
    monkeypatch.setitem(engine._state, "width", width)
    b = Builder()
    x = b.input((13, 203), np.float64)
    top = b.max(x, axis=(1,), keepdims=True)
    e = b.exp(b.subtract(x, top))
    soft = b.divide(e, b.sum(e, axis=(1,), keepdims=True))
    trace = b.build([soft, b.sum(b.multiply(soft, x), axis=(0, 1), keepdims=False),
                     b.astype(b.equal(x, top), dtype=np.float64)])
    x0 = np.random.default_rng(7).normal(size=(13, 203)) * 30
    assert ('"prefer-vector-width"="512"' in module_text(trace)[0]) == bool(width)
    kernel = compile_trace(trace)
    for got, want in zip(kernel([x0]), run_trace(trace, [x0])):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
