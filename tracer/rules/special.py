"""Rules for scipy.special: erf, erfc, gammaln, log_ndtr map to the IR's special-function ops, digamma and
polygamma to `polygamma` (a static order), log1p/expm1 to the IR's, and so do the inverse error functions
(erfinv, erfcinv) and the Bessel functions (j0, j1, y0, y1, i0, i1, i0e, i1e, k0, k1; of order v: jv, yv, iv,
ive, kv); expit, logit, log_expit, ndtr, xlogy and xlog1py are compositions written so that their derivatives
stay finite where the function is (expit never overflows, xlogy's x-derivative at x = 0 is log(y)); gamma,
rgamma, gammasgn, loggamma (real), poch, beta and betaln are compositions of gammaln with the sign of Gamma;
exprel is expm1(x)/x (its Taylor polynomial near 0), cbrt, exp2 and exp10 NumPy's compositions; the entropy
terms entr, rel_entr, kl_div and the losses huber, pseudo_huber are their formulas with SciPy's conventions at
the edges of the domain; SciPy's private `_beta_pdf` (scipy.stats.beta) is the density composed of xlogy,
xlog1py and betaln. ndtri and ndtri_exp (inverse normal CDF) are IR ops; SciPy's private `_cauchy_ppf` /
`_cauchy_isf` (scipy.stats.cauchy) are Boost's -1/tan(pi P) with P = q reduced to (-1/2, 1/2], written as
tan(pi (P -+ 1/2)) for |P| >= 1/4. binom(n, k) of real n, k is exp(gammaln(n+1) - gammaln(k+1) -
gammaln(n-k+1)) inside n, k, n-k > -1 (guarded) and refused elsewhere (SciPy's conventions there: zeros,
signs, NaNs at negative integers). wofz (the Faddeeva function) is an IR op of a complex operand. The ufuncs
accept out=/where= as NumPy ufuncs do (ufuncs.ufunc_rule).
Nothing is registered when SciPy is not installed.
"""
import functools

import numpy as np

from ...ir.incomplete_partials import beta_density, betaln, x_log
from ...ir.ops import BESSEL
from ..arrays.array_api import as_traced
from ..recording.registry import register
from ..arrays.values import TracedArray, astype, builder, const, guard, make, unwrap
from ..arrays.refusals import refuse
from .math_funcs import gamma, gamma_sign
from .ufuncs import BUILDERS, ufunc_rule

try:
    import scipy.special as sc
except ImportError:       # SciPy is optional
    sc = None


def _result_dtype(fn, values, probe=1):
    """The dtype `fn` gives operands of these values' dtypes (found by calling it on `probe`s)."""
    return np.asarray(fn(*[np.full(1, probe, dtype=v.dtype) for v in values])).dtype


def as_float(fn, build, probe=1):
    """`build` applied to the operands cast to the floating dtype `fn` computes in (found by calling `fn`
    on `probe`s: a value inside its domain)."""
    def cast_then_build(b, *values):
        dtype = _result_dtype(fn, values, probe)
        return build(b, *[astype(v, dtype) for v in values])
    return cast_then_build


def _expit(b, x):
    """1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: exp only ever sees x <= 0."""
    nonnegative = b.greater_equal(x, const(0, x.dtype))
    e = b.exp(b.where(nonnegative, b.negative(x), x))
    one = const(1, x.dtype)
    return b.where(nonnegative, b.divide(one, b.add(one, e)), b.divide(e, b.add(one, e)))


def _logit(b, p):
    return b.log(b.divide(p, b.subtract(const(1, p.dtype), p)))


def _ndtr(b, x):
    """0.5 erfc(-x / sqrt 2)."""
    return b.multiply(const(0.5, x.dtype), b.erfc(b.multiply(x, const(-np.sqrt(0.5), x.dtype))))


def _x_log(log, pole):
    """xlogy (log, pole 0) / xlog1py (log1p, pole -1): see ir.incomplete_partials.x_log."""
    return lambda b, x, y: x_log(b, log, pole, x, y)


def _log_expit(b, x):
    """log(expit(x)) = -log1p(exp(-x)) for x >= 0, x - log1p(exp(x)) below (exp only sees x <= 0)."""
    nonnegative = b.greater_equal(x, const(0, x.dtype))
    softplus = b.log1p(b.exp(b.where(nonnegative, b.negative(x), x)))
    return b.where(nonnegative, b.negative(softplus), b.subtract(x, softplus))


