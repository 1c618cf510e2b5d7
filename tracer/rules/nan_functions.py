"""Rules for NumPy's nan-functions (nansum, nanprod, nancumsum, nancumprod, nanmax, nanmin, nanmean,
nanvar, nanstd): the plain reduction of the operand with its NaNs replaced by the reduction's neutral
value, built from traced operations (NumPy's own versions write into copies with np.copyto).

The NaN mask is part of the IR (x != x), so no guard is needed; slices that are all NaN give NaN
(nanmax/nanmin, nanmean, nanvar) exactly as NumPy does.  Integer and boolean operands have no NaNs:
the plain function is used.  nanmedian/nanpercentile/nanquantile pick elements by rank among the non-NaN
entries, so the NaN mask is guarded: slices with the same count of valid entries are gathered into one
(slices, count) array and NumPy's own median/percentile/quantile (interpreted) runs on it along axis 1.
"""
import inspect

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ..arrays import array_api as A
from ..interpretation import interpreter
from ..arrays.indexing import guarded_value
from ..recording.registry import register
from ..arrays.values import astype, builder, const, make, reshape, unwrap
from ..arrays.refusals import refuse_options
from ..arrays.sort_scan import cumprod


def _mask(x):
    """IR bool mask of the NaNs of TracedArray x."""
    return builder().not_equal(x.ir, x.ir)


def _replaced(x, neutral):
    """x with its NaNs replaced by `neutral` (a TracedArray with the same concrete value pattern)."""
    value = np.where(np.isnan(x.value), neutral, x.value)
    return make(builder().where(_mask(x), const(neutral, x.ir.dtype), x.ir), value)


def _is_float(x):
    return x.ir.dtype.kind == "f"


def _replacing(plain, np_fn, neutral):
    """A nan-function that runs `plain` on the operand with NaNs replaced by `neutral`."""
    def impl(a, *args, **kwargs):
        x = A.as_traced(a)
        concrete = np_fn(x.value, *args, **kwargs)
        result = plain(_replaced(x, neutral) if _is_float(x) else x, *args, **kwargs)
        return make(result.ir, concrete)
    impl.__name__ = np_fn.__name__
    impl.__doc__ = f"np.{np_fn.__name__}: {plain.__name__} with NaNs replaced by {neutral}."
    return impl


