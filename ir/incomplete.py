"""Numerical evaluation of the incomplete gamma / beta ops (ops.INCOMPLETE): their values are the
scipy.special ufuncs of the same name; the derivatives w.r.t. the shape parameters, which have no closed
form, are computed here in float64, vectorized, to about full double precision (checked against mpmath
to 1e-12 relative in tests/test_incomplete.py):

  gammainc_da(a, x) = dP(a, x)/da: the lower series  P = sum_n x^(a+n) e^-x / Gamma(a+n+1)  differentiated
      term by term for x < a + 1, else minus the derivative of Legendre's continued fraction of Q;
  betainc_da / betainc_db(a, b, x) = dI_x(a, b)/da, /db: the continued fraction of I_x (Numerical Recipes'
      betacf) differentiated along its recurrence, for x < (a+1)/(a+b+2), else through the symmetry
      I_x(a, b) = 1 - I_(1-x)(b, a);
  stdtr_ddf(df, t): d stdtr/d df, with stdtr = 1 - I_z(df/2, 1/2) / 2 for t > 0 (z = df / (df + t^2));
      its two terms cancel as df grows, costing about log10(df) digits (1e-13 relative at df = 200).

log x - digamma(y) and digamma differences are formed without cancellation (Stirling's series of
log y - digamma(y)), and log x, log(1 - x) come exactly from the caller.

Continued fractions are evaluated with their three-term recurrences (rescaled against overflow), carried
along with the recurrences' derivatives (forward-mode differentiation of the fraction).  An entry that does
not converge within MAX_TERMS gives NaN, never a truncated value.  Outside the functions' domains the
result is NaN; at x = 0 and at the top of the support (the functions are flat there) it is 0.
"""
import functools

import numpy as np

from .ops import special_function

MAX_TERMS = 20000
_TOLERANCE = 4 * np.finfo(np.float64).eps


def _quietly(fn):
    """`fn` with NumPy's floating-point warnings off (NaN and inf results are the documented answers)."""
    @functools.wraps(fn)
    def wrapped(*args):
        with np.errstate(all="ignore"):
            return fn(*args)
    return wrapped


def _special():
    import scipy.special
    return scipy.special


def _continued_fraction(b0, db0, terms, size):
    """1 / (b0 + a1/(b1 + a2/(b2 + ...))) and its derivatives, for `size` independent entries.

    `b0` has shape (size,), `db0` (k, size) for k derivative directions; `terms(n, idx)` gives
    (a_n, da_n, b_n, db_n) for the entries `idx` still iterating (da_n, db_n shaped (k, len(idx))).
    Returns (f, df) with df shaped (k, size); entries not converged after MAX_TERMS are NaN."""
    k = db0.shape[0]
    f, df = np.full(size, np.nan), np.full((k, size), np.nan)
    idx = np.arange(size)
    start = np.abs(b0).astype(np.float64)                     # the state is scaled by 1/|A_0| from the start
    start[start == 0] = 1.0
    a_prev, b_prev = 1 / start, np.zeros(size)                # A_-1, B_-1
    a_cur, b_cur = b0 / start, 1 / start                      # A_0, B_0
    da_prev, db_prev = np.zeros((k, size)), np.zeros((k, size))
    da_cur, db_cur = db0 / start, np.zeros((k, size))
    f_old = b_cur / a_cur
    df_old = (db_cur - f_old * da_cur) / a_cur
    for n in range(1, MAX_TERMS + 1):
        an, dan, bn, dbn = terms(n, idx)
        a_new = bn * a_cur + an * a_prev
        b_new = bn * b_cur + an * b_prev
        da_new = dbn * a_cur + bn * da_cur + dan * a_prev + an * da_prev
        db_new = dbn * b_cur + bn * db_cur + dan * b_prev + an * db_prev
        scale = np.abs(a_new)
        scale[scale == 0] = 1.0
        a_prev, b_prev, a_cur, b_cur = a_cur / scale, b_cur / scale, a_new / scale, b_new / scale
        da_prev, db_prev, da_cur, db_cur = da_cur / scale, db_cur / scale, da_new / scale, db_new / scale
        f_new = b_cur / a_cur
        df_new = (db_cur - f_new * da_cur) / a_cur
        done = ((np.abs(f_new - f_old) <= _TOLERANCE * np.abs(f_new))
                & np.all(np.abs(df_new - df_old) <= _TOLERANCE * np.abs(df_new), axis=0))
        done |= ~(np.isfinite(f_new) & np.all(np.isfinite(df_new), axis=0))   # overflowed: stays NaN
        f_new[~np.isfinite(f_new)] = np.nan
        f[idx[done]], df[:, idx[done]] = f_new[done], df_new[:, done]
        if done.all():
            break
        keep = ~done
        idx, f_old, df_old = idx[keep], f_new[keep], df_new[:, keep]
        a_prev, b_prev, a_cur, b_cur = a_prev[keep], b_prev[keep], a_cur[keep], b_cur[keep]
        da_prev, db_prev = da_prev[:, keep], db_prev[:, keep]
        da_cur, db_cur = da_cur[:, keep], db_cur[:, keep]
    return f, df


