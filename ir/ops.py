"""The op catalogue: one OpSpec per op of the IR, the single place that says what an op is.

Adding an op.  Add one `define(...)` line below, in its family's block: name, family (FAMILIES gives the
family's defaults), params (the only keyword params the op takes; the verifier and the Builder check
them) and the fields that differ from the family's defaults:
  defaults                params that may be left out, with their values (Builder.emit fills them in,
                          the printer leaves them out at their default);
  arity                   operands (None: variadic);
  numpy / scipy           the NumPy function, or the name of the scipy.special ufunc, that defines its
                          value (families ufunc, float_parts, reduction use `numpy`; special, bessel,
                          incomplete use `scipy`): the generic SHAPE and EVAL rules of those families
                          read them;
  elementwise             operands broadcast and output element i depends on operand elements i only;
  differentiable          False: piecewise constant (integer, boolean or rounding output), derivative
                          zero; the VJP/JVP tables give it the zero rule, AD never marks it active;
  complex_differentiable  its derivative rules hold for complex operands and results (ir/autodiff.py
                          refuses every other op on an active complex value);
  libm                    the libm function computing it on floats (the JIT's scalar lowering calls it);
  host                    the JIT runs it as a call back into its reference evaluation (jit/hostcall.py)
                          instead of native code;
  foldable / constant     constant folding evaluates it on constant operands / it is a constant source.
Then the tables say what is missing, when imported (`check_table`, IRError naming the op and the place):
  - ir/shapes.py SHAPE and ir/evaluate.py EVAL: nothing to add for the families with a generic rule
    (ufunc, float_parts, reduction, special, bessel, incomplete), else the op's rule;
  - ir/vjp.py VJP and ir/jvp.py JVP, if it is differentiable: one partial per operand in ir/partials.py
    PARTIALS for the elementwise families above, else its rules (the zero rule is automatic otherwise);
  - the JIT (jit/rules.py `check_lowerings`), unless it is `host`: scalar code per dtype kind in
    jit/scalar_ops.py SCALAR for an elementwise op (a ufunc with a `libm` name gets it, and needs that
    name in jit/engine.py LIBM and a cost in jit/rules.py _COSTS), else an ACCESS or MATERIALIZE rule.
Outside ir/ and jit/: a ufunc op named as NumPy's ufunc is traced with no more work (tracer/rules/
ufuncs.py); other ops need the tracer's rule mapping the NumPy/SciPy callable to them; and every op
needs its cases in tests/op_cases.py (tests/ir/test_op_tables.py fails without them).

Op meanings.  Elementwise ops broadcast their operands as NumPy does.  The derived views at the end
(UNARY, BINARY, PARAMS, ...) are read-only groupings of SPECS kept for the modules that iterate over them.
"""
import math
import sys

import numpy as np

from .errors import IRError
from .polygamma import polygamma


class OpSpec:
    """What an op is (see the module docstring for the fields); made by `define`, never mutated."""
    __slots__ = ("name", "family", "params", "defaults", "arity", "numpy", "scipy", "libm", "elementwise",
                 "differentiable", "complex_differentiable", "host", "foldable", "constant")

    def __init__(self, name, family, params=(), *, defaults=None, arity=None, numpy=None, scipy=None, libm=None,
                 elementwise=False, differentiable=True, complex_differentiable=False, host=False,
                 foldable=True, constant=False):
        self.name, self.family, self.params, self.arity = name, family, tuple(params), arity
        self.defaults = dict(defaults or {})
        self.numpy, self.scipy, self.libm = numpy, scipy, libm
        self.elementwise, self.differentiable = elementwise, differentiable
        self.complex_differentiable, self.host = complex_differentiable, host
        self.foldable, self.constant = foldable, constant

    def __repr__(self):
        return f"OpSpec({self.name!r}, {self.family!r})"


