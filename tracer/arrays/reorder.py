"""Array operations that gather or scatter elements by constant index arrays: repeat, diagonal, trace,
broadcast_arrays, x.flat, and the in-place methods sort, partition and put.

Which element goes where is computed from the concrete value and recorded as constant `index` specs.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .array_api import as_traced, broadcast_to, ravel, sum_
from .indexing import guarded_value, setitem
from .sort_scan import argsort, cumprod, searchsorted, sort
from .values import IMPLEMENTATIONS, TracedArray, astype, builder, const, lift, make, rebind, reshape, unwrap
from .refusals import refuse, refuse_options


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
    return _picks_along(x, axis, np.repeat(np.arange(x.ir.shape[axis]), unwrap(repeats)), concrete)


def _picks_along(x, axis, picks, concrete):
    """The TracedArray of x's entries at positions `picks` along `axis` (NumPy's result `concrete`)."""
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


def broadcast_arrays(*args, subok=False):
    """np.broadcast_arrays."""
    shape = np.broadcast_shapes(*[np.shape(v) for v in unwrap(args)])
    return tuple(broadcast_to(a, shape) for a in args)


def _rebind_sorted(a, what, axis, kind, order):
    """Write a's values sorted along `axis` into a (the IR's stable argsort, see rules/sort_scan)."""
    if type(a) is not TracedArray:
        refuse(f"{what} would write traced values into a plain array")
    result = sort(a, axis=axis, kind=kind, order=order)
    rebind(a, result.ir, result.value)


def sort_in_place(a, axis=-1, kind=None, order=None):
    """x.sort(): x now stands for its sorted values."""
    _rebind_sorted(a, "ndarray.sort", axis, kind, order)


def partition_in_place(a, kth, axis=-1, kind="introselect", order=None):
    """x.partition(kth): x now stands for its sorted values (a valid partition for every kth)."""
    if type(a) is TracedArray:
        a.value.copy().partition(unwrap(kth), axis=axis)          # NumPy's checks of kth and axis
    _rebind_sorted(a, "ndarray.partition", axis, None, order)


def put(a, ind, v, mode="raise"):
    """x.put(ind, v) / np.put: flat positions `ind` of x set to v (repeated cyclically); last write wins."""
    if type(a) is not TracedArray or type(ind) is TracedArray or mode != "raise":
        refuse("ndarray.put is traced for a traced array, constant indices and mode='raise'")
    new_value = a.value.copy()
    new_value.put(ind, unwrap(v), mode=mode)                      # NumPy's checks
    size = a.value.size
    positions = np.arange(size)[np.asarray(ind, dtype=np.intp).ravel()]
    if positions.size == 0:
        return
    b = builder()
    values = reshape(lift(v), (np.size(unwrap(v)),))
    values = b.index(values, const(np.arange(positions.size) % values.size), spec=(("array", 0),))
    flat = b.index_set(reshape(a.ir, (size,)), astype(values, a.ir.dtype), const(positions), spec=(("array", 0),))
    rebind(a, reshape(flat, a.ir.shape), new_value)


class FlatIterator:
    """`x.flat` of a traced array x: iteration, indexing (a gather of the flattened array) and assignment
    (written into x)."""

    __slots__ = ("base",)

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return self.base.value.size

    def __iter__(self):
        flat = ravel(self.base)
        return (flat[i] for i in range(flat.value.size))

    def __getitem__(self, key):
        return ravel(self.base)[key]

    def __setitem__(self, key, value):
        x = self.base
        flat = make(reshape(x.ir, (x.value.size,)), x.value.reshape(-1).copy())
        setitem(flat, key, value)
        rebind(x, reshape(flat.ir, x.ir.shape), flat.value.reshape(x.value.shape))

    def copy(self):
        """x.flat.copy(): a flattened copy."""
        x = ravel(self.base)
        return make(x.ir, x.value.copy())


def truth(a, why):
    """The concrete truth values (a != 0) of `a`; guarded when `a` is traced."""
    if type(a) is not TracedArray:
        return np.asarray(unwrap(a)).astype(bool)
    return guarded_value(a if a.ir.dtype == bool else a != 0, why)


def nonzero(a):
    """x.nonzero() / np.nonzero: the indices of the nonzero entries (which ones is guarded)."""
    return np.nonzero(truth(a, "np.nonzero of a traced array"))


def compress(a, condition, axis=None, out=None):
    """x.compress(condition, axis) / np.compress: the entries where the condition holds (guarded)."""
    refuse_options("compress", out=out)
    keep = truth(condition, "np.compress by a traced condition")
    x = as_traced(a)
    concrete = np.compress(keep, x.value, axis=axis)
    if axis is None:
        x, axis = ravel(x), 0
    return _picks_along(x, normalize_axis_index(axis, x.ir.ndim), np.flatnonzero(keep), concrete)


# ndarray method name -> implementation (array first)
METHODS = {"repeat": repeat, "diagonal": diagonal, "trace": trace, "sort": sort_in_place,
           "partition": partition_in_place, "put": put, "nonzero": nonzero, "compress": compress,
           "cumprod": cumprod, "argsort": argsort, "searchsorted": searchsorted}
IMPLEMENTATIONS.update(METHODS, flat=FlatIterator)
