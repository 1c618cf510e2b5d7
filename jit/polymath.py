"""Inline, branch-free (select-only) double-precision exp, expm1, log, log1p, tanh, sin and cos, so loops
that call them vectorize (the notes: 6-7x NumPy where libm calls stay scalar).  POLY[name](f, x)
emits the function of register `x` into FunctionText `f` and returns the result.

Accuracy bound (tests/jit/test_jit_math.py, ulps against a long-double reference; measured maxima in
brackets, NumPy's own are 0.5-1.2): exp, log <= 1 [0.82, 0.78]; log1p, sin, cos <= 2 [1.2, 1.45, 1.45];
expm1 <= 2.5 [2.12]; tanh <= 2 [1.7]; over the whole double range, with inf, nan, -0.0 and
subnormals as IEEE/NumPy give them (over 20M points a range: exp 0.90, expm1 2.32).  Methods: exp and
expm1 reduce x = n ln2 + r with an exact FMA Cody-Waite step; exp takes e^r = 1 + r h(r) with the
degree-10 minimax h of EXP_MINIMAX (11 FMAs); expm1 keeps the degree-13 Taylor polynomial: its worst
case, 2q + 1 with q ~ e^r - 1 for x just above ln2/2, gains from the sign of the Taylor remainder at
r = -ln2/2 (a degree-11 minimax, 8 times closer but of either sign there, measured 2.39 to its 2.32).
Both scale by 2^n rounding once (one vscalefpd where the host has it, else two steps, the first exact).
log is fdlibm's (s = f/(2+f), Lg1..Lg7); log1p = log(1+x) corrected by ((u-1)-x)/u;
tanh uses Cephes' rational both directly and, through exp(2w) = (1+tanh w)/(1-tanh w), for
exp(-2|x|), ending in one division (0.47 ns/element, NumPy 0.78); sin/cos reduce by pi/2
in three exact-FMA steps (relative accuracy kept for |x| <= 2^40) and use fdlibm's kernels.  Integer
parts come from the add-1.5*2^52 trick (Ops.round_fma), never fptosi, which scalarizes.  For
|x| > 2^40 (or inf) sin/cos set the function's `math_flag`; the kernel then exits with PRECISE_EXIT
and the Kernel reruns its libm twin (no wrong result, and the fast loop stays vectorizable).
"""
import math

from .engine import native_ldexp
from .llvmtext import literal

_F64 = "double"
LN2_HI = 0.6931471805599453
LN2_LO = 2.3190468138462996e-17
PIO2 = (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33)
SIN = (1.58969099521155010221e-10, -2.50507602534068634195e-08, 2.75573137070700676789e-06,
       -1.98412698298579493134e-04, 8.33333333332248946124e-03, -1.66666666666666324348e-01)
COS = (-1.13596475577881948265e-11, 2.08757232129817482790e-09, -2.75573143513906633035e-07,
       2.48015872894767294178e-05, -1.38888888888741095749e-03, 4.16666666666666019037e-02)
LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
      2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
      1.479819860511658591e-01)
EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(13, 0, -1))   # 1/13!, ..., 1/1! (expm1)
# exp(r) ~ 1 + r h(r) on |r| <= ln2/2, h of degree 10 (coefficients of r^10 down to r^0): h(0) = 1 and
# h'(0) = 1/2 exactly, the rest the minimax fit (Remez exchange in 60-digit mpmath) of the error of
# 1 + r h(r) relative to e^r; rounded to doubles its measured maximum (100,001 points) is 5.9e-18 = 2^-57.2
# (the degree-13 Taylor polynomial's: 5.2e-18, with two more FMAs)
EXP_MINIMAX = (2.497839957804813e-08, 2.762517631541276e-07, 2.7557640736453675e-06, 2.4801508707091962e-05,
               0.00019841269466431142, 0.001388888892677839, 0.008333333333499915, 0.041666666666604,
               0.16666666666666433, 0.5, 1.0)
