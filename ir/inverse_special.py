"""Partial derivatives of the inverse distribution functions (ops.INVERSE, and ndtri / ndtri_exp of
ops.SPECIAL), in the form of partials.PARTIALS, by the implicit function theorem: if y = F^-1(p; theta)
then dy/dp = 1 / F'(y; theta) (F' = dF/dy, the density at y) and dy/dtheta = -(dF/dtheta)(y; theta) / F'.

F and its partials are the forward op's (ir/incomplete_partials.py), applied to a node F(theta, y) built
for the purpose (only its operands are read; DCE drops it).  At the edges of the support (p = 0 or 1, y at
the bottom or top of the support) the p-derivative is what the formula gives: inf where the density
vanishes there (gamma with a > 1 at p = 0, every top edge at p = 1), 0 where the density is infinite
(gamma with a < 1 at p = 0), and dy/dtheta is 0 wherever dF/dtheta is (there y does not move with theta;
the quotient would be 0/0).  ndtri: dy/dp = sqrt(2 pi) exp(y^2 / 2) (inf at p = 0 and 1); ndtri_exp(x) =
ndtri(exp(x)): dy/dx = sqrt(2 pi) exp(x + y^2 / 2), 0 at x = -inf (where y = -inf), inf at x = 0.
"""
import numpy as np

from .incomplete_partials import INCOMPLETE_PARTIALS


def _c(b, value, dtype):
    return b.fill((), dtype, value)


# inverse op -> its forward op (same operands, the last one replaced by the inverse's value)
FORWARD = {"gammaincinv": "gammainc", "gammainccinv": "gammaincc", "betaincinv": "betainc",
           "betainccinv": "betaincc", "stdtrit": "stdtr", "fdtri": "fdtr"}


def _forward(b, n):
    """(the forward node F(theta, y) at the inverse node n = y, F's partials)."""
    op = FORWARD[n.op]
    return b.emit(op, *n.args[:-1], n), INCOMPLETE_PARTIALS[op]


def _d_probability(b, n):
    """dy/dp = 1 / (dF/dy)(theta, y)."""
    forward, partials = _forward(b, n)
    return b.divide(_c(b, 1, n.dtype), partials[-1](b, forward))


def _d_parameter(which):
    """dy/dtheta_which = -(dF/dtheta_which) / (dF/dy), 0 where dF/dtheta_which is 0."""
    def d(b, n):
        forward, partials = _forward(b, n)
        numerator = partials[which](b, forward)
        zero = _c(b, 0, n.dtype)
        quotient = b.negative(b.divide(numerator, partials[-1](b, forward)))
        return b.where(b.equal(numerator, zero), zero, quotient)
    return d


def _ndtri_slope(b, n):
    """sqrt(2 pi) exp(y^2 / 2)."""
    half = _c(b, 0.5, n.dtype)
    return b.multiply(_c(b, np.sqrt(2 * np.pi), n.dtype), b.exp(b.multiply(half, b.multiply(n, n))))


def _ndtri_exp_slope(b, n):
    """sqrt(2 pi) exp(x + y^2 / 2), 0 at x = -inf."""
    x, dtype = n.args[0], n.dtype
    half = _c(b, 0.5, dtype)
    exponent = b.add(x, b.multiply(half, b.multiply(n, n)))
    slope = b.multiply(_c(b, np.sqrt(2 * np.pi), dtype), b.exp(exponent))
    return b.where(b.equal(x, _c(b, -np.inf, x.dtype)), _c(b, 0, dtype), slope)


INVERSE_PARTIALS = {
    **{op: tuple(_d_parameter(k) for k in range(len(INCOMPLETE_PARTIALS[forward]) - 1)) + (_d_probability,)
       for op, forward in FORWARD.items()},
    "ndtri": (_ndtri_slope,),
    "ndtri_exp": (_ndtri_exp_slope,),
}
