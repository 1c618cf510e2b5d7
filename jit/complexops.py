"""Complex numbers in kernels, as pairs of floats.  A complex value is a register of LLVM type
`{ double, double }` (complex64: `{ float, float }`), laid out in memory as NumPy lays it out; every
op takes its operands apart (extractvalue), computes on the parts with NumPy's formulas and puts the
result together (insertvalue).  LLVM's instcombine and SROA dissolve the aggregates, so a loop over
complex arrays vectorizes as a loop over pairs of floats.

SCALAR[op](f, xs, ty) is the complex column of scalar_ops.SCALAR (kind 'c'): `xs` are registers of the
complex compute dtype (LLVM type `ty`); the result is complex, or (TO_REAL ops: real, imag, absolute)
a float of the parts' type, or (comparisons) an i1.  Ops without an entry here (power, log, sqrt,
trigonometry on complex values, cumulative and matrix ops, the Fourier transforms) stay host calls
(rules.is_hosted).
"""
import numpy as np

from . import mathfns

NATIVE = True       # False: every complex node is a host call again (bench/spectral.py measures both)
PART = {np.dtype(np.complex128): np.dtype(np.float64), np.dtype(np.complex64): np.dtype(np.float32)}
TO_REAL = ("real", "imag", "absolute")


def part_type(ty):
    """The LLVM type of the parts of complex LLVM type `ty`."""
    return "float" if "float" in ty else "double"


def parts(f, z, ty):
    """(real, imaginary) registers of complex register `z` (the parts it was packed from, when `pack`
    made it in this function: a literal 0.0 imaginary part of a real value cast to complex stays
    visible to the rules)."""
    packed = getattr(f, "packed_parts", {}).get(z)
    if packed is not None:
        return packed
    return f.emit(f"extractvalue {ty} {z}, 0"), f.emit(f"extractvalue {ty} {z}, 1")


def pack(f, re, im, ty):
    """The complex register of parts `re`, `im`."""
    pt = part_type(ty)
    half = f.emit(f"insertvalue {ty} undef, {pt} {re}, 0")
    z = f.emit(f"insertvalue {ty} {half}, {pt} {im}, 1")
    if not hasattr(f, "packed_parts"):
        f.packed_parts = {}
    f.packed_parts[z] = (re, im)
    return z


def _parts_of(f, xs, ty):
    return [p for z in xs for p in parts(f, z, ty)]


def _partwise(instr):
    """add/subtract: the instruction on the real parts and on the imaginary parts."""
    def rule(f, xs, ty):
        a, b, c, d = _parts_of(f, xs, ty)
        pt = part_type(ty)
        return pack(f, f.emit(f"{instr} {pt} {a}, {c}"), f.emit(f"{instr} {pt} {b}, {d}"), ty)
    return rule


def _multiply(f, xs, ty):
    """(ac - bd, ad + bc) with NumPy's fused multiply-adds (its SIMD loop: fma(a, c, -bd), fma(a, d, bc)),
    so products are NumPy's bit for bit, overflows in one term included."""
    a, b, c, d = _parts_of(f, xs, ty)
    pt = part_type(ty)
    fma = f"call {pt} @llvm.fma.{_sfx(pt)}"
    minus_bd = f.emit(f"fneg {pt} {f.emit(f'fmul {pt} {b}, {d}')}")
    re = f.emit(f"{fma}({pt} {a}, {pt} {c}, {pt} {minus_bd})")
    im = f.emit(f"{fma}({pt} {a}, {pt} {d}, {pt} {f.emit(f'fmul {pt} {b}, {c}')})")
    return pack(f, re, im, ty)


