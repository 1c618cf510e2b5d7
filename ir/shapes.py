"""SHAPE: for each op, the rule giving its result (shape, dtype) from its operands and params.

The ops of the families ufunc, float_parts, reduction (their spec's `numpy`), special, bessel and
incomplete (the scipy.special ufunc their spec names) get their family's rule; every other op has its own.
Importing the module checks that every op of the spec (ir/ops.py) has a rule.

A rule is `rule(args, params) -> (shape, dtype)`; `args` are Values (anything with .shape and .dtype).
Rules follow NumPy exactly; where NumPy's own dtype resolution is subtle we ask NumPy (cached probes).
Invalid operands raise IRError.
"""
import functools
import math

import numpy as np

from . import custom_ops
from .errors import IRError
from .conditional import SHAPE_RULES as COND_SHAPES
from .loops import RUNTIME_ROWS, SHAPE_RULES as LOOP_SHAPES
from .ops import SPECS, check_table, family, special_function
from .spec import index_tuple

SHAPE = {}


@functools.lru_cache(maxsize=None)
def _probe_dtype(fn, dtypes):
    """The dtype NumPy gives `fn` applied to one-element arrays of `dtypes`."""
    with np.errstate(all="ignore"):
        return np.asarray(fn(*[np.ones(1, dtype=d) for d in dtypes])).dtype


def _broadcast(args):
    shape = args[0].shape
    if all(a.shape == shape for a in args):     # the common case
        return tuple(shape)
    return broadcast_shapes([a.shape for a in args])


def broadcast_shapes(shapes):
    """np.broadcast_shapes of `shapes` (tuples of ints), in plain Python (NumPy's builds arrays: ~10x
    the cost); IRError when they do not broadcast."""
    result = []
    for k in range(1, max(len(s) for s in shapes) + 1):
        dims = {s[-k] for s in shapes if len(s) >= k}
        dims.discard(1)
        if len(dims) > 1:
            raise IRError(f"operands do not broadcast: {list(shapes)}")
        result.append(dims.pop() if dims else 1)
    return tuple(reversed(result))


def _elementwise(fn):
    def rule(args, params):
        return _broadcast(args), _probe_dtype(fn, tuple(a.dtype for a in args))
    return rule


for _name in family("ufunc", "float_parts"):
    SHAPE[_name] = _elementwise(SPECS[_name].numpy)


def _where(args, params):
    cond, x, y = args
    return _broadcast(args), np.result_type(x.dtype, y.dtype)


SHAPE["where"] = _where
SHAPE["astype"] = lambda args, params: (args[0].shape, np.dtype(params["dtype"]))


def _reduced_shape(shape, axis, keepdims):
    for a in axis:
        if not 0 <= a < len(shape):
            raise IRError(f"reduction axis {a} out of range for shape {shape}")
    if keepdims:
        return tuple(1 if i in axis else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axis)


def _reduction(fn):
    def rule(args, params):
        (x,) = args
        return _reduced_shape(x.shape, params["axis"], params["keepdims"]), _probe_dtype(fn, (x.dtype,))
    return rule


for _name in family("reduction"):
    SHAPE[_name] = _reduction(SPECS[_name].numpy)


def _arg_reduction(args, params):
    (x,) = args
    return _reduced_shape(x.shape, (params["axis"],), False), np.dtype(np.intp)


SHAPE["argmax"] = SHAPE["argmin"] = _arg_reduction


def _cumsum(args, params):
    (x,) = args
    _reduced_shape(x.shape, (params["axis"],), False)
    return x.shape, _probe_dtype(np.cumsum, (x.dtype,))


SHAPE["cumsum"] = _cumsum


def _reshape(args, params):
    (x,) = args
    shape = tuple(params["shape"])
    if math.prod(shape) != x.size or any(d < 0 for d in shape):
        raise IRError(f"cannot reshape {x.shape} to {shape}")
    return shape, x.dtype


def _transpose(args, params):
    (x,) = args
    perm = params["perm"]
    if sorted(perm) != list(range(x.ndim)):
        raise IRError(f"bad permutation {perm} for {x.ndim} dims")
    return tuple(x.shape[p] for p in perm), x.dtype


def _broadcast_to(args, params):
    (x,) = args
    shape = tuple(params["shape"])
    if _broadcast([x, np.empty(shape)]) != shape:
        raise IRError(f"cannot broadcast {x.shape} to {shape}")
    return shape, x.dtype


def _concatenate(args, params):
    axis = params["axis"]
    first = args[0]
    if not 0 <= axis < first.ndim:
        raise IRError(f"concatenate axis {axis} out of range")
    for a in args[1:]:
        if a.ndim != first.ndim or any(d != e for i, (d, e) in enumerate(zip(a.shape, first.shape)) if i != axis):
            raise IRError(f"concatenate shapes differ: {[a.shape for a in args]}")
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in args)
    return tuple(shape), np.result_type(*[a.dtype for a in args])


SHAPE.update(reshape=_reshape, transpose=_transpose, broadcast_to=_broadcast_to, concatenate=_concatenate)


