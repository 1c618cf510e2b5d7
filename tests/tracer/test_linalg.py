"""numpy.linalg and scipy.linalg called as they ship, inside functions differentiated by jitgrad.jit_grad:
gradients against finite differences (tests/e2e.py), table-driven over routines and their keyword
arguments; the refusals (non-unique factors, rank-deficient pinv/lstsq, wide qr) and the full-rank
guard; repeated eigenvalues give non-finite derivatives rather than wrong finite ones."""
import numpy as np
import pytest
import scipy.linalg as sl

import gradcheck
import jitgrad
from e2e import assert_grad
from jitgrad.ir import Builder
from jitgrad.ir.linalg_rules import diagonal

RNG = np.random.default_rng(7)


def spd(n, batch=()):
    m = RNG.uniform(-1, 1, batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) / n + np.eye(n)


def general(*shape):
    return RNG.uniform(-1, 1, shape) + (3 * np.eye(shape[-1]) if shape[-1] == shape[-2] else 0)


def spectrum(m, n, values):
    """An m x n matrix with the given singular values (eigenvalues when symmetric, m == n == len)."""
    u = np.linalg.qr(RNG.standard_normal((m, len(values))))[0]
    v = np.linalg.qr(RNG.standard_normal((n, len(values))))[0]
    return (u * values) @ v.T


def symmetric(n):
    """Symmetric, eigenvalues 1, 1.8, 2.6, ..."""
    q = np.linalg.qr(RNG.standard_normal((n, n)))[0]
    return (q * (1.0 + 0.8 * np.arange(n))) @ q.T


def weighted(fn, *shape_of_outputs):
    """sum(w * fn(...)) with fixed random weights, one per output: every output entry is checked."""
    weights = [RNG.standard_normal(s) for s in shape_of_outputs]

    def loss(*args):
        out = fn(*args)
        outs = out if isinstance(out, tuple) else (out,)
        return sum(np.sum(w * o) for w, o in zip(weights, outs))
    return loss


B32 = RNG.standard_normal((3, 2))
VEC = RNG.standard_normal(3)

