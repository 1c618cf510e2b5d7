"""Partial derivatives of the incomplete gamma / beta ops (ops.INCOMPLETE), in the form of
partials.PARTIALS (one `d(b, node)` per operand, built from IR ops so that they differentiate further).

W.r.t. x (and t) they are closed forms: the Gamma(a), Beta(a, b) and Student-t densities, computed in
log space (no overflow of x^(a-1) or 1/Gamma(a)); at the support's edges they are what the density is
(0, a finite value, or inf where it is infinite, e.g. a < 1 at x = 0), and 0 at x = inf where P is flat.
W.r.t. the shape parameters they are the numerical ops gammainc_da, betainc_da, betainc_db, stdtr_ddf
(fdtr's: compositions with betainc_da and betainc_db).
Those four have closed-form partials w.r.t. x and t (the densities times d log density / d parameter);
their partials w.r.t. the shape parameters raise UnsupportedError naming the op (never a silent zero);
the AD transforms ask for them only when that operand is active (depends on a differentiated input), so
d/dx of dP/da with `a` traced but not differentiated is fine.

Also here, shared with the tracer's scipy.special rules: `x_log` (xlogy / xlog1py with derivatives
finite where the function is), `betaln` and `beta_density`.
"""
import numpy as np

from .errors import UnsupportedError


def _c(b, value, dtype):
    return b.fill((), dtype, value)


def x_log(b, log, pole, k, y):
    """k * log(y) (`log` is the op name "log", or "log1p" with `pole` -1; "log" has pole 0), 0 where k == 0
    unless y is nan: where k == 0 and log(y) is not finite (y <= pole or y == inf) y is replaced by
    pole + 1, so the value is 0 and d/dk is log(y) wherever that is finite."""
    bad = b.logical_or(b.less_equal(y, _c(b, pole, y.dtype)), b.equal(y, _c(b, np.inf, y.dtype)))
    safe = b.where(b.logical_and(b.equal(k, _c(b, 0, k.dtype)), bad), _c(b, pole + 1, y.dtype), y)
    return b.multiply(k, b.emit(log, safe))


def betaln(b, p, q):
    """log|B(p, q)| = gammaln(p) + gammaln(q) - gammaln(p + q)."""
    return b.subtract(b.add(b.gammaln(p), b.gammaln(q)), b.gammaln(b.add(p, q)))


def _gamma_density(b, n):
    """x^(a-1) e^-x / Gamma(a) = dP(a, x)/dx; x = inf is replaced by the largest float (density 0)."""
    a, x = n.args[:2]
    dtype = n.dtype
    finite_x = b.where(b.equal(x, _c(b, np.inf, x.dtype)), _c(b, np.finfo(dtype).max, dtype), x)
    log_power = x_log(b, "log", 0, b.subtract(a, _c(b, 1, a.dtype)), finite_x)
    return b.exp(b.subtract(b.subtract(log_power, finite_x), b.gammaln(a)))


def beta_density(b, p, q, x):
    """The Beta(p, q) density at x, x^(p-1) (1-x)^(q-1) / B(p, q) = dI_x(p, q)/dx, in log space."""
    log_density = b.add(x_log(b, "log", 0, b.subtract(p, _c(b, 1, p.dtype)), x),
                        x_log(b, "log1p", -1, b.subtract(q, _c(b, 1, q.dtype)), b.negative(x)))
    return b.exp(b.subtract(log_density, betaln(b, p, q)))


def _beta_density(b, n):
    return beta_density(b, *n.args[:3])


def _t_density(b, n):
    """Gamma((df+1)/2) / (Gamma(df/2) sqrt(df pi)) (1 + t^2/df)^(-(df+1)/2) = d stdtr(df, t)/dt."""
    df, t = n.args[:2]
    half = _c(b, 0.5, n.dtype)
    half_df_plus_one = b.multiply(half, b.add(df, _c(b, 1, n.dtype)))
    log_norm = b.subtract(b.subtract(b.gammaln(half_df_plus_one), b.gammaln(b.multiply(half, df))),
                          b.multiply(half, b.log(b.multiply(df, _c(b, np.pi, n.dtype)))))
    log_kernel = b.multiply(half_df_plus_one, b.log1p(b.divide(b.multiply(t, t), df)))
    return b.exp(b.subtract(log_norm, log_kernel))