def _loggamma(b, x):
    """scipy.special.loggamma of real x: gammaln for x > 0, NaN elsewhere (the real log is undefined)."""
    return b.where(b.greater(x, const(0, x.dtype)), b.gammaln(x), const(np.nan, x.dtype))


def _gamma_signs(b, *xs):
    """The sign of the product (or of any ratio) of Gamma at `xs`."""
    sign = gamma_sign(b, xs[0])
    for x in xs[1:]:
        sign = b.multiply(sign, gamma_sign(b, x))
    return sign


def _poch(b, z, m):
    """Gamma(z + m) / Gamma(z) as sign * exp(gammaln(z + m) - gammaln(z))."""
    zm = b.add(z, m)
    return b.multiply(_gamma_signs(b, zm, z), b.exp(b.subtract(b.gammaln(zm), b.gammaln(z))))


def _beta(b, p, q):
    """B(p, q) = Gamma(p) Gamma(q) / Gamma(p + q) as sign * exp(betaln(p, q))."""
    return b.multiply(_gamma_signs(b, p, q, b.add(p, q)), b.exp(betaln(b, p, q)))


def _within(ufunc, rule, inside, domain, outside):
    """`rule`, refusing operands outside `domain` (where SciPy has its own conventions, not the formula's;
    `outside` names them in the refusal) and guarding that traced ones stay inside: `inside(*operands)` is
    the elementwise test, written with operators only so that it runs on concrete and on traced values."""
    what = f"scipy.special.{ufunc.__name__}"

    def handler(*args, **kwargs):
        operands = args[:ufunc.nin]
        if not np.all(inside(*(np.asarray(unwrap(o)) for o in operands))):
            refuse(f"{what} of {outside} is not supported while tracing")
        if any(type(o) is TracedArray for o in operands):
            ok = as_traced(inside(*operands)).ir
            guard(builder().min(ok, axis=tuple(range(ok.ndim)), keepdims=False), True, f"{what}: {domain}")
        return rule(*args, **kwargs)
    return handler


def _finite(*operands):
    ok = abs(operands[0]) != np.inf
    for o in operands[1:]:
        ok = ok & (abs(o) != np.inf)
    return ok


def _finite_only(ufunc, rule):
    """`rule`, refusing infinite operands and guarding that traced ones stay finite."""
    return _within(ufunc, rule, _finite, "finite arguments", "infinite arguments")


def _binomial_region(n, k):
    """n > -1, k > -1 and n - k > -1: every gammaln argument of binom's formula is positive."""
    return (n > -1) & (k > -1) & (n - k > -1)


def _binom(b, n, k):
    """exp(gammaln(n+1) - gammaln(k+1) - gammaln(n-k+1)) (its arguments positive: `_binomial_region`)."""
    one = const(1, n.dtype)
    log_value = b.subtract(b.subtract(b.gammaln(b.add(n, one)), b.gammaln(b.add(k, one))),
                           b.gammaln(b.add(b.subtract(n, k), one)))
    return b.exp(log_value)


def _cauchy_standard(b, q):
    """Boost's Cauchy quantile -1/tan(pi P), P = q - 1 above 1/2 else q; tan(pi (P -+ 1/2)) for |P| >= 1/4."""
    dtype = q.dtype
    half, pi = const(0.5, dtype), const(np.pi, dtype)
    reduced = b.where(b.greater(q, half), b.subtract(q, const(1, dtype)), q)
    central = b.less(b.absolute(reduced), const(0.25, dtype))
    near = b.where(central, reduced, const(0.25, dtype))
    far = b.where(central, const(0.5, dtype), reduced)
    tails = b.negative(b.divide(const(1, dtype), b.tan(b.multiply(pi, near))))
    middle = b.tan(b.multiply(pi, b.subtract(far, b.multiply(half, b.sign(far)))))
    return b.where(central, tails, middle)


def _cauchy_quantile(sign):
    """_cauchy_ppf(q, loc, scale) = loc + scale * standard(q) (sign +1), _cauchy_isf: loc - ... (-1)."""
    def build(b, q, loc, scale):
        return b.add(loc, b.multiply(b.multiply(const(sign, q.dtype), scale), _cauchy_standard(b, q)))
    return build


