"""NumPy's own Python-level functions and API breadth, called exactly as the library ships them inside
functions differentiated by jitgrad: one table row per function (with its own keywords: axis, keepdims,
ord, ddof, weights, mode...).  Every row checks the gradient against finite differences (tests/e2e.py)
and that the compiled kernel's value (second call) equals NumPy's.  Then closed forms where a naive
translation would go wrong (ties in logaddexp, -0.0 in copysign, zeros in vander, repeated indices in
put), retracing when interp's x changes interval, and the functions refused with UnsupportedError."""
import numpy as np
import numpy.polynomial as P
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import jitgrad
from e2e import assert_grad

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4))
Y = RNG.standard_normal((3, 4))
V = RNG.standard_normal(5)
W = RNG.random(5) + 0.5
S = RNG.standard_normal((4, 4))
C = RNG.standard_normal(4)
T = RNG.standard_normal((2, 3, 4))
XN = X.copy()
XN[0, 1] = XN[2, 3] = np.nan
XN3 = XN.copy()
XN3[:, 2] = np.nan                       # an all-NaN column
XP = np.linspace(-2, 2, 7)
X_OFF_KNOTS = np.array([-3.0, -1.9, -0.5, 0.1, 1.9, 2.5])
GRID = np.arange(48.0)

# name -> (loss, arguments[, argnums])
STATISTICS = {
    "mean": (lambda x: np.mean(x, axis=0, keepdims=True).sum(), (X,)),
    "var_ddof": (lambda x: np.var(x, axis=1, ddof=1).sum(), (X,)),
    "std_keepdims": (lambda x: np.std(x, axis=(0, 1), keepdims=True).sum(), (X,)),
    "average_weights": (lambda x: np.average(x, weights=W), (V,)),
    "average_wrt_weights": (lambda w: np.average(V, weights=w), (W,)),
    "average_axis": (lambda x: np.average(x, axis=1, weights=W[:4]).sum(), (X,)),
    "average_returned": (lambda x: np.average(x, axis=0, weights=W[:3], returned=True)[0].sum(), (X,)),
    "median": (lambda x: np.median(x), (V,)),
    "median_axis": (lambda x: np.median(x, axis=1).sum(), (X,)),
    "median_keepdims": (lambda x: (np.median(x, axis=0, keepdims=True) * C).sum(), (X,)),
    "percentile": (lambda x: np.percentile(x, 30), (V,)),
    "percentile_axis": (lambda x: np.percentile(x, [25, 75], axis=1).sum(), (X,)),
    "quantile_linear": (lambda x: np.quantile(x, 0.4, method="linear"), (V,)),
    "quantile_nearest": (lambda x: np.quantile(x, 0.4, method="nearest"), (V,)),
    "quantile_midpoint": (lambda x: np.quantile(x, [0.1, 0.5], axis=0, method="midpoint").sum(), (X,)),
    "trapezoid_dx": (lambda x: np.trapezoid(x, dx=0.5), (V,)),
    "trapezoid_x": (lambda x: np.trapezoid(np.sin(x), x=x), (np.sort(V),)),
    "max_keepdims": (lambda x: np.max(x, axis=1, keepdims=True).sum(), (X,)),
    "amin_axis": (lambda x: np.amin(x, 0).sum(), (X,)),
    "ptp": (lambda x: np.ptp(x, axis=1).sum(), (X,)),
}
POLYNOMIALS = {
    "polyval": (lambda x: np.polyval(C, x).sum(), (V,)),
    "polyval_coefficients": (lambda c: np.polyval(c, V).sum(), (C,)),
    "polynomial_polyval": (lambda x, c: P.polynomial.polyval(x, c).sum(), (V, C), (0, 1)),
    "chebval": (lambda x, c: P.chebyshev.chebval(x, c).sum(), (V, C), (0, 1)),
    "hermval": (lambda x, c: P.hermite.hermval(x, c).sum(), (V, C), (0, 1)),
    "legval": (lambda x, c: P.legendre.legval(x, c).sum(), (V, C), (0, 1)),
    "Polynomial_object": (lambda x, c: P.Polynomial(c)(x).sum(), (V, C), (0, 1)),
    "Chebyshev_object": (lambda c: P.Chebyshev(c)(V).sum(), (C,)),
    "vander": (lambda x: (np.vander(x, 3) * GRID[:15].reshape(5, 3)).sum(), (V,)),
    "vander_increasing": (lambda x: (np.vander(x, increasing=True) * GRID[:25].reshape(5, 5)).sum(), (V,)),
}
NORMS = {f"norm_vector_ord_{o}": (lambda x, o=o: np.linalg.norm(x, ord=o), (V,))
         for o in (None, 1, 2, 3, -1, -2, np.inf, -np.inf)}
