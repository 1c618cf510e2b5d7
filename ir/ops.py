"""The op catalogue: every op of the IR, by family, with the NumPy function that defines it.

Each op has one entry in each of the per-concern tables (shapes.SHAPE, evaluate.EVAL, vjp.VJP,
jvp.JVP); tests/test_op_tables.py checks that.  Params are keyword values; those listed per op here are
the only ones allowed (the verifier checks).  Elementwise ops broadcast their operands as NumPy does.
"""
import math
import sys

import numpy as np

from .polygamma import polygamma

# Elementwise ops defined by a NumPy ufunc of the same meaning.  Unary:
UNARY = {
    "negative": np.negative, "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
    "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh, "absolute": np.absolute,
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "rint": np.rint,
    "logical_not": np.logical_not,
}
# Binary (broadcasting):
BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "floor_divide": np.floor_divide,
    "remainder": np.remainder, "arctan2": np.arctan2,
    "equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
    "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
}
# Ops whose output is piecewise constant (integer, boolean or rounding): their derivative is zero.
NON_DIFFERENTIABLE = {
    "sign", "floor", "ceil", "trunc", "rint", "logical_not", "floor_divide",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "argmax", "argmin", "argsort", "slogdet_sign", "spacing", "frexp_exponent",
}

# Special functions: elementwise ops of one operand defined by the scipy.special ufunc named here
# (`special_function`; SciPy is optional and imported on first use).  polygamma(x, order=k) is the
# k-th derivative of digamma (order 0 is digamma itself); its dtype is digamma's.  ndtri is the
# inverse of the normal CDF, ndtri_exp(x) = ndtri(exp(x)).
SPECIAL = {"erf": "erf", "erfc": "erfc", "gammaln": "gammaln", "log_ndtr": "log_ndtr", "polygamma": "psi",
           **{name: name for name in ("erfinv", "erfcinv", "ndtri", "ndtri_exp", "j0", "j1", "y0", "y1", "i0",
                                      "i1", "i0e", "i1e", "k0", "k1")}}
# Bessel functions of real order v: elementwise ops of two operands (v, x), broadcasting, defined by the
# scipy.special ufunc of the same name: jv, yv (first and second kind), iv, kv (modified), ive(v, x) =
# iv(v, x) exp(-|x|).  Their derivatives w.r.t. the order v are refused unless v is constant.
BESSEL = ("jv", "yv", "iv", "ive", "kv")

# Floating-point decomposition, elementwise, defined by NumPy's ufuncs: nextafter(x, y) (derivative 1
# w.r.t. x, 0 w.r.t. y), spacing(x) (piecewise constant), frexp_mantissa(x) and frexp_exponent(x) (np.frexp's
# two outputs: the mantissa x 2^-e, derivative 2^-e, and the piecewise constant int32 exponent e).
FLOAT_PARTS = {"nextafter": np.nextafter, "spacing": np.spacing, "frexp_mantissa": lambda x: np.frexp(x)[0],
               "frexp_exponent": lambda x: np.frexp(x)[1]}

# Incomplete gamma and beta functions: elementwise, broadcasting, operands in the order of the
# scipy.special ufunc of the same name, which defines the value (and the result dtype of every op here):
# gammainc(a, x) = P(a, x), gammaincc(a, x) = Q(a, x), betainc(a, b, x) = I_x(a, b), betaincc = 1 - I,
# stdtr(df, t) (Student's t CDF), fdtr / fdtrc(dfn, dfd, x) (the F distribution's CDF, complement).
# Their derivatives w.r.t. the shape parameters have no closed form: gammainc_da(a, x) = dP/da,
# betainc_da(a, b, x) = dI/da, betainc_db(a, b, x) = dI/db and stdtr_ddf(df, t) = d stdtr/d df are
# evaluated numerically by ir/incomplete.py (fdtr's are compositions with betainc_da/_db); the derivatives
# of these four w.r.t. the shape parameters are refused (UnsupportedError), those w.r.t. x and t are
# closed forms.
# Their inverses in the last operand (the probability), defined by the scipy.special ufunc of the same
# name, operands in its order: gammaincinv(a, p), gammainccinv(a, q), betaincinv(a, b, p),
# betainccinv(a, b, q), stdtrit(df, p), fdtri(dfn, dfd, p); their derivatives come from the forward
# function's by the implicit function theorem (ir/inverse_special.py).
INVERSE = ("gammaincinv", "gammainccinv", "betaincinv", "betainccinv", "stdtrit", "fdtri")
INCOMPLETE = ("gammainc", "gammaincc", "betainc", "betaincc", "stdtr", "fdtr", "fdtrc",
              "gammainc_da", "betainc_da", "betainc_db", "stdtr_ddf", *INVERSE)

# Linear algebra on the last two axes, batched over the leading ones as numpy.linalg does; operands
# must be floating.  One op per output of a multi-output routine (its rules re-emit the siblings they
# need; CSE merges them).  cholesky and eigh_* read only the lower triangle (as LAPACK does, and
# numpy's default UPLO='L'); triangular_solve reads only the triangle `lower` names.  solve and
# triangular_solve take b of shape (..., n, k) and broadcast the batch axes.  svd_* are the reduced
# factors (full_matrices=False); qr_* the reduced factors, for m >= n only.  expm is the matrix
# exponential (scipy.linalg.expm).
LINALG = ("cholesky", "triangular_solve", "solve", "inv", "det", "slogdet_sign", "slogdet_logabs",
          "eigh_values", "eigh_vectors", "svd_u", "svd_s", "svd_vh", "qr_q", "qr_r", "expm")