def _rgamma(b, x):
    """1 / Gamma(x) as sign * exp(-gammaln(x)): 0 at the poles, where gammaln is inf, and at -inf."""
    value = b.multiply(gamma_sign(b, x), b.exp(b.negative(b.gammaln(x))))
    return b.where(b.equal(x, const(-np.inf, x.dtype)), const(0, x.dtype), value)


def _gammasgn(b, x):
    """scipy.special.gammasgn: the sign of Gamma(x); NaN at the poles x = -1, -2, ..., at -inf and NaN;
    at x = 0 the sign of the zero (+1 for 0.0, -1 for -0.0)."""
    zero, one = const(0, x.dtype), const(1, x.dtype)
    pole = b.logical_or(b.logical_and(b.less(x, zero), b.equal(x, b.floor(x))), b.not_equal(x, x))
    zero_sign = b.where(b.less(b.divide(one, x), zero), b.negative(one), one)
    sign = b.where(b.equal(x, zero), zero_sign, gamma_sign(b, x))
    return b.where(pole, const(np.nan, x.dtype), sign)


_EXPREL_SERIES = 1e-3       # below this |x|, exprel is its Taylor polynomial (error < x^5/720 relative)


def _exprel(b, x):
    """expm1(x) / x (inf at inf); near 0 the polynomial 1 + x/2 + x^2/6 + x^3/24 + x^4/120 (its
    derivatives too)."""
    small = b.less(b.absolute(x), const(_EXPREL_SERIES, x.dtype))
    series = const(1 / 120, x.dtype)
    for k in (24, 6, 2, 1):
        series = b.add(b.multiply(series, x), const(1 / k, x.dtype))
    safe = b.where(b.logical_or(small, b.equal(x, const(np.inf, x.dtype))), const(1, x.dtype), x)
    return b.where(small, series, b.where(b.equal(safe, x), b.divide(b.expm1(safe), safe), x))


def _nan_in_nan_out(b, result, *operands):
    """`result`, NaN where an operand is NaN."""
    nan = functools.reduce(b.logical_or, [b.not_equal(v, v) for v in operands])
    return b.where(nan, const(np.nan, result.dtype), result)


def _entropy_term(inside, at_zero):
    """SciPy's convention for the entropy terms rel_entr(x, y) and kl_div(x, y): `inside(b, x, y)` where
    x > 0 and y > 0 (the operands replaced by 1 elsewhere, so that its derivatives stay finite),
    `at_zero(b, y)` where x == 0 and y >= 0, +inf elsewhere; NaN operands give NaN."""
    def build(b, x, y):
        zero, one = const(0, x.dtype), const(1, x.dtype)
        positive = b.logical_and(b.greater(x, zero), b.greater(y, zero))
        edge = b.logical_and(b.equal(x, zero), b.greater_equal(y, zero))
        value = inside(b, b.where(positive, x, one), b.where(positive, y, one))
        out = b.where(positive, value, b.where(edge, at_zero(b, y), const(np.inf, x.dtype)))
        return _nan_in_nan_out(b, out, x, y)
    return build


def _x_log_ratio(b, x, y):
    return b.multiply(x, b.log(b.divide(x, y)))


_rel_entr = _entropy_term(_x_log_ratio, lambda b, y: b.multiply(y, const(0, y.dtype)))
_kl_div = _entropy_term(lambda b, x, y: b.add(b.subtract(_x_log_ratio(b, x, y), x), y), lambda b, y: y)


def _entr(b, x):
    """-x log x for x > 0, 0 at 0, -inf below: -rel_entr(x, 1)."""
    return b.negative(_rel_entr(b, x, const(1, x.dtype)))


def _huber(b, delta, r):
    """r^2 / 2 for |r| <= delta, delta (|r| - delta / 2) beyond; inf for delta < 0."""
    half = const(0.5, r.dtype)
    size = b.absolute(r)
    out = b.where(b.less_equal(size, delta), b.multiply(half, b.multiply(r, r)),
                  b.multiply(delta, b.subtract(size, b.multiply(half, delta))))
    return b.where(b.less(delta, const(0, delta.dtype)), const(np.inf, out.dtype), out)


