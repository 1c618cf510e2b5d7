"""Exceptions that Python and NumPy raise on traced data, and the guards that keep cached traces honest
about them.  A compiled trace never raises: where CPython raises (ZeroDivisionError for a Python float
divided by zero, math domain and range errors, a singular matrix...) a trace must only be reused by calls
that take the same side of that decision.

- The raising side: `pin_values` guards that the traced scalars involved keep their exact values
  (traced arrays instead make the trace uncacheable, `TraceContext.forbid_caching`).
- The non-raising side: `guard_python_arithmetic` (Python float operators) and
  `guard_python_float_result` (`math` functions) guard that the result stays clear of the cases where
  CPython would raise.
"""
import functools
import operator

import numpy as np

from ..recording import context
from . import values

# values.PYTHON_RAISING: Python-float operators that raise where NumPy gives inf or nan: the divisions
# only for a zero divisor (ZeroDivisionError), the power also on overflow


def guard_python_arithmetic(fn, operands, result):
    """After `result = fn(*operands)` (fn in values.PYTHON_RAISING) computed without error: when the operands
    are Python numbers (NumPy's do not raise), guard that the operation keeps not raising."""
    if not all(type(values.concrete_of(o)) in (float, int, bool) for o in operands):
        return
    if fn is operator.pow:
        guard_python_float_result(result, operands, "Python float power that would raise")
    elif type(operands[1]) is values.TracedArray:
        divisor = operands[1].ir
        values.guard(values.builder().not_equal(divisor, values.const(0, divisor.dtype)), True, _DIVISOR)


_DIVISOR = "Python float divisor is not zero"


def only_says_no_raise(why):
    """Whether a guard recorded with reason `why` is one of this module's: it says only that CPython does
    not raise (the IR computes a value either way: an inf or a NaN where CPython would raise)."""
    return why == _DIVISOR or why.endswith(" would raise")


def guard_python_float_result(result, operands, why):
    """Guard that a Python float computed without error from `operands` (by an operator or a `math`
    function) stays clear of the cases where CPython raises instead of returning a value: a NaN from
    operands without NaN (math domain errors; a negative base to a fractional power, which Python
    answers with a complex) or an infinity from finite operands (overflow, `0.0 ** -1`).  Values for
    which the IR gives such a result then retrace, and the new trace raises as CPython does.  Nothing is
    guarded when this call itself returned such a result (the function does not raise)."""
    concretes = [float(np.real(values.concrete_of(o))) for o in operands]
    value = values.concrete_of(result)
    if type(result) is not values.TracedArray or type(value) is not float or \
            _python_would_raise(np, value, concretes, np.logical_or, np.logical_and):
        return
    b = values.builder()
    ins = [values.astype(values.reshape(values.lift(o), ()), np.float64) for o in operands]
    bad = _python_would_raise(_IRMath(b), result.ir, ins, b.logical_or, b.logical_and)
    values.guard(bad, False, why)


def _python_would_raise(m, r, ins, any_of, both):
    """Whether result `r` of operands `ins` is a NaN from non-NaN operands or an infinity from finite
    ones; `m` gives isnan/isfinite/isinf (NumPy, or IR builders), `any_of`/`both` combine."""
    nan_in = functools.reduce(any_of, [m.isnan(v) for v in ins])
    finite_in = functools.reduce(both, [m.isfinite(v) for v in ins])
    return any_of(both(m.isnan(r), m.logical_not(nan_in)), both(m.isinf(r), finite_in))


class _IRMath:
    """isnan/isfinite/isinf/logical_not of IR Values, for `_python_would_raise`."""

    def __init__(self, b):
        self.b = b
        self.inf = values.const(np.inf)

    def isnan(self, v):
        return self.b.not_equal(v, v)

    def isfinite(self, v):
        return self.b.less(self.b.absolute(v), self.inf)

    def isinf(self, v):
        return self.b.equal(self.b.absolute(v), self.inf)

    def logical_not(self, v):
        return self.b.logical_not(v)


def pin_values(operands, error):
    """Before re-raising `error` (ZeroDivisionError, a math domain error...), raised by Python or NumPy
    on the concrete values of `operands`: guard that the traced scalars among them keep their exact
    values, so that a cached trace of the code handling the exception serves only calls that raise it
    again.  Traced arrays are not pinned: the trace is then not cached at all."""
    for o in operands:
        if type(o) is not values.TracedArray:
            continue
        if np.ndim(o.value) != 0:
            context.current().forbid_caching(f"{type(error).__name__} ({error}) raised on traced array data")
            continue
        pin(o, f"value that raised {type(error).__name__}")


def pin(x, why):
    """Guard that traced scalar `x` keeps its exact value (NaN: stays NaN)."""
    b, v = values.builder(), x.value
    values.guard(b.not_equal(x.ir, x.ir) if v != v else b.equal(x.ir, values.const(v, x.ir.dtype)), True, why)


values.IMPLEMENTATIONS.update(pin=pin, pin_values=pin_values, guard_python_arithmetic=guard_python_arithmetic)