def _divide(f, xs, ty):
    """NumPy's complex division (Smith's method, scaled by the larger part of the divisor), branch-free:
    both orientations are computed and the right one selected."""
    a, b, c, d = _parts_of(f, xs, ty)
    pt = part_type(ty)
    op = lambda instr, x, y: f.emit(f"{instr} {pt} {x}, {y}")     # noqa: E731 - local shorthand
    if d == "0.0":
        return _divide_by_real(f, a, b, c, ty, op)
    ac, ad = f.emit(f"call {pt} @llvm.fabs.{_sfx(pt)}({pt} {c})"), f.emit(f"call {pt} @llvm.fabs.{_sfx(pt)}({pt} {d})")
    real_major = op("fcmp oge", ac, ad)
    # |c| >= |d|: r = d/c, s = 1/(c + d r), ((a + b r) s, (b - a r) s)
    r1 = op("fdiv", d, c)
    s1 = op("fdiv", "1.0", op("fadd", c, op("fmul", d, r1)))
    re1, im1 = op("fmul", op("fadd", a, op("fmul", b, r1)), s1), op("fmul", op("fsub", b, op("fmul", a, r1)), s1)
    # both zero: (a/|c|, b/|c|), an infinity or NaN as NumPy gives
    zero = f.emit(f"and i1 {op('fcmp oeq', ac, '0.0')}, {op('fcmp oeq', ad, '0.0')}")
    re1 = f.emit(f"select i1 {zero}, {pt} {op('fdiv', a, ac)}, {pt} {re1}")
    im1 = f.emit(f"select i1 {zero}, {pt} {op('fdiv', b, ac)}, {pt} {im1}")
    # |c| < |d|: r = c/d, s = 1/(d + c r), ((a r + b) s, (b r - a) s)
    r2 = op("fdiv", c, d)
    s2 = op("fdiv", "1.0", op("fadd", d, op("fmul", c, r2)))
    re2, im2 = op("fmul", op("fadd", op("fmul", a, r2), b), s2), op("fmul", op("fsub", op("fmul", b, r2), a), s2)
    re = f.emit(f"select i1 {real_major}, {pt} {re1}, {pt} {re2}")
    im = f.emit(f"select i1 {real_major}, {pt} {im1}, {pt} {im2}")
    return pack(f, re, im, ty)


def _divide_by_real(f, a, b, c, ty, op):
    """Smith's division by c + 0i (a real divisor cast to complex), in one division: with d = +0 its
    first orientation (taken unless c is NaN, when both give NaN) has r = 0/c = copysign(0, c) and
    s = 1/(c + d r) = 1/c for c != 0, so the parts are (a + b r) s and (b - a r) s as NumPy computes them
    (b r is 0 or NaN, kept for b infinite or NaN); c = 0 gives (a/0, b/0) = (a inf, b inf)."""
    pt = part_type(ty)
    r = f.emit(f"call {pt} @llvm.copysign.{_sfx(pt)}({pt} 0.0, {pt} {c})")
    s = op("fdiv", "1.0", c)
    re, im = op("fmul", op("fadd", a, op("fmul", b, r)), s), op("fmul", op("fsub", b, op("fmul", a, r)), s)
    zero = op("fcmp oeq", c, "0.0")
    inf = "0x7FF0000000000000"
    re = f.emit(f"select i1 {zero}, {pt} {op('fmul', a, inf)}, {pt} {re}")
    im = f.emit(f"select i1 {zero}, {pt} {op('fmul', b, inf)}, {pt} {im}")
    return pack(f, re, im, ty)


def _sfx(pt):
    return "f32" if pt == "float" else "f64"


def _negative(f, xs, ty):
    a, b = parts(f, xs[0], ty)
    pt = part_type(ty)
    return pack(f, f.emit(f"fneg {pt} {a}"), f.emit(f"fneg {pt} {b}"), ty)


def _conj(f, xs, ty):
    a, b = parts(f, xs[0], ty)
    return pack(f, a, f.emit(f"fneg {part_type(ty)} {b}"), ty)


def _absolute(f, xs, ty):
    """|z| = hypot(re, im): sqrt(re^2 + im^2) where that cannot overflow or underflow (<= 1 ulp, it
    vectorizes), the scaled form big * sqrt(1 + (small/big)^2) elsewhere; infinities win over NaN as in
    hypot.  float32 parts are computed in double and rounded once."""
    a, b = parts(f, xs[0], ty)
    if part_type(ty) == "float":
        a, b = (f.emit(f"fpext float {p} to double") for p in (a, b))
    x, y = (f.emit(f"call double @llvm.fabs.f64(double {p})") for p in (a, b))
    x_bigger = f.emit(f"fcmp ogt double {x}, {y}")
    big = f.emit(f"select i1 {x_bigger}, double {x}, double {y}")
    small = f.emit(f"select i1 {x_bigger}, double {y}, double {x}")
    direct = f.emit(f"fadd double {f.emit(f'fmul double {x}, {x}')}, {f.emit(f'fmul double {y}, {y}')}")
    direct = f.emit(f"call double @llvm.sqrt.f64(double {direct})")
    q = f.emit(f"fdiv double {small}, {big}")
    scaled = f.emit(f"fadd double 1.0, {f.emit(f'fmul double {q}, {q}')}")
    scaled = f.emit(f"fmul double {big}, {f.emit(f'call double @llvm.sqrt.f64(double {scaled})')}")
    safe = f.emit(f"and i1 {f.emit(f'fcmp olt double {big}, 0x5F30000000000000')}, "
                  f"{f.emit(f'fcmp ogt double {big}, 0x20B0000000000000')}")      # 2^500, 2^-500
    r = f.emit(f"select i1 {safe}, double {direct}, double {scaled}")
    r = f.emit(f"select i1 {f.emit(f'fcmp oeq double {big}, 0.0')}, double {small}, double {r}")   # 0 or NaN
    inf = f.emit(f"or i1 {f.emit(f'fcmp oeq double {x}, 0x7FF0000000000000')}, "
                 f"{f.emit(f'fcmp oeq double {y}, 0x7FF0000000000000')}")
    r = f.emit(f"select i1 {inf}, double 0x7FF0000000000000, double {r}")
    return f.emit(f"fptrunc double {r} to float") if part_type(ty) == "float" else r


