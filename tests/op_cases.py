"""The op test cases: a plain table of one-op cases for every op of `ir.ops.ALL_OPS`.

`CASES` is a list of `Case(name, op, args, params)`:
  - `name`: unique id (use it as the pytest id);
  - `op`: the op (a key of ir.ops.PARAMS);
  - `args`: one `(shape, domain)` per operand;
  - `params`: the op's params, exactly the keys ir.ops.PARAMS lists for it.
A domain is a key of `DOMAINS` ("real", "pos", "unit", ...: floats of the dtype asked for, drawn where the
op is smooth: positive for log/sqrt, (-1, 1) for arcsin, away from kinks for abs/maximum/floor...),
"int" (small int64), "bool", "true" (all True), or `("index", lo, hi)` (an intp index array with
entries in [lo, hi); one case, "negative_indices", uses negative indices, which mean what NumPy says).
The case "maximum-ties" has ties (a kink): use it for values, not for finite differences.
Float-domain operands are the differentiable ones (`Case.float_args`).  A key of `COMPLEX_DOMAINS`
("complex", "complex_nonzero") gives complex operands (complex128 for float64, complex64 for float32)
whose real and imaginary parts are drawn from the float domains it names; they carry derivatives but
are not in `float_args` (jitgrad differentiates w.r.t. real floats only).

`make_inputs(case, rng, dtype)` returns the NumPy operands, float domains in `dtype`.
`cases_for(op)` lists the cases of one op.  Sources: `input` has no case (Builder.input makes inputs);
`const`, `fill` and `guard` have simple cases of their own.
"""
from typing import NamedTuple

import numpy as np

from jitgrad.custom import custom_vjp, rule_for
from jitgrad.custom_jvp import custom_jvp
from jitgrad.ir.spec import index_tuple


class Case(NamedTuple):
    name: str
    op: str
    args: tuple
    params: dict

    @property
    def float_args(self):
        """Indices of the float-domain (differentiable) operands."""
        return [i for i, (_, dom) in enumerate(self.args) if isinstance(dom, str) and dom in DOMAINS]


def _spread(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _signed(lo, hi):
    """Magnitudes in [lo, hi) with random signs: away from 0 (the kink of abs, the pole of 1/x)."""
    return lambda rng, shape: rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def _grid(offset):
    """Distinct values on the grid offset/8 + k/4 in [-2, 2): two grids with different offsets never
    come closer than 1/8, and values of one grid are 1/4 apart (no ties for max/min/maximum)."""
    def draw(rng, shape):
        n = int(np.prod(shape, dtype=np.int64))
        if n > 16:
            raise ValueError("grid domains hold at most 16 distinct values")
        return (rng.permutation(16)[:n].reshape(shape) - 8) / 4 + offset / 8
    return draw


def _off_integer(rng, shape):
    """Values whose fractional part is in [0.2, 0.4) or [0.6, 0.8): away from floor/rint kinks."""
    frac = rng.uniform(0.2, 0.4, shape) + rng.choice([0.0, 0.4], shape)
    return rng.integers(-3, 3, shape) + frac


def _spd(rng, shape):
    """Symmetric positive definite: M M^T / n + I."""
    m = rng.uniform(-1.0, 1.0, shape)
    return m @ np.swapaxes(m, -1, -2) / shape[-1] + np.eye(shape[-1])


def _with_spectrum(rng, shape, symmetric):
    """Matrices with the well-separated spectrum 1, 1.7, 2.4, ...: eigenvalues of Q diag(w) Q^T
    (symmetric) or singular values of U diag(s) V^T, with random orthogonal factors."""
    k = min(shape[-2:])
    spectrum = 1.0 + 0.7 * np.arange(k)
    u = np.linalg.qr(rng.standard_normal(shape[:-1] + (k,)))[0]
    v = u if symmetric else np.linalg.qr(rng.standard_normal(shape[:-2] + (shape[-1], k)))[0]
    return (u * spectrum) @ np.swapaxes(v, -1, -2)


DOMAINS = {
    "real": _spread(-2.0, 2.0),
    "pos": _spread(0.5, 2.0),
    "unit": _spread(-0.9, 0.9),          # arcsin, arccos, arctanh
    "above1": _spread(1.2, 3.0),         # arccosh
    "tame": _spread(-1.2, 1.2),          # tan, exp-family without overflow in float32 differences
    "nonzero": _signed(0.5, 2.0),
    "grid": _grid(0),
    "grid_odd": _grid(1),
    "off_integer": _off_integer,
    "pow2": lambda rng, shape: rng.choice([1.0, 2.0, 4.0, -2.0], shape),  # remainder divisors
    # stacks of matrices (the last two axes), well conditioned for the linalg ops:
    "invertible": lambda rng, shape: rng.uniform(-1.0, 1.0, shape) + 3 * np.eye(shape[-1]),
    "spd": _spd,
    "sym_distinct": lambda rng, shape: _with_spectrum(rng, shape, symmetric=True),
    "distinct_sv": lambda rng, shape: _with_spectrum(rng, shape, symmetric=False),
}


def _general_spectrum(rng, shape):
    """Non-symmetric 3 x 3 matrices P B P^-1 with the distinct eigenvalues 1 and 0.5 +- 1.2i of B."""
    block = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 1.2], [0.0, -1.2, 0.5]])
    p = np.eye(3) + 0.3 * rng.uniform(-1.0, 1.0, shape)
    return p @ block @ np.linalg.inv(p)