SIN_COS_LIMIT = 2.0 ** 40
ROUND_SHIFT = 1.5 * 2.0 ** 52          # x + ROUND_SHIFT - ROUND_SHIFT = rint(x) for |x| < 2^51
ROUND_SHIFT_BITS = 0x4338000000000000
# Cephes tanh: tanh(w) ~ w + w^3 P(w^2)/Q(w^2) on |w| <= 0.625 (Q monic, coefficients below the 1)
TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)
TANH_SMALL = 0.625
TANH_ONE = 20.0             # tanh(x) rounds to 1 from 19.1 on


class _Ops:
    """Double-precision instruction helpers over a FunctionText."""

    def __init__(self, f):
        self.f = f

    def k(self, v):
        return literal(v, "float64")

    def bin(self, instr, a, b):
        return self.f.emit(f"{instr} double {a}, {b}")

    def add(self, a, b):
        return self.bin("fadd", a, b)

    def sub(self, a, b):
        return self.bin("fsub", a, b)

    def mul(self, a, b):
        return self.bin("fmul", a, b)

    def div(self, a, b):
        return self.bin("fdiv", a, b)

    def call(self, name, *xs):
        args = ", ".join(f"double {x}" for x in xs)
        return self.f.emit(f"call double @llvm.{name}.f64({args})")

    def fma(self, a, b, c):
        return self.call("fma", a, b, c)

    def cmp(self, pred, a, b):
        return self.f.emit(f"fcmp {pred} double {a}, {b}")

    def sel(self, c, a, b, ty=_F64):
        return self.f.emit(f"select i1 {c}, {ty} {a}, {ty} {b}")

    def horner(self, x, coeffs):
        """coeffs[0]*x^(n-1) + ... + coeffs[-1], by FMA."""
        acc = self.k(coeffs[0])
        for c in coeffs[1:]:
            acc = self.fma(acc, x, self.k(c))
        return acc

    def round_fma(self, a, b):
        """(k, n) with k = a*b rounded to the nearest integer (as double) and n = k as i64, for
        |a*b| < 2^51: one FMA adds ROUND_SHIFT, whose low mantissa bits then hold n (no fptosi,
        which LLVM scalarizes in vector loops).  NaN gives NaN k and an arbitrary n."""
        shifted = self.fma(a, b, self.k(ROUND_SHIFT))
        k = self.sub(shifted, self.k(ROUND_SHIFT))
        n = self.f.emit(f"sub i64 {self.f.emit(f'bitcast double {shifted} to i64')}, {ROUND_SHIFT_BITS}")
        return k, n

    def pow2(self, n):
        """2.0**n for an i64 n in [-1022, 1023]."""
        biased = self.f.emit(f"shl i64 {self.f.emit(f'add i64 {n}, 1023')}, 52")
        return self.f.emit(f"bitcast i64 {biased} to double")

    def clamp(self, x, lo, hi):
        x = self.sel(self.cmp("olt", x, self.k(lo)), self.k(lo), x)
        return self.sel(self.cmp("ogt", x, self.k(hi)), self.k(hi), x)


def _reduce_ln2(o, x):
    """(n as i64, r) with x = n*ln2 + r, |r| <= ln2/2; x is clamped to [-746, 710] first."""
    xc = o.clamp(x, -746.0, 710.0)
    kf, n = o.round_fma(xc, o.k(1 / math.log(2)))
    r = o.fma(kf, o.k(-LN2_HI), xc)
    r = o.fma(kf, o.k(-LN2_LO), r)
    return n, r


def _scale(o, p, n):
    """p * 2^n for n in [-1076, 1024], rounded once: one `llvm.ldexp` where the host scales in one
    instruction (AVX-512's vscalefpd), else two steps, the first exact."""
    if native_ldexp():
        return o.f.emit(f"call double @llvm.ldexp.f64.i32(double {p}, i32 {o.f.emit(f'trunc i64 {n} to i32')})")
    n1 = o.f.emit(f"ashr i64 {n}, 1")
    n2 = o.f.emit(f"sub i64 {n}, {n1}")
    return o.mul(o.mul(p, o.pow2(n1)), o.pow2(n2))


def _specials(o, x, value, over, under):
    """nan -> nan, x > over -> inf, x < under -> the underflow value, else value."""
    value = o.sel(o.cmp("ogt", x, o.k(over)), o.k(math.inf), value)
    value = o.sel(o.cmp("olt", x, o.k(under[0])), o.k(under[1]), value)
    return o.sel(o.cmp("uno", x, x), x, value)