NORMS.update({f"norm_matrix_ord_{o}": (lambda x, o=o: np.linalg.norm(x, ord=o), (X,))
              for o in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)})
NORMS.update({
    "norm_ord_0_counts": (lambda x: np.linalg.norm(x, ord=0) * x.sum(), (V,)),
    "norm_axis_keepdims": (lambda x: np.linalg.norm(x, axis=1, keepdims=True).sum(), (X,)),
    "norm_batched_matrices": (lambda x: np.linalg.norm(x, ord=1, axis=(1, 2)).sum(), (T,)),
})
SIGNALS = {
    "interp_x": (lambda x: (np.interp(x, XP, np.cos(XP)) * GRID[:6]).sum(), (X_OFF_KNOTS,)),
    "interp_fp": (lambda f: (np.interp(X_OFF_KNOTS, XP, f) * GRID[:6]).sum(), (np.cos(XP),)),
    "interp_xp": (lambda xp: (np.interp(X_OFF_KNOTS, xp, np.cos(XP)) * GRID[:6]).sum(), (XP,)),
    "interp_left_right": (lambda x: (np.interp(x, XP, np.sin(XP), left=-1.0, right=2.0) * GRID[:6]).sum(),
                          (X_OFF_KNOTS,)),
    "interp_period": (lambda x: np.interp(x, XP, np.sin(XP), period=3.0).sum(), (X_OFF_KNOTS,)),
    "convolve_full": (lambda a, v: (np.convolve(a, v) * GRID[:7]).sum(), (V, W[:3]), (0, 1)),
    "convolve_same": (lambda a, v: (np.convolve(a, v, mode="same") ** 2).sum(), (V, W[:4]), (0, 1)),
    "convolve_valid_swapped": (lambda a, v: (np.convolve(a, v, mode="valid") ** 2).sum(), (W[:2], V), (0, 1)),
    "correlate_valid": (lambda a, v: (np.correlate(a, v) ** 2).sum(), (V, W[:3]), (0, 1)),
    "correlate_full_swapped": (lambda a, v: (np.correlate(a, v, "full") * GRID[:7]).sum(), (W[:3], V), (0, 1)),
    "correlate_same_swapped": (lambda a, v: (np.correlate(a, v, "same") * GRID[:5]).sum(), (W[:4], V), (0, 1)),
    "sliding_window_view": (lambda x: (sliding_window_view(x, 3) ** 2 * GRID[:9].reshape(3, 3)).sum(), (V,)),
    "sliding_window_view_2d": (lambda x: (sliding_window_view(x, (2, 2)) ** 3).sum(), (X,)),
    "sliding_window_view_axis": (lambda x: sliding_window_view(x, 2, axis=0).max(axis=-1).sum(), (X,)),
}
CONTRACTIONS = {
    "einsum": (lambda x: np.einsum("ij,jk->ik", x, S).sum(), (X,)),
    "einsum_optimize_true": (lambda x: np.einsum("ij,jk,k->i", x, S, C, optimize=True).sum(), (X,)),
    "einsum_optimize_greedy": (lambda x, s: np.einsum("ij,jk,kl->il", x, s, s, optimize="greedy").sum(),
                               (X, S), (0, 1)),
    "einsum_ellipsis": (lambda x: (np.einsum("...j,j->...", x, C) ** 2).sum(), (T,)),
    "einsum_ellipsis_broadcast": (lambda x: np.einsum("...j,...j->...", x[:1], Y).sum(), (X,)),
    "einsum_trace": (lambda x: np.einsum("ii", x), (S,)),
    "einsum_diagonal": (lambda x: (np.einsum("ii->i", x) * C).sum(), (S,)),
    "einsum_implicit_transpose": (lambda x: (np.einsum("ji", x) * Y.T).sum(), (X,)),
    "tensordot": (lambda x: np.tensordot(x, T, axes=([0, 1], [1, 2])).sum(), (X,)),
    "vecdot": (lambda x, y: (np.vecdot(x, y, axis=0) ** 2).sum(), (X, Y), (0, 1)),
    "kron": (lambda x: (np.kron(x, S[:2, :3]) * GRID[:36].reshape(6, 6)).sum(), (X[:, :2],)),
    "kron_mixed_ndim": (lambda x: (np.kron(V[:2], x) ** 2).sum(), (X,)),
}
UFUNCS = {
    "arctan2": (lambda y, x: np.arctan2(y, x).sum(), (V, W), (0, 1)),
    "hypot": (lambda x, y: np.hypot(x, y).sum(), (V, W), (0, 1)),
    "logaddexp": (lambda x, y: (np.logaddexp(x, y) * GRID[:5]).sum(), (V, W), (0, 1)),
    "logaddexp2": (lambda x, y: (np.logaddexp2(x, y) * GRID[:5]).sum(), (V * 30, W), (0, 1)),
    "fmod": (lambda x, y: np.fmod(x * 3, y).sum(), (V, W * np.array([1, -1, 1, -1, 1])), (0, 1)),
    "cbrt": (lambda x: (np.cbrt(x) * GRID[:5]).sum(), (V,)),
    "copysign": (lambda x: np.copysign(W, x).sum() + np.copysign(x, -1.0).sum(), (V,)),
    "multiply_dtype": (lambda x: np.multiply(x, x, dtype=np.float64).sum(), (V.astype(np.float32),)),
}
REARRANGEMENTS = {
    "cumprod": (lambda x: (np.cumprod(x) * GRID[:5]).sum(), (V,)),
    "diff_twice_axis0": (lambda x: (np.diff(x, n=2, axis=0) ** 2).sum(), (X,)),
    "diff_prepend_append": (lambda x: (np.diff(x, prepend=0.0, append=x[:, :1]) ** 2).sum(), (X,)),
    "tile": (lambda x: (np.tile(x, (2, 1, 2)) * GRID.reshape(2, 3, 8)).sum(), (X,)),
    "repeat": (lambda x: (np.repeat(x, [1, 2, 3], axis=0) ** 2).sum(), (X,)),
    "roll": (lambda x: (np.roll(x, 2, axis=1) * Y).sum(), (X,)),
    "roll_flat": (lambda x: (np.roll(x, -3) * Y).sum(), (X,)),
    "flip_fliplr_flipud": (lambda x: (np.flip(x, axis=0) * Y + np.fliplr(x) * Y ** 2 + np.flipud(x)).sum(), (X,)),
    "rot90": (lambda x: (np.rot90(x) * Y.T).sum(), (X,)),
    "pad_constant": (lambda x: (np.pad(x, ((1, 2), (0, 1)), constant_values=((1.0, 2.0), (3.0, 4.0))) ** 2).sum(),
                     (X,)),
    "pad_edge": (lambda x: (np.pad(x, 2, mode="edge") * GRID[:9]).sum(), (V,)),
    "pad_reflect": (lambda x: (np.pad(x, (1, 3), mode="reflect") * GRID[:9]).sum(), (V,)),
    "pad_symmetric_wrap": (lambda x: (np.pad(x, 1, mode="symmetric") ** 2 + np.pad(x, 1, mode="wrap")).sum(), (X,)),
    "take": (lambda x: (np.take(x, [0, 2, 2], axis=1) ** 2).sum(), (X,)),
    "take_along_axis_argsort": (lambda x: np.take_along_axis(x, np.argsort(x, axis=1), axis=1)[:, 0].sum(), (X,)),
    "argsort_gather": (lambda x: (x[np.argsort(x)] * W).sum(), (V,)),
    "partition": (lambda x: np.partition(x, 2)[2] + np.partition(x, (0, 4))[4], (V,)),
    "argpartition_gather": (lambda x: x[np.argpartition(x, 1)[:2]].sum(), (V,)),
    "put": (lambda x: (lambda y: (np.put(y, [0, 2, 0], x[:3] * 2), y)[1])(np.zeros_like(x)).sum(), (V,)),
    "trace_offset": (lambda x: np.trace(x, offset=1), (S,)),
    "diag_of_matrix": (lambda x: (np.diag(x) * C).sum(), (S,)),
    "diag_from_vector": (lambda x: (np.diag(x, k=1) ** 2 * GRID[:36].reshape(6, 6)).sum(), (V,)),
    "diagflat": (lambda x: (np.diagflat(x[0, :2], -1) * GRID[:9].reshape(3, 3)).sum(), (Y,)),
    "diagonal": (lambda x: np.diagonal(x, offset=-1).sum(), (S,)),
    "triu_tril": (lambda x: (np.triu(x, 1) * Y + np.tril(x) ** 2).sum(), (X,)),
    "meshgrid": (lambda x: (np.meshgrid(x, W[:3])[0] ** 2 * np.meshgrid(x, W[:3], indexing="ij")[1].T).sum(), (V,)),
    "split": (lambda x: (np.split(x, 2, axis=1)[1] ** 2).sum(), (X,)),
    "array_split_hsplit": (lambda x: (np.array_split(x, 3, axis=1)[2] ** 2).sum() + np.hsplit(x, [1])[0].sum(),
                           (X,)),
    "where_broadcast": (lambda x: np.where(x > 0, x, W[:4]).sum() + np.where(C > 0, x ** 2, 0.0).sum(), (X,)),
}
NAN_FUNCTIONS = {
    "nansum": (lambda x: np.nansum(x * 2, axis=1).sum(), (XN,)),
    "nanprod": (lambda x: np.nanprod(x), (XN,)),
    "nancumsum": (lambda x: (np.nancumsum(x) * GRID[:12]).sum(), (XN,)),
    "nancumprod": (lambda x: (np.nancumprod(x, axis=1) * Y).sum(), (XN,)),
    "nanmean": (lambda x: np.nanmean(x, axis=0).sum(), (XN,)),
    "nanmax": (lambda x: np.nanmax(x), (XN,)),
    "nanmin_axis": (lambda x: np.nanmin(x, axis=1, keepdims=True).sum(), (XN,)),
    "nanvar": (lambda x: np.nanvar(x), (XN,)),
    "nanstd_ddof": (lambda x: np.nanstd(x, axis=1, ddof=1).sum(), (XN,)),
    "nanmean_no_nan": (lambda x: np.nanmean(x), (X,)),
    "nanmedian": (lambda x: np.nanmedian(x), (XN,)),
    "nanmedian_axis_keepdims": (lambda x: (np.nanmedian(x, axis=1, keepdims=True) * Y).sum(), (XN,)),
    "nanmedian_no_nan": (lambda x: np.nanmedian(x, axis=0).sum(), (X,)),
    "nanpercentile_axis": (lambda x: np.nanpercentile(x, [25, 75], axis=1).sum(), (XN,)),
    "nanpercentile_axes": (lambda x: np.nanpercentile(x[None], 40, axis=(0, 2)).sum(), (XN,)),
    "nanquantile_nearest": (lambda x: np.nanquantile(x, 0.4, axis=0, method="nearest").sum(), (XN,)),
    "nanquantile_midpoint": (lambda x: np.nanquantile(x, [0.1, 0.5], 1, method="midpoint").sum(), (XN,)),
    "nanmedian_float32": (lambda x: np.nanmedian(x, axis=0).sum(), (XN.astype(np.float32),)),
    "nanquantile_all_nan_slice": (lambda x: np.nansum(np.nanquantile(x, 0.3, axis=0)), (XN3,)),
}
# np.linspace's rule and NumPy's logspace/geomspace code over it: traced start/stop, num static
SPACES = {
    "linspace": (lambda a, b: (np.linspace(a[0], b[0], 7) * GRID[:7]).sum(), (C, W), (0, 1)),
    "linspace_open_retstep": (lambda a, b: (lambda y, step: (y * step).sum())(
        *np.linspace(a[1], b[1], 5, endpoint=False, retstep=True)), (C, W), (0, 1)),
    "linspace_arrays_axis": (lambda a, b: np.sin(np.linspace(a, b, 3, axis=-1)).sum(), (C, W[:4]), (0, 1)),
    "linspace_one": (lambda a, b: np.linspace(a, b, 1).sum(), (C, W[:4]), (0, 1)),
    "linspace_float_stop": (lambda a: np.cos(np.linspace(a[2], 3.0, 6)).sum(), (C,)),
    "logspace": (lambda a, b: np.logspace(a[0], b[0], 5, base=2.0).sum(), (C, W), (0, 1)),
    "logspace_axis": (lambda a, b: np.logspace(a, b, 4, axis=1).sum(), (C / 4, W[:4]), (0, 1)),
    "geomspace": (lambda a, b: np.geomspace(a[0] ** 2 + 1, b[0], 6).sum(), (C, W), (0, 1)),
    "geomspace_negative_open": (lambda a, b: np.geomspace(-b, -b - a ** 2, 4, endpoint=False).sum(),
                                (C, W[:4]), (0, 1)),
}
CASES = {**STATISTICS, **POLYNOMIALS, **NORMS, **SIGNALS, **CONTRACTIONS, **UFUNCS, **REARRANGEMENTS,
         **NAN_FUNCTIONS, **SPACES}