DOMAINS["general_spectrum"] = _general_spectrum
COMPLEX_DOMAINS = {"complex": ("real", "real"), "complex_nonzero": ("nonzero", "nonzero")}


def make_inputs(case, rng, dtype):
    """The NumPy operands of `case`: float domains in `dtype`, int64 for "int", bool, intp indices."""
    out = []
    for shape, dom in case.args:
        if isinstance(dom, tuple) and dom[0] == "index":
            out.append(rng.integers(dom[1], dom[2], shape).astype(np.intp))
        elif dom == "int":
            out.append(rng.integers(-3, 4, shape).astype(np.int64))
        elif dom == "bool":
            out.append(rng.random(shape) < 0.5)
        elif dom == "true":
            out.append(np.ones(shape, dtype=bool))
        elif dom in COMPLEX_DOMAINS:
            re, im = (np.asarray(DOMAINS[d](rng, shape), dtype=dtype) for d in COMPLEX_DOMAINS[dom])
            out.append((re + 1j * im).astype(np.result_type(dtype, np.complex64)))
        else:
            out.append(np.asarray(DOMAINS[dom](rng, shape), dtype=dtype))
    return out


def cases_for(op):
    """The cases of one op."""
    return [c for c in CASES if c.op == op]


# ---------------------------------------------------------------------------------------------------
# The table.

CASES = []


def _add(op, *args, name="", **params):
    CASES.append(Case(f"{op}-{name}" if name else op, op, tuple(args), params))


# Unary elementwise: the domain per op; each op gets a 2-d, a 0-d and an empty case.
_UNARY_DOMAIN = {
    "negative": "real", "exp": "tame", "log": "pos", "log1p": "pos", "expm1": "tame", "sqrt": "pos",
    "sin": "real", "cos": "real", "tan": "tame", "arcsin": "unit", "arccos": "unit", "arctan": "real",
    "sinh": "real", "cosh": "real", "tanh": "real", "arcsinh": "real", "arccosh": "above1",
    "arctanh": "unit", "absolute": "nonzero", "sign": "nonzero", "floor": "off_integer",
    "ceil": "off_integer", "trunc": "off_integer", "rint": "off_integer", "logical_not": "bool",
}
for _op, _dom in _UNARY_DOMAIN.items():
    _add(_op, ((2, 3), _dom))
    _add(_op, ((), _dom), name="0d")
    _add(_op, ((0, 3), _dom), name="empty")
_add("negative", ((3,), "int"), name="int")
_add("exp", ((3,), "int"), name="int")
_add("logical_not", ((4,), "nonzero"), name="float")

