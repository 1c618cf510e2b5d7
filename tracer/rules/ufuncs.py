"""Rules for NumPy ufuncs: every IR elementwise op by name, ufuncs derived exactly (or to the last ulp)
from IR ops, the `out=`/`where=` keywords, and the ufunc methods reduce/accumulate/outer.

`BUILDERS` maps a ufunc name to `build(builder, *values) -> Value`; `math_funcs` reuses it.
"""
import numpy as np

from ...ir.ops import ELEMENTWISE
from ..arrays import array_api
from ..arrays.aliasing import check_plain_write
from ..arrays.inplace import store
from ..recording.registry import UFUNC_METHODS, register
from ..arrays.values import TracedArray, astype, concrete_of, const, contains_traced, elementwise, make, unwrap
from ..arrays.refusals import refuse, refuse_options


def _op(name):
    return lambda b, *values: b.emit(name, *values)


def _float_only(name, build):
    def checked(b, *values):
        if any(v.dtype.kind != "f" for v in values):
            refuse(f"np.{name} is only traced for floating-point operands")
        return build(b, *values)
    return checked


def _float_test(build, answer_for_integers):
    """np.isnan/isinf/isfinite: `build` on floats; integers and bools are never NaN or infinite."""
    def test(b, x):
        if x.dtype.kind in "biu":
            return b.fill(x.shape, np.dtype(bool), answer_for_integers)
        if x.dtype.kind != "f":
            refuse("np.isnan, np.isinf and np.isfinite are traced for real operands only")
        return build(b, x)
    return test


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
    "conjugate": lambda b, x: b.conj(x) if x.dtype.kind == "c" else x,
    "deg2rad": _scaled(np.pi / 180), "rad2deg": _scaled(180 / np.pi),
    "float_power": lambda b, x, y: b.power(astype(x, np.float64), astype(y, np.float64)),
    "isnan": _float_test(lambda b, x: b.not_equal(x, x), False),
    "isinf": _float_test(lambda b, x: b.equal(b.absolute(x), const(np.inf, x.dtype)), False),
    "isfinite": _float_test(lambda b, x: b.equal(b.subtract(x, x), const(0, x.dtype)), True),
})
BUILDERS["radians"], BUILDERS["degrees"] = BUILDERS["deg2rad"], BUILDERS["rad2deg"]


def _logaddexp(b, x, y):
    """(x + y)/2 + g(|x - y|), g(t) = t/2 + log1p(exp(-t)): g'(0) = 0, so the derivative is exact at x == y."""
    half = const(0.5, x.dtype)
    gap = b.absolute(b.subtract(x, y))
    return b.add(b.multiply(b.add(x, y), half), b.add(b.multiply(gap, half), b.log1p(b.exp(b.negative(gap)))))


def _fmod(b, x, y):
    """x - q*y with q the truncated quotient, exact (sign(x) sign(y) floor(|x| / |y|)); dq = 0."""
    q = b.floor_divide(b.absolute(x), b.absolute(y))
    return b.subtract(x, b.multiply(b.multiply(b.multiply(b.sign(x), b.sign(y)), q), y))


def _negative_sign(b, y):
    """Whether y's sign bit is set (y < 0, or y is -0.0: 1 / y == -inf); NaN counts as positive."""
    zero = const(0, y.dtype)
    minus_zero = b.logical_and(b.equal(y, zero), b.less(b.divide(const(1, y.dtype), y), zero))
    return b.logical_or(b.less(y, zero), minus_zero)


def _nan_ignoring(op):
    """np.fmax / np.fmin: `op` (maximum/minimum, whose derivative conventions apply) unless exactly one
    operand is NaN, which then yields the other."""
    def build(b, x, y):
        result = b.emit(op, x, y)
        if result.dtype.kind != "f":
            return result
        x, y = astype(x, result.dtype), astype(y, result.dtype)
        return b.where(b.not_equal(y, y), x, b.where(b.not_equal(x, x), y, result))
    return build


def _heaviside(b, x, h0):
    """0 where x < 0, h0 where x == 0, 1 where x > 0, NaN where x is NaN."""
    dtype = np.result_type(x.dtype, h0.dtype)
    x, h0 = astype(x, dtype), astype(h0, dtype)
    steps = b.where(b.less(x, const(0, dtype)), const(0, dtype), b.where(b.greater(x, const(0, dtype)),
                                                                        const(1, dtype), h0))
    return b.where(b.not_equal(x, x), x, steps)


