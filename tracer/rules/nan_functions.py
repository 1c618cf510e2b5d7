"""Rules for NumPy's nan-functions (nansum, nanprod, nancumsum, nancumprod, nanmax, nanmin, nanmean,
nanvar, nanstd): the plain reduction of the operand with its NaNs replaced by the reduction's neutral
value, built from traced operations (NumPy's own versions write into copies with np.copyto).

The NaN mask is part of the IR (x != x), so no guard is needed; slices that are all NaN give NaN
(nanmax/nanmin, nanmean, nanvar) exactly as NumPy does.  Integer and boolean operands have no NaNs:
the plain function is used.  nanmedian/nanpercentile/nanquantile are refused.
"""
import numpy as np

from .. import array_api as A
from ..registry import register
from ..values import astype, builder, const, make, refuse, refuse_options, reshape
from .sort_scan import cumprod


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


def _refused(np_fn, plain_name):
    def impl(*args, **kwargs):
        refuse(f"np.{np_fn.__name__} is not supported while tracing (the count of non-NaN values decides "
               f"which elements are picked); remove the NaNs with a fixed-size selection and use np.{plain_name}")
    impl.__name__ = np_fn.__name__
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
    np.nanmedian: _refused(np.nanmedian, "median"), np.nanpercentile: _refused(np.nanpercentile, "percentile"),
    np.nanquantile: _refused(np.nanquantile, "quantile"),
}
for _fn, _rule in _RULES.items():
    register(_fn)(_rule)
