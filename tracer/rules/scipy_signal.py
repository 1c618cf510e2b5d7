"""Rules for scipy.signal's N-d correlate and convolve of real operands (loaded once scipy.signal is
imported): every output entry is a direct sum over a window of the zero-padded operand, gathered by
flat positions computed once from the static shapes, and contracted with the other operand."""
import numpy as np
import scipy.signal as _scipy_signal

from ..arrays import array_api as A
from ..recording.registry import register
from ..arrays.values import astype, builder, make, unwrap
from ..arrays.refusals import refuse
from .numpy_library import gather
from .signal import require_real


def _nd_windows(n, m, mode, flipped):
    """Flat positions into x (x.size: outside, a zero) of the windows behind scipy.signal's N-d correlate
    (convolve when `flipped`) of shapes n and m: one window of m entries per output entry.  Output entry
    o along an axis is full-correlation lag start + o; 'same' keeps the centred N, 'valid' the |N - M| + 1
    lags where one operand covers the other."""
    start = {"full": [0] * len(n), "same": [(k - 1) // 2 for k in m],
             "valid": [min(a, k) - 1 for a, k in zip(n, m)]}[mode]
    length = {"full": [a + k - 1 for a, k in zip(n, m)], "same": list(n),
              "valid": [abs(a - k) + 1 for a, k in zip(n, m)]}[mode]
    d = len(n)
    out = np.indices(length).reshape((d,) + tuple(length) + (1,) * d)
    kernel = np.indices(m).reshape((d,) + (1,) * d + tuple(m))
    lag = kernel if not flipped else np.asarray(m).reshape((d,) + (1,) * 2 * d) - 1 - kernel
    at = np.asarray(start).reshape((d,) + (1,) * 2 * d) + out + lag - np.asarray(m).reshape((d,) + (1,) * 2 * d) + 1
    inside = np.all((at >= 0) & (at < np.asarray(n).reshape((d,) + (1,) * 2 * d)), axis=0)
    flat = np.ravel_multi_index(tuple(np.where(inside, at, 0)), n)
    return np.where(inside, flat, int(np.prod(n)))


def _scipy_correlation(sp_fn, flipped):
    def impl(in1, in2, mode="full", method="auto"):
        require_real(f"scipy.signal.{sp_fn.__name__}", in1, in2)
        concrete = sp_fn(unwrap(in1), unwrap(in2), mode=mode, method=method)
        x, y = A.as_traced(in1), A.as_traced(in2)
        if x.ir.ndim != y.ir.ndim or x.ir.ndim == 0 or concrete.dtype.kind != "f":
            refuse(f"scipy.signal.{sp_fn.__name__}: float operands of the same ndim >= 1 are needed")
        d, dtype = x.ir.ndim, concrete.dtype
        positions = _nd_windows(x.value.shape, y.value.shape, mode, flipped)
        windows = astype(gather(x, positions, builder().fill((1,), x.ir.dtype, 0)), dtype)
        result = builder().dot_general(windows, astype(y.ir, dtype), contract=(tuple(range(d, 2 * d)), tuple(range(d))),
                                       batch=((), ()))
        return make(result, concrete)
    impl.__name__ = sp_fn.__name__
    impl.__doc__ = f"scipy.signal.{sp_fn.__name__} of real N-d operands, by direct sums over gathered windows."
    return impl


register(_scipy_signal.correlate)(_scipy_correlation(_scipy_signal.correlate, flipped=False))
register(_scipy_signal.convolve)(_scipy_correlation(_scipy_signal.convolve, flipped=True))