# family -> the defaults of its ops' fields
FAMILIES = {
    "ufunc": {"elementwise": True},                           # a NumPy ufunc of the same name (`numpy`)
    "float_parts": {"elementwise": True, "host": True},       # floating-point decomposition (`numpy`)
    "special": {"elementwise": True, "host": True, "arity": 1},          # scipy.special (`scipy`)
    "bessel": {"elementwise": True, "host": True, "arity": 2},           # scipy.special (`scipy`)
    "incomplete": {"elementwise": True, "host": True},        # ir/incomplete.py evaluates them (`scipy`)
    "select": {"elementwise": True, "arity": 3, "complex_differentiable": True},
    "cast": {"elementwise": True, "arity": 1, "complex_differentiable": True},
    "reduction": {"arity": 1},                                # over `axis` (`numpy`)
    "arg_reduction": {"arity": 1, "differentiable": False},
    "scan": {"arity": 1, "complex_differentiable": True},
    "sort": {"arity": 1, "differentiable": False, "host": True},
    "linalg": {"arity": 1, "host": True},
    "complex_parts": {"elementwise": True, "arity": 1, "complex_differentiable": True},
    "fft": {"arity": 1, "complex_differentiable": True},
    "shape": {"arity": 1, "complex_differentiable": True},
    "index": {"complex_differentiable": True},
    "contraction": {"arity": 2, "complex_differentiable": True},
    "loop": {"foldable": False},
    "cond": {"foldable": False},
    "source": {"arity": 0, "differentiable": False, "foldable": False},
    "guard": {"arity": 1, "differentiable": False},
    "custom": {"host": True},
}
SPECS = {}   # op name -> OpSpec, in definition order


def define(name, family, params=(), specs=SPECS, **fields):
    """Add op `name` of `family` to `specs` (FAMILIES[family] gives the defaults `fields` override); tests
    define ops in scratch copies of SPECS."""
    if name in specs:
        raise IRError(f"op {name!r} is defined twice")
    specs[name] = OpSpec(name, family, params, **{**FAMILIES[family], **fields})
    return specs[name]


