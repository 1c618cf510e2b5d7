"""Derivative rules of the linear-algebra ops (ops.LINALG), reverse and forward, and the batched matrix
helpers they are written with (the tracer's linalg compositions use the helpers too).

`VJP_RULES[op](b, node, g)` and `JVP_RULES[op](b, node, tangents)` follow the conventions of ir/vjp.py
and ir/jvp.py (ir/jvp.py calls a JVP rule only when some tangent is not None).  Everything is built
from IR ops, the linalg ops included, so derivatives differentiate again.  Matrices are the last two
axes; batch axes broadcast as in numpy.linalg.

Routines that read one triangle (cholesky, eigh_*: the lower one; triangular_solve: `lower`'s) are
differentiated as the functions of every entry they are: entries they ignore get zero cotangents,
and a perturbation of a lower entry of cholesky's or eigh's operand moves both mirrored entries of the
symmetric matrix the routine factors.

Limitations, loud rather than wrong: eigenvector and singular-vector derivatives divide by the gaps
between eigenvalues (squared singular values), so repeated values give inf/nan derivatives; singular
vectors of non-square matrices also divide by the singular values; det's reverse rule uses inv(A) and
so gives inf/nan at singular A.  Singular-value and eigenvalue derivatives themselves have no gaps.
"""
import numpy as np

from .errors import UnsupportedError
from .partials import scalar


# -- batched matrix helpers -----------------------------------------------------------------------------
def mT(b, x):
    """`x` with its last two axes swapped."""
    n = x.ndim
    return b.transpose(x, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _to_batch(b, x, batch):
    shape = tuple(batch) + x.shape[-2:]
    return x if x.shape == shape else b.broadcast_to(x, shape=shape)


def matmul(b, x, y):
    """`x @ y` for stacks of matrices, the batch axes broadcast."""
    batch = tuple(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]))
    x, y = _to_batch(b, x, batch), _to_batch(b, y, batch)
    k = len(batch)
    return b.dot_general(x, y, contract=((k + 1,), (k,)), batch=(tuple(range(k)), tuple(range(k))))


def masked(b, x, mask):
    """`x` where the bool matrix `mask` holds, 0 elsewhere."""
    return b.where(b.const(mask), x, scalar(b, 0, x.dtype))


def tril(b, x, k=0):
    """The lower triangle of `x` (numpy's tril)."""
    return masked(b, x, np.tri(x.shape[-2], x.shape[-1], k, dtype=bool))


def triu(b, x, k=0):
    """The upper triangle of `x` (numpy's triu)."""
    return masked(b, x, ~np.tri(x.shape[-2], x.shape[-1], k - 1, dtype=bool))


def eye_like(b, x):
    """The identity matrix of `x`'s last axis, in `x`'s dtype."""
    return b.const(np.eye(x.shape[-1], dtype=x.dtype))


def row(b, v):
    """A stack of vectors (..., k) as rows (..., 1, k): multiplying by it scales columns."""
    return b.reshape(v, shape=v.shape[:-1] + (1, v.shape[-1]))


def column(b, v):
    """A stack of vectors (..., k) as columns (..., k, 1): multiplying by it scales rows."""
    return b.reshape(v, shape=v.shape + (1,))


def diagonal(b, x):
    """The diagonals (..., n) of a stack of square matrices."""
    return b.sum(b.multiply(x, eye_like(b, x)), axis=(x.ndim - 1,), keepdims=False)


def _half_lower(b, x):
    """The lower triangle of `x` with its diagonal halved."""
    n = x.shape[-1]
    return b.multiply(x, b.const(np.tri(n, k=-1, dtype=x.dtype) + np.eye(n, dtype=x.dtype) / 2))


def _lower_reading_cotangent(b, s):
    """The cotangent of the operand of a routine that reads its lower triangle as a symmetric matrix,
    from the cotangent `s` of that symmetric matrix: tril(s + s^T) with the diagonal halved."""
    return _half_lower(b, b.add(s, mT(b, s)))


def _lower_reading_tangent(b, t):
    """The tangent of the symmetric matrix a lower-reading routine forms from an operand tangent `t`."""
    return b.add(tril(b, t), mT(b, tril(b, t, -1)))


def _sibling(b, node, op):
    """The output `op` of the same routine on the same operand (node itself if it is that output)."""
    return node if node.op == op else b.emit(op, *node.args)


