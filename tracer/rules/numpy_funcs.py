"""Rules for `numpy` functions: each maps to its implementation in `array_api` or `contractions`;
metadata functions (np.shape, np.ndim...) are computed from the concrete values without IR; NumPy's
compiled helpers `_place` and `_array_converter` (np.apply_along_axis, ...) have traced stand-ins; the
ufuncs nextafter, spacing and frexp map to the IR's ops.FLOAT_PARTS; np.count_nonzero's compiled helper
(no axis) is a count in the trace; np.unique's hash-table helper declines traced arrays;
traced values in a dtype's metadata (np.dtype(t, metadata=...)) are stored as guarded concrete values."""
import numpy as np

from ..arrays import array_api as A
from ..arrays import contractions as C
from ..arrays import reorder as R
from ..arrays import sort_scan
from ..recording.registry import register
from ..arrays.indexing import guarded_value, setitem
from ..arrays.values import TracedArray, astype, builder, const, contains_traced, elementwise, make, unwrap
from .ufuncs import ufunc_rule

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


def _count_nonzero(a):
    """np.count_nonzero(a) without an axis (NumPy's compiled helper): the count, an intp scalar."""
    x = A.as_traced(a)
    b = builder()
    nonzero = b.not_equal(x.ir, const(0, x.ir.dtype))
    return make(b.sum(astype(nonzero, np.intp), axis=tuple(range(nonzero.ndim)), keepdims=False),
                np._core.multiarray.count_nonzero(x.value))


def _unique_hash(ar, **kwargs):
    """np.unique's compiled hash-table helper declines traced arrays (it answers NotImplemented, as for
    dtypes it does not handle): NumPy then takes its sorting path, which traces (the positions where
    sorted neighbours differ are a guarded mask)."""
    return NotImplemented


def _guarded_label(t):
    """The concrete value of traced integer (or bool) array `t`, guarded."""
    if t.ir.dtype.kind not in "biu":
        A.refuse("a traced floating-point value stored in a dtype's metadata would lose its derivative")
    return guarded_value(t, "a traced value stored in a dtype's metadata")


def _dtype(obj, align=False, copy=False, **kwargs):
    """np.dtype(..., metadata={...}) with traced integers or booleans in the metadata (scikit-learn attaches
    the unique labels of an array so): stored as their concrete values, guarded (they carry no derivative;
    traced floats there are refused)."""
    metadata = kwargs.pop("metadata", None)
    if metadata is not None:
        metadata = {k: _guarded_label(v) if type(v) is TracedArray else v for k, v in metadata.items()}
        kwargs["metadata"] = metadata
    if contains_traced((obj,), kwargs):
        A.refuse("np.dtype of a traced value is not supported while tracing")
    return np.dtype(obj, align, copy, **kwargs)


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
        picked = A.take(flat, np.arange(count) % flat.value.size)
        if np.ndim(arr.value) == 0:                # a 0-d target: its one entry, not a 0-d mask
            setitem(arr, (), A.reshape_(picked, ()))
        else:
            setitem(arr, keep.reshape(np.shape(arr.value)), picked)
    return None


register(np._core.multiarray._place)(_place)


class TracedArrayConverter:
    """NumPy's compiled `_array_converter(*array_likes)` (used by np.apply_along_axis, np.unique, ...) for
    traced inputs: items and as_arrays() give the inputs as traced arrays, wrap() hands back the traced
    result (a scalar when NumPy's would be); result_type and scalar_input come from the real converter of
    the concrete values.  Its methods are Python code, so the interpreter runs them (and traces them)."""

    def __init__(self, *array_likes):
        concrete = [unwrap(a) for a in array_likes]
        if any(isinstance(c, np.ndarray) and type(c) is not np.ndarray for c in concrete):
            A.refuse("NumPy's array conversion of ndarray subclasses is not traced")
        self.inputs = array_likes
        self.concrete = np._core._multiarray_umath._array_converter(*concrete)
        self.scalar_input = self.concrete.scalar_input

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return self.as_arrays()[index]

    def as_arrays(self, subok=True, pyscalars="convert_if_no_array"):
        """The inputs as arrays, or Python scalars where NumPy's converter keeps them."""
        kept = self.concrete.as_arrays(subok=subok, pyscalars=pyscalars)
        return tuple(A.asarray(a) if isinstance(k, np.ndarray) else a for a, k in zip(self.inputs, kept))

    def result_type(self, extra_dtype=None, ensure_inexact=False):
        """The dtype NumPy's converter gives (Python scalars promote weakly)."""
        return self.concrete.result_type(extra_dtype=extra_dtype, ensure_inexact=ensure_inexact)

    def wrap(self, arr, to_scalar=None):
        """`arr` itself; its 0-d element if to_scalar, or (None) if every input was a scalar."""
        if to_scalar is None:
            to_scalar = all(self.scalar_input)
        if type(arr) is not TracedArray:
            return self.concrete.wrap(arr, to_scalar=to_scalar)
        return arr[()] if to_scalar and np.ndim(arr.value) == 0 else arr


register(np._core._multiarray_umath._array_converter)(TracedArrayConverter)


def _float_part(op):
    """The builder of IR op `op` (ops.FLOAT_PARTS) on floating operands."""
    def build(b, *values):
        if any(v.dtype.kind != "f" for v in values):
            A.refuse(f"np.{op} is only traced for floating-point operands")
        return b.emit(op, *values)
    return build


def _frexp(x, /):
    """np.frexp: (mantissa, exponent), the IR ops frexp_mantissa and frexp_exponent (no out=)."""
    return tuple(elementwise(_float_part(op), lambda v, i=i: np.frexp(v)[i], x)
                 for i, op in enumerate(("frexp_mantissa", "frexp_exponent")))


for _ufunc in (np.nextafter, np.spacing):
    register(_ufunc)(ufunc_rule(_ufunc, _float_part(_ufunc.__name__)))
register(np.frexp)(_frexp)
register(np._core.multiarray.count_nonzero)(_count_nonzero)
register(np.dtype)(_dtype)
if hasattr(np._core._multiarray_umath, "_unique_hash"):          # NumPy >= 2.3
    register(np._core._multiarray_umath._unique_hash)(_unique_hash)
_FUNCTIONS.update({np.compress: _compress, np.ediff1d: _ediff1d, np.nan_to_num: _nan_to_num})
if hasattr(np, "vecdot"):
    _FUNCTIONS[np.vecdot] = _vecdot

for _fn, _impl in _FUNCTIONS.items():
    register(_fn)(_impl)
for _fn in _METADATA:
    register(_fn)(A.on_concrete(_fn))
for _fn in (np.argsort, np.sort, np.take_along_axis, np.cumprod, np.searchsorted):
    register(_fn)(getattr(sort_scan, _fn.__name__))
register(np.lib._function_base_impl._monotonicity)(sort_scan.monotonicity)