# Binary elementwise: (domain of x, domain of y) per op; cases cover equal shapes, broadcasting both
# ways, a 0-d operand, size-1 axes and empty shapes.
_BINARY_DOMAINS = {
    "add": ("real", "real"), "subtract": ("real", "real"), "multiply": ("real", "real"),
    "divide": ("real", "nonzero"), "power": ("pos", "real"), "maximum": ("grid", "grid_odd"),
    "minimum": ("grid", "grid_odd"), "floor_divide": ("off_integer", "pow2"),
    "remainder": ("off_integer", "pow2"), "arctan2": ("nonzero", "nonzero"),
    "equal": ("grid", "grid"), "not_equal": ("grid", "grid"), "less": ("grid", "grid_odd"),
    "less_equal": ("grid", "grid_odd"), "greater": ("grid", "grid_odd"),
    "greater_equal": ("grid", "grid_odd"), "logical_and": ("bool", "bool"), "logical_or": ("bool", "bool"),
}
_BINARY_SHAPES = {
    "same": ((2, 3), (2, 3)),
    "bcast": ((2, 1, 3), (4, 1)),
    "scalar": ((3,), ()),
    "0d": ((), ()),
    "empty": ((0, 3), (1, 3)),
}
for _op, (_dx, _dy) in _BINARY_DOMAINS.items():
    for _tag, (_sx, _sy) in _BINARY_SHAPES.items():
        _add(_op, (_sx, _dx), (_sy, _dy), name=_tag)
_add("power", ((2, 3), "nonzero"), ((), "int"), name="int_exponent")
_add("power", ((4,), "nonzero"), ((4,), "int"), name="int_exponents")
_add("add", ((2, 3), "real"), ((3,), "int"), name="float_int")
_add("multiply", ((3,), "int"), ((3,), "int"), name="int_int")
_add("maximum", ((2, 3), "grid"), ((2, 3), "grid"), name="ties")  # ties happen: no finite differences
_add("logical_and", ((3,), "nonzero"), ((3,), "real"), name="float")

_add("where", ((2, 3), "bool"), ((2, 3), "real"), ((2, 3), "real"))
_add("where", ((2, 1), "bool"), ((3,), "real"), ((), "real"), name="bcast")
_add("where", ((3,), "bool"), ((3,), "real"), ((3,), "int"), name="float_int")
for _dt in ("float64", "float32"):
    _add("astype", ((2, 3), "real"), name=_dt, dtype=np.dtype(_dt))
_add("astype", ((2, 3), "off_integer"), name="int64", dtype=np.dtype("int64"))
_add("astype", ((3,), "int"), name="int_to_float", dtype=np.dtype("float64"))

# Reductions.
_REDUCTION_DOMAIN = {"sum": "real", "prod": "nonzero", "max": "grid", "min": "grid"}
for _op, _dom in _REDUCTION_DOMAIN.items():
    _add(_op, ((2, 3, 2), _dom), name="ax1", axis=(1,), keepdims=False)
    _add(_op, ((2, 3, 2), _dom), name="ax02_keep", axis=(0, 2), keepdims=True)
    _add(_op, ((2, 3), _dom), name="all", axis=(0, 1), keepdims=False)
    _add(_op, ((4,), _dom), name="none", axis=(), keepdims=False)
    _add(_op, ((), _dom), name="0d", axis=(), keepdims=True)
for _op in ("sum", "prod"):
    _add(_op, ((0, 3), "real"), name="empty", axis=(0,), keepdims=False)
_add("sum", ((2, 3), "int"), name="int", axis=(1,), keepdims=False)
_add("sum", ((2, 3), "bool"), name="bool", axis=(0, 1), keepdims=False)
_add("prod", ((3, 4), "real"), name="mixed_signs", axis=(1,), keepdims=False)
_add("max", ((2, 3), "int"), name="int", axis=(0,), keepdims=True)
for _op in ("argmax", "argmin"):
    _add(_op, ((2, 3, 2), "grid"), name="ax1", axis=1)
    _add(_op, ((4,), "grid"), name="ax0", axis=0)
_add("cumsum", ((2, 3), "real"), name="ax1", axis=1)
_add("cumsum", ((3, 2), "real"), name="ax0", axis=0)
_add("cumsum", ((0, 2), "real"), name="empty", axis=0)
_add("cumsum", ((4,), "int"), name="int", axis=0)