def _unpack(name):
    fn, args, *argnums = CASES[name]
    return fn, args, argnums[0] if argnums else 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args, argnums = _unpack(name)
    assert_grad(fn, *args, argnums=argnums)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_value_matches_numpy(name):
    fn, args, argnums = _unpack(name)
    value_and_grad = jitgrad.value_and_grad(fn, argnums=argnums)
    value_and_grad(*args)
    value, _ = value_and_grad(*args)                        # the cached, compiled kernel's value
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12, atol=1e-12)


# np.cov and np.corrcoef: the trace holds `avg[:, None]` on a 1-d array, and ir/passes.py's
# `_whole_index` reads x.shape[i] for spec entries past x.ndim (IndexError) before checking the length.
COV_CORRCOEF = {
    "cov": (lambda x: np.cov(x).sum(), (X,)),
    "cov_rowvar_ddof": (lambda x: (np.cov(x, rowvar=False, ddof=0) ** 2).sum(), (X,)),
    "cov_aweights": (lambda x: np.cov(x, aweights=W[:4]).sum(), (X,)),
    "corrcoef": (lambda x: (np.corrcoef(x) ** 2).sum(), (X,)),
}


@pytest.mark.parametrize("name", sorted(COV_CORRCOEF))
def test_cov_corrcoef_gradient(name):
    fn, args = COV_CORRCOEF[name]
    assert_grad(fn, *args)


