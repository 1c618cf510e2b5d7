"""Rules for `numpy` functions: each maps to its implementation in `array_api` or `contractions`;
metadata functions (np.shape, np.ndim...) are computed from the concrete values without IR."""
import numpy as np

from .. import array_api as A
from .. import contractions as C
from .. import reorder as R
from ..registry import register

_FUNCTIONS = {
    np.sum: A.sum_, np.prod: A.prod, np.mean: A.mean, np.var: A.var, np.std: A.std,
    np.max: A.max_, np.amax: A.max_, np.min: A.min_, np.amin: A.min_, np.all: A.all_, np.any: A.any_,
    np.argmax: A.argmax, np.argmin: A.argmin, np.cumsum: A.cumsum, np.diff: A.diff,
    np.reshape: A.reshape_, np.transpose: A.transpose, np.swapaxes: A.swapaxes, np.moveaxis: A.moveaxis,
    np.expand_dims: A.expand_dims, np.squeeze: A.squeeze, np.ravel: A.ravel, np.broadcast_to: A.broadcast_to,
    np.atleast_1d: A.atleast_1d, np.atleast_2d: A.atleast_2d, np.atleast_3d: A.atleast_3d,
    np.concatenate: A.concatenate, np.stack: A.stack, np.vstack: A.vstack, np.hstack: A.hstack,
    np.column_stack: A.column_stack,
    np.zeros_like: A.zeros_like, np.empty_like: A.zeros_like, np.ones_like: A.ones_like,
    np.full_like: A.full_like,
    np.asarray: A.asarray, np.asanyarray: A.asarray, np.array: A.array, np.ascontiguousarray: A.ascontiguousarray,
    np.copy: A.copy, np.take: A.take, np.round: A.round_, np.around: A.round_, np.clip: A.clip,
    np.where: A.where,
    np.dot: C.dot, np.vdot: C.vdot, np.inner: C.inner, np.outer: C.outer, np.tensordot: C.tensordot,
    np.einsum: C.einsum, np.matmul: C.matmul,
    np.repeat: R.repeat, np.diagonal: R.diagonal, np.trace: R.trace,
    np.broadcast_arrays: R.broadcast_arrays,
}
_METADATA = (np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj, np.isscalar,
             np.min_scalar_type, np.can_cast, np.broadcast_shapes)



def _vecdot(x1, x2, /, *, axis=-1, out=None, **kwargs):
    """np.vecdot (NumPy >= 2) of real operands: their broadcast products summed over `axis`."""
    if out is not None or kwargs or np.iscomplexobj(A.concrete_of(x1)) or np.iscomplexobj(A.concrete_of(x2)):
        A.refuse("np.vecdot: only real operands without out=/ufunc keywords are traced")
    return A.sum_(x1 * x2, axis=axis)


if hasattr(np, "vecdot"):
    _FUNCTIONS[np.vecdot] = _vecdot

for _fn, _impl in _FUNCTIONS.items():
    register(_fn)(_impl)
for _fn in _METADATA:
    register(_fn)(A.on_concrete(_fn))