# Shape ops.
_add("reshape", ((2, 3), "real"), shape=(3, 2))
_add("reshape", ((2, 3), "real"), name="flat", shape=(6,))
_add("reshape", ((), "real"), name="0d", shape=(1, 1))
_add("reshape", ((0, 3), "real"), name="empty", shape=(3, 0))
_add("transpose", ((2, 3, 4), "real"), perm=(2, 0, 1))
_add("transpose", ((2, 3), "real"), name="2d", perm=(1, 0))
_add("transpose", ((), "real"), name="0d", perm=())
_add("broadcast_to", ((3, 1), "real"), shape=(2, 3, 4))
_add("broadcast_to", ((), "real"), name="0d", shape=(2, 2))
_add("broadcast_to", ((1, 3), "real"), name="empty", shape=(0, 3))
_add("concatenate", ((2, 3), "real"), ((1, 3), "real"), ((2, 3), "real"), axis=0)
_add("concatenate", ((2, 1), "real"), ((2, 3), "real"), name="ax1", axis=1)
_add("concatenate", ((2,), "real"), ((0,), "real"), name="empty", axis=0)
_add("concatenate", ((2,), "real"), ((3,), "int"), name="float_int", axis=0)

# Indexing: x[spec], out = x; out[spec] = v, np.add.at(out, spec, v).  ('array', j) is the j-th
# index-array operand after x (and v).
_S = "slice"
_INDEX_SPECS = {
    "slice": (((4, 5), "real"), ((_S, 1, 2, 1), (_S, 0, 3, 2)), []),
    "neg_step": (((5,), "real"), ((_S, 4, 3, -2),), []),
    "int": (((4, 5), "real"), (("int", 2),), []),
    "int_last": (((4, 5), "real"), ((_S, 0, 4, 1), ("int", -1)), []),
    "newaxis": (((3,), "real"), (("newaxis",), (_S, 0, 3, 1)), []),
    "array": (((5, 3), "real"), (("array", 0),), [((4,), ("index", 0, 5))]),
    "array2d_dups": (((4, 3), "real"), (("array", 0),), [((2, 3), ("index", 0, 2))]),
    "two_arrays": (((4, 5), "real"), (("array", 0), ("array", 1)), [((3,), ("index", 0, 4)),
                                                                    ((3,), ("index", 0, 5))]),
    "slice_array": (((3, 5), "real"), ((_S, 0, 2, 1), ("array", 0)), [((4,), ("index", 0, 5))]),
    "negative_indices": (((5,), "real"), (("array", 0),), [((3,), ("index", -5, 0))]),
    "empty": (((4, 3), "real"), ((_S, 1, 0, 1),), []),
}


def _indexed_shape(shape, spec, index_shapes):
    dummy = np.zeros(shape)
    return dummy[index_tuple(spec, [np.zeros(s, dtype=np.intp) for s in index_shapes])].shape


for _tag, (_x, _spec, _arrays) in _INDEX_SPECS.items():
    _add("index", _x, *_arrays, name=_tag, spec=_spec)
    _target = _indexed_shape(_x[0], _spec, [s for s, _ in _arrays])
    for _op in ("index_set", "index_add"):
        _add(_op, _x, (_target, "real"), *_arrays, name=_tag, spec=_spec)
for _op in ("index_set", "index_add"):
    _add(_op, ((4, 5), "real"), ((), "real"), name="scalar_value", spec=((_S, 1, 2, 1),))
    _add(_op, ((4, 3), "real"), ((3,), "real"), ((6,), ("index", 0, 2)), name="bcast_value_dups",
         spec=(("array", 0),))

# Contractions (dims as jax.lax.dot_general).
_add("dot_general", ((2, 3), "real"), ((3, 4), "real"), name="matmul", contract=((1,), (0,)), batch=((), ()))
_add("dot_general", ((3,), "real"), ((3,), "real"), name="inner", contract=((0,), (0,)), batch=((), ()))
_add("dot_general", ((2, 3), "real"), ((3,), "real"), name="matvec", contract=((1,), (0,)), batch=((), ()))
_add("dot_general", ((2,), "real"), ((3,), "real"), name="outer", contract=((), ()), batch=((), ()))
_add("dot_general", ((5, 2, 3), "real"), ((5, 4, 3), "real"), name="batched",
     contract=((2,), (2,)), batch=((0,), (0,)))
