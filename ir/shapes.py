"""SHAPE: for each op, the rule giving its result (shape, dtype) from its operands and params.

A rule is `rule(args, params) -> (shape, dtype)`; `args` are Values (anything with .shape and .dtype).
Rules follow NumPy exactly; where NumPy's own dtype resolution is subtle we ask NumPy (cached probes).
Invalid operands raise IRError.
"""
import functools

import numpy as np

from .errors import IRError
from .ops import BINARY, ELEMENTWISE, UNARY
from .spec import index_tuple

SHAPE = {}


@functools.lru_cache(maxsize=None)
def _probe_dtype(fn, dtypes):
    """The dtype NumPy gives `fn` applied to one-element arrays of `dtypes`."""
    with np.errstate(all="ignore"):
        return np.asarray(fn(*[np.ones(1, dtype=d) for d in dtypes])).dtype


def _broadcast(args):
    try:
        return tuple(np.broadcast_shapes(*[a.shape for a in args]))
    except ValueError as e:
        raise IRError(f"operands do not broadcast: {[a.shape for a in args]}") from e


def _elementwise(fn):
    def rule(args, params):
        return _broadcast(args), _probe_dtype(fn, tuple(a.dtype for a in args))
    return rule


for _name, _fn in ELEMENTWISE.items():
    SHAPE[_name] = _elementwise(_fn)


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


for _name, _fn in {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}.items():
    SHAPE[_name] = _reduction(_fn)


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
    if int(np.prod(shape, dtype=np.int64)) != x.size or any(d < 0 for d in shape):
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
    dummy = np.broadcast_to(np.zeros((), dtype=np.int8), x.shape)
    try:
        return dummy[index_tuple(spec, [np.zeros(a.shape, dtype=np.intp) for a in arrays])].shape
    except IndexError as e:
        raise IRError(f"bad index {spec} for shape {x.shape}: {e}") from e


def _index(args, params):
    x, *arrays = args
    return _indexed_shape(x, params["spec"], arrays), x.dtype


def _index_update(args, params):
    x, v, *arrays = args
    target = _indexed_shape(x, params["spec"], arrays)
    if _broadcast([v, np.empty(target)]) != tuple(target):
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