# ---- ufuncs: elementwise, defined by the NumPy ufunc of the same meaning ------------------------------
define("negative", "ufunc", arity=1, numpy=np.negative, complex_differentiable=True)
define("exp", "ufunc", arity=1, numpy=np.exp, libm="exp", complex_differentiable=True)
define("log", "ufunc", arity=1, numpy=np.log, libm="log", complex_differentiable=True)
define("log1p", "ufunc", arity=1, numpy=np.log1p, libm="log1p", complex_differentiable=True)
define("expm1", "ufunc", arity=1, numpy=np.expm1, libm="expm1", complex_differentiable=True)
define("sqrt", "ufunc", arity=1, numpy=np.sqrt, complex_differentiable=True)
define("sin", "ufunc", arity=1, numpy=np.sin, libm="sin", complex_differentiable=True)
define("cos", "ufunc", arity=1, numpy=np.cos, libm="cos", complex_differentiable=True)
define("tan", "ufunc", arity=1, numpy=np.tan, libm="tan", complex_differentiable=True)
define("arcsin", "ufunc", arity=1, numpy=np.arcsin, libm="asin")
define("arccos", "ufunc", arity=1, numpy=np.arccos, libm="acos")
define("arctan", "ufunc", arity=1, numpy=np.arctan, libm="atan")
define("sinh", "ufunc", arity=1, numpy=np.sinh, libm="sinh", complex_differentiable=True)
define("cosh", "ufunc", arity=1, numpy=np.cosh, libm="cosh", complex_differentiable=True)
define("tanh", "ufunc", arity=1, numpy=np.tanh, libm="tanh", complex_differentiable=True)
define("arcsinh", "ufunc", arity=1, numpy=np.arcsinh, libm="asinh")
define("arccosh", "ufunc", arity=1, numpy=np.arccosh, libm="acosh")
define("arctanh", "ufunc", arity=1, numpy=np.arctanh, libm="atanh")
define("absolute", "ufunc", arity=1, numpy=np.absolute, complex_differentiable=True)
define("sign", "ufunc", arity=1, numpy=np.sign, differentiable=False)
define("floor", "ufunc", arity=1, numpy=np.floor, differentiable=False)
define("ceil", "ufunc", arity=1, numpy=np.ceil, differentiable=False)
define("trunc", "ufunc", arity=1, numpy=np.trunc, differentiable=False)
define("rint", "ufunc", arity=1, numpy=np.rint, differentiable=False)
define("logical_not", "ufunc", arity=1, numpy=np.logical_not, differentiable=False)
define("add", "ufunc", arity=2, numpy=np.add, complex_differentiable=True)
define("subtract", "ufunc", arity=2, numpy=np.subtract, complex_differentiable=True)
define("multiply", "ufunc", arity=2, numpy=np.multiply, complex_differentiable=True)
define("divide", "ufunc", arity=2, numpy=np.divide, complex_differentiable=True)
define("power", "ufunc", arity=2, numpy=np.power, libm="pow", complex_differentiable=True)
define("maximum", "ufunc", arity=2, numpy=np.maximum)
define("minimum", "ufunc", arity=2, numpy=np.minimum)
define("floor_divide", "ufunc", arity=2, numpy=np.floor_divide, differentiable=False)
define("remainder", "ufunc", arity=2, numpy=np.remainder)
define("arctan2", "ufunc", arity=2, numpy=np.arctan2, libm="atan2")
define("equal", "ufunc", arity=2, numpy=np.equal, differentiable=False, complex_differentiable=True)
define("not_equal", "ufunc", arity=2, numpy=np.not_equal, differentiable=False, complex_differentiable=True)
define("less", "ufunc", arity=2, numpy=np.less, differentiable=False)
define("less_equal", "ufunc", arity=2, numpy=np.less_equal, differentiable=False)
define("greater", "ufunc", arity=2, numpy=np.greater, differentiable=False)
define("greater_equal", "ufunc", arity=2, numpy=np.greater_equal, differentiable=False)
define("logical_and", "ufunc", arity=2, numpy=np.logical_and, differentiable=False)
define("logical_or", "ufunc", arity=2, numpy=np.logical_or, differentiable=False)

# where(cond, x, y); astype(x; dtype): cast to dtype
define("where", "select")
define("astype", "cast", ("dtype",))

# ---- reductions: axis is a sorted tuple of non-negative ints, keepdims a bool -------------------------
define("sum", "reduction", ("axis", "keepdims"), numpy=np.sum, complex_differentiable=True)
define("prod", "reduction", ("axis", "keepdims"), numpy=np.prod)
define("max", "reduction", ("axis", "keepdims"), numpy=np.max)
define("min", "reduction", ("axis", "keepdims"), numpy=np.min)
define("argmax", "arg_reduction", ("axis",))               # axis: a non-negative int; intp result
define("argmin", "arg_reduction", ("axis",))
define("cumsum", "scan", ("axis",))                        # axis: a non-negative int
define("argsort", "sort", ("axis",))                       # stable sort order (kind="stable"); intp

# ---- special functions: elementwise, defined by the scipy.special ufunc named `scipy` (SciPy is optional
# and imported on first use; erf, erfc, gammaln and digamma: see MATH_DEFINED).  polygamma(x, order=k) is
# the k-th derivative of digamma (order 0 is digamma itself); its dtype is digamma's.  ndtri is the inverse
# of the normal CDF, ndtri_exp(x) = ndtri(exp(x)).
define("erf", "special", scipy="erf")
define("erfc", "special", scipy="erfc")
define("gammaln", "special", scipy="gammaln")
define("log_ndtr", "special", scipy="log_ndtr")
define("polygamma", "special", ("order",), scipy="psi")
define("wofz", "special", scipy="wofz", complex_differentiable=True)    # Faddeeva w(z) = exp(-z^2) erfc(-iz)
for _name in ("erfinv", "erfcinv", "ndtri", "ndtri_exp", "j0", "j1", "y0", "y1", "i0", "i1", "i0e", "i1e",
              "k0", "k1"):
    define(_name, "special", scipy=_name)