def _indexed_shape(x, spec, arrays):
    for a in arrays:
        if not np.issubdtype(a.dtype, np.integer):
            raise IRError(f"index arrays must be integer, got {a.dtype}")
    # (keyed by the entries' types too: an entry True is not an entry 1 to NumPy, although equal)
    kinds = tuple(tuple(map(type, entry)) for entry in spec)
    if x.shape[:1] == (RUNTIME_ROWS,):          # a stack of a run-time number of rows (ir/loops.py): by rows
        if not spec or spec[0][0] not in ("array", "int") or any(a.shape for a in arrays[:1]):
            raise IRError(f"a stack of a run-time number of rows is read one row at a time, not by {spec}")
        return _indexed_shape_of((1,) + x.shape[1:], spec, kinds, tuple(a.shape for a in arrays))
    return _indexed_shape_of(x.shape, spec, kinds, tuple(a.shape for a in arrays))


@functools.lru_cache(maxsize=4096)
def _indexed_shape_of(shape, spec, kinds, array_shapes):
    """The shape NumPy gives an array of `shape` indexed by `spec` with index arrays of `array_shapes`."""
    dummy = np.broadcast_to(np.zeros((), dtype=np.int8), shape)
    try:
        return dummy[index_tuple(spec, [np.zeros(s, dtype=np.intp) for s in array_shapes])].shape
    except IndexError as e:
        raise IRError(f"bad index {spec} for shape {shape}: {e}") from e


def _index(args, params):
    x, *arrays = args
    return _indexed_shape(x, params["spec"], arrays), x.dtype


def _index_update(args, params):
    x, v, *arrays = args
    target = _indexed_shape(x, params["spec"], arrays)
    if broadcast_shapes([v.shape, target]) != tuple(target):
        raise IRError(f"cannot assign shape {v.shape} into indexed shape {target}")
    return x.shape, x.dtype


SHAPE.update(index=_index, index_set=_index_update, index_add=_index_update)


def _dot_general(args, params):
    x, y = args
    (xc, yc), (xb, yb) = params["contract"], params["batch"]
    if len(xc) != len(yc) or len(xb) != len(yb):
        raise IRError("dot_general: contract/batch axis lists differ in length")
    for i, j in zip(xc + xb, yc + yb):
        if x.shape[i] != y.shape[j]:
            raise IRError(f"dot_general: dims differ: {x.shape}[{i}] vs {y.shape}[{j}]")
    xfree = [d for i, d in enumerate(x.shape) if i not in xc and i not in xb]
    yfree = [d for i, d in enumerate(y.shape) if i not in yc and i not in yb]
    return tuple([x.shape[i] for i in xb] + xfree + yfree), np.result_type(x.dtype, y.dtype)


SHAPE["dot_general"] = _dot_general
SHAPE["input"] = lambda args, params: (_ for _ in ()).throw(IRError("inputs are made by Builder.input"))
SHAPE["const"] = lambda args, params: (params["value"].shape, params["value"].dtype)
SHAPE["fill"] = lambda args, params: (tuple(params["shape"]), np.dtype(params["dtype"]))
SHAPE["guard"] = lambda args, params: ((), np.dtype(bool))


def _argsort(args, params):
    (x,) = args
    _reduced_shape(x.shape, (params["axis"],), False)
    return x.shape, np.dtype(np.intp)


SHAPE["argsort"] = _argsort


def _special(op):
    """Rule of an op whose dtype is that of the scipy.special ufunc its spec names (SciPy imported when used)."""
    def rule(args, params):
        return _broadcast(args), _probe_dtype(special_function(op), tuple(a.dtype for a in args))
    return rule


SHAPE.update({op: _special(op) for op in family("special", "bessel", "incomplete")})


# -- linear algebra: (..., m, n) operands, batched over the leading axes --------------------------------
def _matrices(x, square=True):
    """(batch shape, m, n) of a float stack of matrices; IRError unless it is one (square if asked)."""
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.floating) or (square and x.shape[-1] != x.shape[-2]):
        kind = "square matrices" if square else "matrices"
        raise IRError(f"linear algebra needs a float stack of {kind}, got {x.dtype}{list(x.shape)}")
    return x.shape[:-2], x.shape[-2], x.shape[-1]


def _linalg_rule(result_shape):
    """Rule of a one-operand linalg op: `result_shape(batch, m, n)`, the operand's dtype."""
    def rule(args, params):
        (x,) = args
        return tuple(result_shape(*_matrices(x, square=False))), x.dtype
    return rule


def _square_rule(result_shape):
    def rule(args, params):
        _matrices(args[0])
        return _linalg_rule(result_shape)(args, params)
    return rule


def _eig_rule(args, params):
    """eig_values(a) and eig_values_jvp(a, t): the complex eigenvalues of the square matrices `a`."""
    batch, n, _ = _matrices(args[0])
    return batch + (n,), np.result_type(args[0].dtype, np.complex64)