def _modf_fraction(b, x):
    """x - trunc(x) (exact), with x's sign (-0.0 for negative integers) and 0 for infinities, as np.modf."""
    finite = b.where(b.equal(b.absolute(x), const(np.inf, x.dtype)), const(0, x.dtype), b.subtract(x, b.trunc(x)))
    return b.where(_negative_sign(b, x), b.negative(b.absolute(finite)), b.absolute(finite))


def _ldexp(b, x, n):
    """x * 2**n for a float x and an integer n."""
    if x.dtype.kind != "f" or n.dtype.kind not in "iub":
        refuse("np.ldexp is only traced for a floating-point mantissa and integer exponents")
    return b.multiply(x, b.power(const(2, x.dtype), astype(n, x.dtype)))


BUILDERS.update({
    "fmax": _nan_ignoring("maximum"), "fmin": _nan_ignoring("minimum"),
    "heaviside": _float_only("heaviside", _heaviside),
    "ldexp": _ldexp,
    "logaddexp": _float_only("logaddexp", _logaddexp),
    "logaddexp2": _float_only("logaddexp2", lambda b, x, y: _scaled(1 / np.log(2))(
        b, _logaddexp(b, *(_scaled(np.log(2))(b, v) for v in (x, y))))),
    "fmod": _fmod,
    "cbrt": _float_only("cbrt", lambda b, x: b.multiply(
        b.sign(x), b.power(b.absolute(x), const(1 / 3, x.dtype)))),
    "copysign": _float_only("copysign", lambda b, x, y: b.where(
        _negative_sign(b, y), b.negative(b.absolute(x)), b.absolute(x))),
})


def _write_out(ufunc, operands, result, out, where, casting):
    """Store `result` into `out` (a TracedArray, rebound) under mask `where`, as `ufunc(..., out=)`."""
    if isinstance(out, tuple):
        (out,) = out
    if out is None:
        refuse(f"np.{ufunc.__name__}(..., where=) without out= leaves values uninitialised; pass out=")
    if type(out) is not TracedArray:                 # constant operands are computed natively
        check_plain_write(f"np.{ufunc.__name__}(..., out=)", *operands, where)
        return ufunc(*[concrete_of(o) for o in operands], out=out, where=unwrap(where), casting=casting)
    new_value = out.value.copy()
    ufunc(*[concrete_of(o) for o in operands], out=new_value, where=unwrap(where), casting=casting)  # NumPy's checks
    return store(out, result, new_value, where)


def ufunc_rule(ufunc, build):
    """The rule for `ufunc`, its IR built by `build` (see BUILDERS)."""
    def handler(*args, out=None, where=True, dtype=None, casting=None, order=None, subok=None, signature=None):
        refuse_options(f"np.{ufunc.__name__}", order=order, subok=subok, signature=signature)
        if casting not in (None, "same_kind", "unsafe"):
            refuse(f"np.{ufunc.__name__}: casting={casting!r} is not supported while tracing")
        operands = [array_api.array(o) if isinstance(o, (list, tuple)) and contains_traced(o) else o
                    for o in args[:ufunc.nin]]                   # np.sin([x, y]): NumPy makes the array
        if len(args) > ufunc.nin and any(o is not None for o in args[ufunc.nin:]):
            out = args[ufunc.nin:]
        if dtype is not None:                # NumPy casts the operands to dtype and computes in it
            if isinstance(dtype, type) and issubclass(dtype, np.dtype):
                dtype = dtype()              # a DType class, as numpy's own code passes
            operands = [array_api.astype_(array_api.as_traced(o), dtype) for o in operands]
        result = elementwise(build, ufunc, *operands)
        if out is Ellipsis and where is True:                    # out=...: always an array
            return make(result.ir, np.asarray(result.value))
        if out is None and where is True:
            return result
        return _write_out(ufunc, operands, result, out, where, casting or "same_kind")
    return handler


for _name, _build in BUILDERS.items():
    _ufunc = getattr(np, _name)
    register(_ufunc)(ufunc_rule(_ufunc, _build))


def _two_outputs(ufunc, *builds):
    """The rule for a two-output ufunc (np.divmod, np.modf): output i is `builds[i]` (BUILDERS-style) of
    the same operands (no out= or where=)."""
    def handler(*args, **kwargs):
        if len(args) != ufunc.nin or kwargs:
            refuse(f"np.{ufunc.__name__}: out=, where= and other keywords are not supported while tracing")
        return tuple(elementwise(build, lambda *a, i=i: ufunc(*a)[i], *args) for i, build in enumerate(builds))
    return handler


register(np.divmod)(_two_outputs(np.divmod, BUILDERS["floor_divide"], BUILDERS["remainder"]))
register(np.modf)(_two_outputs(np.modf, _float_only("modf", _modf_fraction), BUILDERS["trunc"]))


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
