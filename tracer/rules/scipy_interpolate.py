"""Rules for scipy.interpolate: the compiled evaluation of piecewise polynomials, `_ppoly.evaluate` (PPoly,
so CubicSpline, Akima1DInterpolator, PchipInterpolator...; their construction is SciPy's Python code,
traced).  The interval of each point is a count (np.searchsorted of the interior breakpoints, guarded to
stay increasing: tracer/rules/sort_scan.py), the coefficients of that interval a gather, and the
polynomial (or its derivative of order nu) is evaluated by Horner's rule at the offset from the
interval's left breakpoint: differentiable w.r.t. the coefficients, the breakpoints and the points.
Points outside the breakpoints extrapolate from the first or last interval, or are NaN.
"""
import math

import numpy as np

from ..arrays.aliasing import adopt_for_write
from ..arrays.array_api import as_traced
from ..recording.registry import register
from ..arrays.values import TracedArray, astype, builder, const, rebind, reshape, unwrap
from ..arrays.refusals import refuse
from ..arrays.sort_scan import searchsorted

try:
    from scipy.interpolate import _ppoly
except ImportError:       # SciPy is optional
    _ppoly = None


def _horner(b, coefficients, offset, k, nu):
    """sum_j c[j] d^nu/ds^nu s^(k-1-j) at s = `offset` (c: (k, r, n) IR, offset: (r, 1))."""
    result = None
    for j in range(k - nu):
        power = k - 1 - j
        term = b.index(coefficients, spec=(("int", j),))
        if nu:
            term = b.multiply(term, const(math.perm(power, nu), term.dtype))
        result = term if result is None else b.add(b.multiply(result, offset), term)
    return result if result is not None else b.multiply(offset, const(0, offset.dtype))


def evaluate(c, x, xp, dx, extrapolate, out):
    """_ppoly.evaluate(c (k, m, n), x (m+1,), xp (r,), dx, extrapolate, out (r, n)): out[i] = the
    polynomial of xp[i]'s interval (its dx-th derivative) at xp[i]."""
    written = out if type(out) is TracedArray else adopt_for_write(out, "scipy.interpolate (PPoly)", c, x, xp)
    if written is None:
        return _ppoly.evaluate(*unwrap((c, x, xp)), dx, extrapolate, out)
    new_value = written.value.copy()
    _ppoly.evaluate(*(np.ascontiguousarray(v) for v in unwrap((c, x, xp))), dx, extrapolate, new_value)
    breaks = np.asarray(unwrap(x))
    if dx < 0 or breaks.size > 1 and breaks[-1] < breaks[0]:
        refuse("scipy.interpolate: antiderivatives and decreasing breakpoints are not traced")
    b = builder()
    cv, xv, pv = (as_traced(v) for v in (c, x, xp))
    k, m, n = cv.ir.shape
    interval = searchsorted(xv[1:m], xp, side="right")           # 0 .. m - 1: extrapolating at the ends
    spec = (("slice", 0, k, 1), ("array", 0), ("slice", 0, n, 1))
    coefficients = b.index(cv.ir, interval.ir, spec=spec)          # (k, r, n)
    left = b.index(xv.ir, interval.ir, spec=(("array", 0),))
    offset = reshape(b.subtract(pv.ir, left), (pv.ir.shape[0], 1))
    result = _horner(b, astype(coefficients, new_value.dtype), astype(offset, new_value.dtype), k, dx)
    if not extrapolate:
        outside = b.logical_or(b.less(pv.ir, b.index(xv.ir, spec=(("int", 0),))),
                               b.greater(pv.ir, b.index(xv.ir, spec=(("int", m),))))
        result = b.where(reshape(outside, (pv.ir.shape[0], 1)), const(np.nan, new_value.dtype), result)
    rebind(written, b.broadcast_to(result, shape=new_value.shape), new_value)


if _ppoly is not None:
    register(_ppoly.evaluate)(evaluate)