# name -> (function of the arguments, arguments, argnums)
CASES = {
    "inv": (weighted(np.linalg.inv, (3, 3)), (general(3, 3),), 0),
    "inv_batch": (weighted(np.linalg.inv, (2, 3, 3)), (general(2, 3, 3),), 0),
    "det": (np.linalg.det, (general(3, 3),), 0),
    "det_batch": (weighted(np.linalg.det, (2,)), (general(2, 3, 3),), 0),
    "slogdet": (lambda a: np.linalg.slogdet(a).logabsdet * np.linalg.slogdet(a).sign, (general(3, 3),), 0),
    "slogdet_tuple": (lambda a: np.linalg.slogdet(a)[1], (-general(3, 3),), 0),
    "solve_matrix": (weighted(np.linalg.solve, (3, 2)), (general(3, 3), B32), (0, 1)),
    "solve_vector": (weighted(np.linalg.solve, (3,)), (general(3, 3), VEC), (0, 1)),
    "solve_batch": (weighted(np.linalg.solve, (2, 3)), (general(2, 3, 3), VEC), (0, 1)),
    "cholesky": (weighted(np.linalg.cholesky, (3, 3)), (spd(3),), 0),
    "cholesky_upper": (weighted(lambda a: np.linalg.cholesky(a, upper=True), (3, 3)), (spd(3),), 0),
    "cholesky_batch": (weighted(np.linalg.cholesky, (2, 3, 3)), (spd(3, (2,)),), 0),
    "qr": (weighted(np.linalg.qr, (4, 3), (3, 3)), (general(4, 3),), 0),
    "qr_square_complete": (weighted(lambda a: np.linalg.qr(a, mode="complete"), (3, 3), (3, 3)),
                           (general(3, 3),), 0),
    "qr_r": (weighted(lambda a: np.linalg.qr(a, mode="r"), (3, 3)), (general(4, 3),), 0),
    "eigh": (weighted(np.linalg.eigh, (4,), (4, 4)), (symmetric(4),), 0),
    "eigh_upper": (weighted(lambda a: np.linalg.eigh(a, UPLO="U"), (3,), (3, 3)), (symmetric(3),), 0),
    "eigvalsh": (weighted(np.linalg.eigvalsh, (3,)), (symmetric(3),), 0),
    "svd_square_default": (weighted(np.linalg.svd, (3, 3), (3,), (3, 3)), (spectrum(3, 3, [3.0, 2.0, 1.0]),), 0),
    "svd_tall": (weighted(lambda a: np.linalg.svd(a, full_matrices=False), (4, 3), (3,), (3, 3)),
                 (spectrum(4, 3, [3.0, 2.0, 1.0]),), 0),
    "svd_wide": (weighted(lambda a: np.linalg.svd(a, full_matrices=False), (2, 2), (2,), (2, 4)),
                 (spectrum(2, 4, [2.5, 1.0]),), 0),
    "svd_values": (weighted(lambda a: np.linalg.svd(a, compute_uv=False), (3,)), (general(4, 3),), 0),
    "svdvals": (weighted(np.linalg.svdvals, (2,)), (general(2, 3),), 0),
    "pinv_tall": (weighted(np.linalg.pinv, (3, 4)), (general(4, 3),), 0),
    "pinv_wide": (weighted(np.linalg.pinv, (4, 2)), (general(2, 4),), 0),
    "pinv_rtol": (weighted(lambda a: np.linalg.pinv(a, rtol=None), (3, 3)), (general(3, 3),), 0),
    "lstsq": (weighted(lambda a, b: np.linalg.lstsq(a, b)[0], (3,)), (general(5, 3), RNG.standard_normal(5)),
              (0, 1)),
    "lstsq_residuals": (lambda a, b: np.sum(np.linalg.lstsq(a, b, rcond=None)[1]),
                        (general(5, 3), RNG.standard_normal((5, 2))), (0, 1)),
    "lstsq_singular_values": (lambda a, b: np.sum(np.linalg.lstsq(a, b)[3]), (general(4, 3), VEC[:1].repeat(4)),
                              0),
    "lstsq_wide": (weighted(lambda a, b: np.linalg.lstsq(a, b)[0], (4,)), (general(2, 4), VEC[:2]), (0, 1)),
    "matrix_power_3": (weighted(lambda a: np.linalg.matrix_power(a, 3), (3, 3)), (general(3, 3) / 3,), 0),
    "matrix_power_neg": (weighted(lambda a: np.linalg.matrix_power(a, -2), (3, 3)), (general(3, 3),), 0),
    "matrix_power_batch": (weighted(lambda a: np.linalg.matrix_power(a, 5), (2, 2, 2)), (general(2, 2, 2) / 3,), 0),
    "scipy_solve_triangular_lower": (weighted(lambda a, b: sl.solve_triangular(a, b, lower=True), (3, 2)),
                                     (general(3, 3), B32), (0, 1)),
    "scipy_solve_triangular_upper_vec": (weighted(lambda a, b: sl.solve_triangular(a, b), (3,)),
                                         (general(3, 3), VEC), (0, 1)),
    "scipy_solve_triangular_trans_unit": (
        weighted(lambda a, b: sl.solve_triangular(a, b, trans="T", lower=True, unit_diagonal=True), (3, 2)),
        (general(3, 3), B32), (0, 1)),
    "scipy_cholesky_upper": (weighted(sl.cholesky, (3, 3)), (spd(3),), 0),
    "scipy_cholesky_lower": (weighted(lambda a: sl.cholesky(a, lower=True), (3, 3)), (spd(3),), 0),
    "scipy_cho_solve": (weighted(lambda a, b: sl.cho_solve(sl.cho_factor(a), b), (3, 2)), (spd(3), B32), (0, 1)),
    "scipy_cho_solve_lower": (weighted(lambda a, b: sl.cho_solve(sl.cho_factor(a, lower=True), b), (3,)),
                              (spd(3), VEC), (0, 1)),
    "scipy_cho_factor": (weighted(lambda a: sl.cho_factor(a)[0], (3, 3)), (spd(3),), 0),
}