_add("dot_general", ((3, 2, 4), "real"), ((4, 5, 3), "real"), name="two_contract_perm",
     contract=((2, 0), (0, 2)), batch=((), ()))
_add("dot_general", ((2, 3, 4), "real"), ((4, 3, 2), "real"), name="batch_not_leading",
     contract=((2,), (0,)), batch=((1,), (1,)))
_add("dot_general", ((0, 3), "real"), ((3, 2), "real"), name="empty", contract=((1,), (0,)), batch=((), ()))
_add("dot_general", ((2, 3), "real"), ((3, 2), "int"), name="float_int", contract=((1,), (0,)), batch=((), ()))

# Sorting: argsort (stable) along an axis.
_add("argsort", ((2, 5), "grid"), name="ax1", axis=1)
_add("argsort", ((4,), "grid"), name="ax0", axis=0)

# Special functions.
for _op, _dom in {"erf": "real", "erfc": "real", "log_ndtr": "real", "gammaln": "pos"}.items():
    _add(_op, ((2, 3), _dom))
    _add(_op, ((), _dom), name="0d")
_add("erf", ((3,), "int"), name="int")
for _order in (0, 1, 2):
    _add("polygamma", ((2, 3), "pos"), name=f"order{_order}", order=_order)

# Linear algebra: single matrices, batches, broadcast batches, tall and wide shapes.
for _op, _dom in {"cholesky": "spd", "inv": "invertible", "det": "invertible",
                  "slogdet_logabs": "invertible", "eigh_values": "sym_distinct",
                  "eigh_vectors": "sym_distinct"}.items():
    _add(_op, ((3, 3), _dom))
    _add(_op, ((2, 4, 4), _dom), name="batch")
_add("slogdet_sign", ((2, 3, 3), "real"))
# The eigenvalues of general matrices (complex) and their derivative maps: first derivatives only (their
# second derivatives w.r.t. the matrix are refused: tests/test_op_rules.py checks both).
for _op, _rest in {"eig_values": (), "eig_values_vjp": (((3,), "complex"),),
                   "eig_values_jvp": (((3, 3), "real"),)}.items():
    _add(_op, ((3, 3), "general_spectrum"), *_rest)
_add("eig_values", ((2, 3, 3), "general_spectrum"), name="batch")
FIRST_ORDER = {"eig_values", "eig_values_vjp", "eig_values_jvp"}
NO_MATRIX_DERIVATIVE = {"eig_values_vjp"}    # a real result whose derivative w.r.t. its float operand is refused
_add("expm", ((3, 3), "real"))
_add("expm", ((2, 3, 3), "real"), name="batch")
for _op in ("solve", "triangular_solve"):
    _params = {"lower": True} if _op == "triangular_solve" else {}
    _add(_op, ((3, 3), "invertible"), ((3, 2), "real"), **_params)
    _add(_op, ((2, 3, 3), "invertible"), ((3, 1), "real"), name="batch_a", **_params)
    _add(_op, ((3, 3), "invertible"), ((2, 3, 2), "real"), name="batch_b", **_params)
_add("triangular_solve", ((3, 3), "invertible"), ((3, 2), "real"), name="upper", lower=False)
for _op in ("svd_u", "svd_s", "svd_vh"):
    for _tag, _shape in {"square": (3, 3), "tall": (4, 3), "wide": (2, 4), "batch": (2, 4, 3)}.items():
        _add(_op, (_shape, "distinct_sv"), name=_tag)
for _op in ("qr_q", "qr_r"):
    for _tag, _shape in {"square": (3, 3), "tall": (4, 3), "batch": (2, 4, 2)}.items():
        _add(_op, (_shape, "distinct_sv"), name=_tag)