# Bessel functions of real order v: (v, x), broadcasting: jv, yv (first and second kind), iv, kv
# (modified), ive(v, x) = iv(v, x) exp(-|x|).  Derivatives w.r.t. the order v are refused unless v is constant.
for _name in ("jv", "yv", "iv", "ive", "kv"):
    define(_name, "bessel", scipy=_name)

# Floating-point decomposition, defined by NumPy's ufuncs: nextafter(x, y) (derivative 1 w.r.t. x, 0 w.r.t.
# y), spacing(x) (piecewise constant), frexp_mantissa(x) and frexp_exponent(x) (np.frexp's two outputs: the
# mantissa x 2^-e, derivative 2^-e, and the piecewise constant int32 exponent e).
define("nextafter", "float_parts", arity=2, numpy=np.nextafter)
define("spacing", "float_parts", arity=1, numpy=np.spacing, differentiable=False)
define("frexp_mantissa", "float_parts", arity=1, numpy=lambda x: np.frexp(x)[0])
define("frexp_exponent", "float_parts", arity=1, numpy=lambda x: np.frexp(x)[1], differentiable=False)

# Incomplete gamma and beta functions: elementwise, broadcasting, operands in the order of the scipy.special
# ufunc named `scipy`, which defines the value (and the result dtype of every op here): gammainc(a, x) =
# P(a, x), gammaincc(a, x) = Q(a, x), betainc(a, b, x) = I_x(a, b), betaincc = 1 - I, stdtr(df, t)
# (Student's t CDF), fdtr / fdtrc(dfn, dfd, x) (the F distribution's CDF, complement).  Their derivatives
# w.r.t. the shape parameters have no closed form: gammainc_da(a, x) = dP/da, betainc_da(a, b, x) = dI/da,
# betainc_db(a, b, x) = dI/db and stdtr_ddf(df, t) = d stdtr/d df are evaluated numerically by
# ir/incomplete.py (their `scipy` is the primal's, whose dtype they take; fdtr's derivatives are
# compositions with betainc_da/_db); the derivatives of these four w.r.t. the shape parameters are refused
# (UnsupportedError), those w.r.t. x and t are closed forms.
for _name, _arity, _scipy in (("gammainc", 2, "gammainc"), ("gammaincc", 2, "gammaincc"), ("betainc", 3, "betainc"),
                              ("betaincc", 3, "betaincc"), ("stdtr", 2, "stdtr"), ("fdtr", 3, "fdtr"),
                              ("fdtrc", 3, "fdtrc"), ("gammainc_da", 2, "gammainc"), ("betainc_da", 3, "betainc"),
                              ("betainc_db", 3, "betainc"), ("stdtr_ddf", 2, "stdtr")):
    define(_name, "incomplete", arity=_arity, scipy=_scipy)
# Their inverses in the last operand (the probability), defined by the scipy.special ufunc of the same name,
# operands in its order; their derivatives come from the forward function's by the implicit function
# theorem (ir/inverse_special.py).
INVERSE = ("gammaincinv", "gammainccinv", "betaincinv", "betainccinv", "stdtrit", "fdtri")
for _name, _arity in zip(INVERSE, (2, 2, 3, 3, 2, 3)):
    define(_name, "incomplete", arity=_arity, scipy=_name)