# Stirling's series of log(y) - digamma(y): 1/(2y) + sum_k B_2k / (2k y^2k)
_STIRLING = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)


def _log_minus_digamma(y):
    """log(y) - digamma(y) (> 0), without the cancellation of the difference for large y."""
    y = np.asarray(y, np.float64)
    large = np.maximum(y, 12.0)
    inverse_square = (1 / large) ** 2
    series = np.zeros_like(large)
    for coefficient in reversed(_STIRLING):
        series = (series + coefficient) * inverse_square
    with np.errstate(all="ignore"):
        return np.where(y >= 12.0, 0.5 / large + series, np.log(y) - _special().digamma(y))


def _digamma_step(y, d):
    """digamma(y + d) - digamma(y) for y, d > 0, accurate when d << y."""
    return np.log1p(d / y) + _log_minus_digamma(y) - _log_minus_digamma(y + d)


def _series_da(a, x):
    """dP/da from the lower series: sum_n term_n (log x - digamma(a+n+1)) with
    term_n = x^(a+n) e^-x / Gamma(a+n+1);
    log x - digamma(c) is taken as log(x/c) + (log c - digamma c)."""
    sc = _special()
    log_x = np.log(x)
    term = np.exp(a * log_x - x - sc.gammaln(a + 1))
    total, mass = term * (np.log(x / (a + 1)) + _log_minus_digamma(a + 1)), term.copy()
    out = np.full(a.shape, np.nan)
    idx = np.arange(a.size)
    for n in range(1, MAX_TERMS + 1):
        term = term * x / (a + n)
        piece = term * (np.log(x / (a + n + 1)) + _log_minus_digamma(a + n + 1))
        total, mass = total + piece, mass + term
        done = ((np.abs(piece) <= _TOLERANCE * np.abs(total)) & (term <= _TOLERANCE * mass)
                | ~np.isfinite(total))
        out[idx[done]] = total[done]
        if done.all():
            break
        keep = ~done
        idx, a, x, term, total, mass = (v[keep] for v in (idx, a, x, term, total, mass))
    return out


def _upper_fraction_da(a, x):
    """dQ/da from Q = x^a e^-x / Gamma(a) / (x+1-a - 1(1-a)/(x+3-a - 2(2-a)/(x+5-a - ...)))."""
    def terms(n, idx):
        ones = np.ones((1, idx.size))
        return n * (a[idx] - n), n * ones, x[idx] + 2 * n + 1 - a[idx], -ones
    f, df = _continued_fraction(x + 1 - a, -np.ones((1, a.size)), terms, a.size)
    prefactor = np.exp(a * np.log(x) - x - _special().gammaln(a))
    return prefactor * (f * (np.log(x / a) + _log_minus_digamma(a)) + df[0])


@_quietly
def gammainc_da(a, x):
    """dP(a, x)/da, P = scipy.special.gammainc (float64; NaN outside a > 0, x >= 0)."""
    arrays = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    a, x = (v.ravel() for v in arrays)
    out = np.full(a.shape, np.nan)
    valid = (a > 0) & (x >= 0)
    out[valid & ((x == 0) | (x == np.inf))] = 0.0
    inner = valid & (x > 0) & (x < np.inf)
    series = inner & (x < a + 1)
    out[series] = _series_da(a[series], x[series])
    # |dQ/da| < x^a e^-x / Gamma(a) * 1000 for x >= a + 1: below exp(-760) it is 0 in float64
    negligible = inner & ~series & (a * np.log(x) - x - _special().gammaln(a) < -760)
    out[negligible] = 0.0
    fraction = inner & ~series & ~negligible
    out[fraction] = -_upper_fraction_da(a[fraction], x[fraction])
    return out.reshape(arrays[0].shape)


