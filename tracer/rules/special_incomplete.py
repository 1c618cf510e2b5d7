"""Rules for scipy.special's incomplete gamma and beta functions and the distribution functions made of
them: gammainc, gammaincc, betainc, betaincc, stdtr, fdtr and fdtrc are the IR ops of those names
(ir/ops.INCOMPLETE: SciPy's values, derivatives w.r.t. every operand); chdtr / chdtrc (chi-square:
gammainc(v/2, x/2)) and gdtr / gdtrc (gamma with rate a: gammainc(b, a x)) are compositions with them that
give SciPy's values on every input, NaNs included (tests/test_incomplete.py compares them on a grid of edge
values).  The ufuncs accept out=/where= as NumPy ufuncs do (ufuncs.ufunc_rule); operands are cast to the
floating dtype SciPy computes in.  Not covered (no rule, refused loudly): the integer-count functions
(pdtr, bdtr, nbdtr: piecewise in k) and the inverses (gammaincinv, betaincinv, stdtrit, fdtri, ...).
"""
import numpy as np

from ..registry import register
from ..values import const
from .special import as_float
from .ufuncs import ufunc_rule

try:
    import scipy.special as sc
except ImportError:       # SciPy is optional
    sc = None


def _op(name):
    return lambda b, *operands: b.emit(name, *operands)


def _chi_square(op):
    """chdtr(v, x) = gammainc(v/2, x/2) (chdtrc: gammaincc)."""
    def build(b, v, x):
        half = const(0.5, v.dtype)
        return b.emit(op, b.multiply(v, half), b.multiply(x, half))
    return build


def _gamma_with_rate(op):
    """gdtr(a, b, x) = gammainc(b, a x) (gdtrc: gammaincc), NaN where SciPy gives NaN although the
    composition would not: x < 0, or a < 0 unless x == 0."""
    def build(b, a, shape, x):
        zero = const(0, x.dtype)
        undefined = b.logical_or(b.less(x, zero), b.logical_and(b.less(a, zero), b.not_equal(x, zero)))
        return b.where(undefined, const(np.nan, x.dtype), b.emit(op, shape, b.multiply(a, x)))
    return build


_UFUNCS = {
    "gammainc": _op("gammainc"), "gammaincc": _op("gammaincc"), "betainc": _op("betainc"),
    "betaincc": _op("betaincc"), "stdtr": _op("stdtr"), "fdtr": _op("fdtr"), "fdtrc": _op("fdtrc"),
    "chdtr": _chi_square("gammainc"), "chdtrc": _chi_square("gammaincc"),
    "gdtr": _gamma_with_rate("gammainc"), "gdtrc": _gamma_with_rate("gammaincc"),
}

if sc is not None:
    for _name, _build in _UFUNCS.items():
        _ufunc = getattr(sc, _name)
        register(_ufunc)(ufunc_rule(_ufunc, as_float(_ufunc, _build)))
