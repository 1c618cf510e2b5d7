"""Scalar code of every elementwise op, one table keyed by op and then by the kind of the compute dtype.
Every elementwise op the spec (ir/ops.py) does not declare `host` has an entry (jit/rules.py checks it
when imported); an op whose spec names a `libm` function gets the call to it for floats.

SCALAR[op][kind](f, xs, ty) emits into FunctionText `f` the op applied to the register values `xs`
(already cast to the compute dtype, whose LLVM type is `ty`) and returns the result's name.  Kinds:
'f' float, 'i' signed int, 'b' bool, 'c' complex (complexops.py).  `compute_dtype` says which dtype an
op computes in (NumPy's loop dtype): comparisons compare in the operands' common type, logical ops in bool,
absolute/real/imag of a complex value in its complex dtype, all others in the output dtype.  `cast`
converts between dtypes as NumPy's astype does (float->int saturates instead of
NumPy's undefined result, so a kernel never holds a poison value).  Semantics follow NumPy's loops:
maximum/minimum propagate NaN, floor_divide/remainder follow npy_divmod, integer division by 0 gives 0.
"""
import numpy as np

from . import complexops, mathfns
from .errors import LoweringUnsupported
from .llvmtext import dtype_info, kind, literal, reg_type
from ..ir.ops import SPECS, ops_where

COMPARISONS = {  # op -> (fcmp predicate, signed icmp predicate, bool icmp predicate)
    "equal": ("oeq", "eq", "eq"), "not_equal": ("une", "ne", "ne"), "less": ("olt", "slt", "ult"),
    "less_equal": ("ole", "sle", "ule"), "greater": ("ogt", "sgt", "ugt"),
    "greater_equal": ("oge", "sge", "uge"),
}
LOGICAL = ("logical_and", "logical_or", "logical_not")


def compute_dtype(op, in_dtypes, out_dtype):
    """The dtype an elementwise op computes in."""
    if op in COMPARISONS:
        return np.result_type(*in_dtypes)
    if op in LOGICAL:
        return np.dtype(bool)
    if op in complexops.TO_REAL and np.dtype(in_dtypes[0]).kind == "c":
        return np.dtype(in_dtypes[0])
    return np.dtype(out_dtype)


def cast(f, x, src, dst):
    """Convert register value `x` from dtype `src` to dtype `dst`."""
    if src is dst:          # the common case, decided before any dtype conversion
        return x
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return x
    ks, kd = kind(src), kind(dst)
    if "c" in (ks, kd):
        return complexops.cast(f, x, src, dst, cast, reg_type)
    ts, td = reg_type(src), reg_type(dst)
    if kd == "b":
        if ks == "f":
            return f.emit(f"fcmp une {ts} {x}, 0.0")
        return f.emit(f"icmp ne {ts} {x}, 0")
    if ks == "b":
        return f.emit(f"{'uitofp' if kd == 'f' else 'zext'} i1 {x} to {td}")
    if ks == "f" and kd == "f":
        return f.emit(f"{'fpext' if dst.itemsize > src.itemsize else 'fptrunc'} {ts} {x} to {td}")
    if ks == "i" and kd == "f":
        return f.emit(f"sitofp {ts} {x} to {td}")
    if ks == "f" and kd == "i":
        return f.emit(f"call {td} @llvm.fptosi.sat.{td}.{'f64' if ts == 'double' else 'f32'}({ts} {x})")
    if dst.itemsize == src.itemsize:
        return x
    return f.emit(f"{'sext' if dst.itemsize > src.itemsize else 'trunc'} {ts} {x} to {td}")


def _binop(instr):
    return lambda f, xs, ty: f.emit(f"{instr} {ty} {xs[0]}, {xs[1]}")


def _intrinsic(name):
    def rule(f, xs, ty):
        suffix = "f64" if ty == "double" else "f32"
        operands = ", ".join(f"{ty} {x}" for x in xs)
        return f.emit(f"call {ty} @llvm.{name}.{suffix}({operands})")
    return rule


def _math(name):
    return lambda f, xs, ty: mathfns.call(f, name, xs, ty)


def _select_float(pred):
    """maximum/minimum: (a pred b or isnan(a)) ? a : b, as NumPy's loops."""
    def rule(f, xs, ty):
        a, b = xs
        better = f.emit(f"fcmp {pred} {ty} {a}, {b}")
        nan = f.emit(f"fcmp uno {ty} {a}, 0.0")
        take = f.emit(f"or i1 {better}, {nan}")
        return f.emit(f"select i1 {take}, {ty} {a}, {ty} {b}")
    return rule


def _select_int(pred):
    def rule(f, xs, ty):
        take = f.emit(f"icmp {pred} {ty} {xs[0]}, {xs[1]}")
        return f.emit(f"select i1 {take}, {ty} {xs[0]}, {ty} {xs[1]}")
    return rule