def _gap_reciprocals(b, w):
    """F[..., i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it (inf where values repeat)."""
    off_diagonal = ~np.eye(w.shape[-1], dtype=bool)
    one = scalar(b, 1, w.dtype)
    gaps = b.where(b.const(off_diagonal), b.subtract(row(b, w), column(b, w)), one)
    return masked(b, b.divide(one, gaps), off_diagonal)


# -- cholesky: A = L L^T (Murray 2016) ---------------------------------------------------------------------
def _cholesky_vjp(b, node, g):
    lt = mT(b, node)
    p = _half_lower(b, matmul(b, lt, g))
    y = b.triangular_solve(lt, p, lower=False)                            # L^-T p
    s = mT(b, b.triangular_solve(lt, mT(b, y), lower=False))              # y L^-1
    return (_lower_reading_cotangent(b, s),)


def _cholesky_jvp(b, node, ts):
    ds = _lower_reading_tangent(b, ts[0])
    x = b.triangular_solve(node, mT(b, b.triangular_solve(node, ds, lower=True)), lower=True)
    return matmul(b, node, _half_lower(b, x))                             # L phi(L^-1 dS L^-T)


# -- solve / triangular_solve: X = A^-1 B -----------------------------------------------------------------
# (solve with matrix m (transposed: the operand's transpose), the part of a matrix the op reads)
_SOLVERS = {
    "solve": (lambda b, node, m, rhs, transposed: b.solve(m, rhs), lambda b, node, x: x),
    "triangular_solve": (
        lambda b, node, m, rhs, transposed: b.triangular_solve(m, rhs, lower=node.params["lower"] != transposed),
        lambda b, node, x: tril(b, x) if node.params["lower"] else triu(b, x)),
}


def _solve_vjp(b, node, g):
    solve, read = _SOLVERS[node.op]
    rhs_ct = solve(b, node, mT(b, node.args[0]), g, True)
    return read(b, node, b.negative(matmul(b, rhs_ct, mT(b, node)))), rhs_ct


def _solve_jvp(b, node, ts):
    solve, read = _SOLVERS[node.op]
    da, drhs = ts
    if da is not None:
        moved = matmul(b, read(b, node, da), node)
        drhs = b.negative(moved) if drhs is None else b.subtract(drhs, moved)
    return solve(b, node, node.args[0], drhs, False)


# -- inv, det, slogdet ----------------------------------------------------------------------------------
def _inv_vjp(b, node, g):
    yt = mT(b, node)
    return (b.negative(matmul(b, matmul(b, yt, g), yt)),)


def _inv_jvp(b, node, ts):
    return b.negative(matmul(b, matmul(b, node, ts[0]), node))


# d log|det A| = tr(A^-1 dA); det scales it by det A
_DET_FACTOR = {"det": lambda b, node, v: b.multiply(v, node), "slogdet_logabs": lambda b, node, v: v}


def _logdet_vjp(b, node, g):
    weight = _DET_FACTOR[node.op](b, node, g)
    return (b.multiply(column(b, column(b, weight)), mT(b, b.inv(node.args[0]))),)


def _logdet_jvp(b, node, ts):
    return _DET_FACTOR[node.op](b, node, b.sum(diagonal(b, b.solve(node.args[0], ts[0])), axis=(node.ndim,),
                                                keepdims=False))


# -- eigh: A = V diag(w) V^T, lower triangle read -------------------------------------------------------
def _rotated(b, u, x, v):
    """u^T x v."""
    return matmul(b, matmul(b, mT(b, u), x), v)


def _eigh_parts(b, node):
    """(w, V, F): eigenvalues, eigenvectors and their gap reciprocals."""
    w, v = _sibling(b, node, "eigh_values"), _sibling(b, node, "eigh_vectors")
    return w, v, _gap_reciprocals(b, w)


def _eigh_values_vjp(b, node, g):
    _, v, _ = _eigh_parts(b, node)
    return (_lower_reading_cotangent(b, matmul(b, b.multiply(v, row(b, g)), mT(b, v))),)


def _eigh_vectors_vjp(b, node, g):
    _, v, f = _eigh_parts(b, node)
    inner = b.multiply(f, matmul(b, mT(b, v), g))
    return (_lower_reading_cotangent(b, matmul(b, matmul(b, v, inner), mT(b, v))),)


