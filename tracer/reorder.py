"""Array operations that gather elements by constant index arrays: repeat, diagonal, trace, sort,
median, broadcast_arrays.

Which element goes where is computed from the concrete value and recorded as constant `index` specs;
for sort (and median) a guard checks that the gathered result is still in order, so the trace stays
valid exactly while the ordering is the same.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .array_api import as_traced, broadcast_to, mean, ravel, sum_
from .values import builder, const, guard, make, rebind, refuse, refuse_options, unwrap


def _gather(x, index_arrays):
    """x[i0, i1, ...] with one constant integer array per axis of x."""
    spec = tuple(("array", j) for j in range(len(index_arrays)))
    return builder().index(x.ir, *[const(np.asarray(i, dtype=np.intp)) for i in index_arrays], spec=spec)


def _axis_gather(x, axis, positions):
    """x gathered along `axis` at `positions` (an intp array shaped like the result)."""
    grids = list(np.indices(positions.shape, sparse=True))
    grids[axis] = positions
    return _gather(x, np.broadcast_arrays(*grids))


def repeat(a, repeats, axis=None):
    """np.repeat / x.repeat."""
    x = as_traced(a)
    concrete = np.repeat(x.value, unwrap(repeats), axis=axis)
    if axis is None:
        x, axis = ravel(x), 0
    axis = normalize_axis_index(axis, x.ir.ndim)
    picks = np.repeat(np.arange(x.ir.shape[axis]), unwrap(repeats))
    shape = [1] * x.ir.ndim
    shape[axis] = len(picks)
    positions = np.broadcast_to(picks.reshape(shape), concrete.shape)
    return make(_axis_gather(x, axis, positions), concrete)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """np.diagonal / x.diagonal (a copy, not a view)."""
    x = as_traced(a)
    concrete = np.diagonal(x.value, offset, axis1, axis2).copy()
    ndim = x.ir.ndim
    axis1, axis2 = normalize_axis_index(axis1, ndim), normalize_axis_index(axis2, ndim)
    rest = [i for i in range(ndim) if i not in (axis1, axis2)]
    moved = builder().transpose(x.ir, perm=tuple(rest + [axis1, axis2]))
    k = concrete.shape[-1]
    rows = np.arange(k) + max(-offset, 0)
    cols = np.arange(k) + max(offset, 0)
    spec = tuple(("slice", 0, moved.shape[i], 1) for i in range(len(rest))) + (("array", 0), ("array", 1))
    return make(builder().index(moved, const(rows), const(cols), spec=spec), concrete)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """np.trace / x.trace: the sum of the diagonal."""
    refuse_options("trace", out=out)
    concrete = np.trace(unwrap(a), offset, axis1, axis2, dtype=dtype)
    result = sum_(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)
    return make(result.ir, concrete)


def _sorted(x, axis):
    """(IR of x sorted along axis, guard recorded that it is in order)."""
    if x.ir.dtype.kind == "f" and np.isnan(x.value).any():
        refuse("sorting traced values that contain NaN is not supported")
    order = np.argsort(x.value, axis=axis, kind="stable")
    result = _axis_gather(x, axis, order)
    n = result.shape[axis]
    if n > 1:
        b = builder()
        head = [("slice", 0, d, 1) for d in result.shape]
        tail = list(head)
        head[axis], tail[axis] = ("slice", 0, n - 1, 1), ("slice", 1, n - 1, 1)
        ordered = b.less_equal(b.index(result, spec=tuple(head)), b.index(result, spec=tuple(tail)))
        guard(b.min(ordered, axis=tuple(range(result.ndim)), keepdims=False), True,
              "order of the sorted values")
    return result


def sort(a, axis=-1, kind=None, order=None, **kwargs):
    """np.sort (a copy; the ordering is guarded)."""
    refuse_options("sort", order=order)
    x = as_traced(a)
    concrete = np.sort(x.value, axis=axis, kind=kind)
    if axis is None:
        x, axis = ravel(x), 0
    return make(_sorted(x, normalize_axis_index(axis, x.ir.ndim)), concrete)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """np.median (one axis or all): the middle of the guarded sort."""
    refuse_options("median", out=out)
    if keepdims or not (axis is None or isinstance(axis, (int, np.integer))):
        refuse("np.median is traced for axis=None or one integer axis without keepdims")
    x = as_traced(a)
    concrete = np.median(x.value, axis=axis)
    if axis is None:
        x, axis = ravel(x), 0
    axis = normalize_axis_index(axis, x.ir.ndim)
    s = _sorted(x, axis)
    n = s.shape[axis]
    middle = range((n - 1) // 2, n // 2 + 1)               # one element, or the two middle ones
    spec = [("slice", 0, d, 1) for d in s.shape]
    spec[axis] = ("slice", middle.start, len(middle), 1)
    picked = make(builder().index(s, spec=tuple(spec)), np.take(np.sort(x.value, axis=axis), middle, axis=axis))
    return make(mean(picked, axis=axis).ir, concrete)


def broadcast_arrays(*args, subok=False):
    """np.broadcast_arrays."""
    shape = np.broadcast_shapes(*[np.shape(v) for v in unwrap(args)])
    return tuple(broadcast_to(a, shape) for a in args)


def sort_in_place(a, axis=-1, kind=None, order=None):
    """x.sort(): x now stands for its sorted values."""
    result = sort(a, axis=axis, kind=kind, order=order)
    rebind(a, result.ir, result.value)


# ndarray method name -> implementation (array first)
METHODS = {"repeat": repeat, "diagonal": diagonal, "trace": trace, "sort": sort_in_place}
