"""NumPy array operations on traced values: reductions, shape ops, joins, creation, casts, rounding.

Each function takes NumPy's signature (array first), accepts traced and plain operands alike, computes
the concrete result with the real NumPy function and records the IR that means the same thing.  They
serve as TracedArray methods (`METHODS`), as rules for the `numpy` functions of the same name and for
methods of plain ndarrays called with traced arguments.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from ...ir.spec import inverse_permutation
from ..recording import hooks
from .inplace import fill
from .values import (
    IMPLEMENTATIONS, TracedArray, astype, builder, const, concrete_of, contains_traced, dtype_of, elementwise, lift,
    lift_operands, make, make_view, rebind, ViewLink, reshape, unwrap)
from .refusals import refuse, refuse_options


def as_traced(a):
    """`a` as a TracedArray (plain arrays, scalars and lists become constants)."""
    if type(a) is TracedArray:
        return a
    return make(lift(a), np.asarray(unwrap(a)))


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted(normalize_axis_tuple(axis, ndim)))


def _count(shape, axes):
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _reduce(op, v, axis, keepdims):
    return builder().emit(op, v, axis=_axes(axis, v.ndim), keepdims=bool(keepdims))


# -- reductions ---------------------------------------------------------------------------------------
_IDENTITY = {"sum": 0, "prod": 1}
_COMBINE = {"sum": "add", "prod": "multiply", "max": "maximum", "min": "minimum"}


def _reduction_with_options(op, v, axis, keepdims, initial, where):
    """`op` over `axis` of IR `v` counting only entries where `where` holds (the others set to the op's
    identity, or to `initial` for max/min, as NumPy requires then), then combined with `initial`."""
    b = builder()
    if where is not None:
        mask = astype(lift(where), bool)
        if mask.shape != v.shape:
            mask = b.broadcast_to(reshape(mask, (1,) * (v.ndim - mask.ndim) + mask.shape), shape=v.shape)
        v = b.where(mask, v, astype(lift(_IDENTITY.get(op, initial)), v.dtype))
    result = _reduce(op, v, axis, keepdims)
    return result if initial is None else b.emit(_COMBINE[op], result, astype(lift(initial), result.dtype))


def _options(initial, where):
    """The keywords to pass on to NumPy's own reduction (only those given)."""
    return {k: unwrap(v) for k, v in (("initial", initial), ("where", where)) if v is not None}