# Complex numbers: the parts, complex elementwise arithmetic, and the Fourier transforms along one axis
# (every norm; odd and even lengths; irfft's operand has n // 2 + 1 entries along the axis).
for _op in ("real", "imag", "conj"):
    _add(_op, ((2, 3), "complex"))
    _add(_op, ((), "complex"), name="0d")
_add("absolute", ((2, 3), "complex_nonzero"), name="complex")
_add("multiply", ((2, 3), "complex"), ((3,), "real"), name="complex_real")
_add("divide", ((2, 3), "complex"), ((2, 3), "complex_nonzero"), name="complex")
_add("exp", ((4,), "complex"), name="complex")
_add("wofz", ((2, 3), "complex"))
_add("sum", ((2, 3), "complex"), name="complex", axis=(1,), keepdims=False)
_add("dot_general", ((2, 3), "complex"), ((3, 2), "complex"), name="complex", contract=((1,), (0,)),
     batch=((), ()))
for _norm in ("backward", "ortho", "forward"):
    _add("fft", ((3, 5), "complex"), name=f"{_norm}_ax1", axis=1, norm=_norm, inverse=False)
    _add("fft", ((4, 2), "complex"), name=f"inverse_{_norm}_ax0", axis=0, norm=_norm, inverse=True)
    _add("rfft", ((2, 6), "real"), name=f"even_{_norm}", axis=1, norm=_norm)
    _add("rfft", ((5, 2), "real"), name=f"odd_{_norm}", axis=0, norm=_norm)
    _add("irfft", ((2, 4), "complex"), name=f"even_{_norm}", axis=1, n=6, norm=_norm)
    _add("irfft", ((4, 3), "complex"), name=f"odd_{_norm}", axis=0, n=7, norm=_norm)
_add("fft", ((3, 4), "real"), name="real_operand", axis=1, norm="ortho", inverse=False)
_add("fft", ((7,), "real"), name="real_operand_odd", axis=0, norm="backward", inverse=False)
_add("fft", ((5, 3), "real"), name="real_operand_odd_inverse", axis=0, norm="backward", inverse=True)
_add("fft", ((2, 6), "real"), name="real_operand_even_inverse", axis=1, norm="forward", inverse=True)
_add("irfft", ((2, 3), "real"), name="real_operand", axis=1, n=5, norm="forward")
_add("rfft", ((1,), "real"), name="one", axis=0, norm="backward")
_add("irfft", ((1,), "complex"), name="one", axis=0, n=1, norm="backward")

# Sources and guards.
_add("const", value=np.arange(6.0).reshape(2, 3))
_add("const", name="int0d", value=np.asarray(7))
_add("fill", shape=(2, 3), dtype=np.dtype("float32"), value=1.5)
_add("fill", name="empty", shape=(0,), dtype=np.dtype("int64"), value=0)
_add("guard", ((), "true"), expected=True, loc=None, why="test")

# Incomplete gamma and beta functions.  Shape parameters are positive integers (index-array operands, not
# differentiated here): the derivative ops refuse second derivatives w.r.t. them, so the second-order
# table tests differentiate w.r.t. x and t only; tests/ir/test_incomplete.py covers the shape parameters.
DOMAINS["prob"] = _spread(0.05, 0.95)        # betainc's x
_SHAPE_PARAMETER = ("index", 1, 4)
for _op in ("gammainc", "gammaincc", "gammainc_da"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), "pos"))
    _add(_op, ((3,), _SHAPE_PARAMETER), ((2, 1), "pos"), name="bcast")
for _op in ("betainc", "betaincc", "betainc_da", "betainc_db"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), _SHAPE_PARAMETER), ((2, 3), "prob"))
    _add(_op, ((3,), _SHAPE_PARAMETER), ((), _SHAPE_PARAMETER), ((2, 1), "prob"), name="bcast")
for _op in ("fdtr", "fdtrc"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), _SHAPE_PARAMETER), ((2, 3), "pos"))
    _add(_op, ((3,), _SHAPE_PARAMETER), ((), _SHAPE_PARAMETER), ((2, 1), "pos"), name="bcast")