# ---- linear algebra on the last two axes, batched over the leading ones as numpy.linalg does; operands
# must be floating.  One op per output of a multi-output routine (its rules re-emit the siblings they need;
# CSE merges them).  cholesky and eigh_* read only the lower triangle (as LAPACK does, and numpy's default
# UPLO='L'); triangular_solve reads only the triangle `lower` names.  solve and triangular_solve take b of
# shape (..., n, k) and broadcast the batch axes.  svd_* are the reduced factors (full_matrices=False); qr_*
# the reduced factors, for m >= n only.  expm is the matrix exponential (scipy.linalg.expm).
define("cholesky", "linalg")
define("triangular_solve", "linalg", ("lower",), arity=2)
define("solve", "linalg", arity=2)
for _name in ("inv", "det", "slogdet_logabs", "eigh_values", "eigh_vectors", "svd_u", "svd_s", "svd_vh", "qr_q",
              "qr_r", "expm"):
    define(_name, "linalg")
define("slogdet_sign", "linalg", differentiable=False)
# eig_values: the eigenvalues of a general real square matrix (np.linalg.eigvals: complex, in LAPACK's order).
# eig_values_vjp(a, g) and eig_values_jvp(a, t) are its derivative maps for distinct eigenvalues (V the
# eigenvectors, W = V^-1: the cotangent of a is Re(W^T diag(conj g) V^T), the tangent diag(W t V)); their
# own derivatives are refused.
define("eig_values", "linalg", complex_differentiable=True)
define("eig_values_vjp", "linalg", arity=2, complex_differentiable=True)
define("eig_values_jvp", "linalg", arity=2, complex_differentiable=True)

# ---- complex numbers.  real/imag/conj take a complex operand (real/imag give the float dtype of its
# parts).  The Fourier transforms act along one axis, numpy.fft's meaning with norm "backward", "ortho" or
# "forward": fft(x, axis, norm, inverse) is np.fft.fft (ifft if inverse) of x with n the length of the
# axis; rfft(x, axis, norm) is np.fft.rfft of real x; irfft(x, axis, n, norm) is np.fft.irfft of x whose
# axis has length n // 2 + 1 exactly (padding and truncation are separate index ops).  Operands are float
# or complex (NumPy transforms float32 input in its own way: no cast to complex first).
for _name in ("real", "imag", "conj"):
    define(_name, "complex_parts")
define("fft", "fft", ("axis", "norm", "inverse"))
define("rfft", "fft", ("axis", "norm"))
define("irfft", "fft", ("axis", "n", "norm"))

# ---- shape ops (concatenate is variadic) --------------------------------------------------------------
define("reshape", "shape", ("shape",))
define("transpose", "shape", ("perm",))
define("broadcast_to", "shape", ("shape",))
define("concatenate", "shape", ("axis",), arity=None)
# indexing: x[spec] with spec a tuple of ('slice', start, length, step) | ('int', k) | ('newaxis',) |
# ('array', j) where j numbers the integer index-array args after x (and v); missing trailing axes are
# taken whole.  index_set/index_add: out = copy of x; out[spec] = v / np.add.at(out, spec, v) (repeated
# indices accumulate in index_add, last write wins in index_set).
define("index", "index", ("spec",))
define("index_set", "index", ("spec",))
define("index_add", "index", ("spec",))
# contraction: contract=((lhs axes), (rhs axes)), batch=((lhs axes), (rhs axes)); output dims are batch dims,
# then lhs free dims, then rhs free dims (as jax.lax.dot_general)
define("dot_general", "contraction", ("contract", "batch"))

# ---- loops (ir/loops.py): loop(*carry_inits, *invariants; body, trip, n_carry, exit) runs a closed body
# trace `trip` times (at most, when `exit` names the body's continue flag) and is a tuple of results;
# loop_result(loop; index) is one of them (a final carry, a per-iteration output stacked along a new
# leading axis, or the number of iterations taken).  Differentiated as a whole (ir/loop_ad.py).
define("loop", "loop", ("body", "trip", "n_carry", "exit"), defaults={"exit": None})
define("loop_result", "loop", ("index",), arity=1, foldable=True)

