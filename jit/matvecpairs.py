"""A matrix read by a matrix-vector product and by a vector-matrix product in one kernel is read once:
both products become a multiply and a sum (`X @ v` a sum along the rows of X * v, `X.T @ u` a column
sum of X * u[:, None]), which the row groups of rowgroups.py fuse with the per-row work between them
(a logistic regression's gradient X.T @ f(X @ w): one pass over X's rows, each row read from memory
once and again from L1, where BLAS's two matrix-vector products stream X twice).

`rowwise_matvecs(trace)` rewrites the top-level products of every real floating-point 2-d value that
both kinds read (without batch axes) whose rows hold at least MIN_ROW elements; other products keep
BLAS.  The rewrite changes the order of summation only (a fused row sum adds in the vectorizer's order,
as every compiled reduction).

Measured (the logistic regression's gradient, X of 1e6 elements, CPU time per call at load 4, fused
against BLAS): 10 columns 2,140 / 1,538 us, 32 columns 751 / 713, 50 columns 645 / 812, 64 columns
519 / 657, 100 columns (W6) 519 / 643, 1,000 columns 438 / 615.  A row group does the per-row work
between the products (here an exp and a division) once per row, in scalar code: short rows pay it
more often than the second pass over X costs.
"""
from ..ir.passes import rebuild

_ROWS = (((1,), (0,)), ((), ()))          # X @ v: X's columns against v
_COLUMNS_LEFT = (((0,), (0,)), ((), ()))  # dot_general(X, u) or (u, X) with contract ((0,), (0,)): X.T @ u
MIN_ROW = 48


def _is_vector(v):
    return v.ndim == 1 or (v.ndim == 2 and v.shape[1] == 1)       # (k,) or a column (k, 1)


def _product(node):
    """(matrix, vector, kind) of a matrix-vector product node ("rows": X @ v, "columns": X.T @ u; the
    vector (k,) or a column (k, 1)), or None."""
    if node.op != "dot_general" or node.dtype.kind != "f":
        return None
    a, b = node.args
    if a.dtype != b.dtype:
        return None
    dims = (node.params["contract"], node.params["batch"])
    if a.ndim == 2 and _is_vector(b):
        return (a, b, "rows") if dims == _ROWS else (a, b, "columns") if dims == _COLUMNS_LEFT else None
    if a.ndim == 1 and b.ndim == 2 and dims == _COLUMNS_LEFT:
        return b, a, "columns"
    return None


def _paired(trace):
    """ids of the matrices with rows of at least MIN_ROW elements that some top-level product reads along
    its rows and another along its columns."""
    kinds = {}
    for node in trace.nodes:
        found = _product(node)
        if found is not None and found[0].shape[1] >= MIN_ROW:
            kinds.setdefault(id(found[0]), set()).add(found[2])
    return {m for m, seen in kinds.items() if len(seen) == 2}


def _as_sums(paired):
    def rule(b, node, args):
        found = _product(node)
        if found is None or id(found[0]) not in paired:
            return None
        matrix, vector = (args[0], args[1]) if node.args[0] is found[0] else (args[1], args[0])
        k = vector.shape[0]
        if found[2] == "rows":
            product = b.emit("multiply", matrix, b.emit("reshape", vector, shape=(k,)) if vector.ndim == 2 else vector)
            total = b.emit("sum", product, axis=(1,), keepdims=False)
        else:
            column = vector if vector.ndim == 2 else b.emit("reshape", vector, shape=(k, 1))
            product = b.emit("multiply", b.emit("broadcast_to", column, shape=matrix.shape), matrix)
            total = b.emit("sum", product, axis=(0,), keepdims=False)
        return total if total.shape == node.shape else b.emit("reshape", total, shape=node.shape)
    return rule


def rowwise_matvecs(trace):
    """`trace` with the products of the matrices read both ways as multiplies and sums (itself if none)."""
    paired = _paired(trace)
    return rebuild(trace, _as_sums(paired)) if paired else trace
