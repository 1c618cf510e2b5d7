"""Rules for numpy.linalg (scipy.linalg's are in scipy_linalg.py, on the same helpers): each routine maps to
the IR's linear-algebra ops (ir/ops.py
LINALG) or to a composition of them built with ir/linalg_rules.py's matrix helpers; the concrete
result always comes from the real routine, and `make` checks that the IR agrees on shape and dtype.

Compositions: cholesky(upper=True) and eigh(UPLO='U') work on the transposed operand; pinv and lstsq use the QR
factors of the operand (or of its transpose when it is
wide) and are traced only where the matrix has full rank, which a guard re-checks on every call;
matrix_power multiplies by binary powers; norm covers every `ord` of numpy's.  Refused loudly: complex
operands, svd(full_matrices=True) of non-square matrices, hermitian=True, qr of wide matrices and
qr(mode='complete'/'raw') where it differs from 'reduced', pinv/lstsq of rank-deficient matrices, eig
(complex eigenvectors).  eigvals is the IR's eig_values (complex; np.roots uses it).
"""
import functools
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ...ir import linalg_rules as L
from ..arrays.array_api import as_traced
from ..recording.registry import register
from ..arrays.values import astype, builder, const, guard, make, reshape, unwrap
from ..arrays.refusals import refuse


def operand(a, dtype):
    """The IR value of operand `a`, cast to the routine's result dtype (integer matrices: float64)."""
    x = as_traced(a)
    if np.iscomplexobj(x.value):
        refuse("complex linear algebra is not traced (real float operands only)")
    return astype(x.ir, dtype)


def as_matrix(v):
    """A right-hand side of shape (n,) as (n, 1); matrices (..., n, k) unchanged."""
    return reshape(v, v.shape + (1,)) if v.ndim == 1 else v


def cholesky_factor(x, upper):
    """The Cholesky factor of `x` from its lower triangle, or (upper) the upper factor from its upper one."""
    b = builder()
    return L.mT(b, b.cholesky(L.mT(b, x))) if upper else b.cholesky(x)


def _one_op(op, np_fn):
    def handler(a):
        concrete = np_fn(unwrap(a))
        return make(builder().emit(op, operand(a, concrete.dtype)), concrete)
    handler.__doc__ = f"np.linalg.{np_fn.__name__} as the IR op {op}."
    return handler


def cholesky(a, /, *, upper=False):
    """np.linalg.cholesky (reads the lower triangle; upper=True: the upper one)."""
    concrete = np.linalg.cholesky(unwrap(a), upper=upper)
    return make(cholesky_factor(operand(a, concrete.dtype), upper), concrete)


def _parts(concrete, values):
    """numpy's result namedtuple of traced parts."""
    return type(concrete)(*[make(v, c) for v, c in zip(values, concrete)])


def slogdet(a):
    """np.linalg.slogdet: (sign, log|det|)."""
    concrete = np.linalg.slogdet(unwrap(a))
    x = operand(a, concrete[1].dtype)
    b = builder()
    return _parts(concrete, [b.slogdet_sign(x), b.slogdet_logabs(x)])


def _symmetric_operand(a, uplo, dtype):
    """The operand of eigh as the IR's lower-reading ops see it (UPLO='U' reads the transpose's lower)."""
    if uplo not in ("L", "U"):
        refuse(f"eigh: UPLO must be 'L' or 'U', got {uplo!r}")
    x = operand(a, dtype)
    return L.mT(builder(), x) if uplo == "U" else x


def _lower_reading(a, uplo):
    """The concrete operand as the IR's lower-reading eigh ops see it: for UPLO='U' the transpose, read
    with UPLO='L' (the same symmetric matrix; LAPACK may then choose other eigenvector signs than for
    UPLO='U', and the traced run must agree with the compiled code, which reads the lower triangle)."""
    value = np.asarray(unwrap(a))
    return np.swapaxes(value, -1, -2) if uplo == "U" else value