def _toward_floor(f, q, r, b, r_nonzero, ty, fp):
    """Python's convention from a truncating (q, r): when r != 0 and sign(r) != sign(b), q -= 1 and
    r += b.  fp is 'f' for floats, '' for ints (instruction prefix)."""
    lt, zero, one = ("fcmp olt", "0.0", "1.0") if fp else ("icmp slt", "0", "1")
    differ = f.emit(f"xor i1 {f.emit(f'{lt} {ty} {r}, {zero}')}, {f.emit(f'{lt} {ty} {b}, {zero}')}")
    fix = f.emit(f"and i1 {r_nonzero}, {differ}")
    q = f.emit(f"select i1 {fix}, {ty} {f.emit(f'{fp}sub {ty} {q}, {one}')}, {ty} {q}")
    r = f.emit(f"select i1 {fix}, {ty} {f.emit(f'{fp}add {ty} {r}, {b}')}, {ty} {r}")
    return q, r


def _float_divmod(f, a, b, ty):
    """(floor quotient, remainder) of floats, as npy_divmod; b == 0 gives (a/b, fmod(a, b))."""
    raw_mod = mod = f.emit(f"frem {ty} {a}, {b}")
    quot = f.emit(f"fdiv {ty} {a}, {b}")
    div = f.emit(f"fdiv {ty} {f.emit(f'fsub {ty} {a}, {mod}')}, {b}")
    mod_nz = f.emit(f"fcmp une {ty} {mod}, 0.0")
    div, mod_fixed = _toward_floor(f, div, mod, b, mod_nz, ty, "f")
    signed_zero = f.emit(f"call {ty} @llvm.copysign.{_sfx(ty)}({ty} 0.0, {ty} {b})")
    mod = f.emit(f"select i1 {mod_nz}, {ty} {mod_fixed}, {ty} {signed_zero}")
    floor = f.emit(f"call {ty} @llvm.floor.{_sfx(ty)}({ty} {div})")
    over = f.emit(f"fcmp ogt {ty} {f.emit(f'fsub {ty} {div}, {floor}')}, 0.5")
    floor = f.emit(f"select i1 {over}, {ty} {f.emit(f'fadd {ty} {floor}, 1.0')}, {ty} {floor}")
    div_nz = f.emit(f"fcmp une {ty} {div}, 0.0")
    zero_q = f.emit(f"call {ty} @llvm.copysign.{_sfx(ty)}({ty} 0.0, {ty} {quot})")
    floordiv = f.emit(f"select i1 {div_nz}, {ty} {floor}, {ty} {zero_q}")
    b_zero = f.emit(f"fcmp oeq {ty} {b}, 0.0")
    floordiv = f.emit(f"select i1 {b_zero}, {ty} {quot}, {ty} {floordiv}")
    mod = f.emit(f"select i1 {b_zero}, {ty} {raw_mod}, {ty} {mod}")
    return floordiv, mod


def _int_divmod(f, a, b, ty):
    """(floor quotient, remainder) of signed ints; b == 0 gives (0, 0); MIN // -1 wraps, as NumPy."""
    b_zero = f.emit(f"icmp eq {ty} {b}, 0")
    b_m1 = f.emit(f"icmp eq {ty} {b}, -1")
    unsafe = f.emit(f"or i1 {b_zero}, {b_m1}")
    safe_b = f.emit(f"select i1 {unsafe}, {ty} 1, {ty} {b}")
    q = f.emit(f"sdiv {ty} {a}, {safe_b}")
    r = f.emit(f"srem {ty} {a}, {safe_b}")
    q, r = _toward_floor(f, q, r, b, f.emit(f"icmp ne {ty} {r}, 0"), ty, "")
    q = f.emit(f"select i1 {b_m1}, {ty} {f.emit(f'sub {ty} 0, {a}')}, {ty} {q}")
    q = f.emit(f"select i1 {b_zero}, {ty} 0, {ty} {q}")
    r = f.emit(f"select i1 {unsafe}, {ty} 0, {ty} {r}")
    return q, r


def _sfx(ty):
    return "f64" if ty == "double" else "f32"


def _divmod_part(divmod_fn, part):
    return lambda f, xs, ty: divmod_fn(f, xs[0], xs[1], ty)[part]


_EXACT_POWERS = {literal(2.0, "float64"): lambda f, x, ty: f.emit(f"fmul {ty} {x}, {x}"),
                 literal(1.0, "float64"): lambda f, x, ty: x,
                 literal(-1.0, "float64"): lambda f, x, ty: f.emit(f"fdiv {ty} 1.0, {x}")}


def _float_power(f, xs, ty):
    """x ** c for a literal c in {2, 1, -1} is exactly x*x, x, 1/x (pow is correctly rounded there)."""
    exact = _EXACT_POWERS.get(xs[1])
    return exact(f, xs[0], ty) if exact else mathfns.call(f, "pow", xs, ty)


def _float_sign(f, xs, ty):
    (x,) = xs
    pos = f.emit(f"fcmp ogt {ty} {x}, 0.0")
    neg = f.emit(f"fcmp olt {ty} {x}, 0.0")
    nan = f.emit(f"fcmp uno {ty} {x}, 0.0")
    s = f.emit(f"select i1 {neg}, {ty} -1.0, {ty} 0.0")
    s = f.emit(f"select i1 {pos}, {ty} 1.0, {ty} {s}")
    return f.emit(f"select i1 {nan}, {ty} {x}, {ty} {s}")


