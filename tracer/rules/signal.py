"""Rules for NumPy's compiled signal routines: correlate/correlate2 (behind np.convolve and
np.correlate) and interp (behind np.interp), for real operands.

Correlation is a gather of sliding windows of the zero-padded longer operand contracted with the
shorter one (NumPy's `_pyarray_correlate`: the shorter operand slides, 'same' keeps n//2 on the left,
correlate2 reverses the result when it swapped its operands).  interp picks, for every x, the interval
of xp that holds it; those choices are guarded (x >= xp[j], x < xp[j+1], x > xp[-1] each as observed),
so the compiled code runs NumPy's formula `slope * (x - xp[j]) + fp[j]` only while they hold.
"""
import numpy as np

from ..arrays import array_api as A
from ..recording.registry import register
from ..arrays.values import astype, builder, concrete_of, const, guard, lift, make, reshape, unwrap
from ..arrays.refusals import refuse
from .numpy_library import gather


def require_real(name, *operands):
    """Refuse complex operands of routine `name`."""
    if any(np.iscomplexobj(concrete_of(o)) for o in operands):
        refuse(f"{name} of complex operands is not supported while tracing (complex dtypes are not traced)")


def _correlate_ir(long, short, mode, dtype):
    """IR of NumPy's _pyarray_correlate(long, short, mode) for len(long) >= len(short)."""
    n1, n = long.value.size, short.value.size
    offset, length = {0: (n - 1, n1 - n + 1), 1: (n - 1 - n // 2, n1), 2: (0, n1 + n - 1)}[mode]
    padded = (offset + np.arange(length))[:, None] + np.arange(n)[None, :] - (n - 1)   # into long, or outside
    positions = np.where((padded >= 0) & (padded < n1), padded, n1)                    # n1: the zero fill
    b = builder()
    windows = astype(gather(long, positions, b.fill((1,), long.ir.dtype, 0)), dtype)
    return b.dot_general(windows, astype(short.ir, dtype), contract=((1,), (0,)), batch=((), ()))


def _correlation(c_fn, reverts):
    def impl(a, v, mode=0):
        require_real(f"np.{c_fn.__name__}", a, v)
        concrete = c_fn(unwrap(a), unwrap(v), mode)
        x, y = A.as_traced(a), A.as_traced(v)
        if isinstance(mode, str):                       # NumPy accepted it: 'valid', 'same' or 'full'
            mode = "vsf".index(mode[0].lower())
        if x.ir.ndim != 1 or y.ir.ndim != 1 or mode not in (0, 1, 2):
            refuse(f"np.{c_fn.__name__}: 1-d operands and a known mode are needed")
        if x.value.size >= y.value.size:
            return make(_correlate_ir(x, y, mode, concrete.dtype), concrete)
        swapped = _correlate_ir(y, x, mode, concrete.dtype)
        if reverts:
            swapped = _gathered(swapped, np.arange(swapped.shape[0])[::-1].copy())
        return make(swapped, concrete)
    impl.__name__ = c_fn.__name__
    impl.__doc__ = f"The compiled {c_fn.__name__} behind np.correlate/np.convolve, for real 1-d operands."
    return impl


def _gathered(v, positions):
    return builder().index(v, const(positions), spec=(("array", 0),))


def interp(x, xp, fp, left=None, right=None):
    """The compiled interp behind np.interp (real fp; xp strictly increasing with at least 2 points)."""
    require_real("np.interp", x, xp, fp, left, right)
    xc, xpc, fpc = (np.asarray(concrete_of(o), dtype=np.float64) for o in (x, xp, fp))
    concrete = np.interp(xc, xpc, fpc, unwrap(left), unwrap(right))
    if xpc.ndim != 1 or xpc.size < 2 or np.any(np.diff(xpc) <= 0) or np.isnan(xc).any():
        refuse("np.interp is traced for strictly increasing xp with at least 2 points and x without NaN")
    b = builder()
    f64 = np.dtype(np.float64)
    xv, xpv, fpv = (reshape(astype(lift(o), f64), np.shape(c)) for o, c in ((x, xc), (xp, xpc), (fp, fpc)))
    n = xpc.size
    seg = np.clip(np.searchsorted(xpc, xc, side="right") - 1, 0, n - 2)
    lo, hi, last = _gathered(xpv, seg), _gathered(xpv, seg + 1), _gathered(xpv, np.full(xc.shape, n - 1))
    tests = {"ge": (b.greater_equal(xv, lo), xc >= xpc[seg]), "lt": (b.less(xv, hi), xc < xpc[seg + 1]),
             "gt": (b.greater(xv, last), xc > xpc[-1])}
    held = [b.min(b.equal(pred, const(seen)), axis=tuple(range(xc.ndim)), keepdims=False)
            for pred, seen in tests.values()]
    guard(b.logical_and(b.logical_and(held[0], held[1]), held[2]), True, "interval of xp holding each x")
    f_lo, f_hi = _gathered(fpv, seg), _gathered(fpv, seg + 1)
    slope = b.divide(b.subtract(f_hi, f_lo), b.subtract(hi, lo))
    value = b.add(b.multiply(slope, b.subtract(xv, lo)), f_lo)

    def end(given, i):
        return _gathered(fpv, np.full(xc.shape, i)) if given is None else astype(lift(given), f64)
    value = b.where(const(~tests["lt"][1]), end(None, n - 1), value)            # x == xp[-1]
    value = b.where(const(tests["gt"][1]), end(right, n - 1), value)
    value = b.where(const(~tests["ge"][1]), end(left, 0), value)
    return make(reshape(value, np.shape(concrete)), concrete)


_C = np._core.multiarray
register(_C.correlate)(_correlation(_C.correlate, reverts=False))
register(_C.correlate2)(_correlation(_C.correlate2, reverts=True))
register(_C.interp)(interp)
