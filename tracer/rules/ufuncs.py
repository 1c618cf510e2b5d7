"""Rules for NumPy ufuncs: every IR elementwise op by name, ufuncs derived exactly (or to the last ulp)
from IR ops, the `out=`/`where=` keywords, and the ufunc methods reduce/accumulate/outer.

`BUILDERS` maps a ufunc name to `build(builder, *values) -> Value`; `math_funcs` reuses it.
"""
import numpy as np

from ...ir.ops import ELEMENTWISE
from .. import array_api
from ..registry import UFUNC_METHODS, register
from ..values import (TracedArray, astype, builder, concrete_of, const, elementwise, lift, make, rebind, refuse,
                      refuse_options, unwrap)


def _op(name):
    return lambda b, *values: b.emit(name, *values)


def _float_only(name, build):
    def checked(b, *values):
        if any(v.dtype.kind != "f" for v in values):
            refuse(f"np.{name} is only traced for floating-point operands")
        return build(b, *values)
    return checked


def _scaled(factor):
    return lambda b, x: b.multiply(x, const(factor, x.dtype))


def _log_base(base):
    def build(b, x):
        log = b.log(x)
        return b.divide(log, const(np.log(base), log.dtype))
    return build


BUILDERS = {name: _op(name) for name in ELEMENTWISE}
BUILDERS.update({
    "square": lambda b, x: b.multiply(x, x),
    "reciprocal": lambda b, x: b.divide(const(1, x.dtype), x),
    "exp2": lambda b, x: b.power(const(2, x.dtype), x),
    "log2": _log_base(2), "log10": _log_base(10),
    "hypot": lambda b, x, y: b.sqrt(b.add(b.multiply(x, x), b.multiply(y, y))),
    "positive": lambda b, x: x,
    "fabs": _float_only("fabs", _op("absolute")),
    "conjugate": _float_only("conjugate", lambda b, x: x),
    "deg2rad": _scaled(np.pi / 180), "rad2deg": _scaled(180 / np.pi),
    "float_power": lambda b, x, y: b.power(astype(x, np.float64), astype(y, np.float64)),
    "isnan": _float_only("isnan", lambda b, x: b.not_equal(x, x)),
    "isinf": _float_only("isinf", lambda b, x: b.equal(b.absolute(x), const(np.inf, x.dtype))),
    "isfinite": _float_only("isfinite", lambda b, x: b.equal(b.subtract(x, x), const(0, x.dtype))),
})
BUILDERS["radians"], BUILDERS["degrees"] = BUILDERS["deg2rad"], BUILDERS["rad2deg"]


def _write_out(ufunc, operands, result, out, where):
    """Store `result` into `out` (a TracedArray, rebound) under mask `where`, as `ufunc(..., out=)`."""
    if isinstance(out, tuple):
        (out,) = out
    if out is None:
        refuse(f"np.{ufunc.__name__}(..., where=) without out= leaves values uninitialised; pass out=")
    if type(out) is not TracedArray:
        refuse(f"np.{ufunc.__name__}(..., out=plain_array) would store a traced value into an untraced "
               "array (aliasing is a later issue); use the returned value, or an out= array made from "
               "traced values (np.zeros_like(x))")
    new_value = out.value.copy()
    ufunc(*[concrete_of(o) for o in operands], out=new_value, where=unwrap(where))   # NumPy's checks
    b = builder()
    v = astype(result.ir, out.ir.dtype)
    if v.shape != out.ir.shape:
        v = b.broadcast_to(v, shape=out.ir.shape)
    if where is not True:
        v = b.where(astype(lift(where), bool), v, out.ir)
    return rebind(out, v, new_value)


def ufunc_rule(ufunc, build):
    """The rule for `ufunc`, its IR built by `build` (see BUILDERS)."""
    def handler(*args, out=None, where=True, dtype=None, casting=None, order=None, subok=None, signature=None):
        refuse_options(f"np.{ufunc.__name__}", dtype=dtype, casting=casting, order=order, subok=subok,
                       signature=signature)
        operands = args[:ufunc.nin]
        if len(args) > ufunc.nin:
            out = args[ufunc.nin:]
        result = elementwise(build, ufunc, *operands)
        if out is None and where is True:
            return result
        return _write_out(ufunc, operands, result, out, where)
    return handler


for _name, _build in BUILDERS.items():
    _ufunc = getattr(np, _name)
    register(_ufunc)(ufunc_rule(_ufunc, _build))


# -- ufunc methods --------------------------------------------------------------------------------------
_REDUCTIONS = {np.add: array_api.sum_, np.multiply: array_api.prod, np.maximum: array_api.max_,
               np.minimum: array_api.min_, np.logical_and: array_api.all_, np.logical_or: array_api.any_}


def ufunc_reduce(ufunc, array, axis=0, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """`ufunc.reduce` for add/multiply/maximum/minimum/logical_and/logical_or."""
    impl = _REDUCTIONS.get(ufunc)
    if impl is None:
        refuse(f"np.{ufunc.__name__}.reduce is not supported while tracing")
    refuse_options(f"np.{ufunc.__name__}.reduce", out=out, initial=initial, where=where)
    x = array_api.as_traced(array)
    if dtype is not None:
        x = array_api.astype_(x, dtype)
    return impl(x, axis=axis, keepdims=keepdims)


def ufunc_accumulate(ufunc, array, axis=0, dtype=None, out=None):
    """`np.add.accumulate` (= cumsum along `axis`)."""
    if ufunc is not np.add:
        refuse(f"np.{ufunc.__name__}.accumulate is not supported while tracing (only np.add's)")
    return array_api.cumsum(array, axis=axis, dtype=dtype, out=out)


def ufunc_outer(ufunc, a, b, **kwargs):
    """`ufunc.outer(a, b)`: the ufunc on a reshaped to a.shape + (1,) * b.ndim."""
    build = BUILDERS.get(ufunc.__name__)
    if build is None or ufunc.nin != 2:
        refuse(f"np.{ufunc.__name__}.outer is not supported while tracing")
    concrete = ufunc.outer(unwrap(a), unwrap(b), **kwargs)
    x = array_api.as_traced(a)
    x = array_api.reshape_(x, x.ir.shape + (1,) * np.ndim(concrete_of(b)))
    result = ufunc_rule(ufunc, build)(x, b, **kwargs)
    return make(result.ir, concrete)


def ufunc_unsupported(name):
    def handler(ufunc, *args, **kwargs):
        refuse(f"np.{ufunc.__name__}.{name} is not supported while tracing")
    return handler


UFUNC_METHODS.update(reduce=ufunc_reduce, accumulate=ufunc_accumulate, outer=ufunc_outer,
                     at=ufunc_unsupported("at"), reduceat=ufunc_unsupported("reduceat"))
