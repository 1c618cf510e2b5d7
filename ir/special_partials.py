"""Partial derivatives of the inverse error functions and the Bessel functions (erfinv, erfcinv, j0 ... k1
of ops.SPECIAL and the order-v ops of ops.BESSEL) and of nextafter and frexp_mantissa (ops.FLOAT_PARTS:
1 and 0; 2^-e), in the form of partials.PARTIALS: one `d(b, node)` per operand, built from IR ops so
that they differentiate further.

  erfinv'(x) = sqrt(pi)/2 exp(erfinv(x)^2), erfcinv' = -sqrt(pi)/2 exp(erfcinv(x)^2);
  w.r.t. x, by the recurrences of order v (DLMF 10.6.1, 10.29.1):
      jv' = (j_{v-1} - j_{v+1}) / 2 (yv alike), iv' = (i_{v-1} + i_{v+1}) / 2, kv' = -(k_{v-1} + k_{v+1}) / 2,
      ive' = (ive_{v-1} + ive_{v+1}) / 2 - sign(x) ive_v (ive = iv exp(-|x|); 0 from the |x| kink at x = 0);
  the integer-order ops (j0 = jv with v = 0, ..., i0e, k1) by the same recurrences with a constant order.
W.r.t. the order v the derivative has no closed form: it raises UnsupportedError naming the op (the AD
transforms ask for it only when the order carries a derivative).
"""
import numpy as np

from .errors import UnsupportedError


def _c(b, value, dtype):
    return b.fill((), dtype, value)


def _erfinv_slope(sign):
    """sign * sqrt(pi)/2 exp(y^2), y the node (erfinv: sign +1, erfcinv: -1)."""
    return lambda b, n: b.multiply(_c(b, sign * np.sqrt(np.pi) / 2, n.dtype), b.exp(b.multiply(n, n)))


# op of order v -> (coefficient of f_{v-1}, of f_{v+1}, exponentially scaled)
_RECURRENCE = {"jv": (0.5, -0.5, False), "yv": (0.5, -0.5, False), "iv": (0.5, 0.5, False),
               "kv": (-0.5, -0.5, False), "ive": (0.5, 0.5, True)}
# integer-order op -> (its op of order v, the order)
_FIXED_ORDER = {"j0": ("jv", 0), "j1": ("jv", 1), "y0": ("yv", 0), "y1": ("yv", 1), "i0": ("iv", 0),
                "i1": ("iv", 1), "i0e": ("ive", 0), "i1e": ("ive", 1), "k0": ("kv", 0), "k1": ("kv", 1)}


def _d_dx(op, order):
    """d op(v, x)/dx by the recurrence of `op`; `order(b, n, shift)` gives the order v + shift."""
    below, above, scaled = _RECURRENCE[op]

    def d(b, n):
        x, dtype = n.args[-1], n.dtype
        terms = [b.multiply(_c(b, k, dtype), b.emit(op, order(b, n, shift), x))
                 for k, shift in ((below, -1), (above, 1))]
        slope = b.add(*terms)
        return b.subtract(slope, b.multiply(b.sign(x), n)) if scaled else slope
    return d


def _variable_order(b, n, shift):
    v = n.args[0]
    return b.add(v, _c(b, shift, v.dtype))


def _fixed_order(v):
    return lambda b, n, shift: _c(b, v + shift, n.dtype)


def _d_dorder(b, n):
    """The partial w.r.t. the order, asked for only when the order carries a derivative: refused."""
    raise UnsupportedError(f"the derivative of the Bessel function {n.op}(v, x) w.r.t. its order v is not "
                           "supported (no closed form); differentiate w.r.t. x only, with a constant v")


def _mantissa_slope(b, n):
    """d frexp_mantissa(x)/dx = 2^-e, e = frexp_exponent(x) (piecewise constant)."""
    exponent = b.astype(b.emit("frexp_exponent", n.args[0]), dtype=n.dtype)
    return b.power(_c(b, 2, n.dtype), b.negative(exponent))


SPECIAL_PARTIALS = {
    "nextafter": (lambda b, n: _c(b, 1, n.dtype), lambda b, n: _c(b, 0, n.dtype)),
    "frexp_mantissa": (_mantissa_slope,),
    "erfinv": (_erfinv_slope(1),),
    "erfcinv": (_erfinv_slope(-1),),
    **{op: (_d_dx(of, _fixed_order(v)),) for op, (of, v) in _FIXED_ORDER.items()},
    **{op: (_d_dorder, _d_dx(op, _variable_order)) for op in _RECURRENCE},
}
