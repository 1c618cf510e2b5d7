"""Rules for scipy.linalg (loaded once scipy.linalg is imported), on numpy.linalg's helpers (linalg.py):
solve_triangular, cholesky, cho_factor and cho_solve map to the IR's triangular ops; eigh, solve_banded and
solve_sylvester are numpy.linalg's rules on the equivalent dense problem; expm maps to the IR's `expm` op
(derivatives by the block-matrix Fréchet derivative, ir/linalg_rules.py); norm is numpy.linalg.norm's rule
(SciPy calls BLAS nrm2 for vectors, which cannot be traced); eig and eigvals are refused as numpy's are.
"""
import numpy as np
import scipy.linalg as sl

from ...ir import linalg_rules as L
from ..arrays.array_api import as_traced, ravel
from ..recording.registry import register
from ..arrays.values import builder, const, make, reshape, unwrap
from ..arrays.refusals import refuse
from .linalg import as_matrix, cholesky_factor, complex_spectrum, eigh, eigvalsh, operand, solve
from .linalg import norm as numpy_norm
from .numpy_library import gather, kron


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_a=False, overwrite_b=False,
                     check_finite=True):
    """scipy.linalg.solve_triangular (trans and unit_diagonal by transposing / replacing the diagonal)."""
    concrete = sl.solve_triangular(unwrap(a), unwrap(b), trans=trans, lower=lower,
                                   unit_diagonal=unit_diagonal, check_finite=check_finite)
    bld = builder()
    x = operand(a, concrete.dtype)
    if trans in (1, 2, "T", "C"):
        x, lower = L.mT(bld, x), not lower
    if unit_diagonal:
        x = bld.where(bld.const(np.eye(x.shape[-1], dtype=bool)), const(1, x.dtype), x)
    rhs = as_matrix(operand(b, concrete.dtype))
    return make(reshape(bld.triangular_solve(x, rhs, lower=bool(lower)), concrete.shape), concrete)


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """scipy.linalg.cholesky (upper factor from the upper triangle by default)."""
    concrete = sl.cholesky(unwrap(a), lower=lower, check_finite=check_finite)
    return make(cholesky_factor(operand(a, concrete.dtype), not lower), concrete)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """scipy.linalg.cho_factor: (c, lower), c the factor in its triangle.  SciPy documents the other
    triangle as arbitrary (a's entries in SciPy <= 1.17, zeros later): it is traced as what this SciPy
    actually returns, a's entries or zeros, and anything else is refused."""
    c, low = sl.cho_factor(unwrap(a), lower=lower, check_finite=check_finite)
    bld = builder()
    x = operand(a, c.dtype)
    n = x.shape[-1]
    triangle = np.tri(n, dtype=bool) if low else ~np.tri(n, k=-1, dtype=bool)
    rest = c[..., ~triangle]
    if np.array_equal(rest, np.asarray(unwrap(a))[..., ~triangle]):
        other = x
    elif not rest.any():
        other = bld.fill((), c.dtype, 0.0)
    else:
        refuse("scipy.linalg.cho_factor: this SciPy leaves data jitgrad cannot describe in the unused "
               "triangle; use scipy.linalg.cholesky instead")
    return make(bld.where(bld.const(triangle), cholesky_factor(x, not low), other), c), low


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """scipy.linalg.cho_solve: two triangular solves with the factor (only its triangle is read)."""
    c, lower = c_and_lower
    concrete = sl.cho_solve((unwrap(c), lower), unwrap(b), check_finite=check_finite)
    bld = builder()
    factor = operand(c, concrete.dtype)
    low = factor if lower else L.mT(bld, factor)               # A = low low^T
    y = bld.triangular_solve(low, as_matrix(operand(b, concrete.dtype)), lower=True)
    return make(reshape(bld.triangular_solve(L.mT(bld, low), y, lower=False), concrete.shape), concrete)


def scipy_eigh(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False, type=1,
               check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    """scipy.linalg.eigh of one symmetric matrix (no b, no subsets) as np.linalg.eigh: eigenvector signs
    are NumPy's, the traced run and the compiled code agree on them."""
    if b is not None or type != 1 or subset_by_index is not None or subset_by_value is not None:
        refuse("scipy.linalg.eigh is traced for a single matrix without b=, type= or subsets")
    if check_finite and not np.isfinite(unwrap(a)).all():
        raise ValueError("array must not contain infs or NaNs")
    uplo = "L" if lower else "U"
    return eigvalsh(a, UPLO=uplo) if eigvals_only else tuple(eigh(a, UPLO=uplo))


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    """scipy.linalg.solve_banded: the dense matrix a[i, j] = ab[u + i - j, j] (zero off the band),
    solved with np.linalg.solve's rule."""
    concrete = sl.solve_banded(l_and_u, unwrap(ab), unwrap(b))
    (lower, upper), bands = l_and_u, as_traced(ab)
    n = bands.value.shape[1]
    rows = upper + np.arange(n)[:, None] - np.arange(n)[None, :]
    inside = (rows >= 0) & (rows <= lower + upper)
    positions = np.where(inside, np.where(inside, rows, 0) * n + np.arange(n)[None, :], bands.value.size)
    dense_value = np.append(bands.value.ravel(), 0)[positions]
    dense = make(gather(bands, positions, builder().fill((1,), bands.ir.dtype, 0)), dense_value)
    return make(solve(dense, b).ir, concrete)


def solve_sylvester(a, b, q):
    """scipy.linalg.solve_sylvester (A X + X B = Q) of real operands, as the linear system
    (A kron I + I kron B^T) vec(X) = vec(Q) on row-major vec (small matrices: O((nm)^3) work)."""
    concrete = sl.solve_sylvester(unwrap(a), unwrap(b), unwrap(q))
    n, m = concrete.shape
    system = kron(a, np.eye(m)) + kron(np.eye(n), as_traced(b).T)
    return make(reshape(solve(system, ravel(q)).ir, concrete.shape), concrete)


def expm(A):
    """scipy.linalg.expm of a real (stack of) square matrices."""
    concrete = sl.expm(unwrap(A))
    return make(builder().expm(operand(A, concrete.dtype)), concrete)


def norm(a, ord=None, axis=None, keepdims=False, check_finite=True):
    """scipy.linalg.norm: numpy.linalg.norm's rule (check_finite only raises, as SciPy does)."""
    if check_finite:
        sl.norm(unwrap(a), ord=ord, axis=axis, keepdims=keepdims)       # SciPy's errors for inf/nan
    return numpy_norm(a, ord=ord, axis=axis, keepdims=keepdims)


for _fn, _rule in {sl.solve_triangular: solve_triangular, sl.cholesky: cholesky, sl.cho_factor: cho_factor,
                   sl.cho_solve: cho_solve, sl.eigh: scipy_eigh, sl.solve_banded: solve_banded,
                   sl.solve_sylvester: solve_sylvester, sl.expm: expm, sl.norm: norm,
                   sl.eig: complex_spectrum("scipy.linalg.eig"),
                   sl.eigvals: complex_spectrum("scipy.linalg.eigvals")}.items():
    register(_fn)(_rule)