def eigh(a, UPLO="L"):
    """np.linalg.eigh: (eigenvalues, eigenvectors); eigenvector derivatives need distinct eigenvalues."""
    np.linalg.eigh(unwrap(a), UPLO=UPLO)                                   # NumPy's checks
    concrete = np.linalg.eigh(_lower_reading(a, UPLO))
    x = _symmetric_operand(a, UPLO, concrete[1].dtype)
    b = builder()
    return _parts(concrete, [b.eigh_values(x), b.eigh_vectors(x)])


def eigvalsh(a, UPLO="L"):
    """np.linalg.eigvalsh."""
    concrete = np.linalg.eigvalsh(unwrap(a), UPLO=UPLO)
    return make(builder().eigh_values(_symmetric_operand(a, UPLO, concrete.dtype)), concrete)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """np.linalg.svd: the reduced factors (full_matrices=True only where they are the same: square)."""
    concrete = np.linalg.svd(unwrap(a), full_matrices=full_matrices, compute_uv=compute_uv, hermitian=hermitian)
    if hermitian:
        refuse("np.linalg.svd(hermitian=True) is not traced; use np.linalg.eigh or hermitian=False")
    b = builder()
    x = operand(a, concrete[1].dtype if compute_uv else concrete.dtype)
    if not compute_uv:
        return make(b.svd_s(x), concrete)
    if full_matrices and x.shape[-1] != x.shape[-2]:
        refuse("np.linalg.svd(full_matrices=True) of a non-square matrix is not traced (the completed "
               "factors are not unique); pass full_matrices=False")
    return _parts(concrete, [b.svd_u(x), b.svd_s(x), b.svd_vh(x)])


def svdvals(x, /):
    """np.linalg.svdvals."""
    return svd(x, compute_uv=False)


def qr(a, mode="reduced"):
    """np.linalg.qr for matrices with at least as many rows as columns."""
    concrete = np.linalg.qr(unwrap(a), mode=mode)
    x = operand(a, (concrete if mode == "r" else concrete[1]).dtype)
    m, n = x.shape[-2:]
    if m < n:
        refuse("np.linalg.qr of a wide matrix (fewer rows than columns) is not traced; factor its transpose")
    b = builder()
    if mode == "r":
        return make(b.qr_r(x), concrete)
    if mode == "reduced" or (mode == "complete" and m == n):
        return _parts(concrete, [b.qr_q(x), b.qr_r(x)])
    return refuse(f"np.linalg.qr(mode={mode!r}) is not traced here; use mode='reduced'")


def solve(a, b):
    """np.linalg.solve (b of shape (n,) is one vector, else a stack of (n, k) matrices)."""
    concrete = np.linalg.solve(unwrap(a), unwrap(b))
    rhs = operand(b, concrete.dtype)
    return make(reshape(builder().solve(operand(a, concrete.dtype), as_matrix(rhs)), concrete.shape), concrete)


def _full_rank(x, x_value, rcond, what):
    """Refuse unless matrix `x` (IR value; concrete `x_value`) has full rank by numpy's criterion (every
    singular value above rcond times the largest), and guard that it keeps it."""
    s = np.linalg.svd(x_value, compute_uv=False)
    if not np.all(s[..., -1] > rcond * s[..., 0]):
        refuse(f"{what} of a rank-deficient matrix is not traced (its derivative is not defined where the "
               "rank changes); jitgrad traces it only at full rank")
    b = builder()
    sv = b.svd_s(x)
    last = sv.ndim - 1
    smallest, largest = b.min(sv, axis=(last,), keepdims=False), b.max(sv, axis=(last,), keepdims=False)
    full = b.greater(smallest, b.multiply(const(rcond, sv.dtype), largest))
    guard(b.min(full, axis=tuple(range(full.ndim)), keepdims=False), True, f"{what}: the matrix has full rank")
    return sv


def _tall_qr(x):
    """(Q, R, transposed): the QR factors of x, or of x^T when x is wide."""
    b = builder()
    transposed = x.shape[-2] < x.shape[-1]
    y = L.mT(b, x) if transposed else x
    return b.qr_q(y), b.qr_r(y), transposed


