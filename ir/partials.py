"""Derivative pieces shared by the VJP and JVP tables (ir/vjp.py, ir/jvp.py), each written once.

PARTIALS[op], for every differentiable elementwise op and special function (erf, gammaln, ...; the
incomplete gamma/beta ops' entries live in ir/incomplete_partials.py, their inverses' in
ir/inverse_special.py): one function per operand,
`d(b, node)`, giving the partial derivative of `node` (= op(*node.args), the output y) with respect to
that operand, built with Builder `b` from the operands and the output, using IR ops only (so derivatives
are themselves differentiable).  A partial may be the marker ONE or MINUS_ONE instead of a Value; `scale` applies one.
Conventions (as JAX unless said): maximum/minimum split ties 0.5/0.5, sqrt'(0) = inf, abs'(0) = sign(0)
= 0 (as autograd; JAX 0.10 gives 1), d(x**y)/dx = 0 where y == 0 (JAX gives nan at x == 0),
d(x**y)/dy = log(x) * x**y with log(0) replaced by 0 (x**2 at 0 -> 0; nan for x < 0, as JAX).

Complex operands (cotangent convention of ir/autodiff.py): a partial of a holomorphic op is its complex
derivative f'(z), and the VJP multiplies by conj(partial) (done once, in ir/vjp.py).  A real-valued op of
a complex operand z = u + iv (absolute, real, imag) has as partial the conjugate of its gradient
dy/du + i dy/dv: the JVP's product then has the tangent as its real part (taken centrally by `cast`), the VJP's product
is the cotangent.  absolute'(0) = 0 for complex operands too.

Reduction helpers: `expand_reduced` (a reduction's result back to keepdims form), `extremum_weights`
(max/min: mask of the extremal positions divided by their count), `prod_of_others` (d prod / d x_i
without dividing by zero) and `flip`.
"""
import numpy as np

from .errors import IRError, UnsupportedError
from .incomplete_partials import INCOMPLETE_PARTIALS
from .inverse_special import INVERSE_PARTIALS
from .special_partials import SPECIAL_PARTIALS
from .ops import CONDS, LOOPS, SPECS, check_table, ops_where

ONE, MINUS_ONE = "ONE", "MINUS_ONE"


def elementwise_and_underived(make_rule, no_rule):
    """Table entries shared by VJP and JVP: `make_rule(op)` for each op of PARTIALS (the differentiable
    elementwise and special-function ops), `no_rule` for the ops the spec says are not differentiable
    (piecewise constant ones, the sources input, const, fill, and guard)."""
    entries = {op: make_rule(op) for op in PARTIALS}
    entries.update({op: no_rule for op in ops_where(lambda s: not s.differentiable)})
    return entries


def differentiated_as_a_whole(b, node, *rest):
    """The VJP/JVP table entry of loops and conds: the AD transform differentiates them as a whole
    (ir/autodiff.py, ir/loop_ad.py, ir/cond_ad.py), never through the per-op rule tables."""
    raise UnsupportedError(f"{node.op}: a loop or cond is differentiated as a whole by the AD transform "
                           "(ir/autodiff.py, ir/loop_ad.py, ir/cond_ad.py), not by the per-op rule tables")


STRUCTURED_RULES = {op: differentiated_as_a_whole for op in (*LOOPS, *CONDS)}


def check_derivative_table(table_name, table, no_rule, specs=SPECS):
    """IRError unless `table` (VJP or JVP) has a rule for every op of `specs`, the zero rule `no_rule`
    exactly for the ops the spec says are not differentiable."""
    check_table(table_name, table, specs, "add its derivative rule (ir/vjp.py, ir/jvp.py)", specs=specs)
    wrong = [op for op, spec in specs.items() if (table[op] is no_rule) == spec.differentiable]
    if wrong:
        raise IRError(f"{table_name}: the zero rule disagrees with the spec's `differentiable` for op(s) "
                      f"{', '.join(wrong)} (ir/ops.py)")