# Complex numbers.  real/imag/conj take a complex operand (real/imag give the float dtype of its parts).
# The Fourier transforms act along one axis, numpy.fft's meaning with norm "backward", "ortho" or
# "forward": fft(x, axis, norm, inverse) is np.fft.fft (ifft if inverse) of x with n the length of the
# axis; rfft(x, axis, norm) is np.fft.rfft of real x; irfft(x, axis, n, norm) is np.fft.irfft of x whose
# axis has length n // 2 + 1 exactly (padding and truncation are separate index ops).  Operands are
# float or complex (NumPy transforms float32 input in its own way: no cast to complex first).
COMPLEX_PARTS = ("real", "imag", "conj")
FFT = ("fft", "rfft", "irfft")
# Ops whose derivative rules hold for complex operands and results (cotangent of z = x + iy: dL/dx +
# i dL/dy; see ir/autodiff.py).  Automatic differentiation refuses any other op on a complex value.
COMPLEX_DIFFERENTIABLE = frozenset({
    "negative", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh",
    "absolute", "add", "subtract", "multiply", "divide", "power", "where", "astype", "sum", "cumsum",
    "reshape", "transpose", "broadcast_to", "concatenate", "index", "index_set", "index_add", "dot_general",
    "equal", "not_equal", *COMPLEX_PARTS, *FFT,
})


# Loops (ir/loops.py): loop(*carry_inits, *invariants; body, trip, n_carry) runs a closed body trace
# `trip` times and is a tuple of results; loop_result(loop; index) is one of them (a final carry, or
# a per-iteration output stacked along a new leading axis).
LOOPS = ("loop", "loop_result")
TUPLE = np.dtype([])      # the dtype of a value that is a tuple of results (a loop node), not an array


# Special-function ops the `math` module defines too (math.erf, ...), and digamma (polygamma of order 0, the
# derivative of math.lgamma): while SciPy is not loaded they are evaluated elementwise by `math` (poles
# give inf, as SciPy's) and ir/polygamma.py, so that a program using only `math` never imports SciPy.
MATH_DEFINED = {"erf": math.erf, "erfc": math.erfc,
                "gammaln": lambda x: math.lgamma(x) if x > 0 or x != math.floor(x) else math.inf,
                "polygamma": lambda x: float(polygamma(0, x))}


def _by_math(fn):
    """`fn` applied elementwise, in the operand's floating dtype (float64 for integers)."""
    def apply(x):
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
        return np.vectorize(lambda e: fn(float(e)), otypes=[np.float64])(x).astype(dtype)
    return apply


def special_function(op):
    """The scipy.special ufunc that defines special-function op `op` (of SPECIAL or BESSEL; imports SciPy
    unless `op` is in MATH_DEFINED and SciPy is not loaded)."""
    if op in MATH_DEFINED and "scipy.special" not in sys.modules:
        return _by_math(MATH_DEFINED[op])
    import scipy.special
    return getattr(scipy.special, SPECIAL.get(op, op))


# Every op and its allowed params.
PARAMS = {
    **{name: () for name in UNARY},
    **{name: () for name in BINARY},
    "where": (),                                   # where(cond, x, y)
    "astype": ("dtype",),                          # cast to dtype
    # reductions: axis is a sorted tuple of non-negative ints; keepdims a bool
    "sum": ("axis", "keepdims"), "prod": ("axis", "keepdims"),
    "max": ("axis", "keepdims"), "min": ("axis", "keepdims"),
    "argmax": ("axis",), "argmin": ("axis",),      # axis: a non-negative int
    "cumsum": ("axis",),                           # axis: a non-negative int
    "argsort": ("axis",),                          # stable sort order (kind="stable"); intp
    **{name: () for name in SPECIAL}, "polygamma": ("order",),
    **{name: () for name in INCOMPLETE}, **{name: () for name in BESSEL},
    **{name: () for name in FLOAT_PARTS},
    **{name: () for name in LINALG}, "triangular_solve": ("lower",),
    **{name: () for name in COMPLEX_PARTS},
    "fft": ("axis", "norm", "inverse"), "rfft": ("axis", "norm"), "irfft": ("axis", "n", "norm"),
    # shape ops
    "reshape": ("shape",), "transpose": ("perm",), "broadcast_to": ("shape",),
    "concatenate": ("axis",),                      # variadic
    # indexing: x[spec] with spec a tuple of ('slice', start, length, step) | ('int', k) |
    # ('newaxis',) | ('array', j) where j numbers the integer index-array args after x (and v);
    # missing trailing axes are taken whole.  index_set/index_add: out = copy of x; out[spec] = v /
    # np.add.at(out, spec, v) (repeated indices accumulate in index_add, last write wins in index_set).
    "index": ("spec",), "index_set": ("spec",), "index_add": ("spec",),
    # contraction: contract=((lhs axes), (rhs axes)), batch=((lhs axes), (rhs axes)); output dims are
    # batch dims, then lhs free dims, then rhs free dims (as jax.lax.dot_general)
    "dot_general": ("contract", "batch"),
    "loop": ("body", "trip", "n_carry"), "loop_result": ("index",),
    # sources
    "input": ("index",), "const": ("value",), "fill": ("shape", "dtype", "value"),
    # guard(pred): checks pred == expected at run time; loc is the user's file:line, why says what
    "guard": ("expected", "loc", "why"),
    # custom_call(*operands): a Python function the trace cannot see into, with its derivative rules
    # (the `rule` object; see ir/custom_ops.py)
    "custom_call": ("rule",),
}

ELEMENTWISE = {**UNARY, **BINARY}
REDUCTIONS = ("sum", "prod", "max", "min")
ALL_OPS = tuple(PARAMS)