def _exp(f, xs, ty):
    """exp(a + bi) = e^a (cos b + i sin b); b == 0 gives (e^a, b) exactly, as NumPy's cexp."""
    a, b = parts(f, xs[0], ty)
    pt = part_type(ty)
    e = mathfns.call(f, "exp", [a], pt)
    re = f.emit(f"fmul {pt} {e}, {mathfns.call(f, 'cos', [b], pt)}")
    im = f.emit(f"fmul {pt} {e}, {mathfns.call(f, 'sin', [b], pt)}")
    real_axis = f.emit(f"fcmp oeq {pt} {b}, 0.0")
    re = f.emit(f"select i1 {real_axis}, {pt} {e}, {pt} {re}")
    im = f.emit(f"select i1 {real_axis}, {pt} {b}, {pt} {im}")
    return pack(f, re, im, ty)


def _compare(pred, join):
    def rule(f, xs, ty):
        a, b, c, d = _parts_of(f, xs, ty)
        pt = part_type(ty)
        return f.emit(f"{join} i1 {f.emit(f'fcmp {pred} {pt} {a}, {c}')}, {f.emit(f'fcmp {pred} {pt} {b}, {d}')}")
    return rule


SCALAR = {
    "add": _partwise("fadd"), "subtract": _partwise("fsub"), "multiply": _multiply, "divide": _divide,
    "negative": _negative, "conj": _conj, "exp": _exp, "absolute": _absolute,
    "real": lambda f, xs, ty: parts(f, xs[0], ty)[0], "imag": lambda f, xs, ty: parts(f, xs[0], ty)[1],
    "equal": _compare("oeq", "and"), "not_equal": _compare("une", "or"),
}


def sum_combine(f, acc, v, ty):
    """The complex sum's accumulate step (reassociable, so the loop vectorizes)."""
    a, b, c, d = _parts_of(f, [acc, v], ty)
    pt = part_type(ty)
    return pack(f, f.emit(f"fadd reassoc {pt} {a}, {c}"), f.emit(f"fadd reassoc {pt} {b}, {d}"), ty)


def select(f, c, x, y, ty):
    """select(c, x, y) of complex registers, part by part (a select of aggregates would not vectorize)."""
    pt = part_type(ty)
    (a, b), (p, q) = parts(f, x, ty), parts(f, y, ty)
    return pack(f, f.emit(f"select i1 {c}, {pt} {a}, {pt} {p}"), f.emit(f"select i1 {c}, {pt} {b}, {pt} {q}"), ty)


def cast(f, x, src, dst, real_cast, ty_of):
    """Convert register `x` between dtypes when either is complex (NumPy's astype: a real value gets
    imaginary part 0; a complex value cast to a real dtype keeps its real part, to bool tests both
    parts).  `real_cast(f, x, src, dst)` converts between real dtypes, `ty_of(dtype)` is a register type."""
    if src.kind == "c":
        re, im = parts(f, x, ty_of(src))
        if dst.kind == "c":
            return pack(f, real_cast(f, re, PART[src], PART[dst]), real_cast(f, im, PART[src], PART[dst]), ty_of(dst))
        if dst.kind == "b":
            pt = ty_of(PART[src])
            return f.emit(f"or i1 {f.emit(f'fcmp une {pt} {re}, 0.0')}, {f.emit(f'fcmp une {pt} {im}, 0.0')}")
        return real_cast(f, re, PART[src], dst)
    re = real_cast(f, x, src, PART[dst])
    return pack(f, re, "0.0", ty_of(dst))
