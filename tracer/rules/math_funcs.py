"""Rules for the `math` module: float functions map to IR ops on float64 scalars and return traced
Python floats; floor/ceil/trunc return ints (guarded, via `make`); isnan & co return traced bools.
erf, erfc and lgamma are the IR's special-function ops (evaluated by the `math` module itself when SciPy
is not loaded: ir.ops.special_function), gamma is sign * exp(lgamma) (`gamma`, shared with
scipy.special.gamma), cbrt NumPy's composition; fsum is the sum of its items (derivative 1 each; the
value of a compiled call is the float64 sum, within rounding of fsum's exactly rounded one).
math.pi, math.e... are plain constants and need no rule.
"""
import functools
import math
import operator

import numpy as np

from ..recording.registry import register
from ..arrays.pyerrors import guard_python_float_result, pin_values
from ..arrays.values import TracedArray, astype, builder, const, contains_traced, lift, make, reshape, unwrap
from .ufuncs import BUILDERS

# math function name -> BUILDERS (ufunc) name
_MATH_TO_UFUNC = {
    "exp": "exp", "expm1": "expm1", "log1p": "log1p", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
    "tan": "tan", "asin": "arcsin", "acos": "arccos", "atan": "arctan", "atan2": "arctan2",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "arcsinh", "acosh": "arccosh",
    "atanh": "arctanh", "fabs": "fabs", "pow": "power", "log2": "log2", "log10": "log10",
    "exp2": "exp2", "degrees": "rad2deg", "radians": "deg2rad", "floor": "floor", "ceil": "ceil",
    "trunc": "trunc", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite",
    "cbrt": "cbrt",
}
# math function name -> IR special-function op
_MATH_TO_SPECIAL = {"erf": "erf", "erfc": "erfc", "lgamma": "gammaln"}

# math functions that never raise on float arguments (the others raise ValueError or OverflowError where
# their result would be a NaN from non-NaN arguments or an infinity from finite ones: guarded)
_NEVER_RAISE = {"asinh", "atan", "atan2", "tanh", "fabs", "degrees", "radians", "hypot", "isnan", "isinf",
                "isfinite", "erf", "erfc", "cbrt", "fsum"}


def _log(b, x, base=None):
    return b.log(x) if base is None else b.divide(b.log(x), b.log(base))


def _hypot(b, *values):
    return b.sqrt(functools.reduce(b.add, [b.multiply(v, v) for v in values]))


def gamma_sign(b, x):
    """The sign of Gamma(x): +1 for x > 0, (-1)^floor(x) below (gammaln is log|Gamma|)."""
    one = const(1, x.dtype)
    even = b.equal(b.remainder(b.floor(x), const(2, x.dtype)), const(0, x.dtype))
    return b.where(b.logical_or(b.greater(x, const(0, x.dtype)), even), one, b.negative(one))


def gamma(b, x):
    """Gamma(x) = sign * exp(gammaln(x))."""
    return b.multiply(gamma_sign(b, x), b.exp(b.gammaln(x)))


def math_rule(fn, build):
    """A rule for math function `fn`: arguments as float64 scalars, IR from `build(builder, *values)`."""
    def handler(*args):
        try:
            concrete = fn(*unwrap(args))                   # CPython's domain and overflow errors
        except (ArithmeticError, ValueError) as e:
            pin_values(args, e)
            raise
        values = [astype(reshape(lift(a), ()), np.float64) for a in args]
        result = make(build(builder(), *values), concrete)
        if fn.__name__ not in _NEVER_RAISE:
            guard_python_float_result(result, args, f"math.{fn.__name__} would raise")
        return result
    return handler


def math_fsum(iterable):
    """math.fsum: the float64 sum of the items (a traced array's along its first axis).  It runs on every
    call (`always`): traced items may come from an iterator, which only this rule looks into."""
    items = iterable if type(iterable) is TracedArray else list(iterable)
    if not contains_traced((items,)):
        return math.fsum(items)
    concrete = math.fsum(unwrap(items))                # CPython's errors (non-numbers, inf - inf)
    values = astype(lift(items), np.float64)
    total = builder().sum(values, axis=tuple(range(values.ndim)), keepdims=False)
    return make(total, concrete)


def math_prod(iterable, *, start=1):
    """math.prod by the multiplication protocol (traced operands multiply as traced values)."""
    return functools.reduce(operator.mul, iterable, start)


for _name, _ufunc_name in _MATH_TO_UFUNC.items():
    if hasattr(math, _name):
        register(getattr(math, _name))(math_rule(getattr(math, _name), BUILDERS[_ufunc_name]))
for _name, _op in _MATH_TO_SPECIAL.items():
    register(getattr(math, _name))(math_rule(getattr(math, _name), lambda b, x, op=_op: b.emit(op, x)))
register(math.log)(math_rule(math.log, _log))
register(math.gamma)(math_rule(math.gamma, gamma))
register(math.fsum, always=True)(math_fsum)
register(math.hypot)(math_rule(math.hypot, _hypot))
register(math.prod)(math_prod)