def _compiled(fn, *args, argnums=0):
    """(value, gradient) from the compiled kernel (second call)."""
    value_and_grad = jitgrad.value_and_grad(fn, argnums=argnums)
    value_and_grad(*args)
    return value_and_grad(*args)


def test_logaddexp_gradient_at_a_tie_is_one_half_each():
    _, (gx, gy) = _compiled(lambda x, y: np.logaddexp(x, y), 0.25, 0.25, argnums=(0, 1))
    assert gx == gy == 0.5
    _, (gx, gy) = _compiled(lambda x, y: np.logaddexp2(x, y), 3.0, 3.0, argnums=(0, 1))
    assert gx == gy == 0.5


def test_elementwise_values_match_numpy_on_signs_and_zeros():
    x = np.array([-7.5, -0.0, 0.0, 2.25, 27.0, -8.0])
    y = np.array([2.0, -3.0, 1.5, -0.0, 4.0, -2.5])
    for ufunc, divisor in ((np.fmod, y + (y == 0)), (np.copysign, y), (np.logaddexp, y), (np.hypot, y)):
        value, _ = _compiled(lambda x: np.sum(ufunc(x, divisor) * np.arange(1, 7)), x)
        assert value == pytest.approx(np.sum(ufunc(x, divisor) * np.arange(1, 7)), rel=1e-14), ufunc.__name__
    _, g = _compiled(lambda x: np.sum(np.copysign(x, y)), x)
    np.testing.assert_array_equal(g, [-1.0, 0.0, 0.0, -1.0, 1.0, 1.0])     # -0.0 in y flips the sign