# ---- conds (ir/conditional.py): cond(pred, *operands; branches) runs one of two closed traces, the first
# when the 0-d bool pred holds, and is a tuple of results; cond_result(cond; index) is one of them.
# Differentiated as a whole (ir/cond_ad.py).
define("cond", "cond", ("branches",))
define("cond_result", "cond", ("index",), arity=1, foldable=True)
TUPLE = np.dtype([])      # the dtype of a value that is a tuple of results (a loop or cond), not an array


def owned_traces(node):
    """The closed traces node `node` owns: a loop's body, a cond's two branches; () for other ops."""
    params = node.params
    if "body" in params:
        return (params["body"],)
    return params.get("branches", ())

# ---- sources and guards ------------------------------------------------------------------------------
define("input", "source", ("index",))
define("const", "source", ("value",), constant=True)
define("fill", "source", ("shape", "dtype", "value"), constant=True)
# guard(pred): checks pred == expected at run time; loc is the user's file:line, why says what
define("guard", "guard", ("expected", "loc", "why"))
# custom_call(*operands): a Python function the trace cannot see into, with its derivative rules (the
# `rule` object; see ir/custom_ops.py)
define("custom_call", "custom", ("rule",))


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
    """The scipy.special ufunc that defines op `op` (its spec's `scipy` name; imports SciPy unless `op` is
    in MATH_DEFINED and SciPy is not loaded)."""
    if op in MATH_DEFINED and "scipy.special" not in sys.modules:
        return _by_math(MATH_DEFINED[op])
    import scipy.special
    return getattr(scipy.special, SPECS[op].scipy)


def ops_where(predicate, specs=None):
    """The names of the ops whose spec satisfies `predicate`, in definition order."""
    return tuple(name for name, spec in (SPECS if specs is None else specs).items() if predicate(spec))


def family(*names, specs=None):
    """The ops of the families `names`, in definition order."""
    return ops_where(lambda s: s.family in names, specs)


def check_table(table_name, have, need, hint, specs=None):
    """Raise IRError unless every op of `need` is a key of `have` and, when `specs` is given, every key
    of `have` is an op of `specs`: how a table keyed by op asserts its completeness against the spec
    when it is imported.  `hint` says where the missing entry goes."""
    missing = [op for op in need if op not in have]
    if missing:
        raise IRError(f"{table_name} has no entry for op(s) {', '.join(missing)}: {hint}")
    unknown = [op for op in have if specs is not None and op not in specs]
    if unknown:
        raise IRError(f"{table_name} has entries for op(s) {', '.join(unknown)} that ir/ops.py does not define")


# ---- derived views, read-only -------------------------------------------------------------------------
PARAMS = {name: spec.params for name, spec in SPECS.items()}     # every op and its allowed params
ALL_OPS = tuple(SPECS)
# Params that may be left out (Builder.emit fills them in, the printer leaves them out at their default).
DEFAULT_PARAMS = {name: spec.defaults for name, spec in SPECS.items() if spec.defaults}
UNARY = {name: SPECS[name].numpy for name in ops_where(lambda s: s.family == "ufunc" and s.arity == 1)}
BINARY = {name: SPECS[name].numpy for name in ops_where(lambda s: s.family == "ufunc" and s.arity == 2)}
ELEMENTWISE = {**UNARY, **BINARY}        # the ufunc ops (name -> NumPy ufunc), as the tracer maps them
SPECIAL = family("special")
BESSEL = family("bessel")
FLOAT_PARTS = family("float_parts")
INCOMPLETE = family("incomplete")
LINALG = family("linalg")
COMPLEX_PARTS = family("complex_parts")
FFT = family("fft")
LOOPS = family("loop")
CONDS = family("cond")
REDUCTIONS = family("reduction")
NON_DIFFERENTIABLE = frozenset(ops_where(lambda s: not s.differentiable))
COMPLEX_DIFFERENTIABLE = frozenset(ops_where(lambda s: s.complex_differentiable))
