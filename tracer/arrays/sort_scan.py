"""np.sort, np.argsort, np.take_along_axis, np.cumprod, np.searchsorted and np.digitize's monotonicity
test on traced values (the ndarray methods of those names, and the rules for the functions:
tracer/rules/numpy_funcs.py registers them).

argsort is the IR's `argsort` op (stable: ties keep their order, where NumPy's default quicksort may
order them either way; both are sorting orders).  sort gathers the operand along the axis with that
permutation (an `index` with one index array per axis), so its derivative flows through the gather.
cumprod is a product reduction over a triangle of the expanded operand (O(n^2) work along the axis),
which keeps derivatives exact when entries are zero.
searchsorted of sorted `a` is a count, computed in the IR without a search: the insertion point of v is
the number of entries of `a` before it (a < v for side='left', a <= v for 'right', in NumPy's order that
puts NaN last), O(len(a)) comparisons per query, an integer result without guards.  The count equals
NumPy's binary search only when `a` is sorted: a traced `a` is guarded to stay sorted, an unsorted one
(whose answer depends on the search's steps) is refused.  digitize's monotonicity (1, -1 or 0) is
guarded through its two tests (non-decreasing, non-increasing).
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ...ir.spec import inverse_permutation
from .array_api import as_traced, take
from .values import TracedArray, astype, builder, guard, lift, make, reshape, unwrap
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
    return make(b.transpose(products, perm=inverse_permutation(perm)), concrete)


def _nan_last_less(b, x, y):
    """x < y in the order NumPy sorts floats in (NaN after everything), elementwise."""
    less = b.less(x, y)
    if x.dtype.kind != "f":
        return less
    return b.logical_or(less, b.logical_and(b.not_equal(y, y), b.equal(x, x)))


def _in_order(b, v, descending=False):
    """Whether 1-d IR value `v` is sorted (in NaN-last order), as a 0-d bool."""
    n = v.shape[0]
    if n < 2:
        return b.fill((), np.dtype(bool), True)
    head = b.index(v, spec=(("slice", 0, n - 1, 1),))
    tail = b.index(v, spec=(("slice", 1, n - 1, 1),))
    later, earlier = (head, tail) if descending else (tail, head)
    return b.logical_not(_any_less(b, later, earlier))


def _any_less(b, x, y):
    return b.max(_nan_last_less(b, x, y), axis=(0,), keepdims=False)


def _sorted_concretely(a, descending=False):
    """Whether 1-d array `a` is sorted (ascending in NumPy's order, NaN last; or descending)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        return False
    expected = np.sort(a)
    return bool(np.array_equal(expected[::-1] if descending else expected, a, equal_nan=True))


def searchsorted(a, v, side="left", sorter=None):
    """np.searchsorted(a, v) / a.searchsorted(v): for each v the count of entries of sorted `a` before it."""
    concrete = np.searchsorted(unwrap(a), unwrap(v), side=side, sorter=unwrap(sorter))  # NumPy's checks
    x = as_traced(a)
    if sorter is not None:
        x = take(x, sorter)
    if np.ndim(x.value) != 1 or not _sorted_concretely(x.value):
        refuse("np.searchsorted of an unsorted or non-real array is not supported while tracing (NumPy's "
               "answer then depends on the steps of its binary search)")
    b = builder()
    dtype = np.result_type(x.ir.dtype, np.asarray(unwrap(v)).dtype)
    keys, q = astype(x.ir, dtype), astype(as_traced(v).ir, dtype)
    if type(a) is TracedArray or type(sorter) is TracedArray:
        guard(_in_order(b, keys), True, "np.searchsorted: the array searched stays sorted")
    q = reshape(q, q.shape + (1,))
    before = _nan_last_less(b, keys, q) if side == "left" else b.logical_not(_nan_last_less(b, q, keys))
    counts = b.sum(astype(before, np.intp), axis=(q.ndim - 1,), keepdims=False)
    return make(counts, concrete)


def monotonicity(bins):
    """np.digitize's compiled `_monotonicity(bins)`: 1 (non-decreasing), -1 (non-increasing) or 0;
    for traced bins both tests are guarded."""
    result = np.lib._function_base_impl._monotonicity(unwrap(bins))
    if type(bins) is TracedArray:
        values = np.asarray(bins.value)
        if values.ndim != 1 or values.dtype.kind not in "biuf" or np.isnan(values).any():
            refuse("np.digitize with traced bins is traced for 1-d real bins without NaN")
        b = builder()
        for descending in (False, True):
            guard(_in_order(b, astype(bins.ir, np.float64), descending), _sorted_concretely(values, descending),
                  "np.digitize: the bins' monotonicity")
    return result
