"""Rules for scipy.special's incomplete gamma and beta functions and the distribution functions made of
them: gammainc, gammaincc, betainc, betaincc, stdtr, fdtr and fdtrc are the IR ops of those names
(ir/ops.INCOMPLETE: SciPy's values, derivatives w.r.t. every operand); chdtr / chdtrc (chi-square:
gammainc(v/2, x/2)), gdtr / gdtrc (gamma with rate a: gammainc(b, a x)) and pdtr / pdtrc (Poisson CDF at
k: gammaincc(floor(k) + 1, mu)) are compositions with them that give SciPy's values on every input, NaNs
included (tests/ir/test_incomplete.py and tests/tracer/test_special.py compare them on grids of edge values).  The
inverses in the probability gammaincinv, gammainccinv, betaincinv, betainccinv, stdtrit and fdtri are the
IR ops of those names (ir/inverse_special.py), chdtri(v, p) is 2 gammainccinv(v/2, p) and SciPy's private
`_beta_ppf(q, a, b)` (scipy.stats.beta's _ppf) is betaincinv(a, b, q), both exactly SciPy's values.  The
ufuncs accept out=/where= as NumPy ufuncs do (ufuncs.ufunc_rule); operands are cast to the floating dtype
SciPy computes in.  Not covered (no rule, refused loudly): the integer-count functions bdtr and nbdtr,
the inverses in a shape parameter (gdtrix, stdtridf, bdtri, ...).
"""
import numpy as np

from ...ir.ops import INVERSE
from ..recording.registry import register
from ..arrays.values import const
from .special import as_float, ir_op
from .ufuncs import ufunc_rule

try:
    import scipy.special as sc
except ImportError:       # SciPy is optional
    sc = None


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


def _poisson(op):
    """pdtr(k, mu) = gammaincc(floor(k) + 1, mu) (pdtrc: gammainc), the Poisson CDF (complement) at k;
    NaN for k < 0 as SciPy (mu < 0 gives NaN through gammaincc).  Piecewise constant in k."""
    def build(b, k, mu):
        counts = b.add(b.floor(k), const(1, k.dtype))
        return b.where(b.less(k, const(0, k.dtype)), const(np.nan, mu.dtype), b.emit(op, counts, mu))
    return build


def _chi_square_inverse(b, v, p):
    """chdtri(v, p) = 2 gammainccinv(v/2, p)."""
    two = const(2, v.dtype)
    return b.multiply(two, b.emit("gammainccinv", b.divide(v, two), p))


def _beta_ppf(b, q, p, r):
    """scipy.special._ufuncs._beta_ppf(q, a, b) = betaincinv(a, b, q)."""
    return b.emit("betaincinv", p, r, q)


_UFUNCS = {
    "gammainc": ir_op("gammainc"), "gammaincc": ir_op("gammaincc"), "betainc": ir_op("betainc"),
    "betaincc": ir_op("betaincc"), "stdtr": ir_op("stdtr"), "fdtr": ir_op("fdtr"), "fdtrc": ir_op("fdtrc"),
    "chdtr": _chi_square("gammainc"), "chdtrc": _chi_square("gammaincc"),
    "gdtr": _gamma_with_rate("gammainc"), "gdtrc": _gamma_with_rate("gammaincc"),
    "pdtr": _poisson("gammaincc"), "pdtrc": _poisson("gammainc"),
    **{name: ir_op(name) for name in INVERSE}, "chdtri": _chi_square_inverse,
}

if sc is not None:
    for _name, _build in _UFUNCS.items():
        _ufunc = getattr(sc, _name)
        register(_ufunc)(ufunc_rule(_ufunc, as_float(_ufunc, _build)))
    _private = sc._ufuncs._beta_ppf
    register(_private)(ufunc_rule(_private, as_float(_private, _beta_ppf)))