def _beta_fraction_partials(a, b, x, log_x, log_y):
    """(dI/da, dI/db) for I_x(a, b) = x^a y^b / (a B(a, b)) / (1 + d1/(1 + d2/(1 + ...))), y = 1 - x, from
    NR's betacf coefficients d_(2m+1) = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)), d_(2m) = m (b-m) x /
    ((a+2m-1)(a+2m)).  log x and log y are given by the caller, exact (1 - x may have lost digits)."""
    sc = _special()

    def terms(n, idx):
        ai, bi, xi = a[idx], b[idx], x[idx]
        m = n // 2
        if n % 2:
            p, q, r, s = ai + m, ai + bi + m, ai + 2 * m, ai + 2 * m + 1
            d = -p * q * xi / (r * s)
            dd_da = -(p + q) * xi / (r * s) - d * (1 / r + 1 / s)
            dd_db = -p * xi / (r * s)
        else:
            r, s = ai + 2 * m - 1, ai + 2 * m
            d = m * (bi - m) * xi / (r * s)
            dd_da = -d * (1 / r + 1 / s)
            dd_db = m * xi / (r * s)
        return d, np.stack([dd_da, dd_db]), np.ones_like(ai), np.zeros((2, idx.size))
    f, df = _continued_fraction(np.ones(a.size), np.zeros((2, a.size)), terms, a.size)
    prefactor = np.exp(a * log_x + b * log_y - np.log(a) - sc.betaln(a, b))
    da = prefactor * (f * (log_x - 1 / a + _digamma_step(a, b)) + df[0])
    db = prefactor * (f * (log_y + _digamma_step(b, a)) + df[1])
    return da, db


def _betainc_partials(a, b, x, y, log_x, log_y):
    """(dI/da, dI/db) of I_x(a, b), float64 1-d arrays, with y = 1 - x, log x and log y given exactly by the
    caller; NaN outside a, b > 0, 0 <= x <= 1."""
    da, db = np.full(a.shape, np.nan), np.full(a.shape, np.nan)
    valid = (a > 0) & (b > 0) & (x >= 0) & (y >= 0)
    edge = valid & ((x == 0) | (y == 0))
    da[edge], db[edge] = 0.0, 0.0
    inner = valid & ~edge
    direct = inner & (x < (a + 1) / (a + b + 2))
    da[direct], db[direct] = _beta_fraction_partials(a[direct], b[direct], x[direct], log_x[direct],
                                                     log_y[direct])
    swapped = inner & ~direct             # I_x(a, b) = 1 - I_y(b, a)
    sb, sa = _beta_fraction_partials(b[swapped], a[swapped], y[swapped], log_y[swapped], log_x[swapped])
    da[swapped], db[swapped] = -sa, -sb
    return da, db


def _betainc_partial(which):
    def partial(a, b, x):
        arrays = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, x)))
        a, b, x = (v.ravel() for v in arrays)
        return _betainc_partials(a, b, x, 1 - x, np.log(x), np.log1p(-x))[which].reshape(arrays[0].shape)
    partial.__name__ = ("betainc_da", "betainc_db")[which]
    partial.__doc__ = f"dI_x(a, b)/d{'ab'[which]}, I = scipy.special.betainc (float64)."
    return _quietly(partial)


betainc_da, betainc_db = _betainc_partial(0), _betainc_partial(1)


@_quietly
def stdtr_ddf(df, t):
    """d stdtr(df, t)/d df (float64): stdtr = I_z(df/2, 1/2) / 2 for t < 0, 1 - that for t > 0, with
    z = df / (df + t^2), so the derivative is -sign(t)/2 (dI/da / 2 + density(z) dz/d df); 0 at t = 0
    and t = +-inf."""
    sc = _special()
    arrays = np.broadcast_arrays(np.asarray(df, np.float64), np.asarray(t, np.float64))
    df, t = (v.ravel() for v in arrays)
    out = np.full(df.shape, np.nan)
    valid = df > 0
    out[valid & ((t == 0) | np.isinf(t))] = 0.0
    inner = valid & (t != 0) & np.isfinite(t)
    n, s = df[inner], t[inner]
    denominator = n + s * s
    log_z, log_w = -np.log1p(s * s / n), 2 * np.log(np.abs(s)) - np.log(denominator)
    dI_da, _ = _betainc_partials(n / 2, np.full(n.shape, 0.5), n / denominator, s * s / denominator,
                                 log_z, log_w)
    log_density_term = ((n / 2 - 1) * log_z + np.log(np.abs(s))
                        - sc.betaln(n / 2, 0.5) - 1.5 * np.log(denominator))
    out[inner] = -0.5 * np.sign(s) * (0.5 * dI_da + np.exp(log_density_term))
    return out.reshape(arrays[0].shape)


_DERIVATIVES = {"gammainc_da": gammainc_da, "betainc_da": betainc_da, "betainc_db": betainc_db,
                "stdtr_ddf": stdtr_ddf}


def evaluate(op, args):
    """The value of incomplete-function op `op` on NumPy operands, in the dtype SciPy gives the op."""
    fn = special_function(op)      # the spec's scipy ufunc (derivative ops: the primal's)
    dtype = np.asarray(fn(*[np.ones(1, dtype=np.asarray(v).dtype) for v in args])).dtype
    with np.errstate(all="ignore"):
        value = _DERIVATIVES[op](*args) if op in _DERIVATIVES else fn(*args)
    return np.asarray(value).astype(dtype, copy=False)