def _int_sign(f, xs, ty):
    (x,) = xs
    pos = f.emit(f"zext i1 {f.emit(f'icmp sgt {ty} {x}, 0')} to {ty}")
    neg = f.emit(f"zext i1 {f.emit(f'icmp slt {ty} {x}, 0')} to {ty}")
    return f.emit(f"sub {ty} {pos}, {neg}")


def _int_abs(f, xs, ty):
    (x,) = xs
    neg = f.emit(f"icmp slt {ty} {x}, 0")
    return f.emit(f"select i1 {neg}, {ty} {f.emit(f'sub {ty} 0, {x}')}, {ty} {x}")


def _identity(f, xs, ty):
    return xs[0]


# An op whose spec names a libm function calls it on floats (power: exact cases first).
SCALAR = {op: {"f": _math(SPECS[op].libm)} for op in ops_where(lambda s: s.libm is not None and not s.host)}
SCALAR.update({
    "negative": {"f": lambda f, xs, ty: f.emit(f"fneg {ty} {xs[0]}"),
                 "i": lambda f, xs, ty: f.emit(f"sub {ty} 0, {xs[0]}")},
    "add": {"f": _binop("fadd"), "i": _binop("add"), "b": _binop("or")},
    "subtract": {"f": _binop("fsub"), "i": _binop("sub")},
    "multiply": {"f": _binop("fmul"), "i": _binop("mul"), "b": _binop("and")},
    "divide": {"f": _binop("fdiv")},
    "power": {"f": _float_power},
    "maximum": {"f": _select_float("ogt"), "i": _select_int("sgt"), "b": _binop("or")},
    "minimum": {"f": _select_float("olt"), "i": _select_int("slt"), "b": _binop("and")},
    "floor_divide": {"f": _divmod_part(_float_divmod, 0), "i": _divmod_part(_int_divmod, 0)},
    "remainder": {"f": _divmod_part(_float_divmod, 1), "i": _divmod_part(_int_divmod, 1)},
    "sqrt": {"f": _intrinsic("sqrt")},
    "absolute": {"f": _intrinsic("fabs"), "i": _int_abs, "b": _identity},
    "sign": {"f": _float_sign, "i": _int_sign},
    "floor": {"f": _intrinsic("floor"), "i": _identity, "b": _identity},
    "ceil": {"f": _intrinsic("ceil"), "i": _identity, "b": _identity},
    "trunc": {"f": _intrinsic("trunc"), "i": _identity, "b": _identity},
    "rint": {"f": _intrinsic("roundeven"), "i": _identity, "b": _identity},
    "logical_and": {"b": _binop("and")},
    "logical_or": {"b": _binop("or")},
    "logical_not": {"b": lambda f, xs, ty: f.emit(f"xor i1 {xs[0]}, true")},
})


def _comparison(preds):
    fpred, ipred, bpred = preds
    return {"f": lambda f, xs, ty: f.emit(f"fcmp {fpred} {ty} {xs[0]}, {xs[1]}"),
            "i": lambda f, xs, ty: f.emit(f"icmp {ipred} {ty} {xs[0]}, {xs[1]}"),
            "b": lambda f, xs, ty: f.emit(f"icmp {bpred} i1 {xs[0]}, {xs[1]}")}


for _op, _preds in COMPARISONS.items():
    SCALAR[_op] = _comparison(_preds)
for _op, _rule in complexops.SCALAR.items():
    SCALAR.setdefault(_op, {})["c"] = _rule


def elementwise(f, op, values, in_dtypes, out_dtype):
    """Emit elementwise `op` on register `values` of `in_dtypes`; the result has `out_dtype`."""
    cdt = compute_dtype(op, in_dtypes, out_dtype)
    ty, _, cdt_kind = dtype_info(cdt)
    rule = SCALAR.get(op, {}).get(cdt_kind)
    if rule is None:
        raise LoweringUnsupported(f"op {op} on dtype {cdt} is not supported by the JIT")
    xs = [cast(f, v, d, cdt) for v, d in zip(values, in_dtypes)]
    result_dtype = (np.dtype(bool) if op in COMPARISONS else
                    complexops.PART[cdt] if cdt_kind == "c" and op in complexops.TO_REAL else cdt)
    return cast(f, rule(f, xs, ty), result_dtype, out_dtype)


def where(f, values, in_dtypes, out_dtype):
    """select(cond, x, y) with operands cast as NumPy's where does."""
    c, x, y = values
    c = cast(f, c, in_dtypes[0], bool)
    x, y = cast(f, x, in_dtypes[1], out_dtype), cast(f, y, in_dtypes[2], out_dtype)
    ty = reg_type(out_dtype)
    if kind(out_dtype) == "c":
        return complexops.select(f, c, x, y, ty)
    return f.emit(f"select i1 {c}, {ty} {x}, {ty} {y}")