def is_float(v):
    """True if Value `v` carries derivatives (a floating or complex dtype)."""
    return v.dtype.kind in "fc"


def cast(b, v, dtype):
    """`v` as `dtype` (no node if it has it); complex to real keeps the real part, which is how
    derivatives of real values computed through complex ones are read (the central place for it)."""
    dtype = np.dtype(dtype)
    if v.dtype.kind == "c" and dtype.kind != "c":
        v = b.real(v)
    return v if v.dtype == dtype else b.astype(v, dtype=dtype)


def scalar(b, value, dtype):
    """A 0-d constant of `dtype` (matching dtypes keep float32 work in float32)."""
    return b.fill((), dtype, value)


def scale(b, t, d):
    """`t` times the partial `d` (a Value, ONE or MINUS_ONE)."""
    if d is ONE:
        return t
    if d is MINUS_ONE:
        return b.negative(t)
    return b.multiply(t, d)


def _x(n):
    return n.args[0]


def _one(n, b):
    return scalar(b, 1, n.dtype)


def _reciprocal(b, n, v):
    return b.divide(_one(n, b), v)


def _one_minus_square(b, n, v):
    return b.subtract(_one(n, b), b.multiply(v, v))


def _inverse_sqrt(b, n, v):
    return _reciprocal(b, n, b.sqrt(v))


_UNARY = {
    "negative": lambda b, n: MINUS_ONE,
    "exp": lambda b, n: n,
    "log": lambda b, n: _reciprocal(b, n, _x(n)),
    "log1p": lambda b, n: _reciprocal(b, n, b.add(_one(n, b), _x(n))),
    "expm1": lambda b, n: b.add(n, _one(n, b)),
    "sqrt": lambda b, n: b.divide(scalar(b, 0.5, n.dtype), n),
    "sin": lambda b, n: b.cos(_x(n)),
    "cos": lambda b, n: b.negative(b.sin(_x(n))),
    "tan": lambda b, n: b.add(_one(n, b), b.multiply(n, n)),
    "arcsin": lambda b, n: _inverse_sqrt(b, n, _one_minus_square(b, n, _x(n))),
    "arccos": lambda b, n: b.negative(_inverse_sqrt(b, n, _one_minus_square(b, n, _x(n)))),
    "arctan": lambda b, n: _reciprocal(b, n, b.add(_one(n, b), b.multiply(_x(n), _x(n)))),
    "sinh": lambda b, n: b.cosh(_x(n)),
    "cosh": lambda b, n: b.sinh(_x(n)),
    "tanh": lambda b, n: _one_minus_square(b, n, n),
    "arcsinh": lambda b, n: _inverse_sqrt(b, n, b.add(b.multiply(_x(n), _x(n)), _one(n, b))),
    "arccosh": lambda b, n: _inverse_sqrt(b, n, b.subtract(b.multiply(_x(n), _x(n)), _one(n, b))),
    "arctanh": lambda b, n: _reciprocal(b, n, _one_minus_square(b, n, _x(n))),
    "absolute": lambda b, n: _complex_absolute(b, n) if _x(n).dtype.kind == "c" else b.sign(_x(n)),
    "real": lambda b, n: ONE,
    "imag": lambda b, n: scalar(b, -1j, _x(n).dtype),       # the conjugate of the gradient i
}


def _complex_absolute(b, n):
    """conj(z) / |z|, and 0 where z == 0 (a differentiable expression, unlike sign)."""
    zero = scalar(b, 0, n.dtype)
    safe = b.where(b.equal(n, zero), scalar(b, 1, n.dtype), n)
    return b.where(b.equal(n, zero), scalar(b, 0, _x(n).dtype), b.divide(b.conj(_x(n)), safe))


