"""Rules for array creation and in-place NumPy functions.

Creation functions (`np.zeros`, `np.empty`, `np.ones`, `np.full`, the `*_like` family, `np.array`,
`np.asarray`, `np.copy`, `np.arange`, `np.linspace`, `np.eye`, `np.identity`, `np.tri`, and
`p.copy()`/`p.astype()` of plain arrays) run on every call: with traced arguments they trace as before;
otherwise NumPy creates the array, and when user code made it (or, for scratch buffers such as np.zeros,
library code while a traced value is live) the array is adopted as a constant TracedArray
(`aliasing.adopt_created`), so that writes into it are traced; library code's other arrays are
remembered and adopted at the first traced write into them (`aliasing.adopt_for_write`).  In-place
functions (`np.copyto`, `np.fill_diagonal`, `ufunc.at`) map to `tracer.arrays.inplace`.
"""
import operator

import numpy as np

from ..arrays import array_api as A
from ..arrays import inplace
from .numpy_library import linspace
from ..arrays.aliasing import adopt_created
from ..recording.registry import NDARRAY_METHODS, UFUNC_METHODS, register
from ..arrays.values import TracedArray, const, contains_traced, unwrap
from ..recording import context
from ..arrays.refusals import refuse


def _static(x):
    """A shape or count argument: traced integers become guarded Python ints, traced real scalars
    (`np.arange(0.0, T, dt)` with a float argument T) guarded Python floats: the trace holds for that
    value (another one traces again; the result's shape depends on it, its derivative is zero);
    other traced values refuse."""
    if type(x) is TracedArray:
        kind = np.asarray(x.value).dtype.kind
        if np.ndim(x.value) == 0 and kind in "iu":
            return operator.index(x)
        if np.ndim(x.value) == 0 and kind == "f" and np.isfinite(x.value):
            value = x.value.item() if isinstance(x.value, np.generic) else float(x.value)
            ctx = context.current()
            ctx.guard(ctx.builder.equal(x.ir, const(value, x.ir.dtype)), True,
                      "a traced float used as an array size or range bound (the trace is for its value)")
            return value
        refuse("a traced value used as an array size, dtype or range bound is not supported "
               "(the result's shape would depend on it)")
    if type(x) in (tuple, list):
        return type(x)(_static(e) for e in x)
    return x


def _created(np_fn, traced_impl=None, scratch=False):
    """The rule for creation function `np_fn`: `traced_impl` when given and a traced value is passed,
    else NumPy's result on static arguments, adopted when user code made it (or when it is a `scratch`
    buffer library code made while a traced value is live: `aliasing.adopt_created`)."""
    def rule(*args, **kwargs):
        if traced_impl is not None and contains_traced(args, kwargs):
            return traced_impl(*args, **kwargs)
        args, kwargs = _static(args), {k: _static(v) for k, v in kwargs.items()}
        return adopt_created(np_fn(*args, **kwargs), args, kwargs, scratch)
    rule.__name__ = np_fn.__name__
    return rule


def _full(shape, fill_value, dtype=None, order="C", **kwargs):
    """np.full with a traced fill value: the fill broadcast to the shape."""
    concrete = np.full(_static(shape), unwrap(fill_value), dtype=dtype, order=order, **kwargs)
    return A.full_like(concrete, fill_value)


def _plain_method(name, impl):
    """`p.<name>(...)` of a plain ndarray: `impl` with traced arguments, else adopted when user code
    made the result; runs on every call."""
    def handler(array, *args, **kwargs):
        if contains_traced(args, kwargs):
            return impl(array, *args, **kwargs)
        return adopt_created(getattr(array, name)(*args, **kwargs), (array,) + args, kwargs)
    handler.always = True
    return handler


# creation function -> (the NumPy function computing its result, implementation for traced arguments,
# whether it makes a scratch buffer, adopted in library code too); np.empty's contents are unspecified:
# zeros are, and they make a `fill` in the IR instead of a `const`.
_CREATION = {
    np.zeros: (np.zeros, None, True), np.ones: (np.ones, None, True), np.empty: (np.zeros, None, True),
    np.full: (np.full, _full, True), np.zeros_like: (np.zeros_like, A.zeros_like, True),
    np.ones_like: (np.ones_like, A.ones_like, True), np.empty_like: (np.zeros_like, A.zeros_like, True),
    np.full_like: (np.full_like, A.full_like, True), np.arange: (np.arange, None, False),
    np.array: (np.array, A.array, False), np.asarray: (np.asarray, A.asarray, False),
    np.copy: (np.copy, A.copy, False), np.eye: (np.eye, None, False), np.identity: (np.identity, None, False),
    np.tri: (np.tri, None, False), np.linspace: (np.linspace, linspace, False),
}
for _fn, (_np_fn, _impl, _scratch) in _CREATION.items():
    register(_fn, always=True)(_created(_np_fn, _impl, _scratch))
NDARRAY_METHODS.update(copy=_plain_method("copy", A.copy), astype=_plain_method("astype", A.astype_))

register(np.copyto)(inplace.copyto)
register(np.fill_diagonal)(inplace.fill_diagonal)
UFUNC_METHODS["at"] = inplace.ufunc_at