def poly_exp(f, x):
    o = _Ops(f)
    n, r = _reduce_ln2(o, x)
    p = o.fma(r, o.horner(r, EXP_MINIMAX), o.k(1.0))
    value = _scale(o, p, n)
    if native_ldexp():      # the clamp and one rounding already give inf, 0 and nan where due
        return value
    return _specials(o, x, value, 709.782712893383973096, (-745.1332191019412, 0.0))


def poly_expm1(f, x):
    o = _Ops(f)
    n, r = _reduce_ln2(o, x)
    c = o.horner(r, EXP_TAYLOR)
    q = o.mul(r, c)                                      # exp(r) - 1
    small_n = f.emit(f"call i64 @llvm.smax.i64(i64 {n}, i64 -1000)")
    small_n = f.emit(f"call i64 @llvm.smin.i64(i64 {small_n}, i64 56)")
    two_n = o.pow2(small_n)
    small = o.fma(two_n, q, o.sub(two_n, o.k(1.0)))      # 2^n (q + 1) - 1
    big = _scale(o, o.fma(r, c, o.k(1.0)), n)            # n > 56: the -1 is below half an ulp
    value = o.sel(f.emit(f"icmp sgt i64 {n}, 56"), big, small)
    value = o.sel(o.cmp("oeq", x, o.k(0.0)), x, value)   # keeps -0.0
    return _specials(o, x, value, 709.782712893383973096, (-40.0, -1.0))


def poly_log(f, x):
    o = _Ops(f)
    tiny = o.cmp("olt", x, o.k(2.2250738585072014e-308))
    xs = o.sel(tiny, o.mul(x, o.k(2.0 ** 52)), x)
    bits = f.emit(f"bitcast double {xs} to i64")
    e = f.emit(f"sub i64 {f.emit(f'lshr i64 {bits}, 52')}, 1023")
    e = f.emit(f"sub i64 {e}, {f.emit(f'select i1 {tiny}, i64 52, i64 0')}")
    mbits = f.emit(f"or i64 {f.emit(f'and i64 {bits}, 4503599627370495')}, 4607182418800017408")
    m = f.emit(f"bitcast i64 {mbits} to double")                  # [1, 2)
    high = o.cmp("ogt", m, o.k(math.sqrt(2.0)))
    m = o.sel(high, o.mul(m, o.k(0.5)), m)
    e = f.emit(f"add i64 {e}, {f.emit(f'zext i1 {high} to i64')}")
    dk = f.emit(f"sitofp i64 {e} to double")
    fm = o.sub(m, o.k(1.0))
    s = o.div(fm, o.add(o.k(2.0), fm))
    z = o.mul(s, s)
    w = o.mul(z, z)
    t1 = o.mul(w, o.horner(w, LG[5::-2]))                   # Lg6, Lg4, Lg2
    t2 = o.mul(z, o.horner(w, LG[6::-2]))                   # Lg7, Lg5, Lg3, Lg1
    big_r = o.add(t2, t1)
    hfsq = o.mul(o.k(0.5), o.mul(fm, fm))
    inner = o.add(o.mul(s, o.add(hfsq, big_r)), o.mul(dk, o.k(1.90821492927058770002e-10)))
    value = o.sub(o.mul(dk, o.k(6.93147180369123816490e-01)), o.sub(o.sub(hfsq, inner), fm))
    value = o.sel(o.cmp("oeq", x, o.k(math.inf)), x, value)
    value = o.sel(o.cmp("oeq", x, o.k(0.0)), o.k(-math.inf), value)
    value = o.sel(o.cmp("olt", x, o.k(0.0)), o.k(math.nan), value)
    return o.sel(o.cmp("uno", x, x), x, value)


def poly_log1p(f, x):
    o = _Ops(f)
    u = o.add(o.k(1.0), x)
    corr = o.div(o.sub(o.sub(u, o.k(1.0)), x), u)
    value = o.sub(poly_log(f, u), corr)
    value = o.sel(o.cmp("oeq", u, o.k(1.0)), x, value)
    value = o.sel(o.cmp("oeq", x, o.k(-1.0)), o.k(-math.inf), value)
    return o.sel(o.cmp("oeq", x, o.k(math.inf)), x, value)