def _fdtr_partial(which):
    """d fdtr(dfn, dfd, x) / d operand `which`.  fdtr = I_w(a, b) = 1 - I_y(b, a) with a = dfn/2, b = dfd/2,
    w = dfn x / (dfd + dfn x) and y = dfd / (dfd + dfn x) (both exact): I's pieces are taken on the side
    where their argument is at most 1/2.  W.r.t. dfn (dfd): dI/da / 2 + density(w) dw/d dfn (d dfd), 0 at
    x = 0 and x = inf where fdtr is flat; w.r.t. x: density(w) dfn dfd / (dfd + dfn x)^2, 0 at x = inf."""
    def d(b, n):
        dfn, dfd, x = n.args
        dtype = n.dtype
        half, zero = _c(b, 0.5, dtype), _c(b, 0, dtype)
        infinite = b.equal(x, _c(b, np.inf, x.dtype))
        finite_x = b.where(infinite, _c(b, 1, dtype), x)
        scaled = b.multiply(dfn, finite_x)
        total = b.add(dfd, scaled)
        w, y = b.divide(scaled, total), b.divide(dfd, total)
        p, q = b.multiply(dfn, half), b.multiply(dfd, half)
        low = b.less_equal(w, half)
        density = b.where(low, beta_density(b, p, q, w), beta_density(b, q, p, y))
        square = b.multiply(total, total)
        if which == 2:
            return b.where(infinite, zero, b.multiply(density, b.divide(b.multiply(dfn, dfd), square)))
        own, mirrored = ("betainc_da", "betainc_db")[which], ("betainc_db", "betainc_da")[which]
        shape_term = b.where(low, b.emit(own, p, q, w), b.negative(b.emit(mirrored, q, p, y)))
        dw = b.divide(b.multiply(finite_x, dfd) if which == 0 else b.negative(scaled), square)
        partial = b.add(b.multiply(half, shape_term), b.multiply(density, dw))
        return b.where(b.logical_or(infinite, b.equal(x, _c(b, 0, x.dtype))), zero, partial)
    return d


def _times_density(density, log_derivative):
    """d(node)/dx for a node that is the derivative of a CDF w.r.t. a parameter: the density times
    d log(density)/d parameter, 0 where the density is (the log-derivative may be infinite there)."""
    def d(b, n):
        dens = density(b, n)
        zero = b.equal(dens, _c(b, 0, n.dtype))
        return b.multiply(dens, b.where(zero, _c(b, 0, n.dtype), log_derivative(b, n)))
    return d


def _digamma(b, v):
    return b.polygamma(v, order=0)


def _gamma_log_derivative(b, n):
    """d log(x^(a-1) e^-x / Gamma(a))/da = log x - digamma(a)."""
    a, x = n.args
    return b.subtract(b.log(x), _digamma(b, a))


def _beta_log_derivative(which):
    """d log(beta density)/da = log x - digamma(a) + digamma(a+b); /db: log1p(-x) - digamma(b) + ..."""
    def log_derivative(b, n):
        p, q, x = n.args
        log_term = b.log(x) if which == 0 else b.log1p(b.negative(x))
        return b.add(b.subtract(log_term, _digamma(b, n.args[which])), _digamma(b, b.add(p, q)))
    return log_derivative


def _t_log_derivative(b, n):
    """d log(t density)/d df = (digamma((df+1)/2) - digamma(df/2) - 1/df - log1p(t^2/df)) / 2
    + (df+1) t^2 / (2 df (df + t^2))."""
    df, t = n.args
    half, one = _c(b, 0.5, n.dtype), _c(b, 1, n.dtype)
    t2 = b.multiply(t, t)
    digammas = b.subtract(_digamma(b, b.multiply(half, b.add(df, one))), _digamma(b, b.multiply(half, df)))
    bracket = b.subtract(b.subtract(digammas, b.divide(one, df)), b.log1p(b.divide(t2, df)))
    tail = b.divide(b.multiply(b.add(df, one), t2), b.multiply(df, b.add(df, t2)))
    return b.multiply(half, b.add(bracket, tail))


def _refused(parameter):
    """The partial of a numerical derivative op w.r.t. a shape parameter: refused loudly (asked for only
    when that operand is active)."""
    def d(b, n):
        raise UnsupportedError(f"the derivative of {n.op} (a derivative of an incomplete gamma/beta function "
                               f"w.r.t. its shape parameter) w.r.t. operand {parameter} is not supported: "
                               "second derivatives w.r.t. shape parameters have no rule")
    return d


def _negated(d):
    return lambda b, n: b.negative(d(b, n))


def _emitted(op):
    """The partial given by op applied to node's operands (the numerical derivative ops)."""
    return lambda b, n: b.emit(op, *n.args)


_GAMMA = (_emitted("gammainc_da"), _gamma_density)
_BETA = (_emitted("betainc_da"), _emitted("betainc_db"), _beta_density)
_FDTR = tuple(_fdtr_partial(which) for which in range(3))

INCOMPLETE_PARTIALS = {
    "gammainc": _GAMMA,
    "gammaincc": tuple(_negated(d) for d in _GAMMA),
    "betainc": _BETA,
    "betaincc": tuple(_negated(d) for d in _BETA),
    "stdtr": (_emitted("stdtr_ddf"), _t_density),
    "fdtr": _FDTR,
    "fdtrc": tuple(_negated(d) for d in _FDTR),
    "gammainc_da": (_refused(0), _times_density(_gamma_density, _gamma_log_derivative)),
    "betainc_da": (_refused(0), _refused(1), _times_density(_beta_density, _beta_log_derivative(0))),
    "betainc_db": (_refused(0), _refused(1), _times_density(_beta_density, _beta_log_derivative(1))),
    "stdtr_ddf": (_refused(0), _times_density(_t_density, _t_log_derivative)),
}