def test_vander_derivative_is_exact_at_zero():
    _, g = _compiled(lambda x: np.vander(x, 4).sum(), np.array([0.0, 2.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0 + 2 * 2.0 + 3 * 4.0])


def test_put_repeated_index_last_write_wins():
    def f(x):
        y = np.zeros_like(x)
        y.put([1, 1, -1], x[:3])
        return np.sum(y * np.array([1.0, 10.0, 100.0]))
    value, g = _compiled(f, np.array([1.0, 2.0, 3.0]))
    assert value == 10.0 * 2.0 + 100.0 * 3.0
    np.testing.assert_array_equal(g, [0.0, 10.0, 100.0])


def test_partition_gives_numpy_checks_and_a_sorted_result():
    assert _compiled(lambda x: np.partition(x, 1)[1], np.array([3.0, 1.0, 2.0]))[1].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        jitgrad.jit_grad(lambda x: np.partition(x, 5)[0])(np.array([3.0, 1.0, 2.0]))


def test_interp_retraces_when_x_changes_interval():
    grad = jitgrad.jit_grad(lambda x: np.sum(np.interp(x, XP, XP ** 2)))
    slopes = (XP[1:] + XP[:-1])                                # (xp[j+1]^2 - xp[j]^2) / (xp[j+1] - xp[j])
    for shift in (0.0, 0.35, -0.7, 5.0):
        x = X_OFF_KNOTS[1:5] + shift
        j = np.clip(np.searchsorted(XP, x, side="right") - 1, 0, len(XP) - 2)
        expected = np.where((x >= XP[0]) & (x <= XP[-1]), slopes[j], 0.0)
        np.testing.assert_allclose(grad(x), expected, rtol=1e-12)


@pytest.mark.parametrize("fn, name", [
    (lambda x: np.pad(x, 1, mode="mean").sum(), "np.pad"),
    (lambda x: np.interp(x, XP[::-1], XP).sum(), "np.interp"),
])
def test_refused_functions_name_themselves(fn, name):
    with pytest.raises(jitgrad.UnsupportedError, match=name):
        jitgrad.jit_grad(fn)(V)