NORM_ORDS = {  # (ord, axis, keepdims, input shape)
    "vec_default": (None, None, False, (4,)), "vec_1": (1, None, False, (4,)), "vec_inf": (np.inf, 0, False, (4,)),
    "vec_neginf": (-np.inf, None, False, (4,)), "vec_3": (3, None, False, (4,)), "vec_half": (0.5, None, False, (4,)),
    "vec_0": (0, None, False, (4,)), "flat_default": (None, None, False, (2, 3, 2)),
    "rows_2": (2, 1, True, (3, 4)), "fro": ("fro", None, False, (3, 4)), "nuc": ("nuc", None, False, (3, 4)),
    "mat_2": (2, None, False, (3, 4)), "mat_neg2": (-2, None, False, (4, 3)), "mat_1": (1, None, False, (3, 4)),
    "mat_neg1": (-1, None, False, (3, 4)), "mat_inf": (np.inf, None, False, (3, 4)),
    "mat_neginf": (-np.inf, None, False, (3, 4)), "mat_axes_keep": ("fro", (2, 0), True, (3, 2, 4)),
    "mat_axes_nuc": ("nuc", (0, 2), False, (3, 2, 4)),
}
for _name, (_ord, _axis, _keep, _shape) in NORM_ORDS.items():
    _out = np.linalg.norm(np.ones(_shape), ord=_ord, axis=_axis, keepdims=_keep).shape
    CASES[f"norm_{_name}"] = (weighted(lambda x, o=_ord, a=_axis, k=_keep: np.linalg.norm(x, ord=o, axis=a, keepdims=k),
                                       _out), (RNG.uniform(0.5, 2, _shape) * RNG.choice([-1, 1], _shape),), 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    fn, args, argnums = CASES[name]
    assert_grad(fn, *args, argnums=argnums)


def test_float32_stays_float32():
    a = spd(3).astype(np.float32)
    g = jitgrad.jit_grad(lambda a: np.sum(np.linalg.inv(np.linalg.cholesky(a))))(a)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))


def test_cholesky_gradient_lives_on_the_lower_triangle():
    g = jitgrad.jit_grad(lambda a: np.sum(np.linalg.cholesky(a) ** 2))(spd(3))
    assert np.all(g[np.triu_indices(3, 1)] == 0) and np.any(g[np.tril_indices(3, -1)] != 0)


@pytest.mark.parametrize("call", [
    lambda a: np.linalg.svd(a),                      # full_matrices=True on a non-square matrix
    lambda a: np.linalg.qr(a.T),                     # wide
    lambda a: np.linalg.pinv(np.outer(a[:, 0], a[0])),   # rank 1
])
def test_refusals_are_loud(call):
    with pytest.raises(jitgrad.UnsupportedError):
        jitgrad.jit_grad(lambda a: np.sum(call(a)[0]))(general(4, 3))


def test_rank_guard_retraces_and_refuses_when_rank_drops():
    grad = jitgrad.jit_grad(lambda a: np.sum(np.linalg.pinv(a)))
    full = general(3, 2)
    assert_grad(lambda a: np.sum(np.linalg.pinv(a)), full)
    grad(full)
    with pytest.raises(jitgrad.UnsupportedError, match="rank-deficient"):
        grad(np.outer(full[:, 0], [1.0, 2.0]))


def test_repeated_eigenvalues_give_non_finite_eigenvector_derivatives():
    g = jitgrad.jit_grad(lambda a: np.sum(np.linalg.eigh(a)[1] * np.arange(9.0).reshape(3, 3)))(np.eye(3))
    assert not np.all(np.isfinite(g))
    values_only = jitgrad.jit_grad(lambda a: np.sum(np.linalg.eigvalsh(a) ** 2))(np.eye(3))
    np.testing.assert_allclose(values_only, 2 * np.eye(3))


def test_second_derivatives_of_a_gaussian_log_likelihood_trace():
    """y^T A^-1 y + log det A through cholesky, triangular_solve and the diagonal: reverse-over-reverse
    and forward-over-reverse by the rule tables, against finite differences."""
    b = Builder()
    a, y = b.input((3, 3), np.float64), b.input((3, 1), np.float64)
    chol = b.cholesky(a)
    z = b.triangular_solve(chol, y, lower=True)
    quad = b.sum(b.multiply(z, z), axis=(0, 1), keepdims=False)
    logdet = b.sum(b.log(diagonal(b, chol)), axis=(0,), keepdims=False)
    trace = b.build([b.add(quad, b.add(logdet, logdet))])
    gradcheck.check_trace(trace, [spd(3), RNG.standard_normal((3, 1))], np.random.default_rng(0), order=2)
