"""Rules for the `math` module: float functions map to IR ops on float64 scalars and return traced
Python floats; floor/ceil/trunc return ints (guarded, via `make`); isnan & co return traced bools.
math.pi, math.e... are plain constants and need no rule.
"""
import functools
import math
import operator

import numpy as np

from ..recording.registry import register
from ..arrays.pyerrors import guard_python_float_result, pin_values
from ..arrays.values import astype, builder, lift, make, reshape, unwrap
from .ufuncs import BUILDERS

# math function name -> BUILDERS (ufunc) name
_MATH_TO_UFUNC = {
    "exp": "exp", "expm1": "expm1", "log1p": "log1p", "sqrt": "sqrt", "sin": "sin", "cos": "cos",
    "tan": "tan", "asin": "arcsin", "acos": "arccos", "atan": "arctan", "atan2": "arctan2",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "arcsinh", "acosh": "arccosh",
    "atanh": "arctanh", "fabs": "fabs", "pow": "power", "log2": "log2", "log10": "log10",
    "exp2": "exp2", "degrees": "rad2deg", "radians": "deg2rad", "floor": "floor", "ceil": "ceil",
    "trunc": "trunc", "isnan": "isnan", "isinf": "isinf", "isfinite": "isfinite",
}

# math functions that never raise on float arguments (the others raise ValueError or OverflowError where
# their result would be a NaN from non-NaN arguments or an infinity from finite ones: guarded)
_NEVER_RAISE = {"asinh", "atan", "atan2", "tanh", "fabs", "degrees", "radians", "hypot", "isnan", "isinf",
                "isfinite"}


def _log(b, x, base=None):
    return b.log(x) if base is None else b.divide(b.log(x), b.log(base))


def _hypot(b, *values):
    return b.sqrt(functools.reduce(b.add, [b.multiply(v, v) for v in values]))


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


def math_prod(iterable, *, start=1):
    """math.prod by the multiplication protocol (traced operands multiply as traced values)."""
    return functools.reduce(operator.mul, iterable, start)


for _name, _ufunc_name in _MATH_TO_UFUNC.items():
    if hasattr(math, _name):
        register(getattr(math, _name))(math_rule(getattr(math, _name), BUILDERS[_ufunc_name]))
register(math.log)(math_rule(math.log, _log))
register(math.hypot)(math_rule(math.hypot, _hypot))
register(math.prod)(math_prod)