def _eig_cotangent_rule(args, params):
    """eig_values_vjp(a, g): the real cotangent of the square matrices `a`."""
    _matrices(args[0])
    return args[0].shape, args[0].dtype


def _solve(args, params):
    a, b = args
    batch, n, _ = _matrices(a)
    b_batch, rows, _ = _matrices(b, square=False)
    if rows != n:
        raise IRError(f"solve: {a.shape} and right-hand side {b.shape} do not match")
    return _broadcast([np.empty(batch), np.empty(b_batch)]) + b.shape[-2:], np.result_type(a.dtype, b.dtype)


def _qr(result_shape):
    def rule(args, params):
        batch, m, n = _matrices(args[0], square=False)
        if m < n:
            raise IRError(f"qr ops take m >= n (reduced factors of tall matrices), got {args[0].shape}")
        return tuple(result_shape(batch, m, n)), args[0].dtype
    return rule


SHAPE.update({
    "cholesky": _square_rule(lambda batch, m, n: batch + (m, n)),
    "inv": _square_rule(lambda batch, m, n: batch + (m, n)),
    "expm": _square_rule(lambda batch, m, n: batch + (m, n)),
    "eigh_vectors": _square_rule(lambda batch, m, n: batch + (m, n)),
    "eigh_values": _square_rule(lambda batch, m, n: batch + (m,)),
    "det": _square_rule(lambda batch, m, n: batch),
    "slogdet_sign": _square_rule(lambda batch, m, n: batch),
    "slogdet_logabs": _square_rule(lambda batch, m, n: batch),
    "svd_u": _linalg_rule(lambda batch, m, n: batch + (m, min(m, n))),
    "svd_s": _linalg_rule(lambda batch, m, n: batch + (min(m, n),)),
    "svd_vh": _linalg_rule(lambda batch, m, n: batch + (min(m, n), n)),
    "qr_q": _qr(lambda batch, m, n: batch + (m, n)),
    "qr_r": _qr(lambda batch, m, n: batch + (n, n)),
    "solve": _solve, "triangular_solve": _solve,
    "eig_values": _eig_rule, "eig_values_jvp": _eig_rule, "eig_values_vjp": _eig_cotangent_rule,
})


# -- complex parts and Fourier transforms -----------------------------------------------------------
_NORMS = ("backward", "ortho", "forward")


def _complex_operand(x, op):
    if x.dtype.kind != "c":
        raise IRError(f"{op} takes a complex operand, got {x.dtype}")
    return x


def _real_dtype(dtype):
    """The float dtype of the parts of complex `dtype`."""
    return np.empty(0, dtype).real.dtype


def _complex_part(args, params):
    (x,) = args
    return x.shape, _real_dtype(_complex_operand(x, "real/imag").dtype)


def _transform_axis(x, params, op):
    """The length of the transformed axis, after checking the axis and norm params."""
    axis = params["axis"]
    if not (isinstance(axis, int) and 0 <= axis < x.ndim) or params["norm"] not in _NORMS:
        raise IRError(f"{op}: bad axis {axis!r} or norm {params['norm']!r} for shape {x.shape}")
    if x.shape[axis] < 1:
        raise IRError(f"{op}: the transformed axis is empty")
    return x.shape[axis]


def _inexact_operand(x, op):
    """A float or complex operand (numpy.fft transforms real input without casting it first)."""
    if x.dtype.kind not in "fc":
        raise IRError(f"{op} takes a float or complex operand, got {x.dtype}")
    return x


def _fft(args, params):
    (x,) = args
    _transform_axis(_inexact_operand(x, "fft"), params, "fft")
    return x.shape, np.result_type(x.dtype, np.complex64)


def _rfft(args, params):
    (x,) = args
    if x.dtype.kind != "f":
        raise IRError(f"rfft takes a real float operand, got {x.dtype}")
    m = _transform_axis(x, params, "rfft")
    shape = list(x.shape)
    shape[params["axis"]] = m // 2 + 1
    return tuple(shape), np.result_type(x.dtype, np.complex64)


def _irfft(args, params):
    (x,) = args
    k, n = _transform_axis(_inexact_operand(x, "irfft"), params, "irfft"), params["n"]
    if not isinstance(n, int) or n < 1 or k != n // 2 + 1:
        raise IRError(f"irfft: n={n!r} needs an axis of length n // 2 + 1, got {k}")
    shape = list(x.shape)
    shape[params["axis"]] = n
    return tuple(shape), _real_dtype(np.result_type(x.dtype, np.complex64))


SHAPE.update(real=_complex_part, imag=_complex_part, conj=lambda args, params: (
    args[0].shape, _complex_operand(args[0], "conj").dtype), fft=_fft, rfft=_rfft, irfft=_irfft)
SHAPE["custom_call"] = custom_ops.shape
SHAPE.update(LOOP_SHAPES)
SHAPE.update(COND_SHAPES)
check_table("SHAPE (ir/shapes.py)", SHAPE, SPECS, "give the op a family with a generic rule, or a shape rule",
            specs=SPECS)