def _extremum(plain, np_fn, neutral):
    """nanmax/nanmin: the plain reduction with NaNs replaced by -inf/+inf; all-NaN slices give NaN."""
    def impl(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        refuse_options(f"np.{np_fn.__name__}", out=out, initial=initial, where=where)
        x = A.as_traced(a)
        concrete = np_fn(x.value, axis=axis, keepdims=keepdims)
        if not _is_float(x):
            return plain(x, axis=axis, keepdims=keepdims)
        b = builder()
        reduced = plain(_replaced(x, neutral), axis=axis, keepdims=keepdims).ir
        all_nan = A._reduce("min", _mask(x), axis, keepdims)
        return make(b.where(all_nan, const(np.nan, reduced.dtype), reduced), concrete)
    impl.__name__ = np_fn.__name__
    impl.__doc__ = f"np.{np_fn.__name__} (all-NaN slices give NaN)."
    return impl


def _count_and_sum(x, axis, dtype, keepdims):
    """(IR count of non-NaN entries, IR sum of non-NaN entries), both in the accumulation dtype."""
    b = builder()
    clean = _replaced(x, 0.0)
    v, _ = A._mean_parts(clean, axis, dtype)
    count = A._reduce("sum", astype(b.logical_not(_mask(x)), v.dtype), axis, keepdims)
    return count, A._reduce("sum", v, axis, keepdims), v


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """np.nanmean: sum of the non-NaN entries over their count."""
    refuse_options("np.nanmean", out=out, where=where)
    x = A.as_traced(a)
    if not _is_float(x):
        return A.mean(x, axis=axis, dtype=dtype, keepdims=keepdims)
    concrete = np.nanmean(x.value, axis=axis, dtype=dtype, keepdims=keepdims)
    count, total, _ = _count_and_sum(x, axis, dtype, keepdims)
    return make(astype(builder().divide(total, count), concrete.dtype), concrete)


def _nanvar_ir(x, axis, dtype, ddof, keepdims):
    b = builder()
    count, total, v = _count_and_sum(x, axis, dtype, True)
    centred = b.where(_mask(x), const(0, v.dtype), b.subtract(v, b.divide(total, count)))
    squares = A._reduce("sum", b.multiply(centred, centred), axis, keepdims)
    dof = b.subtract(count if keepdims else reshape(count, squares.shape), const(ddof, v.dtype))
    bad = b.less_equal(dof, const(0, v.dtype))
    return b.where(bad, const(np.nan, v.dtype), b.divide(squares, dof))


def _variance(np_fn, finish):
    def impl(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
             correction=None):
        refuse_options(f"np.{np_fn.__name__}", out=out, where=where, mean=mean, correction=correction)
        x = A.as_traced(a)
        if not _is_float(x):
            plain = A.var if np_fn is np.nanvar else A.std
            return plain(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
        concrete = np_fn(x.value, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
        return make(astype(finish(_nanvar_ir(x, axis, dtype, ddof, keepdims)), concrete.dtype), concrete)
    impl.__name__ = np_fn.__name__
    impl.__doc__ = f"np.{np_fn.__name__}: over the non-NaN entries; NaN where count - ddof <= 0."
    return impl


def _slices(x, axis):
    """x with the `axis` axes moved last and merged: a (slices, length) TracedArray."""
    axes = normalize_axis_tuple(tuple(range(x.ir.ndim)) if axis is None else axis, x.ir.ndim)
    moved = A.moveaxis(x, axes, tuple(range(-len(axes), 0)))
    length = int(np.prod([x.ir.shape[a] for a in axes], dtype=np.int64))
    return A.reshape_(moved, (-1, length))


def _over_valid(x, axis, plain, leading_shape, dtype):
    """IR of `plain(values)` (NumPy's reduction along axis 1 of a (slices, count) array: shaped
    leading_shape + (slices,), where leading_shape is q's shape) over the non-NaN entries of every slice
    of x along `axis`, in slice order and cast to `dtype`; the NaN mask is guarded.  Slices that are all
    NaN give NaN."""
    b = builder()
    rows = _slices(x, axis)
    valid = ~guarded_value(make(_mask(rows), np.isnan(rows.value)),
                           "NaN mask of a nan-quantile operand (it decides which elements are picked)")
    counts = valid.sum(axis=1)
    flat, pieces, order = A.ravel(rows).ir, [], []
    for count in np.unique(counts):
        members = np.flatnonzero(counts == count)
        if count == 0:
            pieces.append(b.fill(leading_shape + (members.size,), dtype, np.nan))
        else:
            row, column = np.nonzero(valid[members])
            positions = (members[row] * valid.shape[1] + column).reshape(members.size, count)
            gathered = b.index(flat, const(positions), spec=(("array", 0),))
            values = make(gathered, rows.value.reshape(-1)[positions])
            pieces.append(astype(A.as_traced(plain(values)).ir, dtype))
        order.append(members)
    merged = b.concatenate(*pieces, axis=pieces[0].ndim - 1)
    inverse = np.argsort(np.concatenate(order))
    spec = tuple(("slice", 0, d, 1) for d in merged.shape[:-1]) + (("array", 0),)
    return b.index(merged, const(inverse), spec=spec)


def _nan_ranked(np_fn, plain_fn, leading=()):
    """nanmedian / nanpercentile / nanquantile: `plain_fn` (np.median, np.percentile, np.quantile, with the
    `leading` arguments, e.g. q, and `method`) over the non-NaN entries; see `_over_valid`."""
    signature = inspect.signature(np_fn)

    def impl(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        p = bound.arguments
        refuse_options(f"np.{np_fn.__name__}", out=p["out"], weights=p.get("weights"),
                       interpolation=p.get("interpolation"))
        x, head, axis = A.as_traced(p["a"]), tuple(p[n] for n in leading), p["axis"]
        keepdims = p["keepdims"] is not np._NoValue and p["keepdims"]
        options = {"method": p["method"]} if "method" in p else {}
        if not _is_float(x):
            return interpreter.call(plain_fn, (x,) + head, dict(options, axis=axis, keepdims=keepdims))
        concrete = np_fn(x.value, *unwrap(head), axis=axis, keepdims=keepdims, **options)

        def plain(values):
            return interpreter.call(plain_fn, (values,) + head, dict(options, axis=1))
        leading_shape = np.shape(unwrap(head[0])) if head else ()
        result = _over_valid(x, axis, plain, leading_shape, concrete.dtype)
        return make(reshape(result, np.shape(concrete)), concrete)
    impl.__name__ = np_fn.__name__
    impl.__doc__ = f"np.{np_fn.__name__}: np.{plain_fn.__name__} of the non-NaN entries (NaN mask guarded)."
    return impl


nanvar = _variance(np.nanvar, lambda v: v)
nanstd = _variance(np.nanstd, lambda v: builder().sqrt(v))

_RULES = {
    np.nansum: _replacing(A.sum_, np.nansum, 0.0),
    np.nanprod: _replacing(A.prod, np.nanprod, 1.0),
    np.nancumsum: _replacing(A.cumsum, np.nancumsum, 0.0),
    np.nancumprod: _replacing(cumprod, np.nancumprod, 1.0),
    np.nanmax: _extremum(A.max_, np.nanmax, -np.inf),
    np.nanmin: _extremum(A.min_, np.nanmin, np.inf),
    np.nanmean: nanmean, np.nanvar: nanvar, np.nanstd: nanstd,
    np.nanmedian: _nan_ranked(np.nanmedian, np.median),
    np.nanpercentile: _nan_ranked(np.nanpercentile, np.percentile, ("q",)),
    np.nanquantile: _nan_ranked(np.nanquantile, np.quantile, ("q",)),
}
for _fn, _rule in _RULES.items():
    register(_fn)(_rule)