def poly_tanh(f, x):
    """tanh by one rational R(w) = w + w^3 P(w^2)/Q(w^2) ~ tanh(w) on |w| <= TANH_SMALL, used twice
    over: for a = |x| < TANH_SMALL, tanh(a) = R(a); otherwise e = exp(-2a) = 2^n (1+t)/(1-t) with
    t = tanh(w) = R(w), -2a = n ln2 + 2w, so tanh(a) = 1 - 2e/(1+e) = 1 - 2 b/(c + b) with
    b = 2^n (Q+u), c = Q-u, u = t Q.  Both cases end in the same A + N/D: one division, no exp."""
    o = _Ops(f)
    ax = o.call("fabs", x)
    small = o.cmp("olt", ax, o.k(TANH_SMALL))
    a = o.sel(o.cmp("ogt", ax, o.k(TANH_ONE)), o.k(TANH_ONE), ax)       # keeps nan
    kf, n = o.round_fma(a, o.k(-2 / math.log(2)))
    half_r = o.fma(kf, o.k(-LN2_HI / 2), f.emit(f"fneg double {a}"))
    half_r = o.fma(kf, o.k(-LN2_LO / 2), half_r)
    w = o.sel(small, ax, half_r)
    z = o.mul(w, w)
    num = o.mul(o.mul(w, z), o.horner(z, TANH_P))                        # w^3 P(w^2)
    den = o.fma(o.add(z, o.k(TANH_Q[0])), z, o.k(TANH_Q[1]))
    den = o.fma(den, z, o.k(TANH_Q[2]))                                  # Q(w^2), monic
    u = o.fma(w, den, num)
    b = o.mul(o.pow2(n), o.add(den, u))
    total = o.add(o.sub(den, u), b)
    value = o.add(o.sel(small, w, o.k(1.0)), o.div(o.sel(small, num, o.mul(b, o.k(-2.0))),
                                                     o.sel(small, den, total)))
    return o.call("copysign", value, x)


def _sin_cos_parts(f, x):
    """(quadrant as i64 in 0..3, sin r, cos r) for x = k*pi/2 + r; flags |x| > SIN_COS_LIMIT."""
    o = _Ops(f)
    kf, n = o.round_fma(x, o.k(2 / math.pi))       # garbage beyond the flagged 2^40
    r = x
    for part in PIO2:
        r = o.fma(kf, o.k(-part), r)
    quadrant = f.emit(f"and i64 {n}, 3")
    z = o.mul(r, r)
    sin_r = o.add(r, o.mul(o.mul(z, r), o.horner(z, SIN)))
    hz = o.mul(o.k(0.5), z)
    w = o.sub(o.k(1.0), hz)
    cos_r = o.add(w, o.add(o.sub(o.sub(o.k(1.0), w), hz), o.mul(o.mul(z, z), o.horner(z, COS))))
    f.raise_math_flag(o.cmp("ogt", o.call("fabs", x), o.k(SIN_COS_LIMIT)))
    return quadrant, sin_r, cos_r


def _quadrant_select(f, quadrant, first, second):
    """By quadrant 0..3: first, second, -first, -second."""
    o = _Ops(f)
    odd = f.emit(f"trunc i64 {quadrant} to i1")
    flip = f.emit(f"icmp uge i64 {quadrant}, 2")
    v = o.sel(odd, second, first)
    return o.sel(flip, f.emit(f"fneg double {v}"), v)


def poly_sin(f, x):
    quadrant, s, c = _sin_cos_parts(f, x)
    return _quadrant_select(f, quadrant, s, c)


def poly_cos(f, x):
    quadrant, s, c = _sin_cos_parts(f, x)
    return _quadrant_select(f, quadrant, c, f.emit(f"fneg double {s}"))


POLY = {"exp": poly_exp, "expm1": poly_expm1, "log": poly_log, "log1p": poly_log1p, "tanh": poly_tanh,
        "sin": poly_sin, "cos": poly_cos}
