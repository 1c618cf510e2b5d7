"""Rules for `numpy` functions: each maps to its implementation in `array_api` or `contractions`;
metadata functions (np.shape, np.ndim...) are computed from the concrete values without IR."""
import numpy as np

from .. import array_api as A
from .. import contractions as C
from .. import reorder as R
from ..registry import register
from ..indexing import setitem
from ..values import TracedArray, builder, const, contains_traced, make, unwrap

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
    np.broadcast_arrays: R.broadcast_arrays, np.nonzero: R.nonzero,
}
_METADATA = (np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj, np.isscalar,
             np.min_scalar_type, np.can_cast, np.broadcast_shapes, np.broadcast)



def _vecdot(x1, x2, /, *, axis=-1, out=None, **kwargs):
    """np.vecdot (NumPy >= 2) of real operands: their broadcast products summed over `axis`."""
    if out is not None or kwargs or np.iscomplexobj(A.concrete_of(x1)) or np.iscomplexobj(A.concrete_of(x2)):
        A.refuse("np.vecdot: only real operands without out=/ufunc keywords are traced")
    return A.sum_(x1 * x2, axis=axis)


def _ediff1d(ary, to_end=None, to_begin=None):
    """np.ediff1d: differences of the flattened array, between to_begin and to_end (cast to its dtype)."""
    concrete = np.ediff1d(unwrap(ary), to_end=unwrap(to_end), to_begin=unwrap(to_begin))
    flat = A.ravel(ary)
    parts = [A.astype_(A.ravel(e), concrete.dtype) for e in (to_begin,) if e is not None]
    parts += [flat[1:] - flat[:-1]] + [A.astype_(A.ravel(e), concrete.dtype) for e in (to_end,) if e is not None]
    return make(A.concatenate(parts).ir, concrete)


def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """np.nan_to_num of real operands: NaN, +inf and -inf replaced (by default with 0 and the dtype's
    largest and smallest finite values); other entries pass through with derivative 1."""
    v = A.as_traced(x)
    if np.iscomplexobj(v.value) or not copy:
        A.refuse("np.nan_to_num is traced for real operands with copy=True only")
    concrete = np.nan_to_num(v.value, nan=nan, posinf=posinf, neginf=neginf)
    if v.ir.dtype.kind != "f":
        return A.copy(v)
    b, d, info = builder(), v.ir.dtype, np.finfo(v.ir.dtype)
    out = v.ir
    for test, value in ((b.not_equal(out, out), nan),
                        (b.equal(out, const(np.inf, d)), info.max if posinf is None else posinf),
                        (b.equal(out, const(-np.inf, d)), info.min if neginf is None else neginf)):
        out = b.where(test, const(value, d), out)
    return make(out, concrete)


def _compress(condition, a, axis=None, out=None):
    """np.compress (the condition comes first, unlike the method's)."""
    return R.compress(a, condition, axis=axis, out=out)


def _place(arr, mask, vals):
    """np.place's compiled helper: arr[mask] = vals, repeated cyclically (the mask is guarded if traced)."""
    keep = R.truth(mask, "np.place by a traced mask")
    count = int(keep.sum())
    if type(arr) is not TracedArray:
        if contains_traced(vals):
            A.refuse("np.place would write traced values into a plain (untraced) array")
        return np._core.multiarray._place(arr, keep, vals)
    if count:
        flat = A.ravel(vals)
        setitem(arr, keep.reshape(np.shape(arr.value)), A.take(flat, np.arange(count) % flat.value.size))
    return None


register(np._core.multiarray._place)(_place)
_FUNCTIONS.update({np.compress: _compress, np.ediff1d: _ediff1d, np.nan_to_num: _nan_to_num})
if hasattr(np, "vecdot"):
    _FUNCTIONS[np.vecdot] = _vecdot

for _fn, _impl in _FUNCTIONS.items():
    register(_fn)(_impl)
for _fn in _METADATA:
    register(_fn)(A.on_concrete(_fn))