def _eigh_values_jvp(b, node, ts):
    _, v, _ = _eigh_parts(b, node)
    return diagonal(b, _rotated(b, v, _lower_reading_tangent(b, ts[0]), v))


def _eigh_vectors_jvp(b, node, ts):
    _, v, f = _eigh_parts(b, node)
    return matmul(b, v, b.multiply(f, _rotated(b, v, _lower_reading_tangent(b, ts[0]), v)))


# -- svd (reduced): A = U diag(s) V^T, A is m x n, k = min(m, n) -----------------------------------------
def _svd_parts(b, node):
    """(U, s, V, m > n, n > m) of the svd node's m x n operand."""
    m, n = node.args[0].shape[-2:]
    u, s, vh = (_sibling(b, node, op) for op in ("svd_u", "svd_s", "svd_vh"))
    return u, s, mT(b, vh), m > n, n > m


def _left_factor_cotangent(b, u, s, v, u_ct, tall):
    """The cotangent of A = U diag(s) V^T from the cotangent `u_ct` of its left factor U (the right
    factor's rule is this one on A^T = V diag(s) U^T); `tall`: A has more rows than columns."""
    j = b.multiply(_gap_reciprocals(b, b.multiply(s, s)), matmul(b, mT(b, u), u_ct))
    core = matmul(b, u, b.multiply(b.add(j, mT(b, j)), row(b, s)))
    if tall:   # the part of u_ct outside U's span
        outside = b.subtract(u_ct, matmul(b, u, matmul(b, mT(b, u), u_ct)))
        core = b.add(core, b.divide(outside, row(b, s)))
    return matmul(b, core, mT(b, v))


def _left_factor_tangent(b, u, s, v, da, tall):
    """The tangent of the left factor U of A = U diag(s) V^T for the tangent `da` of A."""
    ds = _rotated(b, u, da, v)
    mixed = b.add(b.multiply(ds, row(b, s)), b.multiply(column(b, s), mT(b, ds)))
    du = matmul(b, u, b.multiply(_gap_reciprocals(b, b.multiply(s, s)), mixed))
    if tall:
        du = b.add(du, b.divide(b.subtract(matmul(b, da, v), matmul(b, u, ds)), row(b, s)))
    return du


def _svd_s_vjp(b, node, g):
    u, _, v, _, _ = _svd_parts(b, node)
    return (matmul(b, b.multiply(u, row(b, g)), mT(b, v)),)


def _svd_u_vjp(b, node, g):
    u, s, v, tall, _ = _svd_parts(b, node)
    return (_left_factor_cotangent(b, u, s, v, g, tall),)


def _svd_vh_vjp(b, node, g):
    u, s, v, _, wide = _svd_parts(b, node)
    return (mT(b, _left_factor_cotangent(b, v, s, u, mT(b, g), wide)),)


def _svd_s_jvp(b, node, ts):
    u, _, v, _, _ = _svd_parts(b, node)
    return diagonal(b, _rotated(b, u, ts[0], v))


def _svd_u_jvp(b, node, ts):
    u, s, v, tall, _ = _svd_parts(b, node)
    return _left_factor_tangent(b, u, s, v, ts[0], tall)


def _svd_vh_jvp(b, node, ts):
    u, s, v, _, wide = _svd_parts(b, node)
    return mT(b, _left_factor_tangent(b, v, s, u, mT(b, ts[0]), wide))


# -- qr (reduced, m >= n): A = Q R ------------------------------------------------------------------------
def _right_solve(b, z, r, transposed):
    """z R^-1 (z R^-T if `transposed`) for upper triangular R."""
    if transposed:
        return mT(b, b.triangular_solve(r, mT(b, z), lower=False))
    return mT(b, b.triangular_solve(mT(b, r), mT(b, z), lower=True))


def _qr_core(b, x):
    """x - tril(x - x^T, -1)."""
    return b.subtract(x, tril(b, b.subtract(x, mT(b, x)), -1))


def _qr_q_vjp(b, node, g):
    q, r = node, _sibling(b, node, "qr_r")
    return (_right_solve(b, b.subtract(g, matmul(b, q, _qr_core(b, matmul(b, mT(b, q), g)))), r, True),)


def _qr_r_vjp(b, node, g):
    q, r = _sibling(b, node, "qr_q"), node
    return (_right_solve(b, matmul(b, q, _qr_core(b, matmul(b, g, mT(b, r)))), r, True),)