def _pinv_apply(x, rhs=None):
    """pinv(x) @ rhs (pinv(x) when rhs is None) for x of full rank, from QR factors."""
    b = builder()
    q, r, transposed = _tall_qr(x)
    if not transposed:          # x = Q R:  pinv = R^-1 Q^T
        qt = L.mT(b, q)
        return b.triangular_solve(r, qt if rhs is None else L.matmul(b, qt, rhs), lower=False)
    # x^T = Q R:  pinv = Q R^-T
    rhs = b.const(np.eye(x.shape[-2], dtype=x.dtype)) if rhs is None else rhs
    return L.matmul(b, q, b.triangular_solve(L.mT(b, r), rhs, lower=True))


def _pinv_cutoff(shape, dtype, rcond, rtol):
    """numpy's relative cutoff for pinv's singular values."""
    if rcond is not None:
        return rcond
    if rtol is np._NoValue:
        return 1e-15
    return max(shape[-2:]) * np.finfo(dtype).eps if rtol is None else rtol


def pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    """np.linalg.pinv at full rank (a guard re-checks the rank)."""
    kwargs = {} if rtol is np._NoValue else {"rtol": rtol}
    concrete = np.linalg.pinv(unwrap(a), rcond=rcond, hermitian=hermitian, **kwargs)
    if hermitian:
        refuse("np.linalg.pinv(hermitian=True) is not traced; pass hermitian=False")
    x = operand(a, concrete.dtype)
    cutoff = _pinv_cutoff(x.shape, x.dtype, rcond, rtol)
    _full_rank(x, np.asarray(unwrap(a), dtype=x.dtype), cutoff, "np.linalg.pinv")
    return make(_pinv_apply(x), concrete)


def lstsq(a, b, rcond=None):
    """np.linalg.lstsq at full rank: (solution, residuals, rank, singular values)."""
    x_c, res_c, rank_c, s_c = np.linalg.lstsq(unwrap(a), unwrap(b), rcond=rcond)
    x = operand(a, x_c.dtype)
    rhs = operand(b, x_c.dtype)
    m, n = x.shape
    cutoff = np.finfo(x_c.dtype).eps * max(m, n) if rcond is None else rcond
    sv = _full_rank(x, np.asarray(unwrap(a), dtype=x_c.dtype), cutoff, "np.linalg.lstsq")
    bld = builder()
    solution = _pinv_apply(x, as_matrix(rhs))
    residuals = res_c
    if res_c.size:
        miss = bld.subtract(as_matrix(rhs), L.matmul(bld, x, solution))
        residuals = make(bld.sum(bld.multiply(miss, miss), axis=(0,), keepdims=False), res_c)
    return make(reshape(solution, x_c.shape), x_c), residuals, rank_c, make(sv, s_c)


def matrix_power(a, n):
    """np.linalg.matrix_power by binary powers (inverse first for negative n)."""
    n = operator.index(n)
    concrete = np.linalg.matrix_power(unwrap(a), n)
    b = builder()
    x = operand(a, concrete.dtype)
    if n == 0:
        return make(b.broadcast_to(L.eye_like(b, x), shape=x.shape), concrete)
    power, n, result = (b.inv(x) if n < 0 else x), abs(n), None
    while n:
        if n & 1:
            result = power if result is None else L.matmul(b, result, power)
        n >>= 1
        if n:
            power = L.matmul(b, power, power)
    return make(result, concrete)


# -- norm -------------------------------------------------------------------------------------------------
def _vector_norm(v, ord, axes):
    b = builder()
    magnitude = b.absolute(v)
    if ord is None or ord == 2:
        return b.sqrt(b.sum(b.multiply(v, v), axis=axes, keepdims=False))
    if ord in (np.inf, -np.inf):
        return b.emit("max" if ord > 0 else "min", magnitude, axis=axes, keepdims=False)
    if ord == 0:
        return b.sum(b.astype(b.not_equal(v, const(0, v.dtype)), dtype=v.dtype), axis=axes, keepdims=False)
    if ord == 1:
        return b.sum(magnitude, axis=axes, keepdims=False)
    p = const(ord, v.dtype)
    return b.power(b.sum(b.power(magnitude, p), axis=axes, keepdims=False), b.divide(const(1, v.dtype), p))