def _power_base(b, n):
    """y * x**(y - 1), and 0 where y == 0 (so that x**0 has derivative 0 even at x == 0)."""
    x, y = n.args
    slope = b.multiply(y, b.power(x, b.subtract(y, scalar(b, 1, y.dtype))))
    return b.where(b.equal(y, scalar(b, 0, y.dtype)), scalar(b, 0, n.dtype), slope)


def _power_exponent(b, n):
    """log(x) * x**y, with log(0) replaced by log(1): d/dy 0**y = 0 (negative x gives nan, loudly)."""
    x = n.args[0]
    safe = b.where(b.equal(x, scalar(b, 0, x.dtype)), scalar(b, 1, x.dtype), x)
    return b.multiply(b.log(safe), n)


def _extremum_weight(cmp):
    """d maximum(x, y)/d operand: 1 where the operand wins, 0.5 on ties, else 0 (`cmp`: greater for
    maximum, less for minimum)."""
    def partial(own, other):
        def d(b, n):
            a, c = n.args[own], n.args[other]
            wins = b.astype(b.emit(cmp, a, c), dtype=n.dtype)
            ties = b.astype(b.equal(a, c), dtype=n.dtype)
            return b.add(wins, b.multiply(scalar(b, 0.5, n.dtype), ties))
        return d
    return partial(0, 1), partial(1, 0)


def _arctan2_partial(sign, other):
    """d arctan2(x1, x2): x2 / (x1² + x2²) for x1, -x1 / (x1² + x2²) for x2."""
    def d(b, n):
        x1, x2 = n.args
        numerator = n.args[other] if sign > 0 else b.negative(n.args[other])
        return b.divide(numerator, b.add(b.multiply(x1, x1), b.multiply(x2, x2)))
    return d


_BINARY = {
    "add": (lambda b, n: ONE, lambda b, n: ONE),
    "subtract": (lambda b, n: ONE, lambda b, n: MINUS_ONE),
    "multiply": (lambda b, n: n.args[1], lambda b, n: n.args[0]),
    "divide": (lambda b, n: _reciprocal(b, n, n.args[1]), lambda b, n: b.negative(b.divide(n, n.args[1]))),
    "power": (_power_base, _power_exponent),
    "maximum": _extremum_weight("greater"),
    "minimum": _extremum_weight("less"),
    "remainder": (lambda b, n: ONE, lambda b, n: b.negative(b.floor_divide(*n.args))),
    "arctan2": (_arctan2_partial(+1, 1), _arctan2_partial(-1, 0)),
}


def _gaussian_over(b, n, v):
    """exp(-x²/2 - v) / sqrt(2 pi): the normal density divided by exp(v)."""
    x = _x(n)
    exponent = b.subtract(b.multiply(scalar(b, -0.5, n.dtype), b.multiply(x, x)), v)
    return b.multiply(b.exp(exponent), scalar(b, 1 / np.sqrt(2 * np.pi), n.dtype))


def _erf_slope(b, n):
    """2/sqrt(pi) exp(-x²) = d erf/dx."""
    x = _x(n)
    return b.multiply(scalar(b, 2 / np.sqrt(np.pi), n.dtype), b.exp(b.negative(b.multiply(x, x))))


def _wofz_slope(b, n):
    """w'(z) = 2i/sqrt(pi) - 2 z w(z) (DLMF 7.10.2), holomorphic."""
    return b.subtract(scalar(b, 2j / np.sqrt(np.pi), n.dtype), b.multiply(scalar(b, 2, n.dtype), b.multiply(_x(n), n)))


_SPECIAL = {
    "erf": _erf_slope,
    "erfc": lambda b, n: b.negative(_erf_slope(b, n)),
    "gammaln": lambda b, n: b.polygamma(_x(n), order=0),
    "polygamma": lambda b, n: b.polygamma(_x(n), order=n.params["order"] + 1),
    "log_ndtr": lambda b, n: _gaussian_over(b, n, n),
    "wofz": _wofz_slope,
}