def _pseudo_huber(b, delta, r):
    """delta^2 (sqrt(1 + (r / delta)^2) - 1); 0 where delta or r is 0 (delta replaced by 1 there, so its
    derivatives stay finite), inf for delta < 0."""
    zero, one = const(0, r.dtype), const(1, r.dtype)
    degenerate = b.logical_or(b.equal(delta, zero), b.equal(r, zero))
    d = b.where(degenerate, one, delta)
    ratio = b.divide(r, d)
    value = b.multiply(b.multiply(d, d), b.subtract(b.sqrt(b.add(one, b.multiply(ratio, ratio))), one))
    out = b.where(degenerate, zero, value)
    return b.where(b.less(delta, zero), const(np.inf, out.dtype), out)


def ir_op(name):
    """The builder applying IR op `name` to the operands."""
    return lambda b, *operands: b.emit(name, *operands)


def _beta_pdf(b, x, p, q):
    """The Beta(p, q) density at x: exp(xlogy(p - 1, x) + xlog1py(q - 1, -x) - betaln(p, q))."""
    return beta_density(b, p, q, x)


def polygamma(n, x):
    """scipy.special.polygamma(n, x) for a static integer order n."""
    order = np.asarray(unwrap(n))
    if type(n) is TracedArray or order.ndim or order != np.round(order):
        refuse("scipy.special.polygamma is traced only for a constant integer order n")
    concrete = sc.polygamma(n, unwrap(x))
    v = builder().polygamma(as_traced(x).ir, order=int(order))
    return make(astype(v, np.asarray(concrete).dtype), concrete)


_UFUNCS = {
    "erf": lambda b, x: b.erf(x), "erfc": lambda b, x: b.erfc(x), "gammaln": lambda b, x: b.gammaln(x),
    "log_ndtr": lambda b, x: b.log_ndtr(x), "digamma": lambda b, x: b.polygamma(x, order=0),  # = psi
    "expit": _expit, "logit": _logit, "ndtr": _ndtr,
    "xlogy": _x_log("log", 0), "xlog1py": _x_log("log1p", -1),
    "log1p": lambda b, x: b.log1p(x), "expm1": lambda b, x: b.expm1(x), "log_expit": _log_expit,
    "gamma": gamma, "loggamma": _loggamma, "poch": _poch, "betaln": betaln,
    "rgamma": _rgamma, "gammasgn": _gammasgn, "exprel": _exprel,
    "entr": _entr, "rel_entr": _rel_entr, "kl_div": _kl_div, "huber": _huber, "pseudo_huber": _pseudo_huber,
    "cbrt": BUILDERS["cbrt"], "exp2": BUILDERS["exp2"], "exp10": lambda b, x: b.power(const(10, x.dtype), x),
    "wofz": ir_op("wofz"),
    **{name: ir_op(name) for name in ("erfinv", "erfcinv", "ndtri", "ndtri_exp", "j0", "j1", "y0", "y1", "i0",
                                    "i1", "i0e", "i1e",
                                    "k0", "k1", *BESSEL)},
}
_COMPOSED = set(_UFUNCS) - {"erf", "erfc", "gammaln", "log_ndtr", "digamma"}

if sc is not None:
    for _name, _build in _UFUNCS.items():
        _ufunc = getattr(sc, _name)
        register(_ufunc)(ufunc_rule(_ufunc, as_float(_ufunc, _build) if _name in _COMPOSED else _build))
    register(sc.polygamma)(polygamma)
    register(sc.beta)(_finite_only(sc.beta, ufunc_rule(sc.beta, as_float(sc.beta, _beta))))
    register(sc.binom)(_within(sc.binom, ufunc_rule(sc.binom, as_float(sc.binom, _binom)), _binomial_region,
                               "n > -1, k > -1, n - k > -1", "arguments outside n > -1, k > -1, n - k > -1"))
    # private ufunc -> its builder (a probe inside its domain: _cauchy_ppf(1, 1, 1) raises OverflowError)
    _PRIVATE = {"_beta_pdf": _beta_pdf, "_cauchy_ppf": _cauchy_quantile(1), "_cauchy_isf": _cauchy_quantile(-1)}
    for _name, _build in _PRIVATE.items():
        _ufunc = getattr(sc._ufuncs, _name)
        register(_ufunc)(ufunc_rule(_ufunc, as_float(_ufunc, _build, probe=0.5)))