def _matrix_norm(v, ord, axes):
    b = builder()
    rest = [i for i in range(v.ndim) if i not in axes]
    m = b.transpose(v, perm=tuple(rest) + tuple(axes))        # the two axes last, in the given order
    last = m.ndim - 1
    if ord in (None, "fro"):
        return b.sqrt(b.sum(b.multiply(m, m), axis=(last - 1, last), keepdims=False))
    if ord in ("nuc", 2, -2):
        s = b.svd_s(m)
        reduce = {"nuc": "sum", 2: "max", -2: "min"}[ord]
        return b.emit(reduce, s, axis=(last - 1,), keepdims=False)
    if ord in (1, -1, np.inf, -np.inf):       # max/min over columns (1) or rows (inf) of absolute sums
        summed = b.sum(b.absolute(m), axis=(last - 1 if ord in (1, -1) else last,), keepdims=False)
        return b.emit("max" if ord > 0 else "min", summed, axis=(last - 1,), keepdims=False)
    return refuse(f"np.linalg.norm: invalid norm order {ord!r} for matrices")


def norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm: every vector and matrix `ord`, over `axis` (None: all, as numpy)."""
    concrete = np.linalg.norm(unwrap(x), ord=ord, axis=axis, keepdims=keepdims)
    v = operand(x, concrete.dtype)
    if axis is None:
        axes = tuple(range(v.ndim))
        vector = ord is None or v.ndim == 1
    else:
        axes = normalize_axis_tuple(axis, v.ndim)
        vector = len(axes) == 1
    result = (_vector_norm if vector else _matrix_norm)(v, ord, axes)
    return make(reshape(result, np.shape(concrete)), concrete)


def complex_spectrum(name):
    """The rule of `name` (np.linalg.eig, scipy.linalg.eig/eigvals): refused (complex eigenvectors,
    normalised by LAPACK's convention, whose derivative jitgrad does not compute)."""
    def refused(*args, **kwargs):
        refuse(f"{name} of a traced matrix is not supported (complex eigenvectors); np.linalg.eigvals is, and "
               "for a symmetric matrix np.linalg.eigh")
    return refused


@functools.cache
def _eigvals_always_complex():
    """Whether this NumPy's eigvals answers complex even when every eigenvalue is real (2.5 on)."""
    return np.iscomplexobj(np.linalg.eigvals(np.eye(1)))


def eigvals(a):
    """np.linalg.eigvals of a real matrix: the IR's eig_values (complex).  NumPy before 2.5 answers real
    eigenvalues when every imaginary part is 0: which kind it answered is guarded; distinct eigenvalues
    differentiate."""
    concrete = np.linalg.eigvals(unwrap(a))
    b = builder()
    values = b.eig_values(operand(a, np.result_type(concrete.real.dtype, np.float32)))
    if _eigvals_always_complex():          # NumPy >= 2.5: the kind does not depend on the data
        return make(values, concrete)
    zero = const(0, concrete.real.dtype)
    real = b.min(b.equal(b.imag(values), zero), axis=tuple(range(values.ndim)), keepdims=False)
    guard(real, not np.iscomplexobj(concrete), "np.linalg.eigvals: whether every eigenvalue is real")
    return make(b.real(values) if not np.iscomplexobj(concrete) else values, concrete)


_NUMPY = {
    np.linalg.eig: complex_spectrum("np.linalg.eig"), np.linalg.eigvals: eigvals,
    np.linalg.inv: _one_op("inv", np.linalg.inv), np.linalg.det: _one_op("det", np.linalg.det),
    np.linalg.cholesky: cholesky, np.linalg.slogdet: slogdet, np.linalg.eigh: eigh,
    np.linalg.eigvalsh: eigvalsh, np.linalg.svd: svd, np.linalg.svdvals: svdvals, np.linalg.qr: qr,
    np.linalg.solve: solve, np.linalg.pinv: pinv, np.linalg.lstsq: lstsq,
    np.linalg.matrix_power: matrix_power, np.linalg.norm: norm,
}
for _fn, _rule in _NUMPY.items():
    register(_fn)(_rule)