PARTIALS = {**{op: (d,) for op, d in {**_UNARY, **_SPECIAL}.items()}, **_BINARY, **INCOMPLETE_PARTIALS,
            **SPECIAL_PARTIALS, **INVERSE_PARTIALS}
# Every differentiable op of the families whose VJP and JVP are built from partials has one per operand.
check_table("PARTIALS (ir/partials.py)", PARTIALS, ops_where(lambda s: s.differentiable and s.family in (
    "ufunc", "float_parts", "special", "bessel", "incomplete")), "add one partial per operand", specs=SPECS)
_wrong_arity = [op for op, ds in PARTIALS.items() if len(ds) != SPECS[op].arity or not SPECS[op].differentiable]
if _wrong_arity:
    raise IRError(f"PARTIALS (ir/partials.py): op(s) {', '.join(_wrong_arity)} are not differentiable or "
                  "have not one partial per operand (ir/ops.py)")


# ---------------------------------------------------------------------------------------------------
# Reductions.

def expand_reduced(b, v, node):
    """`v`, shaped like reduction `node`'s result, reshaped to keepdims form (broadcasts to the operand)."""
    if node.params["keepdims"]:
        return v
    x = node.args[0]
    axis = node.params["axis"]
    return b.reshape(v, shape=tuple(1 if i in axis else d for i, d in enumerate(x.shape)))


def _count(b, mask, node):
    return b.sum(b.astype(mask, dtype=node.dtype), axis=node.params["axis"], keepdims=True)


def extremum_weights(b, node):
    """d max(x)/dx for reduction `node` (max or min): 1/k at each of the k extremal positions (as JAX)."""
    x = node.args[0]
    mask = b.equal(x, expand_reduced(b, node, node))
    return b.divide(b.astype(mask, dtype=node.dtype), _count(b, mask, node))


def extremum_vjp(b, node, g):
    """Cotangent of max/min: g/k at each of the k extremal positions (as extremum_weights), the
    division done once per reduced slice (g/k broadcast times the 0/1 mask), not once per element:
    a vector divide per element cost a quarter of a softmax gradient's elementwise pass."""
    mask = b.equal(node.args[0], expand_reduced(b, node, node))
    share = b.divide(expand_reduced(b, g, node), _count(b, mask, node))
    return b.multiply(b.astype(mask, dtype=node.dtype), share)


def prod_of_others(b, node):
    """d prod(x)/dx_i = the product of the other entries of x_i's slice, exact when x has zeros:
    prod(x)/x_i where x_i != 0; where x_i == 0, (product of the non-zero entries) * q_i with q_i the
    product of the slice's other zeros: 1 if x_i is the only zero, (sum of the zeros) - x_i if there
    are two (value 0, derivative 1 w.r.t. the other zero), else 0.  Exact to second order; third and
    higher derivatives of slices holding three or more zeros come out 0 where they should not."""
    x, axis = node.args[0], node.params["axis"]
    zero, one = scalar(b, 0, x.dtype), scalar(b, 1, x.dtype)
    is_zero = b.equal(x, zero)
    safe = b.where(is_zero, one, x)
    zeros = _count(b, is_zero, node)
    sum_of_zeros = b.sum(b.where(is_zero, x, zero), axis=axis, keepdims=True)
    other_zeros = b.where(b.equal(zeros, one), one, b.where(b.equal(zeros, scalar(b, 2, x.dtype)),
                                                          b.subtract(sum_of_zeros, x), zero))
    at_zero = b.multiply(b.prod(safe, axis=axis, keepdims=True), other_zeros)
    return b.where(is_zero, at_zero, b.divide(expand_reduced(b, node, node), safe))


def flip(b, v, axis):
    """`v` reversed along `axis` (an index with a step -1 slice)."""
    n = v.shape[axis]
    spec = tuple(("slice", 0, d, 1) for d in v.shape[:axis]) + (("slice", n - 1, n, -1),)
    return b.index(v, spec=spec)