def _qr_tangent_parts(b, node, da):
    """(Q, R, C, Z) with C = dA R^-1 and Z = Q^T C - skew(Q^T C): dQ = C - Q Z, dR = Z R."""
    q, r = _sibling(b, node, "qr_q"), _sibling(b, node, "qr_r")
    c = _right_solve(b, da, r, False)
    y = matmul(b, mT(b, q), c)
    low = tril(b, y, -1)
    return q, r, c, b.subtract(y, b.subtract(low, mT(b, low)))


# -- expm ---------------------------------------------------------------------------------------------------
def _expm_frechet(b, a, e):
    """The Fréchet derivative of expm at `a` in direction `e`: the upper-right block of
    expm([[a, e], [0, a]]) (batched)."""
    last = a.ndim - 1
    zero = b.broadcast_to(scalar(b, 0, a.dtype), shape=a.shape)
    block = b.concatenate(b.concatenate(a, e, axis=last), b.concatenate(zero, a, axis=last), axis=last - 1)
    n = a.shape[-1]
    whole = tuple(("slice", 0, k, 1) for k in a.shape[:-2])
    return b.index(b.expm(block), spec=whole + (("slice", 0, n, 1), ("slice", n, n, 1)))


def _expm_vjp(b, node, g):
    return (_expm_frechet(b, mT(b, node.args[0]), g),)


def _expm_jvp(b, node, ts):
    return _expm_frechet(b, node.args[0], ts[0])


def _qr_q_jvp(b, node, ts):
    q, _, c, z = _qr_tangent_parts(b, node, ts[0])
    return b.subtract(c, matmul(b, q, z))


def _qr_r_jvp(b, node, ts):
    _, r, _, z = _qr_tangent_parts(b, node, ts[0])
    return matmul(b, z, r)


def _eig_values_vjp(b, node, g):
    return (b.emit("eig_values_vjp", node.args[0], g),)


def _eig_values_jvp(b, node, ts):
    return b.emit("eig_values_jvp", node.args[0], ts[0])


def _eig_second_order():
    """The derivatives of the eigenvalues' derivative maps w.r.t. the matrix: refused."""
    raise UnsupportedError("second derivatives of np.linalg.eigvals / np.roots w.r.t. the matrix are not "
                           "supported")


def _eig_map_vjp(adjoint):
    """VJP of eig_values_vjp / eig_values_jvp (a, x): linear in x, whose cotangent is the other map
    (`adjoint`) applied to g; w.r.t. a refused (deferred: only if a carries a derivative)."""
    return lambda b, node, g: (_eig_second_order, b.emit(adjoint, node.args[0], g))


def _eig_map_jvp(b, node, ts):
    if ts[0] is not None:
        _eig_second_order()
    return None if ts[1] is None else b.emit(node.op, node.args[0], ts[1])


VJP_RULES = {
    "cholesky": _cholesky_vjp, "solve": _solve_vjp, "triangular_solve": _solve_vjp, "inv": _inv_vjp,
    "det": _logdet_vjp, "slogdet_logabs": _logdet_vjp,
    "eigh_values": _eigh_values_vjp, "eigh_vectors": _eigh_vectors_vjp,
    "svd_s": _svd_s_vjp, "svd_u": _svd_u_vjp, "svd_vh": _svd_vh_vjp, "qr_q": _qr_q_vjp, "qr_r": _qr_r_vjp,
    "expm": _expm_vjp, "eig_values": _eig_values_vjp,
    "eig_values_vjp": _eig_map_vjp("eig_values_jvp"), "eig_values_jvp": _eig_map_vjp("eig_values_vjp"),
}
JVP_RULES = {
    "cholesky": _cholesky_jvp, "solve": _solve_jvp, "triangular_solve": _solve_jvp, "inv": _inv_jvp,
    "det": _logdet_jvp, "slogdet_logabs": _logdet_jvp,
    "eigh_values": _eigh_values_jvp, "eigh_vectors": _eigh_vectors_jvp,
    "svd_s": _svd_s_jvp, "svd_u": _svd_u_jvp, "svd_vh": _svd_vh_jvp, "qr_q": _qr_q_jvp, "qr_r": _qr_r_jvp,
    "expm": _expm_jvp, "eig_values": _eig_values_jvp, "eig_values_vjp": _eig_map_jvp, "eig_values_jvp": _eig_map_jvp,
}
