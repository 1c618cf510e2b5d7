"""np.sort, np.argsort, np.take_along_axis and np.cumprod on traced values (the ndarray methods of those
names, and the rules for the functions: tracer/rules/numpy_funcs.py registers them).

argsort is the IR's `argsort` op (stable: ties keep their order, where NumPy's default quicksort may
order them either way; both are sorting orders).  sort gathers the operand along the axis with that
permutation (an `index` with one index array per axis), so its derivative flows through the gather.
cumprod is a product reduction over a triangle of the expanded operand (O(n^2) work along the axis),
which keeps derivatives exact when entries are zero.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .array_api import as_traced
from .values import astype, builder, lift, make, reshape, unwrap
from .refusals import refuse, refuse_options


def _along(x, axis):
    """(IR value, axis): x flattened when axis is None, else x with the axis normalised."""
    v = as_traced(x).ir
    if axis is None:
        return reshape(v, (v.size,)), 0
    return v, normalize_axis_index(axis, v.ndim)


def take_along(v, index, axis):
    """The IR of np.take_along_axis(v, index, axis): one index array per axis, `index` on `axis`."""
    b = builder()
    arrays = []
    for d, n in enumerate(v.shape):
        if d == axis:
            arrays.append(index)
        else:
            shape = [1] * v.ndim
            shape[d] = n
            arrays.append(b.const(np.arange(n, dtype=np.intp).reshape(shape)))
    return b.index(v, *arrays, spec=tuple(("array", d) for d in range(v.ndim)))


def take_along_axis(arr, indices, axis=-1):
    """np.take_along_axis (indices and arr broadcast on the other axes, as in NumPy)."""
    concrete = np.take_along_axis(unwrap(arr), unwrap(indices), axis=axis)
    v, ax = _along(arr, axis)
    return make(take_along(v, lift(indices), ax), concrete)


def _check_sort_options(what, kind, order, stable):
    refuse_options(what, order=order)
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable") or stable not in (None, True, False):
        refuse(f"{what}: unknown kind={kind!r} / stable={stable!r}")


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """np.argsort (stable order)."""
    _check_sort_options("np.argsort", kind, order, stable)
    v, ax = _along(a, axis)
    concrete = np.argsort(unwrap(a), axis=axis, kind="stable")
    return make(builder().argsort(v, axis=ax), concrete)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """np.sort: the operand gathered by its argsort."""
    _check_sort_options("np.sort", kind, order, stable)
    v, ax = _along(a, axis)
    concrete = np.sort(unwrap(a), axis=axis)
    return make(take_along(v, builder().argsort(v, axis=ax), ax), concrete)


def cumprod(a, axis=None, dtype=None, out=None):
    """np.cumprod: y[..., i] = prod(where(j <= i, x[..., j], 1)) along the axis."""
    refuse_options("np.cumprod", out=out)
    x = as_traced(a)
    concrete = np.cumprod(x.value, axis=axis, dtype=dtype)
    b = builder()
    v, ax = _along(x, axis)
    v = astype(v, concrete.dtype)
    last = v.ndim - 1
    perm = tuple(d for d in range(v.ndim) if d != ax) + (ax,)
    moved = b.transpose(v, perm=perm)
    n = moved.shape[-1]
    rows = b.broadcast_to(reshape(moved, moved.shape[:-1] + (1, n)), shape=moved.shape + (n,))
    triangle = b.where(b.const(np.tri(n, dtype=bool)), rows, b.fill((), v.dtype, 1))
    products = b.prod(triangle, axis=(last + 1,), keepdims=False)
    return make(b.transpose(products, perm=tuple(int(i) for i in np.argsort(perm))), concrete)