def _sum_like(op, np_fn):
    def impl(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
        refuse_options(np_fn.__name__, out=out)
        x = as_traced(a)
        concrete = np_fn(x.value, axis=axis, dtype=dtype, keepdims=keepdims, **_options(initial, where))
        v = x.ir if dtype is None else astype(x.ir, dtype)
        return make(_reduction_with_options(op, v, axis, keepdims, initial, where), concrete)
    return impl


def _max_like(op, np_fn):
    def impl(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        refuse_options(np_fn.__name__, out=out)
        x = as_traced(a)
        concrete = np_fn(x.value, axis=axis, keepdims=keepdims, **_options(initial, where))
        return make(_reduction_with_options(op, x.ir, axis, keepdims, initial, where), concrete)
    return impl


def _bool_reduction(op, np_fn):
    def impl(a, axis=None, out=None, keepdims=False, where=None):
        refuse_options(np_fn.__name__, out=out, where=where)
        x = as_traced(a)
        return make(_reduce(op, astype(x.ir, bool), axis, keepdims), np_fn(x.value, axis=axis, keepdims=keepdims))
    return impl


def _arg_reduction(op, np_fn):
    def impl(a, axis=None, out=None, *, keepdims=False):
        refuse_options(np_fn.__name__, out=out)
        x = as_traced(a)
        concrete = np_fn(x.value, axis=axis, keepdims=keepdims)
        v = reshape(x.ir, (x.ir.size,)) if axis is None else x.ir
        ax = 0 if axis is None else normalize_axis_index(axis, x.ir.ndim)
        return make(reshape(builder().emit(op, v, axis=ax), np.shape(concrete)), concrete)
    return impl


def _mean_parts(x, axis, dtype):
    """(x cast to the accumulation dtype, number of reduced elements), as NumPy's _mean does."""
    kind = x.ir.dtype
    if dtype is not None:
        work = np.dtype(dtype)
    elif kind.kind in "biu":
        work = np.dtype(np.float64)
    else:
        work = np.dtype(np.float32) if kind == np.float16 else kind
    return astype(x.ir, work), _count(x.ir.shape, _axes(axis, x.ir.ndim))


def _mean_ir(v, n, axis, keepdims):
    return builder().divide(_reduce("sum", v, axis, keepdims), const(n, v.dtype))


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """np.mean: sum / count in NumPy's accumulation dtype."""
    refuse_options("mean", out=out, where=where)
    x = as_traced(a)
    concrete = np.mean(x.value, axis=axis, dtype=dtype, keepdims=keepdims)
    v, n = _mean_parts(x, axis, dtype)
    return make(astype(_mean_ir(v, n, axis, keepdims), dtype_of(concrete)), concrete)


def _var_ir(x, axis, dtype, ddof, keepdims):
    b = builder()
    v, n = _mean_parts(x, axis, dtype)
    centred = b.subtract(v, _mean_ir(v, n, axis, True))
    return b.divide(_reduce("sum", b.multiply(centred, centred), axis, keepdims), const(max(n - ddof, 0), v.dtype))


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """np.var: mean of squared deviations, divided by (n - ddof)."""
    refuse_options("var", out=out, where=where, mean=mean, correction=correction)
    x = as_traced(a)
    concrete = np.var(x.value, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    return make(astype(_var_ir(x, axis, dtype, ddof, keepdims), dtype_of(concrete)), concrete)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None):
    """np.std: sqrt of np.var."""
    refuse_options("std", out=out, where=where, mean=mean, correction=correction)
    x = as_traced(a)
    concrete = np.std(x.value, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    return make(astype(_std_ir(x, axis, dtype, ddof, keepdims), dtype_of(concrete)), concrete)


def _std_ir(x, axis, dtype, ddof, keepdims):
    """sqrt(var); over one element |x - mean| / sqrt(1 - ddof), whose derivative is the exact 0 (a
    constant function) where sqrt's would be inf * 0."""
    b = builder()
    v, n = _mean_parts(x, axis, dtype)
    if n != 1:
        return b.sqrt(_var_ir(x, axis, dtype, ddof, keepdims))
    centred = _reduce("sum", b.subtract(v, _mean_ir(v, n, axis, True)), axis, keepdims)
    with np.errstate(divide="ignore"):
        scale = np.float64(1.0) / np.sqrt(max(n - ddof, 0))
    return b.multiply(b.absolute(centred), const(scale, v.dtype))


def cumsum(a, axis=None, dtype=None, out=None):
    """np.cumsum (flattened when axis is None)."""
    refuse_options("cumsum", out=out)
    x = as_traced(a)
    concrete = np.cumsum(x.value, axis=axis, dtype=dtype)
    v = x.ir if dtype is None else astype(x.ir, dtype)
    v = reshape(v, (v.size,)) if axis is None else v
    ax = 0 if axis is None else normalize_axis_index(axis, v.ndim)
    return make(builder().cumsum(v, axis=ax), concrete)


# -- shape ops ----------------------------------------------------------------------------------------
def _shape_arg(args, kwargs, *names):
    """The one shape/axes argument given either as varargs (x.reshape(2, 3)) or as one sequence."""
    for name in names:
        if name in kwargs:
            return kwargs.pop(name)
    if len(args) == 1 and (args[0] is None or isinstance(args[0], (tuple, list, np.ndarray))):
        return args[0]
    return tuple(args) if args else None


def _reshape_view(x, v, concrete):
    """The TracedArray of `v` = x reshaped to concrete's shape, writable through to x."""
    shape = np.shape(concrete)
    link = ViewLink(lambda base_ir: reshape(base_ir, shape), lambda view_ir, base_ir: reshape(view_ir, base_ir.shape),
                    lambda base: base.reshape(shape))
    return make_view(reshape(v, shape), concrete, x, link)


def _reshaped(a, np_fn, *args, **kwargs):
    """A shape op whose result keeps the element order: a reshape to NumPy's result shape."""
    x = as_traced(a)
    return _reshape_view(x, x.ir, np_fn(x.value, *args, **kwargs))


def reshape_(a, *shape, order="C", **kwargs):
    """np.reshape / x.reshape(2, 3) / x.reshape((2, 3)); order='F' reshapes the reversed-axes array."""
    shape = _shape_arg(shape, kwargs, "shape", "newshape")
    if order == "C":
        return _reshaped(a, np.reshape, shape)
    if order != "F":
        refuse(f"reshape with order={order!r} is not supported while tracing")
    x = as_traced(a)
    concrete = np.reshape(x.value, shape, order="F")
    b = builder()
    backwards = reshape(b.transpose(x.ir, perm=tuple(reversed(range(x.ir.ndim)))), concrete.shape[::-1])
    return make_view(b.transpose(backwards, perm=tuple(reversed(range(concrete.ndim)))), concrete, x)


def _ravel_perm(value, order):
    """The axis order in which NumPy's ravel with `order` visits the concrete array's elements."""
    ndim = np.ndim(value)
    flags = getattr(value, "flags", None)
    if order == "F" or order == "A" and flags is not None and flags.f_contiguous and not flags.c_contiguous:
        return tuple(reversed(range(ndim)))
    if order != "K" or flags is None or flags.c_contiguous:
        return tuple(range(ndim))
    if any(s < 0 for s in value.strides):
        refuse("ravel/flatten with order='K' of an array with negative strides is not supported while "
               "tracing; use order='C'")
    return tuple(sorted(range(ndim), key=lambda i: -value.strides[i]))    # memory order (stable)


def ravel(a, order="C"):
    """np.ravel / x.ravel() (orders 'F', 'A' and 'K' follow the concrete array's layout)."""
    x = as_traced(a)
    concrete = np.ravel(x.value, order=order)
    perm = _ravel_perm(x.value, order)
    if perm == tuple(range(len(perm))):
        return _reshape_view(x, x.ir, concrete)
    return make_view(reshape(builder().transpose(x.ir, perm=perm), concrete.shape), concrete, x)


def flatten(a, order="C"):
    """x.flatten(): a flattened copy."""
    x = ravel(a, order)
    return make(x.ir, x.value.copy())


def squeeze(a, axis=None):
    """np.squeeze."""
    return _reshaped(a, np.squeeze, axis=axis)


def expand_dims(a, axis):
    """np.expand_dims."""
    return _reshaped(a, np.expand_dims, axis)


def _permuted(x, perm, concrete):
    perm = tuple(perm)
    inverse = inverse_permutation(perm)
    link = ViewLink(lambda base_ir: builder().transpose(base_ir, perm=perm),
                    lambda view_ir, base_ir: builder().transpose(view_ir, perm=inverse),
                    lambda base: base.transpose(perm))
    return make_view(link.forward(x.ir), concrete, x, link)


def transpose(a, *axes, **kwargs):
    """np.transpose / x.transpose(1, 0) / x.T."""
    x = as_traced(a)
    axes = _shape_arg(axes, kwargs, "axes")
    ndim = x.ir.ndim
    concrete = np.transpose(x.value, axes)
    perm = tuple(reversed(range(ndim))) if axes is None else tuple(normalize_axis_index(i, ndim) for i in axes)
    return _permuted(x, perm, concrete)


def swapaxes(a, axis1, axis2):
    """np.swapaxes."""
    x = as_traced(a)
    concrete = np.swapaxes(x.value, axis1, axis2)
    perm = list(range(x.ir.ndim))
    i, j = normalize_axis_index(axis1, len(perm)), normalize_axis_index(axis2, len(perm))
    perm[i], perm[j] = perm[j], perm[i]
    return _permuted(x, perm, concrete)


def matrix_transpose(a):
    """x.mT (NumPy 2): the last two axes swapped, a view; NumPy's ValueError below two dimensions."""
    x = as_traced(a)
    concrete = x.value.mT
    return swapaxes(x, -2, -1) if concrete is not None else None


def moveaxis(a, source, destination):
    """np.moveaxis (NumPy's own permutation algorithm)."""
    x = as_traced(a)
    concrete = np.moveaxis(x.value, source, destination)
    ndim = x.ir.ndim
    source, destination = normalize_axis_tuple(source, ndim), normalize_axis_tuple(destination, ndim)
    perm = [n for n in range(ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        perm.insert(dest, src)
    return _permuted(x, perm, concrete)


def broadcast_to(array, shape, subok=False):
    """np.broadcast_to."""
    x = as_traced(array)
    concrete = np.broadcast_to(x.value, shape)
    return make_view(builder().broadcast_to(x.ir, shape=concrete.shape), concrete, x)


def _atleast(np_fn):
    def impl(*arys):
        results = [_reshaped(a, np_fn) for a in arys]
        return results[0] if len(results) == 1 else tuple(results)
    return impl


# -- joins ----------------------------------------------------------------------------------------------
def stack_nested(obj):
    """The IR Value of np.array(obj) for nested lists/tuples holding traced values (dtype not yet cast)."""
    if type(obj) is TracedArray:
        return obj.ir
    if isinstance(obj, (list, tuple)) and contains_traced(obj):
        parts = [e.ir if type(e) is TracedArray else stack_nested(e) for e in obj]
        return _concatenated(parts, [(1,) + p.shape for p in parts])
    return const(obj)


def _row_of(v):
    """(id of S, t) when IR Value `v` is row t of a loop's stacked output S (`index(S, int t)`), else None."""
    if v.op != "index" or v.args[0].op != "loop_result":
        return None
    spec = v.params["spec"]
    return (id(v.args[0]), spec[0][1]) if len(spec) == 1 and spec[0][0] == "int" and spec[0][1] >= 0 else None


def _concatenated(values, shapes):
    """The concatenation along axis 0 of `values`, each reshaped to its shape in `shapes`.  A run of
    consecutive rows of one stacked loop output (a list a rolled loop appended to: interpretation/appends.py)
    is one slice of it, not one operand per row."""
    parts, k = [], 0
    while k < len(values):
        row, m = _row_of(values[k]), 1
        while row is not None and k + m < len(values) and shapes[k + m] == shapes[k] \
                and _row_of(values[k + m]) == (row[0], row[1] + m):
            m += 1
        if m > 1:
            block = builder().index(values[k].args[0], spec=(("slice", row[1], m, 1),))
            parts.append(reshape(block, (m * shapes[k][0],) + shapes[k][1:]))
        else:
            parts.append(reshape(values[k], shapes[k]))
        k += m
    return parts[0] if len(parts) == 1 else builder().concatenate(*parts, axis=0)


def _joined(arrays, concrete, part_shape, axis):
    """Concatenate `arrays` along `axis` after reshaping each one to `part_shape(its value)`."""
    shapes = [part_shape(np.asarray(concrete_of(a))) for a in arrays]
    if axis == 0:
        return make(astype(_concatenated([lift(a) for a in arrays], shapes), concrete.dtype), concrete)
    parts = [reshape(lift(a), shape) for a, shape in zip(arrays, shapes)]
    return make(astype(builder().concatenate(*parts, axis=axis), concrete.dtype), concrete)


def concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """np.concatenate (axis=None flattens)."""
    refuse_options("concatenate", out=out)
    concrete = np.concatenate(unwrap(list(arrays)), axis=axis, dtype=dtype, casting=casting)
    if axis is None:
        return _joined(arrays, concrete, lambda v: (v.size,), 0)
    return _joined(arrays, concrete, lambda v: v.shape, normalize_axis_index(axis, concrete.ndim))


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """np.stack."""
    refuse_options("stack", out=out)
    concrete = np.stack(unwrap(list(arrays)), axis=axis, dtype=dtype, casting=casting)
    ax = normalize_axis_index(axis, concrete.ndim)
    return _joined(arrays, concrete, lambda v: v.shape[:ax] + (1,) + v.shape[ax:], ax)


def vstack(tup, *, dtype=None, casting="same_kind"):
    """np.vstack."""
    concrete = np.vstack(unwrap(list(tup)), dtype=dtype, casting=casting)
    return _joined(tup, concrete, lambda v: np.atleast_2d(v).shape, 0)


def hstack(tup, *, dtype=None, casting="same_kind"):
    """np.hstack."""
    concrete = np.hstack(unwrap(list(tup)), dtype=dtype, casting=casting)
    axis = 0 if np.ndim(concrete_of(tup[0])) <= 1 else 1
    return _joined(tup, concrete, lambda v: np.atleast_1d(v).shape, axis)


def column_stack(tup):
    """np.column_stack."""
    concrete = np.column_stack(unwrap(list(tup)))
    return _joined(tup, concrete, lambda v: (v.size, 1) if v.ndim < 2 else v.shape, 1)


# -- creation and conversion ------------------------------------------------------------------------
def _fill_like(value):
    def impl(a, dtype=None, order="K", subok=True, shape=None, **kwargs):
        concrete = np.full_like(np.asarray(concrete_of(a)), value, dtype=dtype, shape=shape)
        return make(builder().fill(concrete.shape, concrete.dtype, value), concrete)
    return impl


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kwargs):
    """np.full_like (the fill value may be traced)."""
    concrete = np.full_like(np.asarray(concrete_of(a)), concrete_of(fill_value), dtype=dtype, shape=shape)
    if type(fill_value) is not TracedArray:
        return make(builder().fill(concrete.shape, concrete.dtype, concrete_of(fill_value)), concrete)
    v = astype(fill_value.ir, concrete.dtype)
    return make(builder().broadcast_to(v, shape=concrete.shape), concrete)


def _converted(a, concrete):
    if type(a) is TracedArray and concrete is a.value:
        return a                                           # NumPy returned the same object
    return make(reshape(astype(lift(a), concrete.dtype), concrete.shape), concrete)


def asarray(a, dtype=None, order=None, **kwargs):
    """np.asarray / np.asanyarray / np.ascontiguousarray (lists holding traced values are stacked)."""
    return _converted(a, np.asarray(unwrap(a), dtype=dtype))


def ascontiguousarray(a, dtype=None, **kwargs):
    """np.ascontiguousarray (at least 1-d)."""
    return _converted(a, np.ascontiguousarray(unwrap(a), dtype=dtype))


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, **kwargs):
    """np.array (a copy unless copy=False)."""
    return _converted(object, np.array(unwrap(object), dtype=dtype, copy=copy, ndmin=ndmin))


def copy(a, order="K", **kwargs):
    """np.copy / x.copy(): the same IR value, a fresh concrete array."""
    x = as_traced(a)
    return make(x.ir, np.copy(x.value) if isinstance(x.value, np.ndarray) else x.value)


def astype_(a, dtype, order="K", casting="unsafe", subok=True, copy=True):
    """x.astype(dtype)."""
    x = as_traced(a)
    concrete = x.value.astype(dtype, casting=casting, copy=copy)
    return x if concrete is x.value else make(astype(x.ir, concrete.dtype), concrete)


def to_float(x=0.0):
    """float(x): stays traced (a Python float standing for an f64 scalar)."""
    if type(x) is not TracedArray:
        return float(x)
    concrete = float(x.value)
    return make(astype(reshape(x.ir, ()), np.float64), concrete)


def scalar_cast(scalar_type, x=0, *args):
    """np.float64(x), np.float32(x), np.int64(x)...: a cast that stays traced."""
    if type(x) is not TracedArray or args:
        return scalar_type(unwrap(x), *args)
    concrete = scalar_type(x.value)
    return make(reshape(astype(x.ir, dtype_of(concrete)), np.shape(concrete)), concrete)


def item(a, *args):
    """x.item(): a Python scalar; floats stay traced, ints/bools are guarded."""
    x = as_traced(a)
    concrete = x.value.item(*args)
    if len(args) == 1 and not isinstance(args[0], tuple):
        x, args = ravel(x), (args[0],)                     # a flat index
    v = x[args].ir if args else x.ir
    return make(astype(reshape(v, ()), dtype_of(concrete)), concrete)


def tolist(a):
    """x.tolist(): refused (the nested lists would hold untraced Python numbers)."""
    refuse("x.tolist() on a traced array is not supported: it would drop the derivative; "
           "iterate over the array or index it instead")


def round_(a, decimals=0, out=None):
    """np.round / np.around / round(x, ndigits): NumPy's multiply, rint, divide."""
    refuse_options("round", out=out)
    x = as_traced(a)
    if isinstance(x.value, float):
        refuse("round(python_float, ndigits) on a traced value is not supported (Python rounds in "
               "decimal); use np.round(x, ndigits)")
    if decimals < 0:
        refuse("np.round with negative decimals is not supported while tracing")
    concrete = np.round(x.value, decimals)
    if x.ir.dtype.kind in "biu":
        return make(x.ir, concrete)
    b = builder()
    if decimals == 0:
        return make(b.rint(x.ir), concrete)
    scale = const(10.0 ** decimals, x.ir.dtype)
    return make(b.divide(b.rint(b.multiply(x.ir, scale)), scale), concrete)


def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None, **kwargs):
    """np.clip: minimum(maximum(a, a_min), a_max); out= a traced array writes the result into it."""
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if out is not None and type(out) is not TracedArray:
        refuse("np.clip(..., out=plain_array) would store a traced value into an untraced array; "
               "use the returned value")
    concrete = np.clip(unwrap(a), unwrap(lo), unwrap(hi), out=None if out is None else out.value.copy())
    x = as_traced(a)
    if lo is not None:
        x = elementwise("maximum", np.maximum, x, lo)
    if hi is not None:
        x = elementwise("minimum", np.minimum, x, hi)
    if out is None:
        return make(x.ir, concrete)
    return rebind(out, builder().broadcast_to(astype(x.ir, concrete.dtype), shape=concrete.shape), concrete)


def where(condition, x=None, y=None):
    """np.where(condition, x, y) (the one-argument form would need a data-dependent shape)."""
    if x is None or y is None:
        refuse("np.where(condition) with one argument gives a data-dependent shape; use "
               "np.where(condition, x, y)")
    concrete = np.where(unwrap(condition), unwrap(x), unwrap(y))
    xv, yv = lift_operands("where", (x, y))
    return make(builder().where(astype(lift(condition), bool), xv, yv), concrete)


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """np.diff (repeated differences along one axis, after joining prepend and append to it)."""
    x = as_traced(a)
    edges = {k: unwrap(v) for k, v in (("prepend", prepend), ("append", append)) if v is not None}
    concrete = np.diff(x.value, n=n, axis=axis, **edges)
    ax = normalize_axis_index(axis, x.ir.ndim)
    if prepend is not None or append is not None:
        edge_shape = x.ir.shape[:ax] + (1,) + x.ir.shape[ax + 1:]
        edges = [as_traced(e) for e in (prepend, append) if e is not None]
        edges = [broadcast_to(e, edge_shape) if e.ir.ndim == 0 else e for e in edges]
        joined = edges[:1] + [x] + edges[1:] if prepend is not None else [x] + edges
        x = concatenate(joined, axis=ax)
    before = (slice(None),) * ax
    op, fn = ("not_equal", np.not_equal) if x.ir.dtype == bool else ("subtract", np.subtract)
    for _ in range(n):
        x = elementwise(op, fn, x[before + (slice(1, None),)], x[before + (slice(None, -1),)])
    return make(x.ir, concrete)


def take(a, indices, axis=None, out=None, mode="raise"):
    """np.take (mode='raise' only)."""
    refuse_options("take", out=out)
    if mode != "raise":
        refuse("np.take with mode other than 'raise' is not supported while tracing")
    concrete = np.take(unwrap(a), unwrap(indices), axis=axis)
    x = as_traced(a)
    if axis is None:
        x = ravel(x)
        axis = 0
    key = (slice(None),) * normalize_axis_index(axis, x.ir.ndim) + (indices,)
    return make(x[key].ir, concrete)


def view(a, *args, **kwargs):
    """x.view(), x.view(dtype) of an equal dtype (one carrying metadata), x.view(np.ndarray): the same
    elements, a view writable through to x.  Reinterpreting the bytes as another dtype, or viewing as an
    ndarray subclass, is refused."""
    x = as_traced(a)
    concrete = x.value.view(*args, **kwargs)                      # NumPy's checks
    if concrete.dtype != x.value.dtype or type(concrete) is not np.ndarray:
        refuse("x.view(dtype) reinterpreting the bytes as another dtype, or as an ndarray subclass, is not "
               "supported while tracing (its derivative is not defined); use x.astype(dtype)")
    return _reshape_view(x, x.ir, concrete)


def on_concrete(np_fn):
    """A rule computing `np_fn` on the concrete values (metadata such as np.shape: no IR)."""
    def impl(*args, **kwargs):
        return np_fn(*unwrap(args), **unwrap(kwargs))
    impl.__name__ = getattr(np_fn, "__name__", "on_concrete")
    return impl


sum_ = _sum_like("sum", np.sum)
prod = _sum_like("prod", np.prod)
max_ = _max_like("max", np.max)
min_ = _max_like("min", np.min)
all_ = _bool_reduction("min", np.all)
any_ = _bool_reduction("max", np.any)
argmax = _arg_reduction("argmax", np.argmax)
argmin = _arg_reduction("argmin", np.argmin)
zeros_like = _fill_like(0)
ones_like = _fill_like(1)
atleast_1d, atleast_2d, atleast_3d = _atleast(np.atleast_1d), _atleast(np.atleast_2d), _atleast(np.atleast_3d)

# ndarray method name -> implementation (array first); TracedArray's methods and those of plain arrays.
METHODS = {
    "sum": sum_, "prod": prod, "mean": mean, "var": var, "std": std, "max": max_, "min": min_,
    "all": all_, "any": any_, "argmax": argmax, "argmin": argmin, "cumsum": cumsum,
    "reshape": reshape_, "transpose": transpose, "swapaxes": swapaxes, "ravel": ravel, "flatten": flatten,
    "squeeze": squeeze, "copy": copy, "astype": astype_, "item": item, "tolist": tolist, "clip": clip,
    "round": round_, "take": take, "fill": fill, "view": view,
}
IMPLEMENTATIONS.update(METHODS, matrix_transpose=matrix_transpose, stack_nested=stack_nested)
hooks.scalar_cast = scalar_cast