for _op in ("stdtr", "stdtr_ddf"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), "real"))
    _add(_op, ((), _SHAPE_PARAMETER), ((4,), "real"), name="bcast")
# Their inverses in the probability (ir/inverse_special.py): the same shape parameters, p in (0.2, 0.8)
# (nearer the tails the second derivatives grow past float32's finite differences).
DOMAINS["mid_prob"] = _spread(0.2, 0.8)
for _op in ("gammaincinv", "gammainccinv", "stdtrit"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), "mid_prob"))
    _add(_op, ((3,), _SHAPE_PARAMETER), ((2, 1), "prob"), name="bcast")
for _op in ("betaincinv", "betainccinv", "fdtri"):
    _add(_op, ((2, 3), _SHAPE_PARAMETER), ((2, 3), _SHAPE_PARAMETER), ((2, 3), "mid_prob"))
    _add(_op, ((3,), _SHAPE_PARAMETER), ((), _SHAPE_PARAMETER), ((2, 1), "prob"), name="bcast")

# Inverse error functions and Bessel functions (ir/special_partials.py).  The order v of the order-v ops is
# an integer operand here (their derivative w.r.t. v is refused; tests/tracer/test_special.py checks that).
DOMAINS["erfc_range"] = _spread(0.2, 1.8)    # erfcinv's x, inside (0, 2)
DOMAINS["log_prob"] = _spread(-3.0, -0.05)   # ndtri_exp's x = log p
for _op, _dom in {"erfinv": "unit", "erfcinv": "erfc_range", "ndtri": "prob", "ndtri_exp": "log_prob",
                  "j0": "real", "j1": "real", "y0": "pos",
                  "y1": "pos", "i0": "real", "i1": "real", "i0e": "nonzero", "i1e": "nonzero", "k0": "pos",
                  "k1": "pos"}.items():
    _add(_op, ((2, 3), _dom))
    _add(_op, ((), _dom), name="0d")
for _op in ("jv", "yv", "iv", "ive", "kv"):
    _add(_op, ((2, 3), ("index", 0, 4)), ((2, 3), "pos"))
    _add(_op, ((3,), ("index", -2, 3)), ((2, 1), "pos"), name="bcast")

# Floating-point decomposition (ops.FLOAT_PARTS): operands inside [0.5, 1), [1, 2), [2, 4) (and negated), off
# the exponent's jumps at powers of two.
DOMAINS["binade_interior"] = lambda rng, shape: (rng.uniform(0.6, 0.9, shape)
                                                * rng.choice([1.0, 2.0, 4.0, -1.0, -2.0], shape))
for _op in ("spacing", "frexp_mantissa", "frexp_exponent"):
    _add(_op, ((2, 3), "binade_interior"))
    _add(_op, ((), "binade_interior"), name="0d")
_add("nextafter", ((2, 3), "real"), ((2, 3), "real"))
_add("nextafter", ((3,), "real"), ((), "real"), name="bcast")

# custom_call (ir/custom_ops.py): a function the trace does not see into, with a user-given reverse-mode rule
# (jitgrad.custom_vjp) or forward-mode rule (jitgrad.custom_jvp); the rules are those for float64 operands.


def _scaled_sin(x, y):
    return np.sin(x) * y


_SCALED_SIN = custom_vjp(_scaled_sin)
_SCALED_SIN.defvjp(lambda x, y: (_SCALED_SIN(x, y), (x, y)),
                   lambda res, g: (g * np.cos(res[0]) * res[1], g * np.sin(res[0])))
_add("custom_call", ((2, 3), "real"), ((2, 3), "real"),
     rule=rule_for(_SCALED_SIN, [np.zeros((2, 3)), np.zeros((2, 3))]))

_SCALED_SIN_JVP = custom_jvp(_scaled_sin)
_SCALED_SIN_JVP.defjvp(lambda p, t: (_SCALED_SIN_JVP(p[0], p[1]), t[0] * np.cos(p[0]) * p[1] + t[1] * np.sin(p[0])))
_add("custom_call", ((3,), "real"), ((3,), "real"), name="jvp_rule",
     rule=rule_for(_SCALED_SIN_JVP, [np.zeros(3), np.zeros(3)]))
